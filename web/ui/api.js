// Fetch helpers and small formatting/DOM utilities shared by every page.

export const features = new Set(
  (document.querySelector('meta[name="obsd-features"]')?.content || '').split(',').filter(Boolean));

// What only the server knows about this listener (the balancer's stats URI and admin flag).
export const settings = (() => {
  try {
    return JSON.parse(document.querySelector('meta[name="obsd-settings"]')?.content || '{}');
  } catch {
    return {};
  }
})();

export class ApiError extends Error {
  constructor(message, type, status) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

// GET a JSON API (Prometheus or Jaeger shape) and return its `data`; errors carry the API's text.
export async function getJSON(path, params) {
  const qs = params ? new URLSearchParams(params).toString() : '';
  const r = await fetch(url(qs ? `${path}?${qs}` : path), { headers: { Accept: 'application/json' } });
  let body;
  try {
    body = await r.json();
  } catch {
    throw new ApiError(`${r.status} ${r.statusText}`, 'http', r.status);
  }
  if (!r.ok || body.status === 'error' || (body.errors && body.errors.length)) {
    const msg = body.error || (body.errors && body.errors[0] && body.errors[0].msg) || `${r.status} ${r.statusText}`;
    throw new ApiError(msg, body.errorType || 'http', r.status);
  }
  return body.data;
}

// Resolved against the origin, not the document: fetch refuses URLs that carry credentials, and
// a page opened as http://user:pass@host/ would pass them on to relative URLs.
function url(path) {
  return new URL(path, location.origin).toString();
}

export async function getText(path) {
  const r = await fetch(url(path));
  if (!r.ok) throw new ApiError(`${r.status} ${r.statusText}`, 'http', r.status);
  return r.text();
}

// el('div', {class: 'x', onclick: f}, child, 'text', ...)
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(e.style, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

export function fmtValue(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return String(+v.toPrecision(6));
}

export function fmtDurationUs(us) {
  if (us < 1000) return `${Math.round(us)}µs`;
  if (us < 1e6) return `${+(us / 1000).toFixed(2)}ms`;
  return `${+(us / 1e6).toFixed(2)}s`;
}

export function fmtSeconds(s) {
  return fmtDurationUs(s * 1e6);
}

export function fmtTime(ms) {
  const d = new Date(ms);
  return isNaN(d) ? '—' : d.toLocaleString();
}

export function ago(ms) {
  const s = (Date.now() - ms) / 1000;
  if (!isFinite(s)) return '—';
  if (s < 1) return 'just now';
  if (s < 120) return `${Math.round(s)}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

// "5m", "1h30m", "2d" → seconds; a bare number is seconds.
export function parseDuration(text) {
  const t = String(text).trim();
  if (/^\d+(\.\d+)?$/.test(t)) return parseFloat(t);
  const units = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  let total = 0;
  let rest = t;
  const re = /^(\d+)(ms|s|m|h|d|w|y)/;
  if (!rest) return NaN;
  while (rest) {
    const m = re.exec(rest);
    if (!m) return NaN;
    total += parseInt(m[1], 10) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

export function metricName(metric) {
  const name = metric.__name__ || '';
  const labels = Object.entries(metric).filter(([k]) => k !== '__name__')
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return labels.length ? `${name}{${labels.join(', ')}}` : (name || '{}');
}

// Colour i of a palette that stays distinct for many series (golden-angle hues).
export function color(i, alpha = 1) {
  const h = (i * 137.508 + 210) % 360;
  return alpha === 1 ? `hsl(${h.toFixed(1)} 68% 42%)` : `hsla(${h.toFixed(1)}, 68%, 42%, ${alpha})`;
}
