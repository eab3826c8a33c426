// The expression browser: PromQL with completion, table or graph, range/end/step, stacking;
// every setting lives in the URL so a link reproduces the view.
import { getJSON, el, fmtValue, metricName, parseDuration, fmtTime } from './api.js';
import { attachCompletion } from './complete.js';
import { alignMatrix, drawChart, autoResize } from './chart.js';
import { setParams } from './app.js';
import { addPanel } from './dashboard.js';

const RANGES = ['5m', '15m', '30m', '1h', '3h', '6h', '12h', '1d', '2d', '7d'];

// Prometheus's default resolution: about 250 points per graph, never under a second.
export function autoStep(rangeS) {
  return Math.max(1, Math.ceil(rangeS / 250));
}

// An API error with a "line:col: parse error" prefix is shown with a caret under the query.
export function errorView(message, query) {
  const box = el('div', { class: 'error', id: 'query-error' }, message);
  const m = /(\d+):(\d+): parse error/.exec(message);
  if (m && query) {
    const line = query.split('\n')[parseInt(m[1], 10) - 1];
    const col = parseInt(m[2], 10);
    if (line !== undefined) {
      box.append('\n\n', line, '\n', el('span', { class: 'caret' }, ' '.repeat(Math.max(0, col - 1)) + '^'),
        el('span', { class: 'muted' }, ` line ${m[1]}, column ${col}`));
      box.dataset.line = m[1];
      box.dataset.column = String(col);
    }
  }
  return box;
}

// Where the collector's UI is (its own listener, :16686 by default); a browser can override it.
export function traceUi() {
  return localStorage.getItem('obsd.traceUi') || `${location.protocol}//${location.hostname}:16686`;
}

const traceIdOf = (labels) => labels.trace_id || labels.traceID || labels.traceId || '';

// query_exemplars → chart markers and a table linking each exemplar to its trace.
function exemplarView(found) {
  const rows = [];
  for (const s of found) for (const e of s.exemplars) rows.push({ s: s.seriesLabels, e });
  rows.sort((a, b) => b.e.timestamp - a.e.timestamp);
  const t = el('table', { class: 'data', id: 'exemplars' },
    el('tr', {}, el('th', {}, 'Exemplar'), el('th', {}, 'Value'), el('th', {}, 'Series'), el('th', {}, 'Trace')));
  for (const { s, e } of rows.slice(0, 200)) {
    const id = traceIdOf(e.labels);
    t.append(el('tr', {}, el('td', {}, fmtTime(e.timestamp * 1000)), el('td', { class: 'num' }, e.value),
      el('td', { class: 'mono' }, metricName(s)),
      el('td', { class: 'mono' }, id ? el('a', { class: 'trace-link', href: `${traceUi()}/#/traces?trace=${encodeURIComponent(id)}`, target: '_blank', rel: 'noopener' }, id) : '')));
  }
  return el('div', {}, el('h3', {}, `Exemplars (${rows.length})`), t);
}

