// The dashboard in Debian's chromium (playwright-core), on a store the real correlator
// filled: the one-time password change, each role seeing only its pages (a URL typed by
// hand refused), the queue's count equal to the API's, an alert whose evidence carries
// <img src=x onerror=alert(1)> and <script> in SNI, URL and user agent shown as text with
// nothing run, triage with a comment, a bulk move over a filter, both languages, the
// auditor's verification; no CSP violation, no script error, no serious axe violation on
// any page. Screenshots of every page in both languages go to build/test-artifacts/browser.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { REPO, addUser, axe, browser, cspViolations, page, serve, shot, storeWith, tmp } from './harness.mjs';

const XSS = '<img src=x onerror=alert(1)>';
const SCRIPT = '<script>alert(2)</script>';
const PASSWORD = 'Correct-Horse-42-battery';

function firstEvent(rule) {
  return JSON.parse(readFileSync(path.join(REPO, 'tests/rules', rule, 'events.ndjson'), 'utf8').split('\n')[0]);
}

function events() {
  const web = firstEvent('L3-11');
  web.src_ip = '198.51.100.66';
  web.http.url = `/q?x=${XSS}&y=${SCRIPT}`;
  web.http.http_user_agent = `Mozilla/5.0 ${XSS}`;
  web.http.hostname = `${SCRIPT}.example`;
  const tls = firstEvent('L3-02');
  tls.src_ip = '198.51.100.77';
  if (tls.tls) tls.tls.sni = `${XSS}${SCRIPT}`;
  const eicar = (k) => ({
    timestamp: `2026-03-02T02:0${k}:00.000000+0000`, event_type: 'yara', schema_version: '1.0',
    sensor: { id: 's1', segment: 'core' }, flow_id: k, src_ip: `198.51.100.${k}`, src_port: 5,
    dest_ip: '10.10.1.10', dest_port: 80, proto: 'TCP', app_proto: 'http',
    community_id: `1:EICAR${k}AAAAAAAAAAAAAAAAAAAAA=`,
    yara: { rule: 'EICAR_Test_File', namespace: 'fenghuo', tags: [], meta: { severity: 'high', category: 'malware.virus' }, direction: 'toclient', offset: 0 },
  });
  // a flow an hour ago to a port no shipped rule watches: what "test against recent
  // events" finds with the rule below
  const iso = new Date(Date.now() - 3600000).toISOString().replace('Z', '000+0000');
  const flow = {
    timestamp: iso, event_type: 'flow', schema_version: '1.0', sensor: { id: 's1', segment: 'core' },
    flow_id: 99, src_ip: '10.10.1.5', src_port: 40000, dest_ip: '10.30.64.5', dest_port: 2323, proto: 'TCP',
  };
  // two sensors' stats: s-old (the test makes it five hours old, silent) and s-live
  // twice, a minute apart: 500 packets/s, 1% dropped, 3 events not delivered to Kafka
  const stats = (id, ago, st) => ({
    timestamp: new Date(Date.now() - ago).toISOString().replace('Z', '000+0000'), event_type: 'stats',
    schema_version: '1.1', sensor: { id, segment: 'core' }, stats: st || { capture: { packets: 10 } },
  });
  const live = [stats('s-live', 660000, { capture: { packets: 1000, kernel_packets: 1000, kernel_drops: 0, ifdrops: 0 } }),
    stats('s-live', 600000, { capture: { packets: 31000, kernel_packets: 31300, kernel_drops: 300, ifdrops: 0 },
      kafka: { failed: 2, dropped: 1, spool: { pending: 40 } } })];
  // ended flows of the last days: what the traffic tables sum
  const traffic = [['tls', 'Web', 'US', 9000000], ['tls', 'Web', 'US', 1000000], ['dns', 'Network', '', 2000],
    ['http', 'Web', 'CN', 500000]].map(([app, cat, cc, bytes], i) => ({
    timestamp: new Date(Date.now() - 7200000 - i * 1000).toISOString().replace('Z', '000+0000'),
    event_type: 'flow', schema_version: '1.1', sensor: { id: 's1', segment: 'core' }, flow_id: 200 + i,
    src_ip: '10.10.1.5', src_port: 41000 + i, dest_ip: cc ? '203.0.113.9' : '10.30.64.5', dest_port: 443, proto: 'TCP',
    app_proto: app, ndpi: { category: cat }, ...(cc ? { geo: { dest: { country: cc } } } : {}),
    flow: { pkts_toserver: 10, pkts_toclient: 20, bytes_toserver: bytes / 10, bytes_toclient: bytes - bytes / 10, reason: 'closed' },
  }));
  return [eicar(1), eicar(2), eicar(3), web, tls, stats('s-old', 5 * 3600000), flow, ...live, ...traffic];
}

