// Traces over the collector's Jaeger query API: search (service, operation, tags, duration,
// time range) with a duration scatter plot, the trace waterfall, and the service map.
import { getJSON, el, fmtDurationUs, fmtTime, color } from './api.js';
import { setParams, go } from './app.js';

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const serviceIndex = new Map();
export function serviceColor(name, alpha = 1) {
  if (!serviceIndex.has(name)) serviceIndex.set(name, serviceIndex.size);
  return color(serviceIndex.get(name), alpha);
}

const LOOKBACKS = [['5m', 300], ['15m', 900], ['1h', 3600], ['2h', 7200], ['6h', 21600], ['12h', 43200], ['1d', 86400], ['2d', 172800]];

// "error=true http.method=GET" (Jaeger UI's logfmt) → {error: "true", "http.method": "GET"}.
export function parseTags(text) {
  const tags = {};
  for (const m of String(text).matchAll(/([^\s=]+)=("((?:[^"\\]|\\.)*)"|\S*)/g)) tags[m[1]] = m[3] !== undefined ? m[3] : m[2];
  return tags;
}

function tagValue(span, key) {
  const t = (span.tags || []).find((t) => t.key === key);
  return t ? t.value : undefined;
}
const isError = (span) => tagValue(span, 'error') === true || tagValue(span, 'error') === 'true' ||
  tagValue(span, 'otel.status_code') === 'ERROR';

// Span tree of one trace, in display order: parents before children, siblings by start time.
export function spanTree(trace) {
  const byId = new Map(trace.spans.map((s) => [s.spanID, s]));
  const children = new Map();
  const roots = [];
  for (const s of trace.spans) {
    const parent = (s.references || []).find((r) => r.refType === 'CHILD_OF' && byId.has(r.spanID)) ||
      (s.references || []).find((r) => byId.has(r.spanID));
    if (parent) {
      if (!children.has(parent.spanID)) children.set(parent.spanID, []);
      children.get(parent.spanID).push(s);
    } else {
      roots.push(s);
    }
  }
  const order = [];
  const walk = (s, depth) => {
    order.push({ span: s, depth });
    for (const c of (children.get(s.spanID) || []).sort((a, b) => a.startTime - b.startTime)) walk(c, depth + 1);
  };
  for (const r of roots.sort((a, b) => a.startTime - b.startTime)) walk(r, 0);
  return order;
}

function summary(trace) {
  const start = Math.min(...trace.spans.map((s) => s.startTime));
  const end = Math.max(...trace.spans.map((s) => s.startTime + s.duration));
  const order = spanTree(trace);
  const root = order.length ? order[0].span : trace.spans[0];
  const services = new Map();
  for (const s of trace.spans) {
    const svc = (trace.processes[s.processID] || {}).serviceName || '?';
    services.set(svc, (services.get(svc) || 0) + 1);
  }
  const rootService = (trace.processes[root.processID] || {}).serviceName || '?';
  return { start, end, duration: end - start, root, rootService, services, errors: trace.spans.filter(isError).length };
}

// ---- search -------------------------------------------------------------------------------

