// titles.js - rule titles in the user's language: the rule files' title_zh
// (GET /api/v1/rules/titles, fetched once per page load and kept five minutes), the
// alert's stored title otherwise (an English title, or a rule no longer loaded).

import { api } from './api.js';
import { currentLanguage } from './i18n.js';

let titles = null;
let fetched = 0;

export async function loadTitles() {
  if (titles && Date.now() - fetched < 300000) return;
  try {
    titles = (await api('GET', '/api/v1/rules/titles')).titles || {};
    fetched = Date.now();
  } catch {
    titles = titles || {};
  }
}

// A rule's title in the user's language: Chinese unless English was chosen, when there is one.
export function localTitle(title, titleZh) {
  return currentLanguage() !== 'en' && titleZh ? titleZh : title;
}

// The title of rule id for this user; fallback is what the alert carries.
export function ruleTitle(id, fallback) {
  const r = titles && Object.prototype.hasOwnProperty.call(titles, id) ? titles[id] : null;
  return localTitle(fallback || (r && r.title) || id || '', r && r.title_zh);
}
