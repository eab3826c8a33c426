// The shell: navigation over hash routes (#/page?params), one page module rendered at a time.
import { features, el } from './api.js';

const pages = [];
if (features.has('metrics')) {
  pages.push({ id: 'query', title: 'Query', load: () => import('./query.js') });
  pages.push({ id: 'dashboard', title: 'Dashboard', load: () => import('./dashboard.js') });
  pages.push({ id: 'alerts', title: 'Alerts & rules', load: () => import('./rules.js') });
  pages.push({ id: 'targets', title: 'Targets & status', load: () => import('./targets.js') });
}
if (features.has('traces')) {
  pages.push({ id: 'traces', title: 'Traces', load: () => import('./traces.js') });
  pages.push({ id: 'map', title: 'Service map', load: () => import('./traces.js').then((m) => ({ render: m.renderMap })) });
}
if (features.has('alertmanager')) {
  pages.push({ id: 'alertmanager', title: 'Alertmanager', load: () => import('./alertmanager.js') });
}
if (features.has('balancer')) {
  pages.push({ id: 'balancer', title: 'Balancer', load: () => import('./balancer.js') });
}

const nav = document.getElementById('nav');
const main = document.getElementById('main');
let cleanup = null;
let renderSeq = 0;

for (const p of pages) {
  nav.append(el('a', { href: `#/${p.id}`, 'data-page': p.id }, p.title));
}

export function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [id, qs] = hash.split('?');
  const page = pages.find((p) => p.id === id) || pages[0];
  return { page, params: new URLSearchParams(qs || '') };
}

// Rewrites the page's parameters in the URL without re-rendering (shareable links).
export function setParams(params) {
  const { page } = route();
  const qs = params.toString();
  history.replaceState(null, '', `#/${page.id}${qs ? '?' + qs : ''}`);
}

export function go(pageId, params) {
  const qs = params ? params.toString() : '';
  location.hash = `#/${pageId}${qs ? '?' + qs : ''}`;
}

async function render() {
  const seq = ++renderSeq;
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  const { page, params } = route();
  if (!page) {
    main.replaceChildren(el('p', { class: 'muted' }, 'This listener serves no UI pages.'));
    return;
  }
  for (const a of nav.children) a.classList.toggle('active', a.dataset.page === page.id);
  document.title = `${page.title} · obsd`;
  const mod = await page.load();
  if (seq !== renderSeq) return;
  const root = el('div', { id: `page-${page.id}` });
  main.replaceChildren(root);
  try {
    cleanup = (await mod.render(root, params)) || null;
  } catch (e) {
    root.append(el('div', { class: 'error' }, String(e.message || e)));
  }
}

window.addEventListener('hashchange', render);
render();