function scatter(traces, onPick, width) {
  const W = Math.max(400, width);
  const H = 180;
  const pad = { l: 60, r: 12, t: 10, b: 24 };
  const pts = traces.map((t) => ({ t, s: summary(t) }));
  const xs = pts.map((p) => p.s.start);
  const ys = pts.map((p) => p.s.duration);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs) || x0 + 1;
  const y1 = Math.max(...ys, 1);
  const sx = (x) => pad.l + ((x - x0) / Math.max(1, x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y) => H - pad.b - (y / y1) * (H - pad.t - pad.b);
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, id: 'trace-scatter' });
  g.append(svg('line', { x1: pad.l, y1: H - pad.b, x2: W - pad.r, y2: H - pad.b, stroke: '#ccd' }));
  g.append(svg('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: H - pad.b, stroke: '#ccd' }));
  g.append(svg('text', { x: 4, y: pad.t + 10, fill: '#667' }, fmtDurationUs(y1)));
  g.append(svg('text', { x: 4, y: H - pad.b, fill: '#667' }, '0'));
  g.append(svg('text', { x: pad.l, y: H - 6, fill: '#667' }, new Date(x0 / 1000).toLocaleTimeString()));
  g.append(svg('text', { x: W - pad.r, y: H - 6, fill: '#667', 'text-anchor': 'end' }, new Date(x1 / 1000).toLocaleTimeString()));
  for (const { t, s } of pts) {
    const r = Math.min(12, 3 + Math.sqrt(t.spans.length));
    g.append(svg('circle', {
      cx: pts.length === 1 ? (pad.l + W - pad.r) / 2 : sx(s.start), cy: sy(s.duration), r,
      fill: s.errors ? 'rgba(198,40,40,.55)' : serviceColor(s.rootService, 0.55), stroke: '#fff',
      class: 'trace-dot', style: 'cursor:pointer', onclick: () => onPick(t.traceID),
    }, svg('title', {}, `${s.rootService}: ${s.root.operationName} · ${fmtDurationUs(s.duration)}`)));
  }
  return g;
}

function resultList(traces, onPick) {
  const t = el('table', { class: 'data', id: 'trace-results' },
    el('tr', {}, ['Trace', 'Services', 'Spans', 'Errors', 'Duration', 'Started'].map((h) => el('th', {}, h))));
  for (const tr of traces) {
    const s = summary(tr);
    t.append(el('tr', { class: 'trace-item', 'data-trace-id': tr.traceID, onclick: () => onPick(tr.traceID) },
      el('td', {}, el('span', { class: 'svc-dot', style: { background: serviceColor(s.rootService) } }),
        el('strong', {}, `${s.rootService}: `), s.root.operationName, el('div', { class: 'mono muted' }, tr.traceID)),
      el('td', {}, [...s.services.entries()].map(([n, c]) =>
        el('span', { style: { marginRight: '.7em', whiteSpace: 'nowrap' } }, el('span', { class: 'svc-dot', style: { background: serviceColor(n) } }), `${n} (${c})`))),
      el('td', { class: 'num' }, tr.spans.length),
      el('td', { class: 'num' }, s.errors ? el('span', { class: 'wf-err' }, s.errors) : '0'),
      el('td', { class: 'num' }, fmtDurationUs(s.duration)),
      el('td', {}, fmtTime(s.start / 1000))));
  }
  return t;
}

export async function render(root, params) {
  if (params.get('trace')) return renderTrace(root, params.get('trace'));
  const services = await getJSON('/api/services');
  const serviceSel = el('select', { name: 'service', id: 'svc' }, el('option', { value: '' }, '— service —'),
    (services || []).sort().map((s) => el('option', { value: s, selected: s === params.get('service') }, s)));
  const opSel = el('select', { name: 'operation', id: 'op' }, el('option', { value: '' }, 'all operations'));
  const loadOps = async () => {
    opSel.replaceChildren(el('option', { value: '' }, 'all operations'));
    if (!serviceSel.value) return;
    const ops = await getJSON(`/api/services/${encodeURIComponent(serviceSel.value)}/operations`).catch(() => []);
    for (const o of (ops || []).sort()) opSel.append(el('option', { value: o, selected: o === params.get('operation') }, o));
  };
  serviceSel.addEventListener('change', loadOps);
  const tags = el('input', { name: 'tags', id: 'tags', size: 30, placeholder: 'error=true http.method=GET', value: params.get('tags') || '' });
  const minD = el('input', { name: 'minDuration', id: 'min-duration', size: 7, placeholder: 'e.g. 10ms', value: params.get('minDuration') || '' });
  const maxD = el('input', { name: 'maxDuration', id: 'max-duration', size: 7, placeholder: 'e.g. 1.5s', value: params.get('maxDuration') || '' });
  const lookback = el('select', { name: 'lookback', id: 'lookback' },
    LOOKBACKS.map(([n]) => el('option', { value: n, selected: n === (params.get('lookback') || '1h') }, `last ${n}`)),
    el('option', { value: 'custom', selected: params.get('lookback') === 'custom' }, 'custom range'));
  const startIn = el('input', { type: 'datetime-local', id: 'start', step: 1, value: params.get('start') || '' });
  const endIn = el('input', { type: 'datetime-local', id: 'end', step: 1, value: params.get('end') || '' });
  const custom = el('span', { class: 'row' }, startIn, '→', endIn);
  custom.hidden = lookback.value !== 'custom';
  lookback.addEventListener('change', () => (custom.hidden = lookback.value !== 'custom'));
  const limit = el('input', { name: 'limit', id: 'limit', type: 'number', min: 1, max: 1500, value: params.get('limit') || '20', style: { width: '5em' } });
  const out = el('div', { id: 'trace-search-out' });
  const form = el('form', { class: 'card row search', id: 'trace-search' },
    el('label', {}, 'Service', serviceSel), el('label', {}, 'Operation', opSel), el('label', {}, 'Tags (logfmt)', tags),
    el('label', {}, 'Min duration', minD), el('label', {}, 'Max duration', maxD), el('label', {}, 'Time', lookback), custom,
    el('label', {}, 'Limit', limit), el('button', { type: 'submit', id: 'find' }, 'Find traces'));
  root.append(form, out);

  const pick = (id) => go('traces', new URLSearchParams({ trace: id }));
  async function search(e) {
    if (e) e.preventDefault();
    out.replaceChildren();
    if (!serviceSel.value) {
      out.append(el('p', { class: 'muted' }, 'Pick a service.'));
      return;
    }
    const p = new URLSearchParams({ service: serviceSel.value, limit: limit.value || '20', lookback: lookback.value });
    if (opSel.value) p.set('operation', opSel.value);
    if (tags.value.trim()) p.set('tags', tags.value.trim());
    if (minD.value.trim()) p.set('minDuration', minD.value.trim());
    if (maxD.value.trim()) p.set('maxDuration', maxD.value.trim());
    let startUs;
    let endUs;
    if (lookback.value === 'custom') {
      p.set('start', startIn.value);
      p.set('end', endIn.value);
      startUs = new Date(startIn.value).getTime() * 1000;
      endUs = new Date(endIn.value).getTime() * 1000;
    } else {
      endUs = Date.now() * 1000;
      startUs = endUs - LOOKBACKS.find(([n]) => n === lookback.value)[1] * 1e6;
    }
    setParams(p);
    const q = { service: serviceSel.value, limit: limit.value || '20', start: String(startUs), end: String(endUs) };
    if (opSel.value) q.operation = opSel.value;
    if (tags.value.trim()) q.tags = JSON.stringify(parseTags(tags.value));
    if (minD.value.trim()) q.minDuration = minD.value.trim();
    if (maxD.value.trim()) q.maxDuration = maxD.value.trim();
    try {
      const traces = (await getJSON('/api/traces', q)) || [];
      if (!traces.length) {
        out.append(el('p', { class: 'muted', id: 'no-traces' }, 'No traces found.'));
        return;
      }
      traces.sort((a, b) => summary(b).start - summary(a).start);
      out.append(el('div', { class: 'card' }, scatter(traces, pick, out.clientWidth - 30)), el('p', { class: 'muted' }, `${traces.length} trace(s)`), resultList(traces, pick));
    } catch (err) {
      out.append(el('div', { class: 'error', id: 'trace-error' }, err.message));
    }
  }
  form.addEventListener('submit', search);
  await loadOps();
  if (params.get('service')) await search();
  return null;
}

// ---- one trace ----------------------------------------------------------------------------

function kvTable(list) {
  return el('table', { class: 'data' }, (list || []).map((t) =>
    el('tr', {}, el('td', { class: 'mono', style: { width: '30%' } }, t.key), el('td', { class: 'mono' }, String(t.value)))));
}

function details(span, trace, traceStart) {
  const proc = trace.processes[span.processID] || {};
  return el('div', { class: 'wf-detail', onclick: (e) => e.stopPropagation() },
    el('div', { class: 'kv' },
      el('dt', {}, 'Service'), el('dd', {}, proc.serviceName || '?'),
      el('dt', {}, 'Operation'), el('dd', {}, span.operationName),
      el('dt', {}, 'Start'), el('dd', {}, `${fmtDurationUs(span.startTime - traceStart)} after trace start`),
      el('dt', {}, 'Duration'), el('dd', {}, fmtDurationUs(span.duration)),
      el('dt', {}, 'Span ID'), el('dd', { class: 'mono' }, span.spanID)),
    el('h3', {}, 'Tags'), kvTable(span.tags),
    (span.logs || []).length ? [el('h3', {}, 'Logs / events'), ...span.logs.map((l) =>
      el('div', {}, el('div', { class: 'muted' }, `+${fmtDurationUs(l.timestamp - traceStart)}`), kvTable(l.fields)))] : null,
    el('h3', {}, 'Process'), kvTable([{ key: 'service.name', value: proc.serviceName }, ...(proc.tags || [])]),
    (span.warnings || []).length ? [el('h3', {}, 'Warnings'), el('ul', {}, span.warnings.map((w) => el('li', {}, w)))] : null);
}

async function renderTrace(root, id) {
  const data = await getJSON(`/api/traces/${encodeURIComponent(id)}`);
  const trace = data[0];
  const s = summary(trace);
  const order = spanTree(trace);
  const depth = Math.max(...order.map((o) => o.depth)) + 1;
  root.append(el('div', { class: 'card' },
    el('h2', { style: { marginTop: 0 } }, el('a', { href: '#/traces', onclick: (e) => { e.preventDefault(); history.back(); } }, '←'), ` ${s.rootService}: ${s.root.operationName}`),
    el('div', { class: 'muted' }, [`Trace ${trace.traceID}`, `started ${fmtTime(s.start / 1000)}`,
      `duration ${fmtDurationUs(s.duration)}`, `${trace.spans.length} spans`, `depth ${depth}`,
      `${s.services.size} services`].join(' · '), s.errors ? el('span', { class: 'wf-err' }, ` · ${s.errors} error(s)`) : null),
    el('div', { class: 'row' }, [...s.services.keys()].map((n) =>
      el('span', {}, el('span', { class: 'svc-dot', style: { background: serviceColor(n) } }), n)))));

  const ticks = el('div', { class: 'wf-row', style: { cursor: 'default' } }, el('div', { class: 'wf-name muted' }, 'Service · operation'),
    el('div', { class: 'wf-track' }, [0, 0.25, 0.5, 0.75, 1].map((f) =>
      el('span', { class: 'muted', style: { position: 'absolute', left: `${f * 100}%`, top: '.3em', transform: f === 1 ? 'translateX(-100%)' : '' } }, fmtDurationUs(f * s.duration)))));
  const wf = el('div', { class: 'card waterfall', id: 'waterfall' }, ticks);
  const total = Math.max(1, s.duration);
  for (const { span, depth: d } of order) {
    const svc = (trace.processes[span.processID] || {}).serviceName || '?';
    const left = ((span.startTime - s.start) / total) * 100;
    const width = Math.max(0.15, (span.duration / total) * 100);
    const err = isError(span);
    const row = el('div', { class: 'wf-row span-row', 'data-span-id': span.spanID, 'data-service': svc },
      el('div', { class: 'wf-name', style: { paddingLeft: `${0.4 + d * 1.1}em`, borderLeftColor: serviceColor(svc) }, title: `${svc} ${span.operationName}` },
        err ? el('span', { class: 'wf-err' }, '! ') : null, el('strong', {}, svc), ' ', span.operationName),
      el('div', { class: 'wf-track' }, el('div', { class: 'wf-bar', style: { left: `${Math.min(left, 99.8)}%`, width: `${width}%`, background: err ? 'var(--bad)' : serviceColor(svc) } },
        el('span', { style: left + width > 85 ? { left: 'auto', right: '100%', paddingRight: '.3em' } : {} }, fmtDurationUs(span.duration)))));
    let open = null;
    row.addEventListener('click', () => {
      if (open) {
        open.remove();
        open = null;
      } else {
        open = details(span, trace, s.start);
        row.append(open);
      }
    });
    wf.append(row);
  }
  root.append(wf);
  return null;
}

// ---- service map --------------------------------------------------------------------------

export async function renderMap(root, params) {
  const lookback = params.get('lookback') || '1h';
  const sel = el('select', { id: 'map-lookback' }, LOOKBACKS.map(([n]) => el('option', { value: n, selected: n === lookback }, `last ${n}`)));
  const out = el('div', { class: 'card', id: 'service-map' });
  root.append(el('div', { class: 'row card' }, el('strong', {}, 'Service map'), el('span', { class: 'grow' }), sel), out);
  async function load() {
    setParams(new URLSearchParams({ lookback: sel.value }));
    const ms = LOOKBACKS.find(([n]) => n === sel.value)[1] * 1000;
    const deps = (await getJSON('/api/dependencies', { endTs: String(Date.now()), lookback: String(ms) })) || [];
    out.replaceChildren(deps.length ? drawMap(deps) : el('p', { class: 'muted' }, 'No calls between services in this range.'));
  }
  sel.addEventListener('change', load);
  await load();
  return null;
}

// Layered layout: a service's column is its longest call path from a root; cycles are cut.
function drawMap(deps) {
  const nodes = new Set();
  for (const d of deps) {
    nodes.add(d.parent);
    nodes.add(d.child);
  }
  const layer = new Map([...nodes].map((n) => [n, 0]));
  for (let i = 0; i < nodes.size; i++) {
    for (const d of deps) {
      if (d.parent !== d.child && layer.get(d.child) < layer.get(d.parent) + 1 && layer.get(d.parent) + 1 < nodes.size) {
        layer.set(d.child, layer.get(d.parent) + 1);
      }
    }
  }
  const cols = new Map();
  for (const [n, l] of layer) {
    if (!cols.has(l)) cols.set(l, []);
    cols.get(l).push(n);
  }
  // Boxes wide enough for the longest name (up to 30 characters), columns a box and an arrow apart.
  const boxW = Math.min(230, Math.max(120, Math.max(...[...nodes].map((n) => n.length)) * 7.2 + 24));
  const colW = boxW + 120;
  const rowH = 80;
  const maxRows = Math.max(...[...cols.values()].map((c) => c.length));
  const W = Math.max(400, cols.size * colW + 40);
  const H = Math.max(160, maxRows * rowH + 40);
  const pos = new Map();
  for (const [l, list] of cols) {
    list.sort().forEach((n, i) => pos.set(n, { x: 30 + l * colW + boxW / 2, y: (H - list.length * rowH) / 2 + i * rowH + rowH / 2 }));
  }
  const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H });
  g.append(svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' },
    svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8a94a6' }))));
  for (const d of deps) {
    const a = pos.get(d.parent);
    const b = pos.get(d.child);
    const edge = svg('g', { class: 'edge', 'data-parent': d.parent, 'data-child': d.child, 'data-calls': d.callCount });
    if (d.parent === d.child) {
      edge.append(svg('path', { d: `M${a.x - 10},${a.y - 18} C${a.x - 40},${a.y - 70} ${a.x + 40},${a.y - 70} ${a.x + 10},${a.y - 18}`, fill: 'none', stroke: '#8a94a6', 'stroke-width': 1.5, 'marker-end': 'url(#arrow)' }));
      edge.append(svg('text', { x: a.x, y: a.y - 58, 'text-anchor': 'middle', fill: '#445' }, d.callCount));
    } else {
      const dx = b.x - a.x;
      const dy = b.y - a.y;
      const len = Math.hypot(dx, dy) || 1;
      const r = boxW / 2;
      const x1 = a.x + (dx / len) * r;
      const y1 = a.y + (dy / len) * 20;
      const x2 = b.x - (dx / len) * r;
      const y2 = b.y - (dy / len) * 20;
      edge.append(svg('line', { x1, y1, x2, y2, stroke: '#8a94a6', 'stroke-width': 1.5, 'marker-end': 'url(#arrow)' }));
      edge.append(svg('text', { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle', fill: '#445' }, `${d.callCount} calls`));
    }
    g.append(edge);
  }
  for (const [n, p] of pos) {
    g.append(svg('g', { class: 'node', 'data-service': n },
      svg('rect', { x: p.x - boxW / 2, y: p.y - 18, width: boxW, height: 36, rx: 8, fill: serviceColor(n, 0.15), stroke: serviceColor(n), 'stroke-width': 2 }),
      svg('text', { x: p.x, y: p.y + 4, 'text-anchor': 'middle', fill: '#1d2330' }, n.length > 30 ? n.slice(0, 29) + '…' : n),
      svg('title', {}, n)));
  }
  return g;
}
