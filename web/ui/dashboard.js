// The dashboard: the seed's five Grafana panels and the node panels, plus panels a user adds
// from the query page (kept in this browser's localStorage), refreshed on an interval.
import { getJSON, el, parseDuration } from './api.js';
import { alignMatrix, drawChart, autoResize } from './chart.js';
import { setParams } from './app.js';

export const BUILTIN = [
  { title: 'App latency p95', exprs: ['histogram_quantile(0.95, rate(python_app_request_latency_seconds_bucket[1m]))'] },
  { title: 'Request rate', exprs: ['rate(python_app_requests_total[1m])'] },
  { title: 'Backend sessions', exprs: ['haproxy_backend_sessions_total{backend="prometheus_backends"}'] },
  { title: 'Replica health', exprs: ['haproxy_server_up{backend="prometheus_backends"}'] },
  { title: 'Load distribution', exprs: ['sum by (server) (rate(haproxy_server_sessions_total[5m]))'], stacked: true },
  { title: 'Node CPU (busy share by mode)', exprs: ['sum by (instance, mode) (rate(node_cpu_seconds_total{mode!="idle"}[1m])) / on (instance) group_left count by (instance) (node_cpu_seconds_total{mode="idle"})'], stacked: true },
  { title: 'Node memory used (bytes)', exprs: ['node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes'] },
  { title: 'Node disk I/O (bytes/s)', exprs: ['sum by (instance, device) (rate(node_disk_read_bytes_total[1m]))', 'sum by (instance, device) (rate(node_disk_written_bytes_total[1m]))'], names: ['read', 'written'] },
  { title: 'Node filesystem used (share)', exprs: ['1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"}'] },
  { title: 'Node network (bytes/s)', exprs: ['sum by (instance, device) (rate(node_network_receive_bytes_total{device!="lo"}[1m]))', 'sum by (instance, device) (rate(node_network_transmit_bytes_total{device!="lo"}[1m]))'], names: ['receive', 'transmit'] },
];

const KEY = 'obsd.dashboard.panels';

export function userPanels() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || '[]');
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

export function addPanel({ title, expr, stacked }) {
  const list = userPanels();
  list.push({ title, exprs: [expr], stacked: !!stacked, user: true });
  localStorage.setItem(KEY, JSON.stringify(list));
}

function removePanel(index) {
  const list = userPanels();
  list.splice(index, 1);
  localStorage.setItem(KEY, JSON.stringify(list));
}

async function fetchPanel(panel, start, end, step) {
  const parts = await Promise.all(panel.exprs.map((q) => getJSON('/api/v1/query_range', { query: q, start, end, step })));
  const result = [];
  parts.forEach((d, i) => {
    for (const s of d.result || []) {
      result.push(panel.names ? { ...s, metric: { ...s.metric, __name__: panel.names[i] } } : s);
    }
  });
  return result;
}

export async function render(root, params) {
  const range = params.get('range') || '1h';
  const refresh = params.get('refresh') || '30s';
  const rangeSel = el('select', { id: 'dash-range' }, ['15m', '1h', '3h', '6h', '12h', '1d'].map((r) => el('option', { value: r, selected: r === range }, r)));
  const refreshSel = el('select', { id: 'dash-refresh' }, ['off', '10s', '30s', '1m', '5m'].map((r) => el('option', { value: r, selected: r === refresh }, r)));
  const status = el('span', { class: 'muted' });
  const grid = el('div', { class: 'panels', id: 'panels' });
  root.append(el('div', { class: 'row card' }, el('strong', {}, 'Dashboard'), el('span', { class: 'grow' }), 'Range', rangeSel, 'Refresh', refreshSel, status), grid);

  let plots = [];
  let timer = null;
  const destroy = () => {
    for (const [p, stop] of plots) {
      stop();
      p.destroy();
    }
    plots = [];
  };

  const panels = [...BUILTIN, ...userPanels()];
  const boxes = panels.map((panel, i) => {
    const body = el('div', { class: 'chart' });
    const userIndex = i - BUILTIN.length;
    const head = el('h3', {}, el('span', {}, panel.title),
      panel.user ? el('button', { class: 'plain', title: 'remove panel', onclick: () => {
        removePanel(userIndex);
        location.reload();
      } }, '×') : null);
    const q = new URLSearchParams({ expr: panel.exprs[0], tab: 'graph', range });
    const box = el('div', { class: 'card panel', 'data-title': panel.title }, head,
      el('a', { class: 'mono', href: `#/query?${q}` }, panel.exprs.join('  ·  ')), body);
    grid.append(box);
    return body;
  });

  async function load() {
    const rangeS = parseDuration(rangeSel.value);
    const step = Math.max(1, Math.ceil(rangeS / 200));
    const now = Date.now() / 1000;
    const end = Math.floor(now / step) * step;
    const start = end - Math.floor(rangeS / step) * step;
    const results = await Promise.all(panels.map((p) => fetchPanel(p, start, end, step).catch((e) => e)));
    destroy();
    results.forEach((r, i) => {
      const body = boxes[i];
      body.replaceChildren();
      if (r instanceof Error) {
        body.append(el('div', { class: 'error' }, r.message));
      } else if (r.length === 0) {
        body.append(el('p', { class: 'muted' }, 'No data.'));
      } else {
        const plot = drawChart(body, { ...alignMatrix(r, start, end, step), stacked: !!panels[i].stacked, height: 220 });
        plots.push([plot, autoResize(plot, body)]);
      }
      body.dataset.series = r instanceof Error ? 'error' : String(r.length);
    });
    status.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  function schedule() {
    clearInterval(timer);
    timer = null;
    const p = new URLSearchParams({ range: rangeSel.value, refresh: refreshSel.value });
    setParams(p);
    if (refreshSel.value !== 'off') timer = setInterval(load, parseDuration(refreshSel.value) * 1000);
  }
  rangeSel.addEventListener('change', () => {
    schedule();
    load();
  });
  refreshSel.addEventListener('change', schedule);
  schedule();
  await load();
  return () => {
    clearInterval(timer);
    destroy();
  };
}
