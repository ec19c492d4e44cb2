// alert.js - one alert: what fired (rule, level, clause and category tags), the two sides
// with their assets and departments, the deadline with the time left, the evidence
// events (their JSON shown as text, field by field), pivots into the event archive, the
// timeline of moves, assignments and comments, and for analysts the moves the lifecycle
// allows from here plus a comment.

import { api, ApiError, query } from '../api.js';
import { append, clear, h } from '../dom.js';
import { loadTitles, ruleTitle } from '../titles.js';
import { errorText, formatTime, t } from '../i18n.js';

// The lifecycle's simple moves (correlator/lifecycle.c; the API checks them again).
const NEXT = {
  new: ['acknowledged', 'false_positive'],
  acknowledged: ['rectifying', 'false_positive'],
  rectifying: ['rectified', 'false_positive'],
  rectified: ['closed', 'reopened'],
  reopened: ['rectifying', 'false_positive'],
  accepted_risk: ['rectifying'],
};

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v)]));
}

function side(s) {
  if (!s) return '';
  return [s.ip, s.asset ? ` · ${s.asset}` : '', s.department ? ` · ${s.department}` : '', s.zone ? ` · ${s.zone}` : ''].join('');
}

const RUNNING = ['new', 'acknowledged', 'rectifying', 'reopened'];

function timeLeft(deadline) {
  if (!deadline) return '';
  const ms = new Date(deadline).getTime() - Date.now();
  const hours = Math.round(Math.abs(ms) / 3600000);
  return ms >= 0 ? t('alert.left', { h: hours }) : t('alert.overdue', { h: hours });
}

function eventView(text) {
  let pretty = text;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // shown as it came (a cut event is not JSON)
  }
  return h('pre', { class: 'event', tabindex: '0' }, pretty);
}

export async function alertPage(main, id, me) {
  await loadTitles();
  const msg = h('div', { class: 'msgs', 'aria-live': 'polite' });
  let doc;
  try {
    doc = await api('GET', `/api/v1/alerts/${encodeURIComponent(id)}`);
  } catch (err) {
    append(main, [h('section', { class: 'card' }, h('h1', {}, t('alert.title')),
      h('p', { class: 'msg error', role: 'alert' }, err instanceof ApiError ? errorText(err.code) : t('error.network')),
      h('a', { href: '#/queue' }, t('alert.back')))]);
    return;
  }
  const a = doc.alert;
  const inc = doc.incident;
  document.title = `${t('app.name')} · ${ruleTitle(a.rule.id, a.rule.title)}`;
  const tags = (a.tags || []).map((x) => (typeof x === 'string' ? x : x.tag || x.value || JSON.stringify(x)));

  const pivots = h('div', { class: 'pivot-out' });
  async function pivot(by) {
    clear(pivots);
    try {
      const r = await api('GET', `/api/v1/alerts/${encodeURIComponent(id)}/events${query({ by })}`);
      append(pivots, [h('p', { class: 'count' }, t('alert.pivot_count', { n: r.events.length })),
        r.events.map((e) => eventView(JSON.stringify(e)))]);
    } catch (err) {
      append(pivots, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
    }
  }

  const actions = h('div', { class: 'actions' });
  if (me.role === 'analyst') {
    const comment = h('textarea', { id: 'move-comment', rows: 2 });
    const move = async (to) => {
      clear(msg);
      try {
        await api('POST', `/api/v1/incidents/${encodeURIComponent(id)}/transition`, { to, comment: comment.value || undefined });
        await alertPage(clear(main), id, me);
      } catch (err) {
        append(msg, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
      }
    };
    const addComment = async () => {
      clear(msg);
      try {
        await api('POST', `/api/v1/incidents/${encodeURIComponent(id)}/comment`, { comment: comment.value });
        await alertPage(clear(main), id, me);
      } catch (err) {
        append(msg, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
      }
    };
    append(actions, [h('h2', {}, t('alert.actions')),
      h('div', { class: 'field' }, h('label', { for: 'move-comment' }, t('alert.comment')), comment),
      h('div', { class: 'buttons' },
        (NEXT[inc.status] || []).map((to) => h('button', { type: 'button', 'data-to': to, onClick: () => move(to) }, t(`move.${to}`))),
        h('button', { type: 'button', id: 'add-comment', onClick: addComment }, t('alert.add_comment')))]);
  }

  append(main, [h('section', { class: 'card wide' },
    h('p', {}, h('a', { href: '#/queue' }, t('alert.back'))),
    h('h1', {}, h('span', { class: `level ${a.level}` }, t(`level.${a.level}`)), ' ', ruleTitle(a.rule.id, a.rule.title)),
    msg,
    dl([['alert.rule', a.rule.name || a.rule.id], ['alert.status', t(`state.${inc.status}`)],
      ['alert.department', inc.department], ['alert.assignee', inc.assignee],
      // the clock runs only while the incident waits for its rectification
      ['alert.deadline', inc.deadline ? (RUNNING.includes(inc.status)
        ? `${formatTime(new Date(inc.deadline).toISOString())} (${timeLeft(inc.deadline)})`
        : formatTime(new Date(inc.deadline).toISOString())) : ''],
      ['alert.source', side(a.src)], ['alert.target', side(a.dest)],
      ['alert.first_seen', formatTime(a.first_seen)], ['alert.last_seen', formatTime(a.last_seen)],
      ['alert.count', String(a.count)], ['alert.tags', tags.join(', ')], ['alert.group', a.group_key]]),
    actions,
    h('h2', {}, t('alert.evidence')),
    (a.evidence || []).map((e) => h('div', { class: 'evidence' },
      h('p', { class: 'meta' }, `#${e.seq} · ${formatTime(e.timestamp)}`, e.community_id ? ` · community_id ${e.community_id}` : '',
        e.truncated ? ` · ${t('alert.truncated')}` : ''),
      eventView(e.event))),
    h('h2', {}, t('alert.pivots')),
    h('div', { class: 'buttons' }, ['flow', 'source', 'destination'].map((by) =>
      h('button', { type: 'button', 'data-pivot': by, onClick: () => pivot(by) }, t(`alert.pivot_${by}`)))),
    pivots,
    h('h2', {}, t('alert.timeline')),
    doc.timeline.length ? h('ol', { class: 'timeline' }, doc.timeline.map((r) => h('li', {},
      h('span', { class: 'time' }, formatTime(r.at)), ' ', r.actor, ' · ', t(`kind.${r.kind}`),
      r.kind === 'status' ? ` · ${t(`state.${r.from}`)} → ${t(`state.${r.to}`)}` : '',
      r.detail ? ` · ${r.detail}` : '', r.comment ? h('blockquote', {}, r.comment) : null)))
      : h('p', {}, t('alert.no_timeline')))]);
}
