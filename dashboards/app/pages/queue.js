// queue.js - the alert queue: the API's filters, newest first, pages of 50 by cursor,
// counts from /api/v1/alerts/facets (the same filter, so they equal the API's), and for
// analysts bulk moves over the selection or over everything the filter matches (with the
// count confirmed, as the API asks).

import { api, ApiError, query } from '../api.js';
import { append, clear, h } from '../dom.js';
import { errorText, formatTime, t } from '../i18n.js';

const LEVELS = ['critical', 'high', 'medium', 'low', 'informational'];
const STATES = ['new', 'acknowledged', 'rectifying', 'rectified', 'reopened', 'closed',
  'false_positive', 'duplicate', 'accepted_risk'];
const BULK = ['acknowledged', 'false_positive'];

const state = { severity: '', status: '', q: '', cursors: [null] };

function sideText(side) {
  if (!side || !side.ip) return '';
  return side.asset ? `${side.ip} (${side.asset})` : side.ip;
}

function select(id, label, values, current, prefix) {
  return h('div', { class: 'field inline' }, h('label', { for: id }, t(label)),
    h('select', { id }, h('option', { value: '' }, t('queue.any')),
      values.map((v) => h('option', { value: v, selected: v === current }, t(`${prefix}.${v}`)))));
}

