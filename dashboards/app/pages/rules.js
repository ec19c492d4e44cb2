// rules.js - the security administrator's rules: every rule with its hit counts and state
// (switch on and off), an editor that validates a file against the whole folder and shows
// each error at its line, "test against recent events" (the event archive) before saving,
// and the suppressions with their expiry (revocable).

import { api, ApiError } from '../api.js';
import { append, clear, h } from '../dom.js';
import { errorText, formatTime, t } from '../i18n.js';
import { localTitle } from '../titles.js';

const DAY = 24 * 3600 * 1000;

function errorList(errors, textarea) {
  return h('ul', { class: 'errors', id: 'rule-errors' }, errors.map((e) => {
    const go = h('button', { type: 'button', class: 'link', 'data-line': String(e.line || 0) },
      t('rules.at_line', { file: e.file || '', line: e.line || 0 }));
    go.addEventListener('click', () => {
      // the caret to the start of that line
      const lines = textarea.value.split('\n');
      const upto = lines.slice(0, Math.max(0, (e.line || 1) - 1)).join('\n').length + (e.line > 1 ? 1 : 0);
      textarea.focus();
      textarea.setSelectionRange(upto, upto + (lines[(e.line || 1) - 1] || '').length);
    });
    return h('li', {}, go, ' ', e.rule ? `${e.rule}: ` : '', e.reason || '');
  }));
}

export async function rulesPage(main) {
  const msg = h('div', { class: 'msgs', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const supp = h('tbody');
  const say = (text, kind) => {
    clear(msg);
    append(msg, [h('p', { class: `msg ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text)]);
  };

  async function load() {
    const [doc, s] = await Promise.all([api('GET', '/api/v1/rules'), api('GET', '/api/v1/suppressions?active=1')]);
    clear(tbody);
    for (const r of doc.rules) {
      const sw = h('button', { type: 'button', 'data-rule': r.id }, r.enabled ? t('rules.disable') : t('rules.enable'));
      sw.addEventListener('click', async () => {
        try {
          await api('POST', `/api/v1/rules/${encodeURIComponent(r.id)}/${r.enabled ? 'disable' : 'enable'}`);
          say(t(r.enabled ? 'rules.disabled' : 'rules.enabled', { title: r.title }), 'info');
          load();
        } catch (err) {
          say(errorText(err.code), 'error');
        }
      });
      append(tbody, [h('tr', { 'data-id': r.id },
        h('td', {}, localTitle(r.title, r.title_zh), h('div', { class: 'sub' }, `${r.file}:${r.line}`)),
        h('td', {}, t(`rules.kind_${r.kind}`)), h('td', {}, h('span', { class: `level ${r.level}` }, t(`level.${r.level}`))),
        h('td', { class: 'num' }, String(r.alerts)), h('td', { class: 'num' }, String(r.hits)),
        h('td', {}, r.enabled ? t('rules.on') : t('rules.off')), h('td', {}, sw))]);
    }
    clear(supp);
    for (const x of s.suppressions) {
      const revoke = h('button', { type: 'button' }, t('rules.revoke'));
      revoke.addEventListener('click', async () => {
        try {
          await api('DELETE', `/api/v1/suppressions/${encodeURIComponent(x.id)}`);
          load();
        } catch (err) {
          say(errorText(err.code), 'error');
        }
      });
      append(supp, [h('tr', {}, h('td', {}, x.rule_id), h('td', {}, x.src_ip || '*'), h('td', {}, x.dest_ip || '*'),
        h('td', {}, x.reason), h('td', { class: 'time' }, formatTime(x.expires_at)), h('td', { class: 'num' }, String(x.hits)),
        h('td', {}, revoke))]);
    }
    if (!s.suppressions.length) append(supp, [h('tr', {}, h('td', { colspan: 7 }, t('rules.no_suppressions')))]);
  }

  const name = h('input', { id: 'rule-name', value: 'local.yml', required: true });
  const text = h('textarea', { id: 'rule-text', rows: 16, spellcheck: 'false', class: 'code' });
  const out = h('div', { class: 'rule-out', 'aria-live': 'polite' });
  const body = () => ({ name: name.value, text: text.value });

  async function validate() {
    clear(out);
    try {
      const r = await api('POST', '/api/v1/rules/validate', body());
      append(out, [r.ok ? h('p', { class: 'msg info', role: 'status' }, t('rules.valid', { n: r.rules.length }))
        : h('p', { class: 'msg error', role: 'alert' }, r.code === 'no_rule' ? t('rules.no_rule') : t('rules.invalid')),
      r.errors.length ? errorList(r.errors, text) : null]);
    } catch (err) {
      append(out, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
    }
  }

  async function testIt() {
    clear(out);
    const now = Date.now();
    try {
      const r = await api('POST', '/api/v1/rules/test', {
        ...body(), from: new Date(now - 7 * DAY).toISOString().replace(/\.\d+Z$/, 'Z'),
        to: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z'),
      });
      append(out, [h('p', { class: 'msg info', role: 'status', id: 'rule-test-result' },
        t('rules.tested', { events: r.events, alerts: r.alerts_total })),
      h('ul', { class: 'hits' }, r.alerts.map((a) => h('li', {}, h('span', { class: `level ${a.level}` }, t(`level.${a.level}`)), ' ', a.title, ' · ', a.group_key)))]);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422) {
        append(out, [h('p', { class: 'msg error', role: 'alert' }, t('rules.invalid')), errorList(err.body.errors || [], text)]);
      } else {
        append(out, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
      }
    }
  }

  async function save() {
    clear(out);
    try {
      const r = await api('POST', '/api/v1/rules', body());
      append(out, [h('p', { class: 'msg info', role: 'status' }, t('rules.saved', { n: r.rules.length }))]);
      load();
    } catch (err) {
      if (err.status === 422) {
        append(out, [h('p', { class: 'msg error', role: 'alert' }, err.body.code === 'no_rule' ? t('rules.no_rule') : t('rules.invalid')),
          errorList(err.body.errors || [], text)]);
      } else {
        append(out, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
      }
    }
  }

  append(main, [h('section', { class: 'card wide' }, h('h1', {}, t('nav.rules')), msg,
    h('table', { class: 'grid' }, h('thead', {}, h('tr', {},
      ['title', 'kind', 'level', 'alerts', 'hits', 'state', 'action'].map((c) => h('th', { scope: 'col' }, t(`rules.col_${c}`))))), tbody),
    h('h2', { id: 'editor-h' }, t('rules.editor')),
    h('div', { class: 'field' }, h('label', { for: 'rule-name' }, t('rules.file')), name),
    h('div', { class: 'field' }, h('label', { for: 'rule-text' }, t('rules.text')), text),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', id: 'rule-validate', onClick: validate }, t('rules.validate')),
      h('button', { type: 'button', id: 'rule-test', onClick: testIt }, t('rules.test')),
      h('button', { type: 'button', id: 'rule-save', class: 'primary', onClick: save }, t('rules.save'))),
    out,
    h('h2', {}, t('rules.suppressions')),
    h('table', { class: 'grid' }, h('thead', {}, h('tr', {},
      ['rule', 'source', 'target', 'reason', 'expires', 'hits', 'action'].map((c) => h('th', { scope: 'col' }, t(`rules.scol_${c}`))))), supp))]);
  await load();
}
