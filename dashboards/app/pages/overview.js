// overview.js - 态势感知: alerts by severity per day over the last two weeks with a
// three-day forecast, open and overdue incidents, top rules, sources and targets, GB/T
// 20986 categories, the traffic of the same days by application protocol, nDPI category,
// destination country and segment (ended flows, summed by the correlator), and sensor
// health (packets/s, kernel drop ratio, Kafka delivery failures, last seen; silent as the
// API says: no stats event for five minutes or three of its intervals). Refreshed every
// minute while shown.
//
// The forecast (威胁预测) is Holt's linear exponential smoothing of the daily totals
// (level alpha 0.5, trend beta 0.3), projected three days, never below zero; the page
// says so next to the chart. It is a trend line for planning, not a prediction of attacks.

import { api, query } from '../api.js';
import { append, clear, h } from '../dom.js';
import { loadTitles, ruleTitle } from '../titles.js';
import { currentLanguage, errorText, formatTime, t } from '../i18n.js';
import { chart } from '../charts.js';

const LEVELS = ['critical', 'high', 'medium', 'low', 'informational'];
const COLORS = { critical: '#8c1d18', high: '#d93025', medium: '#e37400', low: '#1a73e8', informational: '#80868b' };
const PERIODS = [7, 14, 30, 90];
// the period shown: `days` days up to `end` (YYYY-MM-DD, Asia/Shanghai; '' today)
const view = { days: 14, end: '' };
const AHEAD = 3;

// Holt's linear method; returns the next `ahead` values (rounded, >= 0).
export function holt(series, ahead, alpha = 0.5, beta = 0.3) {
  if (!series.length) return Array(ahead).fill(0);
  let level = series[0];
  let trend = series.length > 1 ? series[1] - series[0] : 0;
  for (let i = 1; i < series.length; i++) {
    const prev = level;
    level = alpha * series[i] + (1 - alpha) * (level + trend);
    trend = beta * (level - prev) + (1 - beta) * trend;
  }
  return Array.from({ length: ahead }, (_, k) => Math.max(0, Math.round(level + (k + 1) * trend)));
}

function nextDay(day, k) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + k);
  return d.toISOString().slice(0, 10);
}

