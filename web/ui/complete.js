// PromQL completion: metric names and functions, label names inside {} and by(...), label
// values after a matcher; candidates come from the label API of the listener.
import { getJSON, el } from './api.js';

const FUNCTIONS = ('abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp ' +
  'clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv ' +
  'exp floor histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar ' +
  'histogram_sum holt_winters hour idelta increase irate label_join label_replace last_over_time ln log10 log2 ' +
  'mad_over_time max_over_time min_over_time minute month predict_linear present_over_time quantile_over_time rad ' +
  'rate resets round scalar sgn sin sinh sort sort_desc sort_by_label sort_by_label_desc sqrt stddev_over_time ' +
  'stdvar_over_time sum_over_time tan tanh time timestamp vector year').split(' ');
const AGGREGATIONS = 'sum min max avg group stddev stdvar count count_values bottomk topk quantile'.split(' ');

const cache = new Map();
function cached(key, load) {
  if (!cache.has(key)) {
    const p = load().catch((e) => {
      cache.delete(key);
      throw e;
    });
    cache.set(key, p);
  }
  return cache.get(key);
}

const metricNames = () => cached('names', () => getJSON('/api/v1/label/__name__/values'));
const labelNames = (metric) =>
  cached(`labels:${metric}`, () => getJSON('/api/v1/labels', metric ? { 'match[]': metric } : undefined));
const labelValues = (label, metric) =>
  cached(`values:${label}:${metric}`, () =>
    getJSON(`/api/v1/label/${encodeURIComponent(label)}/values`, metric ? { 'match[]': metric } : undefined));

// What is being typed at `pos`: {kind, prefix, start, metric?, label?} or null.
export function context(text, pos) {
  const before = text.slice(0, pos);
  const open = before.lastIndexOf('{');
  const close = before.lastIndexOf('}');
  if (open > close) {
    const metric = (/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/.exec(before.slice(0, open)) || [])[1];
    const inner = before.slice(open + 1);
    let m = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/.exec(inner);
    if (m) return { kind: 'value', label: m[1], metric, prefix: m[3], start: pos - m[3].length };
    m = /(?:^|,)\s*([a-zA-Z_][a-zA-Z0-9_]*)?$/.exec(inner);
    if (m) {
      const prefix = m[1] || '';
      return { kind: 'label', metric, prefix, start: pos - prefix.length };
    }
    return null;
  }
  const grp = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)$/.exec(before);
  if (grp) {
    const prefix = (/([a-zA-Z_][a-zA-Z0-9_]*)$/.exec(grp[1]) || ['', ''])[1] || '';
    return { kind: 'label', prefix, start: pos - prefix.length };
  }
  if (before.lastIndexOf('[') > before.lastIndexOf(']')) return null;
  if (/"[^"]*$/.test(before.replace(/"[^"]*"/g, ''))) return null;
  const m = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(before);
  if (!m) return null;
  return { kind: 'metric', prefix: m[0], start: pos - m[0].length };
}

async function candidates(ctx) {
  if (ctx.kind === 'metric') {
    const names = await metricNames();
    return [
      ...names.map((n) => ({ text: n, hint: 'metric' })),
      ...AGGREGATIONS.map((n) => ({ text: n, hint: 'aggregation', call: true })),
      ...FUNCTIONS.map((n) => ({ text: n, hint: 'function', call: true })),
    ];
  }
  if (ctx.kind === 'label') {
    return (await labelNames(ctx.metric)).filter((n) => n !== '__name__').map((n) => ({ text: n, hint: 'label' }));
  }
  return (await labelValues(ctx.label, ctx.metric)).map((v) => ({ text: v, hint: ctx.label, value: true }));
}

function rank(list, prefix) {
  const p = prefix.toLowerCase();
  const starts = [];
  const contains = [];
  for (const c of list) {
    const t = c.text.toLowerCase();
    if (t === p) continue;
    if (t.startsWith(p)) starts.push(c);
    else if (p && t.includes(p)) contains.push(c);
  }
  return starts.concat(contains).slice(0, 100);
}

// Wires completion to a textarea; keys: ↑/↓ choose, Tab/Enter accept, Esc close.
export function attachCompletion(input) {
  const box = el('div', { class: 'completion', hidden: true, role: 'listbox' });
  input.parentElement.append(box);
  let items = [];
  let sel = 0;
  let ctx = null;
  let seq = 0;

  const hide = () => {
    box.hidden = true;
    items = [];
  };
  const show = () => {
    box.replaceChildren(...items.map((c, i) =>
      el('div', { class: i === sel ? 'sel' : '', onmousedown: (e) => { e.preventDefault(); accept(i); } },
        c.text, el('small', {}, c.hint))));
    box.style.top = `${input.offsetTop + input.offsetHeight}px`;
    box.style.left = `${input.offsetLeft}px`;
    box.hidden = items.length === 0;
    const s = box.children[sel];
    if (s) s.scrollIntoView({ block: 'nearest' });
  };
  const accept = (i) => {
    const c = items[i];
    if (!c || !ctx) return;
    const pos = input.selectionStart;
    let insert = c.text;
    if (c.value) insert = c.text.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + (input.value[pos] === '"' ? '' : '"');
    if (c.call) insert += '(';
    input.value = input.value.slice(0, ctx.start) + insert + input.value.slice(pos);
    const at = ctx.start + insert.length;
    input.setSelectionRange(at, at);
    hide();
    input.dispatchEvent(new Event('input'));
  };
  const update = async () => {
    const mine = ++seq;
    const c = context(input.value, input.selectionStart);
    if (!c || (c.kind === 'metric' && c.prefix.length < 1)) return hide();
    let list;
    try {
      list = await candidates(c);
    } catch {
      return hide();
    }
    if (mine !== seq) return;
    ctx = c;
    items = rank(list, c.prefix);
    sel = 0;
    show();
  };

  input.addEventListener('input', update);
  input.addEventListener('click', update);
  // Late enough for a click on a candidate to land; not when focus has come back meanwhile.
  input.addEventListener('blur', () => setTimeout(() => document.activeElement !== input && hide(), 150));
  input.addEventListener('keydown', (e) => {
    if (box.hidden) {
      if (e.key === ' ' && e.ctrlKey) {
        e.preventDefault();
        update();
      }
      return;
    }
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      sel = (sel + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      show();
    } else if (e.key === 'Tab' || e.key === 'Enter') {
      accept(sel);
    } else if (e.key === 'Escape') {
      hide();
    } else {
      return;
    }
    e.preventDefault();
    e.stopImmediatePropagation();
  });
  return { isOpen: () => !box.hidden, items: () => items.map((c) => c.text) };
}
