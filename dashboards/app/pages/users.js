// users.js - the system administrator's page: every user with role, departments and state;
// a new user with a one-time password (changed at first login); disabling and enabling.

import { api, ApiError } from '../api.js';
import { append, clear, h } from '../dom.js';
import { errorText, formatTime, t } from '../i18n.js';

const ROLES = ['sysadmin', 'secadmin', 'analyst', 'compliance', 'auditor'];

export async function usersPage(main) {
  const msg = h('div', { class: 'msgs', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const say = (text, kind) => {
    clear(msg);
    append(msg, [h('p', { class: `msg ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text)]);
  };

  async function load() {
    const doc = await api('GET', '/api/v1/users');
    clear(tbody);
    for (const u of doc.users) {
      const toggle = h('button', { type: 'button', 'data-user': u.name }, u.disabled ? t('users.enable') : t('users.disable'));
      toggle.addEventListener('click', async () => {
        try {
          await api('POST', `/api/v1/users/${encodeURIComponent(u.name)}`, { disabled: !u.disabled });
          say(t('users.saved'), 'info');
          load();
        } catch (err) {
          say(errorText(err.code), 'error');
        }
      });
      append(tbody, [h('tr', {},
        h('td', {}, u.name), h('td', {}, t(`role.${u.role}`)), h('td', {}, u.departments.join(', ')),
        h('td', {}, u.disabled ? t('users.disabled') : u.must_change_password ? t('users.must_change') : t('users.active')),
        h('td', { class: 'time' }, formatTime(u.password_changed_at)), h('td', {}, toggle))]);
    }
  }

  const name = h('input', { id: 'new-name', required: true, autocomplete: 'off' });
  const role = h('select', { id: 'new-role' }, ROLES.map((r) => h('option', { value: r }, t(`role.${r}`))));
  const pw = h('input', { id: 'new-password', type: 'password', required: true, autocomplete: 'new-password' });
  const form = h('form', { class: 'inline-form', 'aria-labelledby': 'new-h' },
    h('h2', { id: 'new-h' }, t('users.new')),
    h('div', { class: 'field inline' }, h('label', { for: 'new-name' }, t('users.name')), name),
    h('div', { class: 'field inline' }, h('label', { for: 'new-role' }, t('users.role')), role),
    h('div', { class: 'field inline' }, h('label', { for: 'new-password' }, t('users.one_time')), pw),
    h('button', { type: 'submit', class: 'primary' }, t('users.create')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('POST', '/api/v1/users', { name: name.value, role: role.value, password: pw.value });
      pw.value = '';
      name.value = '';
      say(t('users.created'), 'info');
      load();
    } catch (err) {
      say(err instanceof ApiError ? errorText(err.code) : t('error.network'), 'error');
    }
  });

  append(main, [h('section', { class: 'card wide' }, h('h1', {}, t('nav.users')), msg,
    h('table', { class: 'grid' }, h('thead', {}, h('tr', {},
      ['name', 'role', 'departments', 'state', 'changed', 'action'].map((c) => h('th', { scope: 'col' }, t(`users.col_${c}`))))), tbody),
    form)]);
  await load();
}
