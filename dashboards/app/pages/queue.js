// queue.js - the alert queue: the API's filters (severity, status, department, rule,
// category, address, time range, text), sorting, pages of 50 by cursor, counts from
// /api/v1/alerts/facets (the same filter, so they equal the API's), grouping by rule,
// source or destination with counts (/api/v1/alerts/groups, server side; a group opens
// as a filter), saved views (named filter, sort and grouping, kept per user in this
// browser), and for analysts bulk moves over the selection or over everything the filter
// matches (with the count confirmed, as the API asks). The filter is in the address
// (#/queue?severity=high&...), so a view can be bookmarked or sent to a colleague.

import { api, ApiError, query } from '../api.js';
import { append, clear, h } from '../dom.js';
import { loadTitles, ruleTitle } from '../titles.js';
import { errorText, formatTime, t } from '../i18n.js';

const LEVELS = ['critical', 'high', 'medium', 'low', 'informational'];
const STATES = ['new', 'acknowledged', 'rectifying', 'rectified', 'reopened', 'closed',
  'false_positive', 'duplicate', 'accepted_risk'];
const BULK = ['acknowledged', 'false_positive'];
export const CATEGORIES = ['malware', 'network_attack', 'data_security', 'violation', 'hidden_danger',
  'abnormal_behavior'];
const SORTS = ['-last_seen', '-first_seen', '-severity', '-count', '+last_seen'];
const GROUPS = ['rule', 'source', 'destination'];
// what a view holds (the address's query and a saved view)
const KEYS = ['severity', 'status', 'department', 'rule', 'category', 'address', 'from', 'to', 'q', 'sort', 'group'];

const state = { severity: '', status: '', department: '', rule: '', category: '', address: '', from: '', to: '', q: '',
  sort: '-last_seen', group: '', cursors: [null] };

// #/queue?k=v: the view in the address wins over the last one used
function fromHash() {
  const i = location.hash.indexOf('?');
  if (i < 0) return;
  const p = new URLSearchParams(location.hash.slice(i + 1));
  for (const k of KEYS) state[k] = p.get(k) || (k === 'sort' ? '-last_seen' : '');
  state.cursors = [null];
}

function view() {
  const v = {};
  for (const k of KEYS) if (state[k] && !(k === 'sort' && state[k] === '-last_seen')) v[k] = state[k];
  return v;
}

function toHash() {
  const q = new URLSearchParams(view()).toString();
  history.replaceState(null, '', `#/queue${q ? `?${q}` : ''}`);
}

function viewsKey(me) {
  return `fh.views.${me.name}`;
}

export function savedViews(me) {
  try {
    const v = JSON.parse(localStorage.getItem(viewsKey(me)) || '[]');
    return Array.isArray(v) ? v.filter((x) => x && typeof x.name === 'string' && x.view && typeof x.view === 'object') : [];
  } catch {
    return [];
  }
}

function storeViews(me, views) {
  localStorage.setItem(viewsKey(me), JSON.stringify(views));
}

function sideText(side) {
  if (!side || !side.ip) return '';
  return side.asset ? `${side.ip} (${side.asset})` : side.ip;
}

// A select's options: "any", then the values; counts ({value: n} from the facets) shown
// beside each value when known. A value from the address or a saved view that the facets
// do not list is still offered.
function options(values, current, name, counts) {
  const all = current && !values.includes(current) ? [current, ...values] : values;
  return [h('option', { value: '' }, t('queue.any')),
    ...all.map((v) => h('option', { value: v, selected: v === current },
      counts && counts[v] !== undefined ? `${name(v)} (${counts[v]})` : name(v)))];
}

function select(id, label, values, current, name) {
  return h('div', { class: 'field inline' }, h('label', { for: id }, t(label)),
    h('select', { id }, options(values, current, name)));
}

