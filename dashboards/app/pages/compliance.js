// compliance.js - the timely rectification rate (及时整改率) for a period against the 95%
// target: the total, a row per department (or segment, severity, clause, category) with
// every count a link to its incidents, the monthly trend with the projection, the overdue
// list, and the CSV and PDF downloads (the same report as the API's).

import { api, ApiError, query } from '../api.js';
import { append, clear, h } from '../dom.js';
import { loadTitles, ruleTitle } from '../titles.js';
import { currentLanguage, errorText, formatTime, t } from '../i18n.js';
import { chart } from '../charts.js';

const BY = ['department', 'segment', 'severity', 'clause', 'category'];
const OUTCOMES = ['on_time', 'late', 'pending', 'accepted_risk', 'excluded'];

function monthStart(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-01`;
}

function today(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function pct(v) {
  return v === null || v === undefined ? t('compliance.undefined') : `${(v * 100).toFixed(1)}%`;
}

const state = { from: null, to: null, by: 'department' };

export async function compliancePage(main) {
  await loadTitles();
  const now = new Date();
  state.from = state.from || monthStart(now);
  state.to = state.to || today(now);
  const msg = h('div', { class: 'msgs', 'aria-live': 'polite' });
  const body = h('div');
  const drill = h('div', { class: 'drill', 'aria-live': 'polite' });
  const from = h('input', { id: 'c-from', type: 'date', value: state.from });
  const to = h('input', { id: 'c-to', type: 'date', value: state.to });
  const by = h('select', { id: 'c-by' }, BY.map((b) => h('option', { value: b, selected: b === state.by }, t(`compliance.by_${b}`))));
  const form = h('form', { class: 'filters', 'aria-label': t('compliance.period') },
    h('div', { class: 'field inline' }, h('label', { for: 'c-from' }, t('compliance.from')), from),
    h('div', { class: 'field inline' }, h('label', { for: 'c-to' }, t('compliance.to')), to),
    h('div', { class: 'field inline' }, h('label', { for: 'c-by' }, t('compliance.by')), by),
    h('button', { type: 'submit' }, t('compliance.show')));
  const dl = h('div', { class: 'buttons' });

  function showIds(title, ids) {
    clear(drill);
    append(drill, [h('h2', { id: 'drill-h', tabindex: '-1' }, title, ` (${ids.length})`),
      ids.length ? h('ul', { class: 'ids' }, ids.map((id) => h('li', {}, h('a', { href: `#/alert/${encodeURIComponent(id)}` }, id))))
        : h('p', {}, t('compliance.none'))]);
    drill.querySelector('#drill-h').focus();
  }

  function count(label, set) {
    return h('button', { type: 'button', class: 'link num', onClick: () => showIds(label, set.ids) }, String(set.count));
  }

  async function load() {
    clear(msg);
    clear(body);
    clear(drill);
    const params = { from: state.from, to: state.to, by: state.by };
    let r;
    try {
      r = await api('GET', `/api/v1/rectification/report${query(params)}`);
    } catch (err) {
      append(msg, [h('p', { class: 'msg error', role: 'alert' }, err instanceof ApiError ? errorText(err.code) : t('error.network'))]);
      return;
    }
    clear(dl);
    append(dl, ['csv', 'pdf'].map((f) => h('a', { class: 'button', href: `/api/v1/rectification/report${query({ ...params, format: f })}`, download: '' }, t(`compliance.download_${f}`))));
    const met = r.total.rate !== null && r.total.rate >= r.target;
    const trendEl = h('div', { class: 'chart', id: 'trend' });
    append(body, [
      h('div', { class: 'kpis' },
        h('div', { class: `kpi ${r.total.rate === null ? '' : met ? 'good' : 'bad'}` },
          h('div', { class: 'kpi-label' }, t('compliance.rate')), h('div', { class: 'kpi-value', id: 'rate-total' }, pct(r.total.rate)),
          h('div', { class: 'kpi-sub' }, t('compliance.target', { p: pct(r.target) }))),
        OUTCOMES.map((o) => h('div', { class: 'kpi' }, h('div', { class: 'kpi-label' }, t(`outcome.${o}`)),
          h('div', { class: 'kpi-value' }, count(t(`outcome.${o}`), r.total[o])))),
        h('div', { class: 'kpi' }, h('div', { class: 'kpi-label' }, t('compliance.overdue')),
          h('div', { class: 'kpi-value' }, count(t('compliance.overdue'), r.total.overdue)))),
      h('p', { class: 'hint' }, currentLanguage() === 'en' ? r.definition.en : r.definition.zh),
      h('table', { class: 'grid', id: 'rate-rows' }, h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t(`compliance.by_${r.by}`)), h('th', { scope: 'col' }, t('compliance.rate')),
        OUTCOMES.map((o) => h('th', { scope: 'col' }, t(`outcome.${o}`))), h('th', { scope: 'col' }, t('compliance.overdue')))),
      h('tbody', {}, r.rows.map((row) => h('tr', { 'data-key': row.key },
        h('td', {}, row.key), h('td', { class: `num ${row.rate !== null && row.rate < r.target ? 'below' : ''}` }, pct(row.rate)),
        OUTCOMES.map((o) => h('td', { class: 'num' }, count(`${row.key} · ${t(`outcome.${o}`)}`, row[o]))),
        h('td', { class: 'num' }, count(`${row.key} · ${t('compliance.overdue')}`, row.overdue)))))),
      h('h2', {}, t('compliance.trend')),
      trendEl,
      h('p', { class: 'hint' }, r.projection.at_current_pace === null ? t('compliance.no_projection')
        : t('compliance.projection', { pace: pct(r.projection.at_current_pace), best: pct(r.projection.best_case) })),
      h('h2', {}, t('compliance.overdue_list')),
      r.overdue.length ? h('table', { class: 'grid' }, h('thead', {}, h('tr', {},
        ['title', 'department', 'deadline', 'overdue'].map((c) => h('th', { scope: 'col' }, t(`compliance.col_${c}`))))),
      h('tbody', {}, r.overdue.map((o) => h('tr', {},
        h('td', {}, h('a', { href: `#/alert/${encodeURIComponent(o.id)}` }, ruleTitle(o.rule_id, o.title))), h('td', {}, o.department || ''),
        h('td', { class: 'time' }, formatTime(o.deadline)), h('td', { class: 'num' }, t('compliance.hours', { h: Math.round(o.overdue_ms / 3600000) }))))))
        : h('p', {}, t('compliance.none')),
    ]);
    const months = r.trend.map((m) => m.month);
    await chart(trendEl, {
      grid: { left: 48, right: 24, top: 24, bottom: 32 },
      xAxis: { type: 'category', data: months },
      yAxis: { type: 'value', min: 0, max: 100, axisLabel: { formatter: '{value}%' } },
      series: [{
        name: t('compliance.rate'), type: 'line', connectNulls: false,
        data: r.trend.map((m) => (m.rate === null ? null : +(m.rate * 100).toFixed(1))),
        markLine: { symbol: 'none', data: [{ yAxis: r.target * 100, name: '95%' }], label: { formatter: '95%' } },
      }],
    }, t('compliance.trend_label', { n: months.length }));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    state.from = from.value;
    state.to = to.value;
    state.by = by.value;
    load();
  });
  append(main, [h('section', { class: 'card wide' }, h('h1', {}, t('nav.compliance')), form, dl, msg, body, drill)]);
  await load();
}