export async function render(root, params) {
  const state = {
    expr: params.get('expr') || '',
    tab: params.get('tab') === 'table' ? 'table' : 'graph',
    range: params.get('range') || '1h',
    end: params.get('end') || '',
    step: params.get('step') || '',
    stacked: params.get('stacked') === '1',
  };
  let plot = null;
  let stopResize = null;
  const clearChart = () => {
    if (stopResize) stopResize();
    if (plot) plot.destroy();
    plot = null;
    stopResize = null;
  };

  const input = el('textarea', { class: 'expr', id: 'expr', rows: 2, spellcheck: 'false', placeholder: 'PromQL expression (Ctrl+Space completes, Enter runs, Shift+Enter new line)' });
  input.value = state.expr;
  const editor = el('div', { class: 'editor grow' }, input);
  const runBtn = el('button', { id: 'run', onclick: () => run() }, 'Execute');
  const addBtn = el('button', { class: 'plain', id: 'add-panel', onclick: () => {
    if (!input.value.trim()) return;
    const title = prompt('Panel title', input.value.trim().slice(0, 60));
    if (title === null) return;
    addPanel({ title: title || input.value.trim(), expr: input.value.trim(), stacked: state.stacked });
    info.textContent = `added "${title}" to the dashboard`;
  } }, 'Add to dashboard');
  const rangeSel = el('select', { id: 'range' }, RANGES.map((r) => el('option', { value: r, selected: r === state.range }, r)));
  if (!RANGES.includes(state.range)) rangeSel.prepend(el('option', { value: state.range, selected: true }, state.range));
  const endInput = el('input', { id: 'end', type: 'datetime-local', step: 1, title: 'end (empty: now)' });
  if (state.end) {
    const d = new Date(parseFloat(state.end) * 1000);
    endInput.value = new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  }
  const stepInput = el('input', { id: 'step', size: 6, placeholder: 'auto', value: state.step, title: 'resolution step, e.g. 15s' });
  const stackBox = el('input', { id: 'stacked', type: 'checkbox', checked: state.stacked });
  const tabs = el('div', { class: 'tabs' },
    ['graph', 'table'].map((t) => el('button', { 'data-tab': t, class: t === state.tab ? 'active' : '', onclick: () => {
      state.tab = t;
      for (const b of tabs.children) b.classList.toggle('active', b.dataset.tab === t);
      graphControls.hidden = t !== 'graph';
      run();
    } }, t === 'graph' ? 'Graph' : 'Table')));
  const graphControls = el('div', { class: 'row' }, 'Range', rangeSel, 'End', endInput, 'Step', stepInput,
    el('label', {}, stackBox, ' stacked'));
  graphControls.hidden = state.tab !== 'graph';
  const info = el('div', { class: 'muted', id: 'query-info' });
  const out = el('div', { id: 'query-out' });

  root.append(el('div', { class: 'card' }, el('div', { class: 'row' }, editor, runBtn, addBtn), tabs, graphControls, info), out);

  const completion = attachCompletion(input);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !completion.isOpen()) {
      e.preventDefault();
      run();
    }
  });
  for (const c of [rangeSel, endInput, stepInput, stackBox]) c.addEventListener('change', () => run());

  async function run() {
    const expr = input.value.trim();
    state.expr = expr;
    state.range = rangeSel.value;
    state.step = stepInput.value.trim();
    state.stacked = stackBox.checked;
    state.end = endInput.value ? String(new Date(endInput.value).getTime() / 1000) : '';
    const p = new URLSearchParams();
    if (expr) p.set('expr', expr);
    p.set('tab', state.tab);
    if (state.tab === 'graph') {
      p.set('range', state.range);
      if (state.end) p.set('end', state.end);
      if (state.step) p.set('step', state.step);
      if (state.stacked) p.set('stacked', '1');
    }
    setParams(p);
    clearChart();
    out.replaceChildren();
    info.textContent = '';
    if (!expr) return;
    const endS = state.end ? parseFloat(state.end) : Date.now() / 1000;
    const t0 = performance.now();
    runBtn.disabled = true;
    try {
      if (state.tab === 'table') {
        const data = await getJSON('/api/v1/query', { query: expr, time: endS.toFixed(3) });
        out.append(table(data));
        info.textContent = `${countOf(data)} result(s) · ${Math.round(performance.now() - t0)} ms`;
      } else {
        const rangeS = parseDuration(state.range);
        if (!(rangeS > 0)) throw new Error(`bad range "${state.range}"`);
        const stepS = state.step ? parseDuration(state.step) : autoStep(rangeS);
        if (!(stepS > 0)) throw new Error(`bad step "${state.step}"`);
        const start = Math.floor((endS - rangeS) / stepS) * stepS;
        const end = Math.floor(endS / stepS) * stepS;
        const [data, exemplars] = await Promise.all([
          getJSON('/api/v1/query_range', { query: expr, start, end, step: stepS }),
          // 204 (no selector in the query) and errors simply mean no exemplars.
          getJSON('/api/v1/query_exemplars', { query: expr, start, end }).catch(() => []),
        ]);
        const fetched = performance.now();
        if (data.resultType !== 'matrix') throw new Error(`expected a range vector, got ${data.resultType}`);
        const chartBox = el('div', { class: 'chart', id: 'chart' });
        out.append(chartBox);
        if (data.result.length === 0) {
          chartBox.append(el('p', { class: 'muted' }, 'No data in this range.'));
        } else {
          const aligned = alignMatrix(data.result, start, end, stepS);
          const markers = (exemplars || []).flatMap((x) => x.exemplars.map((e) => ({ t: e.timestamp, v: parseFloat(e.value) })));
          plot = drawChart(chartBox, { ...aligned, stacked: state.stacked, markers });
          if (aligned.series.every((x) => x.values.every((v) => v === null))) {
            chartBox.prepend(el('p', { class: 'muted' }, 'Every value in this range is NaN or infinite: nothing to draw.'));
          }
          stopResize = autoResize(plot, chartBox);
        }
        const drawn = performance.now();
        if (exemplars && exemplars.length) out.append(exemplarView(exemplars));
        chartBox.dataset.series = String(data.result.length);
        chartBox.dataset.drawMs = String(Math.round(drawn - fetched));
        info.textContent = `${data.result.length} series · step ${stepS}s · query ${Math.round(fetched - t0)} ms · draw ${Math.round(drawn - fetched)} ms`;
      }
    } catch (e) {
      out.append(errorView(e.message, expr));
    } finally {
      runBtn.disabled = false;
    }
  }

  if (state.expr) run();
  else input.focus();
  return clearChart;
}

function countOf(data) {
  return Array.isArray(data.result) ? data.result.length : 1;
}

function table(data) {
  const t = el('table', { class: 'data', id: 'result-table' });
  if (data.resultType === 'scalar' || data.resultType === 'string') {
    t.append(el('tr', {}, el('td', {}, data.resultType), el('td', { class: 'num' }, String(data.result[1]))));
    return t;
  }
  t.append(el('tr', {}, el('th', {}, 'Series'), el('th', {}, data.resultType === 'matrix' ? 'Values' : 'Value')));
  const rows = data.result.slice(0, 10000);
  for (const s of rows) {
    const value = data.resultType === 'matrix'
      ? (s.values || []).map(([ts, v]) => `${v} @${ts}`).join('\n')
      : s.value ? fmtValue(parseFloat(s.value[1])) : s.histogram ? 'histogram' : '';
    t.append(el('tr', {}, el('td', { class: 'mono' }, metricName(s.metric)), el('td', { class: 'num mono', style: { whiteSpace: 'pre' } }, value)));
  }
  if (data.result.length === 0) t.append(el('tr', {}, el('td', { colspan: 2, class: 'muted' }, 'Empty query result')));
  return t;
}
