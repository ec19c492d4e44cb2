// assets.js - the security administrator's asset inventory and placeholder lists: read,
// validate with every rule (errors at their file and line), save (the correlators reload).

import { api } from '../api.js';
import { append, clear, h } from '../dom.js';
import { errorText, t } from '../i18n.js';

function result(out, r, savedKey) {
  clear(out);
  append(out, [r.ok ? h('p', { class: 'msg info', role: 'status' }, t(savedKey))
    : h('p', { class: 'msg error', role: 'alert' }, t('assets.invalid')),
  r.errors && r.errors.length ? h('ul', { class: 'errors', id: 'assets-errors' }, r.errors.map((e) =>
    h('li', {}, e.line ? t('rules.at_line', { file: e.file || '', line: e.line }) : '', ' ', e.rule ? `${e.rule}: ` : '', e.reason || ''))) : null]);
}

async function call(out, method, path, text, savedKey) {
  try {
    result(out, await api(method, path, { text }), savedKey);
  } catch (err) {
    clear(out);
    if (err.status === 422) {
      result(out, { ok: false, errors: err.body.errors || [] }, savedKey);
    } else {
      append(out, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
    }
  }
}

export async function assetsPage(main) {
  const inv = h('textarea', { id: 'assets-text', rows: 18, spellcheck: 'false', class: 'code' });
  const out = h('div', { 'aria-live': 'polite' });
  const listSel = h('select', { id: 'list-name' });
  const listText = h('textarea', { id: 'list-text', rows: 10, spellcheck: 'false', class: 'code' });
  const listOut = h('div', { 'aria-live': 'polite' });
  const section = h('section', { class: 'card wide' }, h('h1', {}, t('nav.assets')));
  append(main, [section]);
  let doc;
  let lists;
  try {
    [doc, lists] = await Promise.all([api('GET', '/api/v1/assets'), api('GET', '/api/v1/lists')]);
  } catch (err) {
    append(section, [h('p', { class: 'msg error', role: 'alert' }, errorText(err.code))]);
    return;
  }
  inv.value = doc.text;
  for (const l of lists.lists) append(listSel, [h('option', { value: l.name }, `${l.name} (${l.values})`)]);
  async function showList() {
    const l = await api('GET', `/api/v1/lists/${encodeURIComponent(listSel.value)}`);
    listText.value = l.text;
    clear(listOut);
  }
  listSel.addEventListener('change', showList);
  append(section, [
    h('h2', {}, t('assets.inventory'), ` · ${doc.file}`),
    h('div', { class: 'field' }, h('label', { for: 'assets-text' }, t('assets.text')), inv),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', id: 'assets-validate', onClick: () => call(out, 'POST', '/api/v1/assets/validate', inv.value, 'assets.valid') }, t('rules.validate')),
      h('button', { type: 'button', id: 'assets-save', class: 'primary', onClick: () => call(out, 'POST', '/api/v1/assets', inv.value, 'assets.saved') }, t('rules.save'))),
    out,
    h('h2', {}, t('assets.lists')),
    h('div', { class: 'field inline' }, h('label', { for: 'list-name' }, t('assets.list')), listSel),
    h('div', { class: 'field' }, h('label', { for: 'list-text' }, t('assets.list_text')), listText),
    h('div', { class: 'buttons' },
      h('button', { type: 'button', id: 'list-validate', onClick: () => call(listOut, 'POST', `/api/v1/lists/${encodeURIComponent(listSel.value)}/validate`, listText.value, 'assets.valid') }, t('rules.validate')),
      h('button', { type: 'button', id: 'list-save', class: 'primary', onClick: () => call(listOut, 'POST', `/api/v1/lists/${encodeURIComponent(listSel.value)}`, listText.value, 'assets.saved') }, t('rules.save'))),
    listOut]);
  if (lists.lists.length) await showList();
}
