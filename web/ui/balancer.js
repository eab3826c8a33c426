// The balancer's state from its stats page (`<stats uri>;json`, HAProxy's `show stat` fields):
// frontends, backends and servers with health, sessions and errors; with `stats admin`, the
// READY/DRAIN/MAINT actions of HAProxy's page, posted to the same URI.
import { el, settings } from './api.js';

const COLUMNS = [
  ['status', 'Status'], ['weight', 'Weight'], ['scur', 'Sessions'], ['smax', 'Max'], ['slim', 'Limit'],
  ['stot', 'Total'], ['rate', 'Rate/s'], ['bin', 'Bytes in'], ['bout', 'Bytes out'], ['ereq', 'Req err'],
  ['econ', 'Conn err'], ['eresp', 'Resp err'], ['hrsp_5xx', '5xx'], ['check_status', 'Check'],
  ['check_duration', 'Check ms'], ['lastchg', 'Last change'], ['downtime', 'Downtime'],
];

// HAProxy's JSON stats → [{type, px, sv, f: {field: value}}].
export function parseStats(json) {
  return json.map((fields) => {
    const f = {};
    for (const x of fields) f[x.field.name] = x.value.value;
    return { type: fields.length ? fields[0].objType : '', px: f.pxname, sv: f.svname, f };
  });
}

// HAProxy's "1d2h", "5m3s" style for lastchg/downtime seconds.
function age(sec) {
  if (!Number.isFinite(sec)) return '';
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = Math.floor(sec % 60);
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}

function statusClass(s) {
  const t = String(s || '');
  if (t.startsWith('UP') || t === 'OPEN') return 'up';
  if (t.startsWith('DOWN')) return 'down';
  return 'unknown';
}

function cell(key, v) {
  if (v === undefined || v === '') return el('td', {}, '');
  if (key === 'status') return el('td', {}, el('span', { class: `badge ${statusClass(v)}` }, v));
  if (key === 'lastchg' || key === 'downtime') return el('td', { class: 'num' }, age(Number(v)));
  return el('td', { class: typeof v === 'number' ? 'num' : '' }, typeof v === 'number' ? v.toLocaleString() : v);
}

async function stats(uri) {
  const r = await fetch(new URL(`${uri};json;norefresh`, location.origin), { headers: { Accept: 'application/json' } });
  if (!r.ok) throw new Error(`${uri};json: ${r.status} ${r.statusText}`);
  return parseStats(await r.json());
}

async function act(uri, backend, servers, action) {
  const body = new URLSearchParams();
  body.set('b', backend);
  for (const s of servers) body.append('s', s);
  body.set('action', action);
  const r = await fetch(new URL(uri, location.origin), { method: 'POST', body });
  // HAProxy answers with a redirect to `<uri>;st=<result>`.
  const m = /;st=([A-Z]+)/.exec(r.url);
  return m ? m[1] : `${r.status}`;
}

function view(rows, cfg, refresh, note) {
  const wrap = el('div', { id: 'balancer' });
  const proxies = [...new Set(rows.map((r) => r.px))];
  for (const px of proxies) {
    const list = rows.filter((r) => r.px === px);
    const servers = list.filter((r) => r.type === 'Server');
    const t = el('table', { class: 'data' }, el('tr', {}, cfg.admin && servers.length ? el('th', {}, '') : null,
      el('th', {}, 'Name'), COLUMNS.map(([, h]) => el('th', {}, h))));
    for (const r of list) {
      t.append(el('tr', { class: `stat-row ${r.type.toLowerCase()}`, 'data-proxy': px, 'data-name': r.sv, 'data-status': r.f.status || '' },
        cfg.admin && servers.length ? el('td', {}, r.type === 'Server' ? el('input', { type: 'checkbox', value: r.sv }) : '') : null,
        el('td', {}, r.type === 'Server' ? r.sv : el('strong', {}, r.sv)),
        COLUMNS.map(([k]) => cell(k, r.f[k]))));
    }
    const card = el('div', { class: 'card', 'data-proxy': px }, el('h3', {}, px), t);
    if (cfg.admin && servers.length) {
      const action = el('select', {}, el('option', { value: 'ready' }, 'Set state to READY'),
        el('option', { value: 'drain' }, 'Set state to DRAIN'), el('option', { value: 'maint' }, 'Set state to MAINT'));
      card.append(el('div', { class: 'row', style: { marginTop: '.5em' } }, 'Checked servers:', action,
        el('button', { class: 'apply', onclick: async () => {
          const chosen = [...t.querySelectorAll('input:checked')].map((c) => c.value);
          if (!chosen.length) return (note.textContent = 'no server checked');
          note.textContent = `result: ${await act(cfg.statsUri, px, chosen, action.value)}`;
          refresh();
        } }, 'Apply')));
    }
    wrap.append(card);
  }
  return wrap;
}

export async function render(root) {
  const cfg = settings;
  const out = el('div');
  // Outside the refreshed view, so an action's result outlives the refresh that shows it.
  const note = el('span', { class: 'muted admin-result' });
  root.append(el('div', { class: 'row card' }, el('strong', {}, 'Balancer'), el('span', { class: 'grow' }),
    note, el('a', { href: cfg.statsUri }, 'HAProxy stats page'), el('span', { class: 'muted', id: 'balancer-updated' })), out);
  const refresh = async () => {
    try {
      const rows = await stats(cfg.statsUri);
      // Keep what the user checked across refreshes.
      const checked = new Set([...out.querySelectorAll('input:checked')].map((c) => `${c.closest('[data-proxy]').dataset.proxy}/${c.value}`));
      out.replaceChildren(view(rows, cfg, refresh, note));
      for (const c of out.querySelectorAll('input[type=checkbox]')) c.checked = checked.has(`${c.closest('[data-proxy]').dataset.proxy}/${c.value}`);
      root.querySelector('#balancer-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      out.replaceChildren(el('div', { class: 'error' }, e.message));
    }
  };
  await refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}
