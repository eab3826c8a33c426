// Alerts and rules, as Prometheus's /alerts and /rules pages: alerting rules grouped by state
// with their active alerts, then every group with each rule's health, last error and timing.
import { getJSON, el, ago, fmtSeconds, fmtValue } from './api.js';

function labelText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}="${v}"`).join(' ');
}

function kv(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return el('span', { class: 'muted' }, '—');
  const dl = el('dl', { class: 'kv' });
  for (const [k, v] of entries) dl.append(el('dt', {}, k), el('dd', { class: 'mono' }, v));
  return dl;
}

function alertsTable(alerts) {
  const t = el('table', { class: 'data' },
    el('tr', {}, ['Labels', 'State', 'Active since', 'Value', 'Annotations'].map((h) => el('th', {}, h))));
  for (const a of alerts) {
    const since = Date.parse(a.activeAt);
    t.append(el('tr', { class: 'alert', 'data-state': a.state },
      el('td', { class: 'mono' }, labelText(a.labels)),
      el('td', {}, el('span', { class: `badge ${a.state === 'firing' ? 'down' : 'unknown'}` }, a.state.toUpperCase())),
      el('td', { title: a.activeAt }, since > 0 ? ago(since) : '—'),
      el('td', { class: 'num' }, fmtValue(Number(a.value))),
      el('td', {}, kv(a.annotations))));
  }
  return t;
}

function alertingView(groups) {
  const rules = groups.flatMap((g) => g.rules.filter((r) => r.type === 'alerting').map((r) => ({ ...r, group: g.name })));
  const wrap = el('div', { id: 'alerting-rules' });
  if (!rules.length) {
    wrap.append(el('p', { class: 'muted' }, 'No alerting rules (rule_files in the prometheus.yml or [replica] rule_files).'));
    return wrap;
  }
  const order = { firing: 0, pending: 1, inactive: 2 };
  rules.sort((a, b) => order[a.state] - order[b.state] || a.name.localeCompare(b.name));
  const counts = { firing: 0, pending: 0, inactive: 0 };
  for (const r of rules) counts[r.state]++;
  wrap.append(el('p', {}, `${counts.firing} firing, ${counts.pending} pending, ${counts.inactive} inactive`));
  for (const r of rules) {
    const head = el('h3', {}, el('span', { class: `badge ${r.state === 'firing' ? 'down' : r.state === 'pending' ? 'unknown' : 'up'}` }, r.state.toUpperCase()),
      ` ${r.name} `, el('span', { class: 'muted' }, `(${r.alerts.length} active, group ${r.group})`));
    const card = el('div', { class: 'card alert-rule', 'data-rule': r.name, 'data-state': r.state }, head,
      el('pre', { class: 'mono' }, `expr: ${r.query}${r.duration ? `\nfor: ${fmtSeconds(r.duration)}` : ''}${r.keepFiringFor ? `\nkeep_firing_for: ${fmtSeconds(r.keepFiringFor)}` : ''}`));
    if (r.alerts.length) card.append(alertsTable(r.alerts));
    wrap.append(card);
  }
  return wrap;
}

function groupsView(groups) {
  const wrap = el('div', { id: 'rule-groups' });
  if (!groups.length) wrap.append(el('p', { class: 'muted' }, 'No rule groups loaded.'));
  for (const g of groups) {
    const last = Date.parse(g.lastEvaluation);
    const t = el('table', { class: 'data' },
      el('tr', {}, ['Rule', 'Health', 'Last evaluation', 'Evaluation time', 'Error'].map((h) => el('th', {}, h))));
    for (const r of g.rules) {
      const at = Date.parse(r.lastEvaluation);
      t.append(el('tr', { class: 'rule', 'data-health': r.health },
        el('td', { class: 'mono' }, el('pre', {}, `${r.type === 'alerting' ? 'alert' : 'record'}: ${r.name}\nexpr: ${r.query}`)),
        el('td', {}, el('span', { class: `badge ${r.health === 'ok' ? 'up' : r.health === 'err' ? 'down' : 'unknown'}` }, r.health.toUpperCase())),
        el('td', { title: r.lastEvaluation }, at > 0 ? ago(at) : 'never'),
        el('td', { class: 'num' }, fmtSeconds(r.evaluationTime)),
        el('td', { class: 'mono', style: { color: 'var(--bad)' } }, r.lastError || '')));
    }
    wrap.append(el('div', { class: 'card rule-group', 'data-group': g.name },
      el('h3', {}, `${g.name} `, el('span', { class: 'muted' }, `${g.file} · every ${fmtSeconds(g.interval)} · last ${last > 0 ? ago(last) : 'never'} took ${fmtSeconds(g.evaluationTime)}`)),
      t));
  }
  return wrap;
}

export async function render(root) {
  const draw = async () => {
    const [rules, ams] = await Promise.all([
      getJSON('/api/v1/rules'),
      getJSON('/api/v1/alertmanagers').catch(() => ({ activeAlertmanagers: [] })),
    ]);
    const amText = ams.activeAlertmanagers.length
      ? `Alerts go to ${ams.activeAlertmanagers.map((a) => a.url).join(', ')}`
      : 'No Alertmanager configured: alerts are evaluated but not sent.';
    return [el('h2', {}, 'Alerts'), el('p', { class: 'muted', id: 'alertmanagers' }, amText), alertingView(rules.groups),
      el('h2', {}, 'Rules'), groupsView(rules.groups)];
  };
  root.append(...(await draw()));
  const timer = setInterval(async () => {
    try {
      root.replaceChildren(...(await draw()));
    } catch {
      // keep the last view; the next tick retries
    }
  }, 10000);
  return () => clearInterval(timer);
}
