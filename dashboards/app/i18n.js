// i18n.js - zh-CN (the default) and English. Dictionaries are JSON files with the same
// keys (tests/browser/i18n.test.mjs checks); the API sends codes, which are keys here
// ("error.csrf_token_invalid", "state.rectifying", "level.high").

const LANGS = ['zh-CN', 'en'];
let dict = {};
let lang = 'zh-CN';

export async function loadLanguage(want) {
  lang = LANGS.includes(want) ? want : 'zh-CN';
  const r = await fetch(`/i18n/${lang}.json`, { credentials: 'same-origin' });
  dict = await r.json();
  document.documentElement.lang = lang;
  localStorage.setItem('fh.lang', lang);
}

export function savedLanguage() {
  return localStorage.getItem('fh.lang') || 'zh-CN';
}

export function currentLanguage() {
  return lang;
}

// t('queue.count', {n: 3}) -> "3 条告警"; an unknown key shows as itself (never blank).
export function t(key, params) {
  let s = Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : key;
  for (const [k, v] of Object.entries(params || {})) s = s.split(`{${k}}`).join(String(v));
  return s;
}

// An error code from the API in the user's language, with the code itself as a fallback.
export function errorText(code) {
  const key = `error.${code}`;
  return Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : `${t('error.other')} (${code})`;
}

// Times: Asia/Shanghai by default, UTC on demand.
export function timeZone() {
  return localStorage.getItem('fh.tz') === 'UTC' ? 'UTC' : 'Asia/Shanghai';
}

export function setTimeZone(tz) {
  localStorage.setItem('fh.tz', tz === 'UTC' ? 'UTC' : 'Asia/Shanghai');
}

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const f = new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : 'zh-CN', {
    timeZone: timeZone(), year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  });
  return `${f.format(d)}${timeZone() === 'UTC' ? ' UTC' : ''}`;
}