const RULE = `title: Telnet on 2323 (browser test)
id: 3f2b7c1e-0000-4000-8000-00000000b001
status: test
level: high
logsource:
  category: flow
  product: fenghuo
detection:
  sel:
    dest_port: 2323
  condition: sel
`;

describe('dashboard', { timeout: 600000 }, () => {
  let dir;
  let db;
  let srv;
  let b;
  const seen = []; // every page: [name, csp violations, problems]

  before(async () => {
    dir = tmp();
    db = storeWith(dir, events());
    // s-old last reported five hours ago (the wall-clock time the correlator stored it)
    execFileSync('sqlite3', [db, "UPDATE sensor_status SET received_at = received_at - 18000000 WHERE sensor = 's-old'"]);
    srv = await serve(db, dir); // the first start makes the administrator
    addUser(db, 'li', 'analyst', `${PASSWORD}-li`, '大数据局');
    addUser(db, 'shen', 'auditor', `${PASSWORD}-shen`);
    addUser(db, 'zhao', 'secadmin', `${PASSWORD}-zhao`);
    addUser(db, 'zhou', 'compliance', `${PASSWORD}-zhou`);
    b = await browser();
  });

  after(async () => {
    if (b) await b.close();
    if (srv) await srv.stop();
    for (const [name, csp, problems] of seen) {
      assert.deepEqual(csp, [], `CSP violations on ${name}`);
      assert.deepEqual(problems, [], `script errors or dialogs on ${name}`);
    }
  });

  async function check(pg, name) {
    await pg.waitForLoadState('networkidle');
    await shot(pg, name);
    const serious = await axe(pg);
    assert.deepEqual(serious, [], `axe on ${name}`);
    seen.push([name, await cspViolations(pg), [...pg.problems]]);
  }

  async function login(pg, user, password) {
    await pg.goto(srv.url + '/');
    await pg.fill('#login-user', user);
    await pg.fill('#login-password', password);
    await pg.click('button[type=submit]');
  }

  test('the administrator changes the one-time password, sees users only', { timeout: 240000 }, async () => {
    const pg = await page(b);
    await pg.goto(srv.url + '/');
    await check(pg, 'login-zh');
    await login(pg, 'admin', 'wrong-password');
    await pg.waitForSelector('.msg.error');
    assert.match(await pg.textContent('.msg.error'), /用户名或密码错误/);
    await login(pg, 'admin', srv.password);
    await pg.waitForSelector('#pw-new');
    await check(pg, 'password-zh');
    await pg.fill('#pw-old', srv.password);
    await pg.fill('#pw-new', 'short');
    await pg.fill('#pw-again', 'short');
    await pg.click('button[type=submit]');
    await pg.waitForSelector('.msg.error');
    assert.match(await pg.textContent('.msg.error'), /太短/);
    await pg.fill('#pw-new', PASSWORD);
    await pg.fill('#pw-again', PASSWORD);
    await pg.click('button[type=submit]');
    await pg.waitForSelector('h1:has-text("用户管理")');
    assert.deepEqual(await pg.$$eval('header nav a', (as) => as.map((a) => a.textContent)), ['用户管理']);
    assert.ok((await pg.textContent('table')).includes('li'));
    await check(pg, 'users-zh');
    // typed by hand: refused in the page (and by the API)
    await pg.goto(srv.url + '/#/queue');
    await pg.waitForSelector('h1:has-text("无权访问")');
    const st = await pg.evaluate(async () => (await fetch('/api/v1/alerts')).status);
    assert.equal(st, 403);
    await pg.click('header button:has-text("退出")');
    await pg.waitForSelector('#login-user');
    await pg.context().close();
  });

  test('the analyst triages: count equals the API, hostile text shown as text, moves and comments', { timeout: 240000 }, async () => {
    const pg = await page(b);
    await login(pg, 'li', `${PASSWORD}-li`);
    // the overview first: its figures are the API's; a sensor gone quiet is said
    await pg.waitForSelector('#kpi-open');
    const o = await pg.evaluate(async () => (await fetch('/api/v1/overview?days=14')).json());
    assert.equal(await pg.textContent('#kpi-open'), String(o.open));
    assert.equal(await pg.textContent('#kpi-overdue'), String(o.overdue));
    const rr = o.rectification;
    assert.equal(await pg.textContent('#kpi-rate .kpi-value'), rr.rate === null ? '暂无已判定事件' : `${(rr.rate * 100).toFixed(1)}%`);
    assert.match(await pg.textContent('#kpi-rate .kpi-sub'), new RegExp(`按期 ${rr.on_time}，超期 ${rr.late}，待定 ${rr.pending}`));
    await pg.waitForSelector('#sev-chart canvas');
    assert.match(await pg.textContent('#forecast-how'), /Holt/);
    assert.match(await pg.textContent('tr[data-sensor="s-old"]'), /失联/);
    assert.match(await pg.textContent('tr[data-sensor="s-live"]'), /正常/);
    const live = o.sensors.find((x) => x.sensor === 's-live');
    assert.equal(live.packets_per_s, 500);
    assert.equal(await pg.textContent('tr[data-sensor="s-live"] [data-col="pps"]'), '500');
    assert.equal(await pg.textContent('tr[data-sensor="s-live"] [data-col="drops"]'), '0.96%');
    assert.match(await pg.textContent('tr[data-sensor="s-live"] [data-col="kafka"]'), /^3 · 已落盘 40$/);
    // the traffic tables are the API's, largest first
    assert.deepEqual(o.traffic.by_app.map((r) => [r.key, r.flows]), [['tls', 2], ['http', 1], ['dns', 1], ['unknown', 1]]);
    assert.deepEqual(await pg.$$eval('#traffic-app tbody tr', (rs) => rs.map((r) => r.dataset.key)), ['tls', 'http', 'dns', 'unknown']);
    assert.match(await pg.textContent('#traffic-app tr[data-key="tls"]'), /9\.5 MiB/);
    assert.match(await pg.textContent('#traffic-country tr[data-key="US"]'), /美国/);
    assert.match(await pg.textContent('#traffic-country tr[data-key=""]'), /内网或未查询/);
    await check(pg, 'overview-zh');
    // nothing in these fourteen days: one click shows the days of the newest alert
    await pg.waitForSelector('#ov-older-go');
    const day = new Date(new Date(o.latest_alert).getTime() + 8 * 3600000).toISOString().slice(0, 10);
    await pg.click('#ov-older-go');
    await pg.waitForSelector(`.kpi-label:has-text("${day} 告警")`);
    assert.equal(await pg.inputValue('#ov-end'), day);
    assert.ok(await pg.$(`h2:has-text("至 ${day} 告警")`), 'the heading names the period');
    const then = await pg.evaluate(async (d) => (await fetch(`/api/v1/overview?days=14&end=${d}`)).json(), day);
    const topRules = await pg.evaluate(async (p) => (await (await fetch(`/api/v1/alerts/groups?by=rule&from=${p.since}&to=${p.until}&limit=10`)).json()).groups, then);
    assert.ok(topRules.length >= 1);
    assert.equal(await pg.$$eval('.panels ol.top:first-of-type li', (l) => l.length) >= 1, true);
    assert.equal(await pg.textContent('#kpi-new'),
      String(['critical', 'high', 'medium', 'low', 'informational'].reduce((n, l) => n + then.days[then.days.length - 1][l], 0)));
    await check(pg, 'overview-period-zh');
    await pg.goto(`${srv.url}/#/queue`);
    await pg.waitForSelector('#queue-count');
    await pg.waitForSelector('table tbody tr[data-id]');
    const api = await pg.evaluate(async () => (await (await fetch('/api/v1/alerts/facets')).json()).total);
    assert.ok(api >= 4, `facets total ${api}`);
    assert.equal(await pg.textContent('#queue-count'), `共 ${api} 条告警`);
    assert.equal(await pg.$$eval('table tbody tr[data-id]', (r) => r.length), api);
    // the keyboard: ? help, j j down, k up, x select, o open, back
    await pg.keyboard.press('?');
    await pg.waitForSelector('#keys-help:not([hidden])');
    await check(pg, 'queue-help-zh');
    await pg.keyboard.press('Escape');
    await pg.keyboard.press('j');
    await pg.keyboard.press('j');
    await pg.keyboard.press('k');
    const rowsIds = await pg.$$eval('table tbody tr[data-id]', (r) => r.map((tr) => tr.dataset.id));
    assert.equal(await pg.$eval('tr.cursor', (tr) => tr.dataset.id), rowsIds[0]);
    await pg.keyboard.press('x');
    assert.equal(await pg.$eval('tr.cursor input[type=checkbox]', (c) => c.checked), true);
    await pg.keyboard.press('x');
    await pg.keyboard.press('o');
    await pg.waitForSelector('pre.event');
    assert.ok((await pg.evaluate(() => location.hash)).endsWith(rowsIds[0]));
    await pg.goBack();
    await pg.waitForSelector('table tbody tr[data-id]');
    await check(pg, 'queue-zh');
    // rule titles in the user's language: the rule files' title_zh
    const titles = await pg.evaluate(async () => (await (await fetch('/api/v1/rules/titles')).json()).titles);
    const listed = await pg.evaluate(async () => (await (await fetch('/api/v1/alerts?limit=50')).json()).alerts);
    const zhTitles = listed.map((a) => (titles[a.rule.id] && titles[a.rule.id].title_zh) || a.rule.title);
    assert.ok(zhTitles.some((x, i) => x !== listed[i].rule.title), 'no rule with a Chinese title');
    assert.deepEqual(await pg.$$eval('table tbody tr[data-id] td a', (as) => as.map((a) => a.textContent)), zhTitles);
    // grouped by rule: the API's groups and counts; a group opens as the list's filter
    await pg.selectOption('#f-group', 'rule');
    await pg.click('.filters button[type=submit]');
    await pg.waitForSelector('#group-table tbody tr[data-group]');
    const groups = await pg.evaluate(async () => (await (await fetch('/api/v1/alerts/groups?by=rule&limit=200')).json()).groups);
    assert.ok(groups.length >= 2, `rule groups ${groups.length}`);
    assert.deepEqual(await pg.$$eval('#group-table tbody tr', (rs) => rs.map((r) => Number(r.children[1].textContent))),
      groups.map((g) => g.alerts));
    assert.ok((await pg.evaluate(() => location.hash)).includes('group=rule'));
    await check(pg, 'queue-groups-zh');
    await pg.click('#group-table tbody tr:first-child button');
    await pg.waitForSelector('table tbody tr[data-id]');
    const ruleKey = groups[0].rule_name || groups[0].rule_id;
    assert.equal(new URLSearchParams((await pg.evaluate(() => location.hash)).split('?')[1]).get('rule'), ruleKey);
    await pg.waitForFunction((n) => document.querySelector('#queue-count')?.textContent === `共 ${n} 条告警`, groups[0].alerts);
    // a saved view: kept in this browser for this user, and brought back after clearing
    await pg.fill('#view-name', '我的视图');
    await pg.click('#view-save');
    await pg.waitForSelector('button[data-view="我的视图"]');
    await pg.click('#f-reset');
    await pg.waitForFunction((n) => document.querySelector('#queue-count')?.textContent === `共 ${n} 条告警`, api);
    assert.equal(await pg.evaluate(() => location.hash), '#/queue');
    await pg.click('button[data-view="我的视图"]');
    await pg.waitForFunction((n) => document.querySelector('#queue-count')?.textContent === `共 ${n} 条告警`, groups[0].alerts);
    assert.equal(await pg.inputValue('#f-rule'), ruleKey);
    await pg.click('#f-reset');
    await pg.waitForFunction((n) => document.querySelector('#queue-count')?.textContent === `共 ${n} 条告警`, api);
    // the web exploit alert: its evidence is text, nothing runs, no element comes of it
    const id = await pg.evaluate(async () => {
      const doc = await (await fetch('/api/v1/alerts?q=198.51.100.66')).json();
      return doc.alerts[0].id;
    });
    await pg.goto(`${srv.url}/#/alert/${id}`);
    await pg.waitForSelector('pre.event');
    const text = await pg.textContent('pre.event');
    assert.ok(text.includes(XSS) && text.includes(SCRIPT), text);
    assert.equal(await pg.$$eval('img', (i) => i.length), 0);
    assert.equal(await pg.$$eval('main script', (s) => s.length), 0);
    await check(pg, 'alert-zh');
    // pivot to the flow's events in the archive
    await pg.click('button[data-pivot=flow]');
    await pg.waitForSelector('.pivot-out .count');
    assert.match(await pg.textContent('.pivot-out .count'), /1 个事件/);
    // acknowledge with a comment, then a comment alone: both in the timeline
    await pg.fill('#move-comment', `已确认 ${XSS}`);
    await pg.click('button[data-to=acknowledged]');
    await pg.waitForSelector('dd:has-text("已确认")');
    await pg.fill('#move-comment', '联系了运维');
    await pg.click('#add-comment');
    await pg.waitForSelector('.timeline blockquote:has-text("联系了运维")');
    const timeline = await pg.textContent('.timeline');
    assert.ok(timeline.includes(`已确认 ${XSS}`) && timeline.includes('备注'), timeline);
    await check(pg, 'alert-triaged-zh');
    // a bulk move over a filter, with the count confirmed
    await pg.goto(`${srv.url}/#/queue`);
    await pg.selectOption('#f-status', 'new');
    await pg.click('.filters button[type=submit]');
    const fresh = await pg.evaluate(async () => (await (await fetch('/api/v1/alerts/facets?status=new')).json()).total);
    assert.ok(fresh >= 3, `new alerts ${fresh}`);
    await pg.waitForFunction((n) => document.querySelector('#queue-count')?.textContent === `共 ${n} 条告警`, fresh);
    await pg.click('#bulk-all');
    await pg.click('#bulk-all-yes');
    await pg.waitForSelector('.msgs .msg');
    assert.equal(await pg.getAttribute('.msgs .msg', 'class'), 'msg info', await pg.textContent('.msgs .msg'));
    assert.equal(await pg.textContent('.msg.info'), `${fresh} 条中 ${fresh} 条已完成。`);
    const left = await pg.evaluate(async () => (await (await fetch('/api/v1/alerts/facets?status=new')).json()).total);
    assert.equal(left, 0);
    // English, and UTC
    await pg.selectOption('#lang', 'en');
    await pg.waitForSelector('header nav a:has-text("Alert queue")');
    await pg.goto(`${srv.url}/#/overview`);
    await pg.waitForSelector('#sev-chart canvas');
    await check(pg, 'overview-en');
    await pg.goto(`${srv.url}/#/queue`);
    await pg.selectOption('#f-status', '');
    await pg.click('.filters button[type=submit]');
    await pg.waitForSelector('table tbody tr[data-id]');
    const enTitles = await pg.evaluate(async () => (await (await fetch('/api/v1/alerts?limit=50')).json()).alerts.map((a) => a.rule.title));
    assert.deepEqual(await pg.$$eval('table tbody tr[data-id] td a', (as) => as.map((a) => a.textContent)), enTitles);
    await check(pg, 'queue-en');
    await pg.goto(`${srv.url}/#/alert/${id}`);
    await pg.waitForSelector('pre.event');
    await check(pg, 'alert-en');
    await pg.selectOption('#tz', 'UTC');
    await pg.waitForSelector('dd:has-text("UTC")');
    await pg.context().close();
  });

  test('the security administrator manages rules: counts, switch, errors at their line, test, save', { timeout: 240000 }, async () => {
    const pg = await page(b);
    await login(pg, 'zhao', `${PASSWORD}-zhao`);
    await pg.waitForSelector('#kpi-open');
    assert.deepEqual(await pg.$$eval('header nav a', (as) => as.map((a) => a.textContent)), ['态势感知', '告警队列', '规则管理', '资产与名单']);
    await pg.goto(`${srv.url}/#/rules`);
    await pg.waitForSelector('#rule-text');
    await pg.waitForSelector('table tbody tr[data-id]');
    // the counts are the API's
    const api = await pg.evaluate(async () => (await (await fetch('/api/v1/rules')).json()).rules.filter((r) => r.alerts > 0));
    assert.ok(api.length >= 2);
    for (const r of api) {
      const cells = await pg.$$eval(`tr[data-id="${r.id}"] td`, (td) => td.map((c) => c.textContent));
      assert.equal(cells[3], String(r.alerts), r.id);
      assert.equal(cells[4], String(r.hits), r.id);
    }
    await check(pg, 'rules-zh');
    // switch one off and on again
    const id = api[0].id;
    await pg.click(`button[data-rule="${id}"]`);
    await pg.waitForSelector(`tr[data-id="${id}"] td:has-text("已停用")`);
    await pg.click(`button[data-rule="${id}"]`);
    await pg.waitForSelector(`tr[data-id="${id}"] td:has-text("启用中")`);
    // a syntax error is shown at its line; the button puts the caret there
    const broken = RULE.replace('dest_port: 2323', 'dest_port|nosuchmod: 2323');
    await pg.fill('#rule-text', broken);
    await pg.click('#rule-validate');
    await pg.waitForSelector('#rule-errors button[data-line]');
    const line = Number(await pg.getAttribute('#rule-errors button[data-line]', 'data-line'));
    assert.ok(line >= 1 && line <= broken.split('\n').length, `line ${line}`);
    assert.match(await pg.textContent('#rule-errors'), /nosuchmod/);
    await check(pg, 'rules-error-zh');
    // saving it is refused, with the same errors, and nothing is written
    await pg.click('#rule-save');
    await pg.waitForSelector('.rule-out #rule-errors button[data-line]');
    assert.match(await pg.textContent('.rule-out'), /nosuchmod/);
    assert.throws(() => readFileSync(path.join(srv.rules, 'local.yml')));
    // the good rule, tested against the archive's recent events, then saved
    await pg.fill('#rule-text', RULE);
    await pg.click('#rule-test');
    await pg.waitForSelector('#rule-test-result');
    assert.match(await pg.textContent('#rule-test-result'), /将产生 1 条告警/);
    await pg.click('#rule-save');
    await pg.waitForSelector('.rule-out .msg.info:has-text("已保存")');
    assert.ok(readFileSync(path.join(srv.rules, 'local.yml'), 'utf8').includes('dest_port: 2323'));
    // the inventory: a broken CIDR is shown at its line and not saved
    await pg.goto(`${srv.url}/#/assets`);
    await pg.waitForSelector('#assets-text');
    const inv = await pg.inputValue('#assets-text');
    await pg.fill('#assets-text', inv.replace('cidrs: [10.99.0.0/24]', 'cidrs: [10.99.0/24]'));
    await pg.click('#assets-save');
    await pg.waitForSelector('#assets-errors');
    const want = inv.slice(0, inv.indexOf('cidrs: [10.99.0.0/24]')).split('\n').length;
    assert.match(await pg.textContent('#assets-errors'), new RegExp(`assets.yaml 第 ${want} 行`));
    assert.equal(readFileSync(path.join(srv.rules, '..', 'assets.yaml'), 'utf8'), inv);
    await check(pg, 'assets-zh');
    await pg.context().close();
  });

  test('the compliance officer: the numbers equal the API, drill-down, downloads', { timeout: 240000 }, async () => {
    const pg = await page(b);
    await login(pg, 'zhou', `${PASSWORD}-zhou`);
    await pg.waitForSelector('header nav a:has-text("整改合规")');
    await pg.goto(`${srv.url}/#/compliance`);
    await pg.waitForSelector('#rate-total');
    await pg.fill('#c-from', '2026-03-01');
    await pg.fill('#c-to', '2026-12-31');
    await pg.click('.filters button[type=submit]');
    await pg.waitForSelector('#rate-rows tbody tr');
    const r = await pg.evaluate(async () => (await fetch('/api/v1/rectification/report?from=2026-03-01&to=2026-12-31&by=department')).json());
    const shown = (await pg.textContent('#rate-total')).trim();
    assert.equal(shown, r.total.rate === null ? '无数据' : `${(r.total.rate * 100).toFixed(1)}%`);
    for (const row of r.rows) {
      const cells = await pg.$$eval(`#rate-rows tr[data-key="${row.key}"] td`, (td) => td.map((c) => c.textContent.trim()));
      assert.equal(cells[0], row.key);
      assert.deepEqual(cells.slice(2), [...['on_time', 'late', 'pending', 'accepted_risk', 'excluded'].map((o) => String(row[o].count)), String(row.overdue.count)]);
    }
    // drill-down: a count lists exactly its incidents, each a link to it
    const row = r.rows.find((x) => x.pending.count > 0 || x.late.count > 0 || x.on_time.count > 0);
    assert.ok(row, JSON.stringify(r.rows));
    const which = row.pending.count > 0 ? 'pending' : row.late.count > 0 ? 'late' : 'on_time';
    const col = 2 + ['on_time', 'late', 'pending', 'accepted_risk', 'excluded'].indexOf(which);
    await pg.click(`#rate-rows tr[data-key="${row.key}"] td:nth-child(${col + 1}) button`);
    await pg.waitForSelector('.drill ul.ids a');
    const ids = await pg.$$eval('.drill ul.ids a', (as) => as.map((a) => a.textContent));
    assert.deepEqual(ids.sort(), [...row[which].ids].sort());
    await check(pg, 'compliance-zh');
    // the downloads are the API's
    const csv = await pg.evaluate(async () => {
      const a = document.querySelector('a.button[href*="format=csv"]');
      const res = await fetch(a.getAttribute('href'));
      return [res.status, res.headers.get('content-type')];
    });
    assert.equal(csv[0], 200);
    assert.match(csv[1], /text\/csv/);
    await pg.selectOption('#lang', 'en');
    await pg.waitForSelector('#rate-total');
    await check(pg, 'compliance-en');
    await pg.context().close();
  });

  test('the auditor verifies the log; the session ends gracefully', { timeout: 240000 }, async () => {
    const pg = await page(b, 'en', 'dark');
    await pg.goto(srv.url + '/');
    await pg.selectOption('#lang', 'en');
    await pg.waitForSelector('h1:has-text("Sign in")');
    await login(pg, 'shen', `${PASSWORD}-shen`);
    await pg.waitForSelector('#audit-verify');
    await pg.click('#audit-verify');
    await pg.waitForSelector('.msg.info');
    assert.match(await pg.textContent('.msg.info'), /intact/);
    await check(pg, 'audit-dark');
    // the session is ended behind the page's back: the next call shows the login, said
    await pg.evaluate(async () => {
      const s = await (await fetch('/api/v1/session')).json();
      await fetch('/api/v1/session', { method: 'DELETE', headers: { 'X-CSRF-Token': s.csrf } });
    });
    await pg.click('#audit-more').catch(() => {});
    await pg.click('#audit-verify');
    await pg.waitForSelector('#login-user');
    assert.match(await pg.textContent('main'), /session has expired/);
    await pg.context().close();
  });

  // A fresh incident (an hour old: its deadline, 72 h for high, is ahead) triaged in the
  // analyst's page from its first state to closed; the compliance officer's rate of the
  // weeks around today changes with it and stays equal to the API's.
  test('triage from new to closed moves the timely rectification rate', { timeout: 240000 }, async () => {
    const at = new Date(Date.now() - 3600000);
    storeWith(dir, [{
      timestamp: at.toISOString().replace('Z', '000+0000'), event_type: 'yara', schema_version: '1.0',
      sensor: { id: 's1', segment: 'core' }, flow_id: 4242, src_ip: '198.51.100.99', src_port: 5,
      dest_ip: '10.10.1.10', dest_port: 80, proto: 'TCP', app_proto: 'http', community_id: '1:FRESHAAAAAAAAAAAAAAAAAAAAAAA=',
      yara: { rule: 'EICAR_Test_File', namespace: 'fenghuo', tags: [], meta: { severity: 'high', category: 'malware.virus' }, direction: 'toclient', offset: 0 },
    }]);
    const day = (ms) => new Date(ms + 8 * 3600000).toISOString().slice(0, 10);
    const from = day(Date.now() - 14 * 86400000);
    const to = day(Date.now() + 14 * 86400000);
    const zhou = await page(b);
    await login(zhou, 'zhou', `${PASSWORD}-zhou`);
    await zhou.waitForSelector('header nav a');
    const report = () => zhou.evaluate(async (q) => (await fetch(`/api/v1/rectification/report?from=${q[0]}&to=${q[1]}&by=department`)).json(), [from, to]);
    const before = await report();
    const li = await page(b);
    await login(li, 'li', `${PASSWORD}-li`);
    await li.waitForSelector('header nav a');
    const id = await li.evaluate(async () => (await (await fetch('/api/v1/alerts?q=198.51.100.99')).json()).alerts[0].id);
    await li.goto(`${srv.url}/#/alert/${id}`);
    await li.waitForSelector('pre.event');
    // each move offers the next (the page redraws after a move: wait for the button)
    for (const to2 of ['acknowledged', 'rectifying', 'rectified', 'closed']) {
      await li.waitForSelector(`button[data-to=${to2}]`);
      await li.fill('#move-comment', `${to2}: 已处置`);
      await li.click(`button[data-to=${to2}]`);
    }
    await li.waitForSelector('.timeline li:has-text("已整改 → 已关闭")');
    const doc = await li.evaluate(async (x) => (await fetch(`/api/v1/alerts/${x}`)).json(), id);
    assert.equal(doc.incident.status, 'closed');
    await check(li, 'alert-closed-zh');
    await li.context().close();
    const after = await report();
    assert.equal(after.total.on_time.count, before.total.on_time.count + 1);
    assert.notEqual(after.total.rate, before.total.rate);
    await zhou.goto(`${srv.url}/#/compliance`);
    await zhou.waitForSelector('#rate-total');
    await zhou.fill('#c-from', from);
    await zhou.fill('#c-to', to);
    await zhou.click('.filters button[type=submit]');
    await zhou.waitForFunction((r) => document.querySelector('#rate-total')?.textContent.trim() === r,
      `${(after.total.rate * 100).toFixed(1)}%`);
    await zhou.context().close();
  });

  // Every page of every role in both languages: a screenshot each (build/test-artifacts),
  // with the same checks (axe, CSP, script errors), and the page's heading in the language.
  test('every page in both languages', { timeout: 300000 }, async () => {
    const who = [['admin', PASSWORD, ['users']], ['li', `${PASSWORD}-li`, ['overview', 'queue']],
      ['zhao', `${PASSWORD}-zhao`, ['rules', 'assets']], ['zhou', `${PASSWORD}-zhou`, ['compliance']],
      ['shen', `${PASSWORD}-shen`, ['audit']]];
    const heading = { 'zh-CN': JSON.parse(readFileSync(path.join(REPO, 'dashboards/i18n/zh-CN.json'), 'utf8')),
      en: JSON.parse(readFileSync(path.join(REPO, 'dashboards/i18n/en.json'), 'utf8')) };
    for (const lang of ['zh-CN', 'en']) {
      const tag = lang === 'en' ? 'en' : 'zh';
      for (const [user, password, pages] of who) {
        const pg = await page(b, lang);
        await pg.goto(srv.url + '/');
        await pg.selectOption('#lang', lang);
        await pg.waitForSelector(`h1:has-text("${heading[lang]['login.title']}")`);
        if (user === 'admin') await check(pg, `login-${tag}`);
        await login(pg, user, password);
        await pg.waitForSelector('header nav a');
        for (const p of pages) {
          await pg.goto(`${srv.url}/#/${p}`);
          await pg.waitForSelector(`main h1:has-text("${heading[lang][`nav.${p}`]}")`);
          await check(pg, `page-${p}-${tag}`);
        }
        if (user === 'admin') {
          await pg.goto(`${srv.url}/#/password`);
          await pg.waitForSelector('#pw-new');
          await check(pg, `page-password-${tag}`);
        }
        await pg.context().close();
      }
    }
  });
});
