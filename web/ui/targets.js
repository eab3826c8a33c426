// Scrape targets by job (as Prometheus's targets page), the store's status from the TSDB/runtime
// API and the listener's own /metrics, and on the federation its HA dedup counters.
import { getJSON, getText, el, ago, fmtSeconds, features } from './api.js';

// Prometheus text exposition → [{name, labels, value}] (comments and exemplars ignored).
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const [, k, v] of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: parseFloat(m[3]) });
  }
  return out;
}

function bytes(n) {
  if (!Number.isFinite(n)) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${+n.toFixed(1)} ${u[i]}`;
}

function targetsView(data) {
  const byJob = new Map();
  for (const t of data.activeTargets || []) {
    if (!byJob.has(t.scrapePool)) byJob.set(t.scrapePool, []);
    byJob.get(t.scrapePool).push(t);
  }
  const wrap = el('div', { id: 'targets' });
  if (byJob.size === 0) wrap.append(el('p', { class: 'muted' }, 'No active targets.'));
  for (const [job, list] of [...byJob.entries()].sort()) {
    const up = list.filter((t) => t.health === 'up').length;
    const t = el('table', { class: 'data' },
      el('tr', {}, ['Endpoint', 'State', 'Labels', 'Last scrape', 'Duration', 'Error'].map((h) => el('th', {}, h))));
    for (const tg of list) {
      const labels = Object.entries(tg.labels || {}).map(([k, v]) => `${k}="${v}"`).join(' ');
      const last = Date.parse(tg.lastScrape);
      t.append(el('tr', { class: 'target', 'data-health': tg.health },
        el('td', { class: 'mono' }, el('a', { href: tg.scrapeUrl }, tg.scrapeUrl)),
        el('td', {}, el('span', { class: `badge ${tg.health}` }, tg.health.toUpperCase())),
        el('td', { class: 'mono' }, labels),
        el('td', { title: tg.lastScrape }, last > 0 ? ago(last) : 'never'),
        el('td', { class: 'num' }, tg.lastScrapeDuration ? fmtSeconds(tg.lastScrapeDuration) : '—'),
        el('td', { class: 'mono', style: { color: 'var(--bad)' } }, tg.lastError || '')));
    }
    wrap.append(el('div', { class: 'card job', 'data-job': job }, el('h3', {}, `${job} `, el('span', { class: 'muted' }, `(${up}/${list.length} up)`)), t));
  }
  if ((data.droppedTargets || []).length) wrap.append(el('p', { class: 'muted' }, `${data.droppedTargets.length} dropped by relabelling.`));
  return wrap;
}

function sumOf(samples, name) {
  const hit = samples.filter((s) => s.name === name);
  return hit.length ? hit.reduce((a, s) => a + s.value, 0) : NaN;
}

function storeView(tsdb, runtime, self) {
  const head = (tsdb && tsdb.headStats) || {};
  const rows = [
    ['Series (head)', head.numSeries ?? sumOf(self, 'obsd_store_series')],
    ['Label pairs', head.numLabelPairs],
    ['Head chunks', sumOf(self, 'obsd_store_head_chunks')],
    ['Samples appended', sumOf(self, 'obsd_store_samples_appended_total')],
    ['Disk (store)', bytes(sumOf(self, 'obsd_store_disk_bytes'))],
    ['WAL', bytes(sumOf(self, 'obsd_store_wal_bytes'))],
    ['Retention', runtime ? runtime.storageRetention : '—'],
    ['Out-of-order samples', sumOf(self, 'obsd_store_out_of_order_samples_total')],
    ['Write errors', sumOf(self, 'obsd_store_write_errors_total')],
    ['Compactions', sumOf(self, 'obsd_store_compactions_total')],
  ];
  const dl = el('dl', { class: 'kv', id: 'store-status' });
  for (const [k, v] of rows) {
    if (v === undefined || v === null || v === '' || (typeof v === 'number' && Number.isNaN(v))) continue;
    dl.append(el('dt', {}, k), el('dd', {}, typeof v === 'number' ? v.toLocaleString() : String(v)));
  }
  const top = el('table', { class: 'data' }, el('tr', {}, el('th', {}, 'Metric'), el('th', {}, 'Series')));
  for (const m of (tsdb && tsdb.seriesCountByMetricName) || []) {
    top.append(el('tr', {}, el('td', { class: 'mono' }, m.name), el('td', { class: 'num' }, m.value)));
  }
  return el('div', { class: 'card' }, el('h3', {}, 'Store'), dl, el('h3', {}, 'Most series by metric'), top);
}

function federationView(self) {
  const names = [
    ['Series tracked', 'obsd_federation_dedup_series'],
    ['Samples kept', 'obsd_federation_dedup_samples_accepted_total'],
    ['Duplicates dropped', 'obsd_federation_dedup_samples_duplicate_total'],
    ['Dropped (other replica leads)', 'obsd_federation_dedup_samples_other_replica_total'],
    ['Failovers', 'obsd_federation_dedup_failovers_total'],
  ];
  const dl = el('dl', { class: 'kv', id: 'federation-status' });
  for (const [k, n] of names) {
    const v = sumOf(self, n);
    dl.append(el('dt', {}, k), el('dd', {}, Number.isNaN(v) ? 'dedup off' : v.toLocaleString()));
  }
  const led = self.filter((x) => x.name === 'obsd_federation_dedup_series_by_replica');
  const t = el('table', { class: 'data', id: 'replica-leaders' }, el('tr', {}, el('th', {}, 'Replica'), el('th', {}, 'Series it leads')));
  for (const x of led) t.append(el('tr', {}, el('td', { class: 'mono' }, x.labels.replica), el('td', { class: 'num' }, x.value.toLocaleString())));
  const filter = el('input', { id: 'dedup-filter', size: 40, placeholder: 'filter series, e.g. job="app"' });
  const list = el('div', { id: 'dedup-series' });
  const load = async () => {
    try {
      const d = await getJSON('/api/v1/status/dedup', { match: filter.value, limit: '500' });
      const tbl = el('table', { class: 'data' }, el('tr', {}, el('th', {}, 'Series'), el('th', {}, 'Follows replica'), el('th', {}, 'Last sample')));
      for (const x of d.series) {
        tbl.append(el('tr', { class: 'dedup-row' }, el('td', { class: 'mono' }, `{${x.labels}}`),
          el('td', { class: 'mono' }, x.replica || '(ended)'), el('td', {}, ago(x.lastSampleMs))));
      }
      list.replaceChildren(el('p', { class: 'muted' }, `${d.total} series${d.total > d.series.length ? `, first ${d.series.length} shown` : ''}`), tbl);
    } catch (e) {
      list.replaceChildren(el('div', { class: 'error' }, e.message));
    }
  };
  filter.addEventListener('change', load);
  load();
  return el('div', { class: 'card' }, el('h3', {}, 'HA replica dedup'), dl, el('h3', {}, 'Series per replica'),
    led.length ? t : el('p', { class: 'muted' }, 'No replica leads a series (dedup off or nothing scraped yet).'),
    el('h3', {}, 'Which replica each series follows'), filter, list);
}

export async function render(root) {
  const [targets, tsdb, runtime, metricsText] = await Promise.all([
    getJSON('/api/v1/targets'),
    getJSON('/api/v1/status/tsdb').catch(() => null),
    getJSON('/api/v1/status/runtimeinfo').catch(() => null),
    getText('/metrics').catch(() => ''),
  ]);
  const self = parseMetrics(metricsText);
  root.append(el('h2', {}, 'Targets'), targetsView(targets), el('h2', {}, 'Status'), storeView(tsdb, runtime, self));
  if (features.has('federation')) root.append(federationView(self));
  const timer = setInterval(async () => {
    try {
      const fresh = await getJSON('/api/v1/targets');
      root.querySelector('#targets').replaceWith(targetsView(fresh));
    } catch {
      // keep the last view; the next tick retries
    }
  }, 10000);
  return () => clearInterval(timer);
}
