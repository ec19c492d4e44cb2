// main.js - the console's single page: login, the one-time password change, the shell
// (navigation by role, language, time zone, logout) and the router (#/queue, #/alert/ID,
// #/users, #/audit). Only the API of fenghuo-console is used; what a role may not do is not
// offered, and the API refuses it anyway.

import { api, ApiError, onSessionLost, setCsrf } from './api.js';
import { append, clear, h } from './dom.js';
import { currentLanguage, errorText, loadLanguage, savedLanguage, setTimeZone, t, timeZone } from './i18n.js';
import { alertPage } from './pages/alert.js';
import { assetsPage } from './pages/assets.js';
import { auditPage } from './pages/audit.js';
import { compliancePage } from './pages/compliance.js';
import { overviewPage } from './pages/overview.js';
import { queuePage } from './pages/queue.js';
import { rulesPage } from './pages/rules.js';
import { usersPage } from './pages/users.js';

const root = document.getElementById('app');
let me = null; // {user, role, must_change_password, csrf}

// Pages by role: the same split the server enforces (docs/console-api.md, "Roles").
const PAGES = [
  { id: 'overview', roles: ['analyst', 'secadmin', 'compliance'], render: overviewPage },
  { id: 'queue', roles: ['analyst', 'secadmin', 'compliance'], render: queuePage },
  { id: 'compliance', roles: ['compliance'], render: compliancePage },
  { id: 'rules', roles: ['secadmin'], render: rulesPage },
  { id: 'assets', roles: ['secadmin'], render: assetsPage },
  { id: 'users', roles: ['sysadmin'], render: usersPage },
  { id: 'audit', roles: ['auditor'], render: auditPage },
];

function pagesFor(role) {
  return PAGES.filter((p) => p.roles.includes(role));
}

function field(id, labelKey, input) {
  return h('div', { class: 'field' }, h('label', { for: id }, t(labelKey)), input);
}

function message(el, text, kind) {
  clear(el);
  if (text) append(el, [h('p', { class: `msg ${kind || 'error'}`, role: kind === 'info' ? 'status' : 'alert' }, text)]);
}

function loginPage(note) {
  document.title = `${t('app.name')} · ${t('login.title')}`;
  const msg = h('div', { class: 'msgs' });
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true });
  const pw = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'login-h' },
    h('h1', { id: 'login-h' }, t('login.title')),
    msg,
    field('login-user', 'login.user', user),
    field('login-password', 'login.password', pw),
    h('button', { type: 'submit', class: 'primary' }, t('login.submit')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const doc = await api('POST', '/api/v1/session', { user: user.value, password: pw.value });
      pw.value = '';
      me = doc;
      setCsrf(doc.csrf);
      route();
    } catch (err) {
      message(msg, err instanceof ApiError ? errorText(err.code) : t('error.network'));
    }
  });
  clear(root);
  append(root, [h('main', { class: 'center' }, brand(), note ? h('p', { class: 'msg info', role: 'status' }, note) : null, form, langSwitch())]);
  user.focus();
}

function passwordPage(forced) {
  document.title = `${t('app.name')} · ${t('password.title')}`;
  const msg = h('div', { class: 'msgs' });
  const old = h('input', { id: 'pw-old', type: 'password', autocomplete: 'current-password', required: true });
  const nw = h('input', { id: 'pw-new', type: 'password', autocomplete: 'new-password', required: true, 'aria-describedby': 'pw-rules' });
  const again = h('input', { id: 'pw-again', type: 'password', autocomplete: 'new-password', required: true });
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'pw-h' },
    h('h1', { id: 'pw-h' }, t('password.title')),
    forced ? h('p', { class: 'msg info', role: 'status' }, t('password.forced')) : null,
    msg,
    field('pw-old', 'password.old', old),
    field('pw-new', 'password.new', nw),
    h('p', { id: 'pw-rules', class: 'hint' }, t('password.rules')),
    field('pw-again', 'password.again', again),
    h('button', { type: 'submit', class: 'primary' }, t('password.submit')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (nw.value !== again.value) {
      message(msg, t('password.mismatch'));
      return;
    }
    try {
      await api('POST', '/api/v1/session/password', { old: old.value, new: nw.value });
      me.must_change_password = false;
      location.hash = '';
      route();
    } catch (err) {
      message(msg, err instanceof ApiError ? errorText(err.code) : t('error.network'));
    }
  });
  clear(root);
  append(root, [h('main', { class: 'center' }, brand(), form)]);
  old.focus();
}

