// harness.mjs - what the browser tests share: a store with alerts made by the real
// correlator, fenghuo-console serve on it, Debian's chromium driven by playwright-core
// (npm, tools/web), CSP violations and page errors counted, axe-core run on a page, and
// screenshots saved under build/test-artifacts/browser (not committed).
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(new URL('../..', import.meta.url).pathname);
const BUILD = process.env.FH_BUILD ? path.resolve(REPO, process.env.FH_BUILD) : path.join(REPO, 'build');
const require = createRequire(path.join(REPO, 'tools/web/package.json'));
const { chromium } = require('playwright-core');
export const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const ARTIFACTS = path.join(REPO, 'build/test-artifacts/browser');

export function tmp() {
  return mkdtempSync(path.join(tmpdir(), 'fh-browser-'));
}

// Runs the correlator over events (objects) into an SQLite store; returns its path.
export function storeWith(dir, events) {
  const file = path.join(dir, 'events.ndjson');
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  const db = path.join(dir, 'alerts.db');
  execFileSync(path.join(BUILD, 'bin/fenghuo-correlator'), ['--rules', 'rules/level3', '--assets',
    'rules/assets.example.yaml', '--input', file, '--db', db, '--archive', path.join(dir, 'archive'), '-q',
    // the test's events span months (crafted ones, and some from the last hours)
    '--max-clock-ahead', '3650d'],
  { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  return db;
}

// Adds a user with a one-time password (the CLI, as an administrator would).
export function addUser(db, name, role, password, departments) {
  const args = ['user', 'add', name, '--role', role, '--db', db];
  if (departments) args.push('--departments', departments);
  execFileSync(path.join(BUILD, 'bin/fenghuo-console'), args, { cwd: REPO, input: `${password}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
}

// fenghuo-console serve on a free port, with a copy of the rule folder (uploads go there);
// resolves {url, password, rules, stop}.
export function serve(db, dir) {
  const rules = path.join(dir, 'rules/level3');
  cpSync(path.join(REPO, 'rules/level3'), rules, { recursive: true });
  cpSync(path.join(REPO, 'rules/lists'), path.join(dir, 'rules/lists'), { recursive: true });
  cpSync(path.join(REPO, 'rules/assets.example.yaml'), path.join(dir, 'rules/assets.yaml'));
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(BUILD, 'bin/fenghuo-console'), ['serve', '--listen', '127.0.0.1:0', '--db', db,
      '--static', path.join(REPO, 'dashboards'), '--archive', path.join(dir, 'archive'), '--rules', rules,
      '--assets', path.join(dir, 'rules/assets.yaml')], { cwd: REPO });
    let out = '';
    let url;
    let password;
    p.stdout.on('data', (d) => {
      out += d;
      url = url || (out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)\//) || [])[1];
      password = password || (out.match(/one-time password: (\S+) /) || [])[1];
      if (url && password) resolve({ url, password, rules, stop: () => new Promise((r) => { p.on('exit', r); p.kill('SIGTERM'); }) });
    });
    p.stderr.on('data', () => {});
    p.on('exit', (code) => reject(new Error(`fenghuo-console exited ${code}: ${out}`)));
    setTimeout(() => {
      if (!url || !password) {
        p.kill('SIGKILL');
        reject(new Error(`fenghuo-console said no address and password in 30 s: ${out}`));
      }
    }, 30000);
  });
}

export async function browser() {
  return chromium.launch({
    executablePath: process.env.FH_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-default-apps'],
  });
}

// A page that records CSP violations, script errors and dialogs (an XSS would open one).
export async function page(b, locale = 'zh-CN', colorScheme = 'light') {
  const ctx = await b.newContext({ locale, timezoneId: 'Asia/Shanghai', viewport: { width: 1360, height: 900 }, colorScheme });
  const pg = await ctx.newPage();
  pg.problems = [];
  await pg.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  pg.on('pageerror', (e) => pg.problems.push(`pageerror: ${e.message}`));
  pg.on('dialog', (d) => {
    pg.problems.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
  return pg;
}

export async function cspViolations(pg) {
  return pg.evaluate(() => window.__csp);
}

// axe-core's serious and critical violations on the page as it is now.
export async function axe(pg) {
  await pg.evaluate(AXE);
  const r = await pg.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

export async function shot(pg, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await pg.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}
