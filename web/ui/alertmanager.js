// The alertmanager role's pages, as Alertmanager's own UI: alerts grouped as the route tree
// groups them (with a silence button per alert), silences (create with matchers and a
// duration, expire), and status (cluster, configuration). Everything goes through API v2.
import { el, ago, parseDuration } from './api.js';

async function call(method, path, body) {
  const r = await fetch(new URL(path, location.origin).toString(), {
    method,
    headers: body ? { 'Content-Type': 'application/json', Accept: 'application/json' } : { Accept: 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  if (!r.ok) {
    const msg = typeof parsed === 'string' ? parsed : (parsed && parsed.message) || `${r.status} ${r.statusText}`;
    throw new Error(msg);
  }
  return parsed;
}

function labelText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}="${v}"`).join(', ');
}

// `alertname="X", job=~"y.*"` → API v2 matchers (the tolerant syntax amtool accepts).
export function parseMatchers(text) {
  const out = [];
  const re = /\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)/y;
  const s = text.trim().replace(/^\{/, '').replace(/\}$/, '');
  let m;
  while (re.lastIndex < s.length && (m = re.exec(s))) {
    let value = m[3].trim();
    if (value.startsWith('"')) value = JSON.parse(value);
    out.push({ name: m[1], value, isRegex: m[2].includes('~'), isEqual: !m[2].startsWith('!') });
  }
  if (re.lastIndex !== s.length && s.length) throw new Error(`bad matcher near: ${s.slice(re.lastIndex)}`);
  return out;
}

function matcherText(m) {
  const negative = m.isEqual === false;
  const op = m.isRegex ? (negative ? '!~' : '=~') : (negative ? '!=' : '=');
  return `${m.name}${op}${JSON.stringify(m.value)}`;
}

function groupsView(groups, onSilence) {
  const wrap = el('div', { id: 'am-groups' });
  if (!groups.length) wrap.append(el('p', { class: 'muted' }, 'No active alerts.'));
  for (const g of groups) {
    const card = el('div', { class: 'card am-group', 'data-receiver': g.receiver.name },
      el('h3', {}, labelText(g.labels) || '{}', ' ', el('span', { class: 'muted' }, `→ ${g.receiver.name} (${g.alerts.length})`)));
    const t = el('table', { class: 'data' },
      el('tr', {}, ['Labels', 'State', 'Since', 'Annotations', ''].map((h) => el('th', {}, h))));
    for (const a of g.alerts) {
      const since = Date.parse(a.startsAt);
      t.append(el('tr', { class: 'am-alert', 'data-state': a.status.state, 'data-alertname': a.labels.alertname || '' },
        el('td', { class: 'mono' }, labelText(a.labels)),
        el('td', {}, el('span', { class: `badge ${a.status.state === 'active' ? 'down' : 'unknown'}` }, a.status.state.toUpperCase())),
        el('td', { title: a.startsAt }, since > 0 ? ago(since) : '—'),
        el('td', { class: 'mono' }, Object.entries(a.annotations || {}).map(([k, v]) => `${k}: ${v}`).join('\n')),
        el('td', {}, el('button', { class: 'silence-alert', onclick: () => onSilence(a.labels) }, 'Silence'))));
    }
    card.append(t);
    wrap.append(card);
  }
  return wrap;
}

function silencesView(silences, onExpire) {
  const t = el('table', { class: 'data', id: 'am-silences' },
    el('tr', {}, ['State', 'Matchers', 'Ends', 'Created by', 'Comment', ''].map((h) => el('th', {}, h))));
  for (const s of silences) {
    t.append(el('tr', { class: 'am-silence', 'data-id': s.id, 'data-state': s.status.state },
      el('td', {}, s.status.state),
      el('td', { class: 'mono' }, s.matchers.map(matcherText).join(', ')),
      el('td', { title: s.endsAt }, new Date(Date.parse(s.endsAt)).toLocaleString()),
      el('td', {}, s.createdBy),
      el('td', {}, s.comment),
      el('td', {}, s.status.state === 'expired' ? '' : el('button', { class: 'expire', onclick: () => onExpire(s.id) }, 'Expire'))));
  }
  return t;
}

export async function render(root) {
  const message = el('div', { class: 'am-message' });
  const matchers = el('input', { id: 'silence-matchers', size: 60, placeholder: 'alertname="Foo", instance=~"db.*"' });
  const duration = el('input', { id: 'silence-duration', size: 6, value: '2h' });
  const author = el('input', { id: 'silence-author', size: 14, value: 'obsd-ui' });
  const comment = el('input', { id: 'silence-comment', size: 30, placeholder: 'why' });
  const groupsBox = el('div');
  const silencesBox = el('div');
  const statusBox = el('div');

  async function refresh() {
    try {
      const [groups, silences, status] = await Promise.all([
        call('GET', '/api/v2/alerts/groups'), call('GET', '/api/v2/silences'), call('GET', '/api/v2/status')]);
      groupsBox.replaceChildren(groupsView(groups, (labels) => {
        matchers.value = labelText(labels);
        matchers.focus();
      }));
      silencesBox.replaceChildren(silencesView(silences, async (id) => {
        try {
          await call('DELETE', `/api/v2/silence/${encodeURIComponent(id)}`);
          message.textContent = `expired ${id}`;
        } catch (e) {
          message.textContent = `error: ${e.message}`;
        }
        refresh();
      }));
      const peers = (status.cluster.peers || []).map((p) => p.name).join(', ');
      statusBox.replaceChildren(
        el('p', {}, `cluster: ${status.cluster.status}${peers ? ` (${peers})` : ''}; up since ${new Date(Date.parse(status.uptime)).toLocaleString()}`),
        el('pre', { class: 'mono', id: 'am-config' }, status.config.original));
    } catch (e) {
      groupsBox.replaceChildren(el('div', { class: 'error' }, String(e.message || e)));
    }
  }

  async function create() {
    try {
      const seconds = parseDuration(duration.value);
      if (!(seconds > 0)) throw new Error(`bad duration ${duration.value}`);
      const now = new Date();
      const body = {
        matchers: parseMatchers(matchers.value),
        startsAt: now.toISOString(),
        endsAt: new Date(now.getTime() + seconds * 1000).toISOString(),
        createdBy: author.value,
        comment: comment.value || 'silenced from the obsd UI',
      };
      const r = await call('POST', '/api/v2/silences', body);
      message.textContent = `created ${r.silenceID}`;
    } catch (e) {
      message.textContent = `error: ${e.message}`;
    }
    refresh();
  }

  root.append(
    el('h2', {}, 'Alerts'), groupsBox,
    el('h2', {}, 'Silences'),
    el('div', { class: 'controls' }, matchers, ' for ', duration, ' by ', author, ' ', comment, ' ',
      el('button', { id: 'silence-create', onclick: create }, 'Create silence')),
    message, silencesBox,
    el('h2', {}, 'Status and configuration'), statusBox);
  await refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}
