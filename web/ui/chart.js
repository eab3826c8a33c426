// Time-series charts on uPlot: Prometheus matrices aligned on the step grid, legend with
// hover values, drag to zoom (double-click resets), optional stacking.
import uPlot from './vendor/uPlot.esm.js';
import { color, el, fmtValue, metricName } from './api.js';

// A range-query matrix → one x column (seconds) and one y column per series, null where a
// series has no sample at that step.
export function alignMatrix(result, start, end, step) {
  const n = Math.max(1, Math.floor((end - start) / step + 1e-9) + 1);
  const xs = new Array(n);
  for (let k = 0; k < n; k++) xs[k] = start + k * step;
  const series = result.map((s) => {
    const ys = new Array(n).fill(null);
    for (const [t, v] of s.values || []) {
      const k = Math.round((t - start) / step);
      if (k >= 0 && k < n) {
        const f = parseFloat(v);
        ys[k] = Number.isFinite(f) ? f : null;
      }
    }
    return { label: metricName(s.metric), values: ys };
  });
  return { xs, series };
}

// Draws into `container`; returns the uPlot instance (call .destroy() when done).
export function drawChart(container, { xs, series, stacked = false, height = 340, markers = [] }) {
  const many = series.length > 40;
  const raw = [xs, ...series.map((s) => s.values)];
  let data = raw;
  if (stacked) {
    const acc = new Array(xs.length).fill(0);
    data = [xs];
    for (const s of series) {
      data.push(s.values.map((v, i) => (v === null ? null : (acc[i] += v))));
    }
  }
  const isolated = data.map((col, si) => {
    if (si === 0) return null;
    const idx = [];
    for (let i = 0; i < col.length; i++) {
      if (col[i] !== null && (i === 0 || col[i - 1] === null) && (i === col.length - 1 || col[i + 1] === null)) idx.push(i);
    }
    return idx.length ? idx : null;
  });
  const width = Math.max(300, container.clientWidth || 800);
  const opts = {
    width,
    height,
    series: [
      { label: 'time', value: (u, v) => (v === null || v === undefined ? '—' : new Date(v * 1000).toLocaleString()) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: color(i),
        width: 1.25,
        fill: stacked ? color(i, 0.3) : undefined,
        // A sample with no neighbour draws no line, so it gets a dot.
        points: { show: xs.length < 60 && !many, filter: (u, si, show) => (show ? null : isolated[si]) },
        // Hover shows the series' own value even when the drawn line is stacked.
        value: (u, v, si, idx) => (idx === null || idx === undefined ? '—' : fmtValue(raw[si][idx])),
      })),
    ],
    axes: [{}, { size: 70, values: (u, vals) => vals.map(fmtValue) }],
    scales: { x: { time: true } },
    cursor: {
      drag: { x: true, y: false, setScale: true },
      // Per-series hover points and focus fading cost a DOM write per series per move.
      points: { show: !many },
      focus: { prox: many ? -1 : 24 },
    },
    focus: { alpha: many ? 1 : 0.35 },
    // With many series a live legend rewrites a row per series on every mouse move; a tooltip
    // with the series nearest the pointer costs one write instead.
    legend: { live: !many },
    hooks: {
      // The visible x range and the last draw time, readable from the page (tests, screenshots).
      setScale: [(u, key) => {
        if (key === 'x') {
          container.dataset.xmin = String(u.scales.x.min);
          container.dataset.xmax = String(u.scales.x.max);
        }
      }],
      draw: [(u) => {
        drawMarkers(u, markers);
        container.dataset.drawnAt = String(performance.now());
      }],
      setCursor: many ? [(u) => nearestTip(u, tip, data, raw, series)] : [],
    },
  };
  const tip = el('div', { class: 'u-tip', hidden: true });
  const plot = new uPlot(opts, data, container);
  if (many) plot.over.append(tip);
  plot.root.addEventListener('dblclick', () => plot.setScale('x', { min: xs[0], max: xs[xs.length - 1] }));
  return plot;
}

// Exemplars as small diamonds over the lines.
function drawMarkers(u, markers) {
  if (!markers.length) return;
  const ctx = u.ctx;
  ctx.save();
  ctx.fillStyle = 'rgba(29, 35, 48, 0.85)';
  for (const m of markers) {
    const x = u.valToPos(m.t, 'x', true);
    const y = u.valToPos(m.v, 'y', true);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const r = 4 * devicePixelRatio;
    ctx.beginPath();
    ctx.moveTo(x, y - r);
    ctx.lineTo(x + r, y);
    ctx.lineTo(x, y + r);
    ctx.lineTo(x - r, y);
    ctx.closePath();
    ctx.fill();
  }
  ctx.restore();
}

function nearestTip(u, tip, data, raw, series) {
  const idx = u.cursor.idx;
  if (idx === null || idx === undefined || u.cursor.left < 0) {
    tip.hidden = true;
    return;
  }
  const y = u.posToVal(u.cursor.top, 'y');
  let best = -1;
  let bestD = Infinity;
  for (let si = 1; si < data.length; si++) {
    const v = data[si][idx];
    if (v === null || v === undefined) continue;
    const d = Math.abs(v - y);
    if (d < bestD) {
      bestD = d;
      best = si;
    }
  }
  if (best < 0) {
    tip.hidden = true;
    return;
  }
  tip.replaceChildren(
    el('div', { class: 'muted' }, new Date(data[0][idx] * 1000).toLocaleString()),
    el('div', {}, el('span', { class: 'svc-dot', style: { background: color(best - 1) } }), series[best - 1].label),
    el('strong', {}, fmtValue(raw[best][idx])));
  const left = u.cursor.left + 14;
  const flip = left + 360 > u.over.clientWidth;
  tip.style.left = flip ? '' : `${left}px`;
  tip.style.right = flip ? `${u.over.clientWidth - u.cursor.left + 14}px` : '';
  tip.style.top = `${u.cursor.top + 14}px`;
  tip.hidden = false;
}

// Keeps a chart as wide as its container.
export function autoResize(plot, container) {
  const ro = new ResizeObserver(() => {
    const w = container.clientWidth;
    if (w > 0 && Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height: plot.height });
  });
  ro.observe(container);
  return () => ro.disconnect();
}