function top(title, groups, label) {
  return h('div', { class: 'panel' }, h('h2', {}, title),
    groups.length ? h('ol', { class: 'top' }, groups.map((g) => h('li', {}, h('span', { class: 'top-name' }, label(g)),
      h('span', { class: 'num' }, String(g.alerts))))) : h('p', {}, t('overview.none')));
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(n) {
  let v = Number(n) || 0;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u ? v.toFixed(v < 10 ? 1 : 0) : v} ${UNITS[u]}`;
}

function formatCount(n) {
  return new Intl.NumberFormat(currentLanguage() === 'en' ? 'en-GB' : 'zh-CN').format(n);
}

// A country code as "CN 中国" in the user's language; '' is traffic not looked up.
function countryName(cc) {
  if (!cc) return t('overview.country_none');
  try {
    const name = new Intl.DisplayNames([currentLanguage()], { type: 'region' }).of(cc);
    return name && name !== cc ? `${cc} ${name}` : cc;
  } catch {
    return cc;
  }
}

// One traffic dimension: name, flows, bytes and a meter of its share of the top row.
function trafficTable(id, title, rows, label) {
  const most = rows.length ? rows[0].bytes : 0;
  return h('div', { class: 'panel' }, h('h3', {}, title),
    rows.length ? h('table', { class: 'grid compact', id },
      h('thead', {}, h('tr', {}, ['name', 'flows', 'bytes', 'share'].map((c) =>
        h('th', { scope: 'col', class: c === 'name' ? '' : 'num' }, t(`overview.traffic_${c}`))))),
      h('tbody', {}, rows.map((r) => h('tr', { 'data-key': r.key },
        h('td', {}, label(r.key)), h('td', { class: 'num' }, formatCount(r.flows)),
        h('td', { class: 'num' }, formatBytes(r.bytes)),
        h('td', { class: 'num' }, h('meter', { min: '0', max: String(most || 1), value: String(r.bytes),
          'aria-label': `${label(r.key)}: ${formatBytes(r.bytes)}` })))))) : h('p', {}, t('overview.none')));
}

// The timely rectification rate of the days shown against the 95% target (the meter's
// low mark), with what it is made of.
function rateKpi(r) {
  const known = r && r.rate !== null && r.rate !== undefined;
  const pct = known ? `${(r.rate * 100).toFixed(1)}%` : t('overview.rate_none');
  const ok = known && r.rate >= r.target;
  return h('div', { class: `kpi ${known ? (ok ? 'good' : 'bad') : ''}`, id: 'kpi-rate' },
    h('div', { class: 'kpi-label' }, t('overview.rate', { target: `${Math.round((r ? r.target : 0.95) * 100)}%` })),
    h('div', { class: known ? 'kpi-value' : 'kpi-value none' }, pct),
    known ? h('meter', { min: '0', max: '1', low: String(r.target), high: String(r.target), optimum: '1', value: String(r.rate),
      'aria-label': t('overview.rate', { target: `${Math.round(r.target * 100)}%` }) }) : null,
    r ? h('div', { class: 'kpi-sub' }, t('overview.rate_parts', { on_time: r.on_time, late: r.late, pending: r.pending })) : null);
}

function ratio(v) {
  return v === undefined ? '—' : `${(v * 100).toFixed(v && v < 0.001 ? 3 : 2)}%`;
}

function sensorRow(s) {
  const failures = (s.kafka_failed || 0) + (s.kafka_dropped || 0);
  const kafka = s.kafka_failed === undefined ? '—'
    : `${formatCount(failures)}${s.spool_pending ? ` · ${t('overview.spooled', { n: formatCount(s.spool_pending) })}` : ''}`;
  return h('tr', { 'data-sensor': s.sensor }, h('td', {}, s.sensor), h('td', {}, s.segment || ''),
    h('td', { class: 'num', 'data-col': 'pps' }, s.packets_per_s === undefined ? '—' : formatCount(s.packets_per_s)),
    h('td', { class: `num${s.drop_ratio > 0.01 ? ' bad-text' : ''}`, 'data-col': 'drops' }, ratio(s.drop_ratio)),
    h('td', { class: `num${failures ? ' bad-text' : ''}`, 'data-col': 'kafka' }, kafka),
    h('td', { class: 'time' }, formatTime(s.received_at || s.last_seen)),
    h('td', { class: 'time' }, formatTime(s.last_seen)),
    h('td', {}, h('span', { class: s.silent ? 'state bad' : 'state good' }, s.silent ? t('overview.silent') : t('overview.reporting'))));
}

// YYYY-MM-DD of an instant in Asia/Shanghai
function cstDay(iso) {
  return new Date(new Date(iso).getTime() + 8 * 3600000).toISOString().slice(0, 10);
}

export async function overviewPage(main) {
  const box = h('div', { class: 'overview' });
  const daysSel = h('select', { id: 'ov-days' }, PERIODS.map((n) => h('option', { value: String(n), selected: n === view.days }, t('overview.days_n', { n }))));
  const endIn = h('input', { id: 'ov-end', type: 'date', value: view.end });
  const period = h('form', { class: 'filters', 'aria-label': t('overview.period') },
    h('div', { class: 'field inline' }, h('label', { for: 'ov-days' }, t('overview.period')), daysSel),
    h('div', { class: 'field inline' }, h('label', { for: 'ov-end' }, t('overview.end')), endIn),
    h('button', { type: 'submit' }, t('queue.apply')),
    h('button', { type: 'button', onClick: () => {
      view.end = '';
      endIn.value = '';
      load();
    } }, t('overview.today')));
  period.addEventListener('submit', (e) => {
    e.preventDefault();
    view.days = Number(daysSel.value) || 14;
    view.end = endIn.value;
    load();
  });
  append(main, [h('section', { class: 'card wide' }, h('h1', {}, t('nav.overview')), period, box)]);
  let timer = null;

  async function load() {
    if (!box.isConnected) {
      clearInterval(timer);
      return;
    }
    let o;
    let groups;
    try {
      await loadTitles();
      o = await api('GET', `/api/v1/overview${query({ days: view.days, end: view.end })}`);
      groups = await Promise.all(['rule', 'source', 'destination'].map((by) =>
        api('GET', `/api/v1/alerts/groups${query({ by, from: o.since, to: o.until, limit: 10 })}`)));
    } catch (err) {
      clear(box);
      append(box, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
      return;
    }
    const totals = o.days.map((d) => LEVELS.reduce((n, l) => n + d[l], 0));
    const forecast = holt(totals, AHEAD);
    const last = o.days[o.days.length - 1].day;
    const days = [...o.days.map((d) => d.day), ...forecast.map((_, k) => nextDay(last, k + 1))];
    const trendEl = h('div', { class: 'chart', id: 'sev-chart' });
    const catEl = h('div', { class: 'chart short', id: 'cat-chart' });
    const cats = Object.entries(o.category).filter(([k]) => k !== '(none)');
    const past = Boolean(view.end) && new Date(o.until).getTime() < new Date(o.now).getTime();
    // nothing in the days shown, but there are alerts before: one click to their days
    const older = !totals.some((n) => n) && o.latest_alert && new Date(o.latest_alert) < new Date(o.since)
      ? h('p', { class: 'msg info', id: 'ov-older' }, t('overview.older', { at: formatTime(o.latest_alert) }), ' ',
        h('button', { type: 'button', id: 'ov-older-go', onClick: () => {
          view.end = cstDay(o.latest_alert);
          endIn.value = view.end;
          load();
        } }, t('overview.older_go'))) : null;
    clear(box);
    append(box, [
      h('div', { class: 'kpis' },
        h('div', { class: 'kpi' }, h('div', { class: 'kpi-label' }, t('overview.open')), h('div', { class: 'kpi-value', id: 'kpi-open' }, String(o.open))),
        h('div', { class: `kpi ${o.overdue ? 'bad' : 'good'}` }, h('div', { class: 'kpi-label' }, t('overview.overdue')), h('div', { class: 'kpi-value', id: 'kpi-overdue' }, String(o.overdue))),
        rateKpi(o.rectification),
        h('div', { class: 'kpi' }, h('div', { class: 'kpi-label' }, past ? t('overview.new_on', { day: last }) : t('overview.new_today')), h('div', { class: 'kpi-value', id: 'kpi-new' }, String(totals[totals.length - 1]))),
        h('div', { class: 'kpi' }, h('div', { class: 'kpi-label' }, past ? t('overview.forecast_on', { day: nextDay(last, 1) }) : t('overview.forecast_tomorrow')), h('div', { class: 'kpi-value', id: 'kpi-forecast' }, String(forecast[0])))),
      older,
      h('h2', {}, past ? t('overview.by_range', { from: o.days[0].day, to: last }) : t('overview.by_day', { n: view.days })),
      trendEl,
      h('p', { class: 'hint', id: 'forecast-how' }, t('overview.forecast_how', { n: AHEAD })),
      h('div', { class: 'panels' },
        top(t('overview.top_rules'), groups[0].groups, (g) => ruleTitle(g.rule_id)),
        top(t('overview.top_sources'), groups[1].groups, (g) => g.src_ip || '—'),
        top(t('overview.top_targets'), groups[2].groups, (g) => g.dest_ip || '—')),
      h('h2', {}, t('overview.categories')),
      cats.length ? catEl : h('p', {}, t('overview.none')),
      h('h2', {}, past ? t('overview.traffic_range', { from: o.days[0].day, to: last }) : t('overview.traffic', { n: view.days })),
      h('p', { class: 'hint', id: 'traffic-total' }, t('overview.traffic_total', {
        flows: formatCount(o.traffic.flows), bytes: formatBytes(o.traffic.bytes) })),
      h('div', { class: 'panels' },
        trafficTable('traffic-app', t('overview.by_app'), o.traffic.by_app, (k) => k),
        trafficTable('traffic-category', t('overview.by_category'), o.traffic.by_category, (k) => k || t('overview.key_none')),
        trafficTable('traffic-country', t('overview.by_country'), o.traffic.by_country, countryName),
        trafficTable('traffic-segment', t('overview.by_segment'), o.traffic.by_segment, (k) => k || t('overview.key_none'))),
      h('h2', {}, t('overview.sensors')),
      o.sensors.length ? h('table', { class: 'grid', id: 'sensors' }, h('thead', {}, h('tr', {},
        ['sensor', 'segment', 'pps', 'drops', 'kafka', 'received', 'last_seen', 'state'].map((c) =>
          h('th', { scope: 'col', class: ['pps', 'drops', 'kafka'].includes(c) ? 'num' : '' }, t(`overview.col_${c}`))))),
      h('tbody', {}, o.sensors.map(sensorRow))) : h('p', {}, t('overview.no_sensors')),
      h('p', { class: 'hint' }, t('overview.sensors_how')),
      h('p', { class: 'hint' }, t('overview.updated', { at: formatTime(o.now) })),
    ]);
    await chart(trendEl, {
      legend: { top: 0 },
      grid: { left: 40, right: 16, top: 36, bottom: 28 },
      xAxis: { type: 'category', data: days },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        ...LEVELS.map((l) => ({ name: t(`level.${l}`), type: 'bar', stack: 'a', color: COLORS[l],
          data: [...o.days.map((d) => d[l]), ...forecast.map(() => null)] })),
        { name: t('overview.forecast'), type: 'line', lineStyle: { type: 'dashed' }, color: '#5f6368',
          data: [...totals.map((v, i) => (i === totals.length - 1 ? v : null)), ...forecast] },
      ],
    }, t('overview.chart_label', { n: view.days, ahead: AHEAD }));
    if (cats.length) {
      await chart(catEl, {
        grid: { left: 160, right: 24, top: 8, bottom: 24 },
        xAxis: { type: 'value', minInterval: 1 },
        yAxis: { type: 'category', data: cats.map(([k]) => t(`cat.${k}`)).reverse() },
        series: [{ type: 'bar', data: cats.map(([, v]) => v).reverse(), color: '#1a73e8' }],
      }, t('overview.categories'));
    }
  }

  await load();
  timer = setInterval(load, 60000);
}
