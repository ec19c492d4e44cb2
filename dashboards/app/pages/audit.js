// audit.js - the auditor's page: the audit log, oldest first, a page at a time, and the
// hash chain's verification (the first broken link named).

import { api } from '../api.js';
import { append, clear, h } from '../dom.js';
import { errorText, formatTime, t } from '../i18n.js';

export async function auditPage(main) {
  const tbody = h('tbody');
  const verdict = h('div', { class: 'msgs', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', id: 'audit-more' }, t('audit.more'));
  let after = 0;

  async function load() {
    const doc = await api('GET', `/api/v1/audit?after=${after}&limit=100`);
    for (const r of doc.records) {
      append(tbody, [h('tr', {}, h('td', { class: 'num' }, String(r.seq)), h('td', { class: 'time' }, formatTime(r.at)),
        h('td', {}, r.actor), h('td', {}, r.source || ''), h('td', {}, r.action), h('td', {}, r.object || ''),
        h('td', {}, r.outcome), h('td', {}, r.detail || ''))]);
      after = r.seq;
    }
    more.disabled = doc.records.length < 100;
  }
  more.addEventListener('click', load);

  const verify = h('button', { type: 'button', id: 'audit-verify', class: 'primary' }, t('audit.verify'));
  verify.addEventListener('click', async () => {
    clear(verdict);
    try {
      const v = await api('GET', '/api/v1/audit/verify');
      append(verdict, [h('p', { class: `msg ${v.ok ? 'info' : 'error'}`, role: 'status' },
        v.ok ? t('audit.intact', { n: v.records }) : t('audit.broken', { seq: v.first_bad, reason: v.reason }))]);
    } catch (err) {
      append(verdict, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
    }
  });

  append(main, [h('section', { class: 'card wide' }, h('h1', {}, t('nav.audit')), verify, verdict,
    h('table', { class: 'grid' }, h('thead', {}, h('tr', {},
      ['seq', 'time', 'actor', 'source', 'action', 'object', 'outcome', 'detail'].map((c) => h('th', { scope: 'col' }, t(`audit.col_${c}`))))), tbody),
    h('div', { class: 'pager' }, more))]);
  await load();
}