export async function queuePage(main, me) {
  fromHash();
  await loadTitles();
  const analyst = me.role === 'analyst';
  const msg = h('div', { class: 'msgs', 'aria-live': 'polite' });
  const count = h('p', { class: 'count', id: 'queue-count' });
  const tbody = h('tbody');
  const groupBox = h('div', { class: 'groups', id: 'groups' });
  const listBox = h('div', {});
  const viewsBar = h('div', { class: 'views', role: 'group', 'aria-label': t('queue.views') });
  const selected = new Set();
  // The values to offer (with their counts) over everything the user may see. With a
  // million alerts the counts take a second or more (bench/README.md): the list does not
  // wait for them; the selects and the count fill in when they come.
  const facets0 = api('GET', '/api/v1/alerts/facets').catch(() => null);
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': t('queue.filters') },
    select('f-severity', 'queue.severity', LEVELS, state.severity, (v) => t(`level.${v}`)),
    select('f-status', 'queue.status', STATES, state.status, (v) => t(`state.${v}`)),
    select('f-department', 'queue.department', [], state.department, (v) => v),
    select('f-rule', 'queue.rule', [], state.rule, (v) => v),
    select('f-category', 'queue.category', CATEGORIES, state.category, (v) => t(`cat.${v}`)),
    h('div', { class: 'field inline' }, h('label', { for: 'f-address' }, t('queue.address')),
      h('input', { id: 'f-address', type: 'text', value: state.address, size: '16', spellcheck: 'false' })),
    h('div', { class: 'field inline' }, h('label', { for: 'f-from' }, t('queue.from')),
      h('input', { id: 'f-from', type: 'date', value: state.from })),
    h('div', { class: 'field inline' }, h('label', { for: 'f-to' }, t('queue.to')),
      h('input', { id: 'f-to', type: 'date', value: state.to })),
    h('div', { class: 'field inline' }, h('label', { for: 'f-q' }, t('queue.search')),
      h('input', { id: 'f-q', type: 'search', value: state.q })),
    h('div', { class: 'field inline' }, h('label', { for: 'f-sort' }, t('queue.sort')),
      h('select', { id: 'f-sort' }, SORTS.map((v) => h('option', { value: v, selected: v === state.sort }, t(`queue.sort_${v.slice(1)}${v[0] === '+' ? '_asc' : ''}`))))),
    h('div', { class: 'field inline' }, h('label', { for: 'f-group' }, t('queue.group')),
      h('select', { id: 'f-group' }, h('option', { value: '' }, t('queue.group_none')),
        GROUPS.map((v) => h('option', { value: v, selected: v === state.group }, t(`queue.group_${v}`))))),
    h('button', { type: 'submit' }, t('queue.apply')),
    h('button', { type: 'button', id: 'f-reset', onClick: () => {
      for (const k of KEYS) state[k] = k === 'sort' ? '-last_seen' : '';
      state.cursors = [null];
      toHash();
      rerender();
    } }, t('queue.reset')));
  const prev = h('button', { type: 'button', id: 'page-prev' }, t('queue.prev'));
  const next = h('button', { type: 'button', id: 'page-next' }, t('queue.next'));
  const bulkBar = analyst ? h('div', { class: 'bulk', role: 'group', 'aria-label': t('queue.bulk') }) : null;
  let total = null; // of the current filter, null until its counts come
  // {key: the filter's query, doc: a promise of its facets}; the unfiltered ones are facets0
  let facetsOf = { key: '', doc: facets0 };

  facets0.then((f0) => {
    if (!f0) return;
    const fill = (id, values, name, counts) => {
      const sel = filters.querySelector(`#${id}`);
      const keep = sel.value;
      sel.replaceChildren(...options(values, keep, name, counts));
      sel.value = keep;
    };
    fill('f-severity', LEVELS, (v) => t(`level.${v}`), f0.severity);
    fill('f-status', STATES, (v) => t(`state.${v}`), f0.status);
    fill('f-department', Object.keys(f0.department || {}), (v) => v, f0.department);
    fill('f-rule', Object.keys(f0.rule || {}), (v) => v, f0.rule);
  });

  function filterParams() {
    return { severity: state.severity, status: state.status, department: state.department, rule: state.rule,
      category: state.category, address: state.address, from: state.from, to: state.to, q: state.q };
  }

  function rerender() {
    document.removeEventListener('keydown', onKey);
    clear(main);
    queuePage(main, me);
  }

  // Saved views: the current filter, sort and grouping under a name (this browser, this user).
  function drawViews() {
    clear(viewsBar);
    const views = savedViews(me);
    const name = h('input', { id: 'view-name', type: 'text', maxlength: '60', placeholder: t('queue.view_name') });
    append(viewsBar, [h('span', { class: 'views-label' }, t('queue.views')),
      views.length ? views.map((v, i) => h('span', { class: 'view' },
        h('button', { type: 'button', class: 'link', 'data-view': v.name, onClick: () => {
          for (const k of KEYS) state[k] = typeof v.view[k] === 'string' ? v.view[k] : (k === 'sort' ? '-last_seen' : '');
          state.cursors = [null];
          toHash();
          rerender();
        } }, v.name),
        h('button', { type: 'button', class: 'icon', 'aria-label': t('queue.view_delete', { name: v.name }), onClick: () => {
          storeViews(me, views.filter((_, k) => k !== i));
          drawViews();
        } }, '×'))) : h('span', { class: 'hint' }, t('queue.views_none')),
      h('label', { for: 'view-name', class: 'sr' }, t('queue.view_name')), name,
      h('button', { type: 'button', id: 'view-save', onClick: () => {
        const n = name.value.trim();
        if (!n) {
          name.focus();
          return;
        }
        storeViews(me, [...views.filter((v) => v.name !== n), { name: n, view: view() }]);
        drawViews();
      } }, t('queue.view_save'))]);
  }

  // Grouped: one row per rule, source or destination with its alerts and events; a group
  // opens as the filter of the list.
  async function loadGroups() {
    clear(groupBox);
    const doc = await api('GET', `/api/v1/alerts/groups${query({ ...filterParams(), by: state.group, limit: 200 })}`);
    const label = (g) => (state.group === 'rule' ? ruleTitle(g.rule_id) : state.group === 'source' ? g.src_ip : g.dest_ip) || '—';
    append(groupBox, [h('h2', {}, t('queue.groups_of', { by: t(`queue.group_${state.group}`), n: doc.groups.length })),
      h('table', { class: 'grid', id: 'group-table' },
        h('thead', {}, h('tr', {}, ['name', 'alerts', 'events', 'first', 'last'].map((c) =>
          h('th', { scope: 'col', class: ['alerts', 'events'].includes(c) ? 'num' : '' }, t(`queue.gcol_${c}`))))),
        h('tbody', {}, doc.groups.length ? doc.groups.map((g) => h('tr', { 'data-group': label(g) },
          h('td', {}, h('button', { type: 'button', class: 'link', onClick: () => {
            if (state.group === 'rule') state.rule = g.rule_name || g.rule_id;
            else state.address = state.group === 'source' ? g.src_ip : g.dest_ip;
            state.group = '';
            state.cursors = [null];
            toHash();
            rerender();
          } }, label(g))),
          h('td', { class: 'num' }, String(g.alerts)), h('td', { class: 'num' }, String(g.events)),
          h('td', { class: 'time' }, formatTime(g.first_seen)), h('td', { class: 'time' }, formatTime(g.last_seen))))
          : h('tr', {}, h('td', { colspan: 5 }, t('queue.empty')))))]);
  }

  // keep: the message of the action that asked for the reload stays
  async function load(keep) {
    if (!keep) clear(msg);
    const cursor = state.cursors[state.cursors.length - 1];
    try {
      // the counts once per filter (paging keeps them; they aggregate every matching
      // alert), asked for at once and shown when they come
      const fkey = query(filterParams());
      if (!facetsOf || facetsOf.key !== fkey) {
        facetsOf = { key: fkey, doc: api('GET', `/api/v1/alerts/facets${fkey}`) };
        total = null;
      }
      const mine = facetsOf;
      if (total === null) count.textContent = t('queue.counting');
      mine.doc.then((f) => {
        if (facetsOf !== mine || !f) return;
        total = f.total;
        count.textContent = t('queue.count', { n: total });
      }).catch((err) => {
        if (facetsOf === mine) count.textContent = err instanceof ApiError ? errorText(err.code) : t('error.network');
      });
      listBox.hidden = Boolean(state.group);
      clear(groupBox);
      if (state.group) {
        await loadGroups();
        return;
      }
      const page = await api('GET', `/api/v1/alerts${query({ ...filterParams(), sort: state.sort, limit: 50, cursor })}`);
      clear(tbody);
      selected.clear();
      for (const a of page.alerts) {
        const box = analyst ? h('input', { type: 'checkbox', 'aria-label': t('queue.select_one', { title: ruleTitle(a.rule.id, a.rule.title) }) }) : null;
        if (box) box.addEventListener('change', () => (box.checked ? selected.add(a.id) : selected.delete(a.id)));
        append(tbody, [h('tr', { 'data-id': a.id },
          analyst ? h('td', {}, box) : null,
          h('td', { class: 'time' }, formatTime(a.last_seen)),
          h('td', {}, h('span', { class: `level ${a.level}` }, t(`level.${a.level}`))),
          h('td', {}, h('a', { href: `#/alert/${encodeURIComponent(a.id)}` }, ruleTitle(a.rule.id, a.rule.title))),
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
    for (const k of KEYS) {
      const el = filters.querySelector(`#f-${k}`);
      if (el) state[k] = el.value.trim();
    }
    state.cursors = [null];
    toHash();
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
      facetsOf = null; // the counts changed
      total = null;
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
        if (total === null) { // the count is not known yet: nothing to confirm
          append(confirmBox, [t('queue.counting')]);
          return;
        }
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

  append(listBox, [bulkBar,
    h('table', { class: 'grid', 'aria-describedby': 'queue-count' },
      h('thead', {}, h('tr', {},
        analyst ? h('th', { scope: 'col' }, h('span', { class: 'sr' }, t('queue.select'))) : null,
        ['time', 'level', 'title', 'route', 'department', 'status', 'count'].map((c) => h('th', { scope: 'col' }, t(`queue.col_${c}`))))),
      tbody),
    h('div', { class: 'pager' }, prev, next,
      h('button', { type: 'button', class: 'link', onClick: () => { help.hidden = !help.hidden; } }, t('keys.show')))]);
  append(main, [h('section', { class: 'card wide' },
    h('h1', {}, t('nav.queue')), filters, viewsBar, count, msg, groupBox, listBox, help)]);
  drawViews();
  await load();
}