export async function queuePage(main, me) {
  const analyst = me.role === 'analyst';
  const msg = h('div', { class: 'msgs', 'aria-live': 'polite' });
  const count = h('p', { class: 'count', id: 'queue-count' });
  const tbody = h('tbody');
  const selected = new Set();
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': t('queue.filters') },
    select('f-severity', 'queue.severity', LEVELS, state.severity, 'level'),
    select('f-status', 'queue.status', STATES, state.status, 'state'),
    h('div', { class: 'field inline' }, h('label', { for: 'f-q' }, t('queue.search')),
      h('input', { id: 'f-q', type: 'search', value: state.q })),
    h('button', { type: 'submit' }, t('queue.apply')));
  const prev = h('button', { type: 'button', id: 'page-prev' }, t('queue.prev'));
  const next = h('button', { type: 'button', id: 'page-next' }, t('queue.next'));
  const bulkBar = analyst ? h('div', { class: 'bulk', role: 'group', 'aria-label': t('queue.bulk') }) : null;
  let total = 0;

  function filterParams() {
    return { severity: state.severity, status: state.status, q: state.q };
  }

  // keep: the message of the action that asked for the reload stays
  async function load(keep) {
    if (!keep) clear(msg);
    const cursor = state.cursors[state.cursors.length - 1];
    try {
      const [page, facets] = await Promise.all([
        api('GET', `/api/v1/alerts${query({ ...filterParams(), limit: 50, cursor })}`),
        api('GET', `/api/v1/alerts/facets${query(filterParams())}`),
      ]);
      total = facets.total;
      count.textContent = t('queue.count', { n: total });
      clear(tbody);
      selected.clear();
      for (const a of page.alerts) {
        const box = analyst ? h('input', { type: 'checkbox', 'aria-label': t('queue.select_one', { title: a.rule.title }) }) : null;
        if (box) box.addEventListener('change', () => (box.checked ? selected.add(a.id) : selected.delete(a.id)));
        append(tbody, [h('tr', { 'data-id': a.id },
          analyst ? h('td', {}, box) : null,
          h('td', { class: 'time' }, formatTime(a.last_seen)),
          h('td', {}, h('span', { class: `level ${a.level}` }, t(`level.${a.level}`))),
          h('td', {}, h('a', { href: `#/alert/${encodeURIComponent(a.id)}` }, a.rule.title)),
          h('td', { class: 'addr' }, sideText(a.src), ' → ', sideText(a.dest)),
          h('td', {}, a.department || ''),
          h('td', {}, t(`state.${a.status}`)),
          h('td', { class: 'num' }, String(a.count)))]);
      }
      if (!page.alerts.length) append(tbody, [h('tr', {}, h('td', { colspan: analyst ? 8 : 7 }, t('queue.empty')))]);
      prev.disabled = state.cursors.length <= 1;
      next.disabled = !page.next;
      next.onclick = () => {
        state.cursors.push(page.next);
        load();
      };
    } catch (err) {
      append(msg, [h('p', { class: 'msg error', role: 'alert' }, err instanceof ApiError ? errorText(err.code) : t('error.network'))]);
    }
  }

  prev.addEventListener('click', () => {
    state.cursors.pop();
    load();
  });
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    state.severity = filters.querySelector('#f-severity').value;
    state.status = filters.querySelector('#f-status').value;
    state.q = filters.querySelector('#f-q').value.trim();
    state.cursors = [null];
    load();
  });

  async function bulk(to, all, confirmBox) {
    clear(msg);
    try {
      const body = all ? { to, expect: total } : { to, ids: [...selected] };
      const path = all ? `/api/v1/alerts/bulk${query(filterParams())}` : '/api/v1/alerts/bulk';
      const doc = await api('POST', path, body);
      const ok = doc.results.filter((r) => r.result === 'ok').length;
      append(msg, [h('p', { class: 'msg info', role: 'status' }, t('queue.bulk_done', { ok, n: doc.results.length }))]);
      if (confirmBox) clear(confirmBox);
      load(true);
    } catch (err) {
      const text = err.code === 'count_changed' ? t('queue.count_changed', { n: err.detail.count }) : errorText(err.code);
      append(msg, [h('p', { class: 'msg error', role: 'alert' }, text)]);
    }
  }

  if (bulkBar) {
    const confirmBox = h('span', { class: 'confirm' });
    for (const to of BULK) {
      append(bulkBar, [h('button', { type: 'button', onClick: () => bulk(to, false) }, t('queue.bulk_selected', { to: t(`state.${to}`) }))]);
    }
    append(bulkBar, [h('button', {
      type: 'button',
      id: 'bulk-all',
      onClick: () => {
        clear(confirmBox);
        append(confirmBox, [t('queue.bulk_confirm', { n: total }), ' ',
          h('button', { type: 'button', class: 'primary', id: 'bulk-all-yes', onClick: () => bulk('acknowledged', true, confirmBox) }, t('queue.yes')),
          h('button', { type: 'button', onClick: () => clear(confirmBox) }, t('queue.no'))]);
      },
    }, t('queue.bulk_all', { to: t('state.acknowledged') })), confirmBox]);
  }

  // Keys in EveBox's style (not while typing in a field): j/k down/up, x select,
  // Enter or o open, a acknowledge the selection (analysts), / search, ? this help.
  let cursor = -1;
  const help = h('div', { class: 'help', id: 'keys-help', role: 'dialog', 'aria-modal': 'false', 'aria-labelledby': 'keys-h', hidden: true },
    h('h2', { id: 'keys-h' }, t('keys.title')),
    h('dl', { class: 'facts' }, ['j', 'k', 'x', 'o', 'a', '/', '?', 'Esc'].map((k) => [h('dt', {}, h('kbd', {}, k)), h('dd', {}, t(`keys.${k === '/' ? 'slash' : k === '?' ? 'help' : k === 'Esc' ? 'esc' : k}`))])));
  function rows() {
    return [...tbody.querySelectorAll('tr[data-id]')];
  }
  function mark(i) {
    const r = rows();
    if (!r.length) return;
    cursor = Math.max(0, Math.min(r.length - 1, i));
    r.forEach((tr, k) => tr.classList.toggle('cursor', k === cursor));
    r[cursor].querySelector('a').focus();
  }
  function onKey(e) {
    if (!main.isConnected) {
      document.removeEventListener('keydown', onKey);
      return;
    }
    if (e.target.closest('input, select, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
    const r = rows();
    if (e.key === 'j') mark(cursor + 1);
    else if (e.key === 'k') mark(cursor - 1);
    else if (e.key === 'x' && analyst && r[cursor]) r[cursor].querySelector('input[type=checkbox]').click();
    else if ((e.key === 'o' || e.key === 'Enter') && r[cursor]) location.hash = `#/alert/${encodeURIComponent(r[cursor].dataset.id)}`;
    else if (e.key === 'a' && analyst && selected.size) bulk('acknowledged', false);
    else if (e.key === '/') filters.querySelector('#f-q').focus();
    else if (e.key === '?') help.hidden = !help.hidden;
    else if (e.key === 'Escape') help.hidden = true;
    else return;
    e.preventDefault();
  }
  document.addEventListener('keydown', onKey);

  append(main, [h('section', { class: 'card wide' },
    h('h1', {}, t('nav.queue')), filters, count, msg, bulkBar,
    h('table', { class: 'grid', 'aria-describedby': 'queue-count' },
      h('thead', {}, h('tr', {},
        analyst ? h('th', { scope: 'col' }, h('span', { class: 'sr' }, t('queue.select'))) : null,
        ['time', 'level', 'title', 'route', 'department', 'status', 'count'].map((c) => h('th', { scope: 'col' }, t(`queue.col_${c}`))))),
      tbody),
    h('div', { class: 'pager' }, prev, next,
      h('button', { type: 'button', class: 'link', onClick: () => { help.hidden = !help.hidden; } }, t('keys.show'))),
    help)]);
  await load();
}