function brand() {
  return h('div', { class: 'brand' }, h('span', { class: 'mark', 'aria-hidden': 'true' }, '烽'), h('span', {}, t('app.name')));
}

function langSwitch() {
  const sel = h('select', { id: 'lang', 'aria-label': t('shell.language') },
    h('option', { value: 'zh-CN', selected: currentLanguage() === 'zh-CN' }, '中文'),
    h('option', { value: 'en', selected: currentLanguage() === 'en' }, 'English'));
  sel.addEventListener('change', async () => {
    await loadLanguage(sel.value);
    route();
  });
  return sel;
}

function tzSwitch() {
  const sel = h('select', { id: 'tz', 'aria-label': t('shell.timezone') },
    h('option', { value: 'Asia/Shanghai', selected: timeZone() !== 'UTC' }, t('shell.tz_local')),
    h('option', { value: 'UTC', selected: timeZone() === 'UTC' }, 'UTC'));
  sel.addEventListener('change', () => {
    setTimeZone(sel.value);
    route();
  });
  return sel;
}

async function logout() {
  try {
    await api('DELETE', '/api/v1/session');
  } catch {
    // gone already: the login page either way
  }
  me = null;
  setCsrf(null);
  location.hash = '';
  loginPage(t('login.logged_out'));
}

function shell(active) {
  const nav = h('nav', { 'aria-label': t('shell.nav') },
    pagesFor(me.role).map((p) => h('a', { href: `#/${p.id}`, class: p.id === active ? 'active' : null, 'aria-current': p.id === active ? 'page' : null }, t(`nav.${p.id}`))));
  const main = h('main', { id: 'main', tabindex: '-1' });
  clear(root);
  append(root, [
    h('header', { class: 'top' }, brand(), nav,
      h('div', { class: 'account' },
        h('span', { class: 'who' }, `${me.user} · ${t(`role.${me.role}`)}`),
        langSwitch(), tzSwitch(),
        h('button', { type: 'button', onClick: logout }, t('shell.logout')))),
    main,
  ]);
  return main;
}

// #/page or #/alert/ID; a page the role may not see is refused here and by the API.
async function route() {
  if (!me) {
    loginPage();
    return;
  }
  if (me.must_change_password) {
    passwordPage(true);
    return;
  }
  // #/queue?severity=high: the query belongs to the page (queue.js reads it)
  const [, name, arg] = (location.hash || '').split('?')[0].split('/');
  const allowed = pagesFor(me.role);
  if (name === 'alert' && allowed.some((p) => p.id === 'queue')) {
    await alertPage(shell('queue'), decodeURIComponent(arg || ''), me);
    return;
  }
  if (name === 'password') {
    passwordPage(false);
    return;
  }
  const page = allowed.find((p) => p.id === name);
  if (!page) {
    if (!name && allowed.length) {
      location.replace(`#/${allowed[0].id}`);
      return;
    }
    const main = shell(null);
    append(main, [h('section', { class: 'card' }, h('h1', {}, t('forbidden.title')), h('p', {}, t('forbidden.text')))]);
    return;
  }
  document.title = `${t('app.name')} · ${t(`nav.${page.id}`)}`;
  await page.render(shell(page.id), me);
}

onSessionLost(() => {
  if (!me) return;
  me = null;
  setCsrf(null);
  loginPage(t('login.expired'));
});

window.addEventListener('hashchange', () => route());

async function boot() {
  await loadLanguage(savedLanguage());
  try {
    me = await api('GET', '/api/v1/session');
    setCsrf(me.csrf);
  } catch {
    me = null;
  }
  route();
}

boot();
