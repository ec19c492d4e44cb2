// api.js - the console's JSON API (docs/openapi.yaml). The session cookie is HttpOnly; the
// CSRF token from the login answer goes with every state change. A 401 anywhere means the
// session ended: the app shows the login page with that said.

let csrf = null;
const listeners = new Set();

export function setCsrf(token) {
  csrf = token;
}

export function onSessionLost(fn) {
  listeners.add(fn);
}

export class ApiError extends Error {
  // error: the {"error":{...}} object; body: the whole answer (a 422 carries
  // {"ok":false,"errors":[...]} instead)
  constructor(status, error, body) {
    super(error && error.code ? error.code : `http_${status}`);
    this.status = status;
    this.code = error && error.code ? error.code : `http_${status}`;
    this.detail = error || {};
    this.body = body || {};
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let doc = null;
  const text = await r.text();
  if (text) {
    try { doc = JSON.parse(text); } catch { doc = null; }
  }
  if (r.status === 401 && path !== '/api/v1/session') {
    for (const fn of listeners) fn();
  }
  if (!r.ok) throw new ApiError(r.status, doc && doc.error, doc);
  return doc;
}

// The query string of a filter object (empty values left out).
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
