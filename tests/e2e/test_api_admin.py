"""fenghuo-console serve, administration (issue 13, second part), on an SQLite file and on
PostgreSQL: comments on incidents, users (role, departments, disabling, the last
administrator, password reset), API tokens (scoped, expiring, revocable, hashed; no CSRF,
no session routes), suppressions (from an alert, honoured by the correlator, counted,
revoked, expired), and rules (list with hit counts, one rule's source, validation with
file:line, upload, switching off and on, and a running correlator reloading on the
console's word). Every change is in the audit log."""

import datetime
import json
import os
import subprocess
import time

from test_api import PASSWORD, REPO, Console, admin, alert_store, users  # noqa: F401
from test_api import server  # noqa: F401  (the fixture)

EICAR = {"timestamp": "2026-03-02T02:00:00.000000+0000", "event_type": "yara",
         "schema_version": "1.0", "sensor": {"id": "s1", "segment": "core"}, "flow_id": 1,
         "src_port": 5, "dest_port": 80, "proto": "TCP", "app_proto": "http",
         "yara": {"rule": "EICAR_Test_File", "namespace": "fenghuo", "tags": [],
                  "meta": {"severity": "high", "category": "malware.virus"},
                  "direction": "toclient", "offset": 0}}
FAR = 4102444800000  # 2100-01-01


def run_correlator(correlator, store_db, tmp_path, events, rules=None, name="ev.ndjson"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    p = subprocess.run([correlator, "--rules", str(rules or os.path.join(REPO, "rules", "level3")),
                        "--assets", os.path.join(REPO, "rules", "assets.example.yaml"),
                        "--input", str(path), "--db", store_db.target],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    return p


def audit_rows(store_db, *actions):
    marks = ", ".join("'%s'" % a for a in actions)
    return store_db.query("SELECT actor, action, object, outcome FROM audit_log WHERE action IN "
                          "(%s) ORDER BY seq" % marks)


def test_comments_join_the_timeline(server, store_db, correlator, tmp_path):
    ids = alert_store(correlator, store_db, tmp_path)
    c = admin(server)
    u = users(server, c)
    store_db.execute("UPDATE users SET departments = '大数据局' WHERE name = 'u-analyst'")
    mine, theirs = ids["198.51.100.1"], ids["198.51.100.4"]
    a = u["analyst"]
    text = "已联系运维\n<script>alert(1)</script> ' OR 1=1 --"
    st, doc, _ = a.call("POST", "/api/v1/incidents/%s/comment" % mine, {"comment": text})
    assert (st, doc) == (200, {"ok": True})
    assert a.call("POST", "/api/v1/incidents/%s/comment" % mine,
                  {"comment": ""})[:2] == (400, {"error": {"code": "empty_comment"}})
    assert a.call("POST", "/api/v1/incidents/%s/comment" % mine,
                  {"comment": 5})[1]["error"]["code"] == "wrong_type"
    assert a.call("POST", "/api/v1/incidents/%s/comment" % theirs,
                  {"comment": "x"})[:2] == (404, {"error": {"code": "not_found"}})
    st, doc, _ = a.call("GET", "/api/v1/alerts/%s" % mine)
    assert [(t["kind"], t.get("comment")) for t in doc["timeline"]] == [("comment", text)]
    assert doc["alert"]["status"] == "new"  # a comment moves nothing
    # out of scope: answered as absent, before anything is recorded
    assert audit_rows(store_db, "incident.comment") == [
        ("u-analyst", "incident.comment", mine, "ok")]


def test_user_management(server, store_db):
    c = admin(server)
    u = users(server, c)
    st, doc, _ = c.call("GET", "/api/v1/users")
    assert st == 200
    by = {x["name"]: x for x in doc["users"]}
    assert set(by) == {"admin"} | {"u-" + r for r in ("sysadmin", "secadmin", "analyst",
                                                        "compliance", "auditor")}
    assert "password_hash" not in json.dumps(doc) and by["u-analyst"]["departments"] == []
    # departments and a new role; the user's sessions end with the role change
    st, doc, _ = c.call("POST", "/api/v1/users/u-analyst", {"departments": ["大数据局", "市财政局"]})
    assert (st, doc) == (200, {"ok": True})
    assert u["analyst"].call("GET", "/api/v1/session")[0] == 200  # departments keep the session
    st, doc, _ = c.call("POST", "/api/v1/users/u-compliance", {"role": "auditor"})
    assert st == 200
    assert u["compliance"].call("GET", "/api/v1/session")[0] == 401
    by = {x["name"]: x for x in c.call("GET", "/api/v1/users")[1]["users"]}
    assert by["u-analyst"]["departments"] == ["大数据局", "市财政局"]
    assert by["u-compliance"]["role"] == "auditor"
    for body, code in (({"role": "root"}, "bad_role"), ({}, "nothing_to_change"),
                       ({"disabled": "yes"}, "wrong_type"), ({"departments": "x"}, "wrong_type"),
                       ({"departments": ["a\nb"]}, "bad_department")):
        st, doc, _ = c.call("POST", "/api/v1/users/u-analyst", body)
        assert (st, doc["error"]["code"]) == (400, code), body
    assert c.call("POST", "/api/v1/users/nobody", {"disabled": True})[0] == 404
    # disabling ends the sessions and refuses logins
    assert c.call("POST", "/api/v1/users/u-secadmin", {"disabled": True})[0] == 200
    assert u["secadmin"].call("GET", "/api/v1/session")[0] == 401
    assert u["secadmin"].login("u-secadmin", PASSWORD + "-1") == (
        401, {"error": {"code": "account_disabled"}})
    # the last enabled system administrator stays one
    assert c.call("POST", "/api/v1/users/u-sysadmin", {"disabled": True})[0] == 200
    st, doc, _ = c.call("POST", "/api/v1/users/admin", {"role": "auditor"})
    assert (st, doc) == (400, {"error": {"code": "last_sysadmin"}})
    assert c.call("POST", "/api/v1/users/admin", {"disabled": True})[1] == {
        "error": {"code": "last_sysadmin"}}
    # a reset password must be changed at the next login
    st, doc, _ = c.call("POST", "/api/v1/users/u-auditor/password", {"password": "short"})
    assert (st, doc) == (400, {"error": {"code": "too_short"}})
    assert c.call("POST", "/api/v1/users/u-auditor/password",
                  {"password": PASSWORD + "-r"})[0] == 200
    assert u["auditor"].call("GET", "/api/v1/session")[0] == 401
    fresh = server.client()
    st, doc = fresh.login("u-auditor", PASSWORD + "-r")
    assert st == 200 and doc["must_change_password"] is True
    rows = audit_rows(store_db, "user.update", "user.password_reset")
    assert ("admin", "user.update", "u-compliance", "ok") in rows
    assert ("admin", "user.update", "admin", "refused") in rows
    assert ("admin", "user.password_reset", "u-auditor", "ok") in rows


def test_api_tokens(server, store_db):
    c = admin(server)
    u = users(server, c)
    an = u["analyst"]
    store_db.execute("UPDATE users SET departments = '大数据局' WHERE name = 'u-analyst'")
    for body, code in (({"name": "ci", "expires_at": 1}, "bad_expiry"),
                       ({"name": "ci", "expires_at": FAR}, "bad_expiry"),
                       ({"name": "", "expires_at": int(time.time() * 1000) + 86400000},
                        "bad_name"),
                       ({"name": "ci", "expires_at": "tomorrow"}, "wrong_type")):
        st, doc, _ = an.call("POST", "/api/v1/tokens", body)
        assert (st, doc["error"]["code"]) == (400, code), body
    exp = int(time.time() * 1000) + 7 * 86400000
    st, doc, _ = an.call("POST", "/api/v1/tokens", {"name": "巡检脚本", "expires_at": exp})
    assert st == 201 and doc["role"] == "analyst" and doc["token"].startswith(doc["id"] + "_")
    token, tid = doc["token"], doc["id"]
    # only a hash is stored
    (h,), = store_db.query("SELECT hash FROM api_tokens WHERE id = '%s'" % tid)
    assert len(h) == 64 and token not in h
    bot = server.client()
    bearer = {"Authorization": "Bearer " + token}
    st, doc, _ = bot.call("GET", "/api/v1/alerts", headers=bearer)
    assert st == 200
    # a token is a role: the analyst's token cannot read the audit log or manage users
    assert bot.call("GET", "/api/v1/audit", headers=bearer)[:2] == (
        403, {"error": {"code": "forbidden"}})
    # no CSRF token for automation; but no password change or token minting with a token
    st, doc, _ = bot.call("POST", "/api/v1/alerts/bulk", {"to": "acknowledged", "ids": []},
                          headers=bearer)
    assert st == 200, doc
    assert bot.call("POST", "/api/v1/session/password", {"old": "a", "new": "b"},
                    headers=bearer)[:2] == (403, {"error": {"code": "session_required"}})
    assert bot.call("POST", "/api/v1/tokens", {"name": "x", "expires_at": exp},
                    headers=bearer)[:2] == (403, {"error": {"code": "session_required"}})
    bad = {"Authorization": "Bearer " + token[:-1] + ("A" if token[-1] != "A" else "B")}
    assert bot.call("GET", "/api/v1/alerts", headers=bad)[:2] == (
        401, {"error": {"code": "unknown_token"}})
    # listed for its owner (and the administrator), never with the secret
    st, doc, _ = an.call("GET", "/api/v1/tokens")
    assert [t["id"] for t in doc["tokens"]] == [tid] and "last_used" in doc["tokens"][0]
    assert token not in json.dumps(doc)
    assert [t["id"] for t in c.call("GET", "/api/v1/tokens")[1]["tokens"]] == [tid]
    assert u["auditor"].call("GET", "/api/v1/tokens")[1]["tokens"] == []
    assert u["auditor"].call("DELETE", "/api/v1/tokens/" + tid)[0] == 404
    # expiry (the stored time moved into the past), then revocation
    store_db.execute("UPDATE api_tokens SET expires_at = 1000 WHERE id = '%s'" % tid)
    assert bot.call("GET", "/api/v1/alerts", headers=bearer)[:2] == (
        401, {"error": {"code": "token_expired"}})
    store_db.execute("UPDATE api_tokens SET expires_at = %d WHERE id = '%s'" % (exp, tid))
    assert bot.call("GET", "/api/v1/alerts", headers=bearer)[0] == 200
    # the owner's role changes: the token stops
    assert c.call("POST", "/api/v1/users/u-analyst", {"role": "compliance"})[0] == 200
    assert bot.call("GET", "/api/v1/alerts", headers=bearer)[:2] == (
        401, {"error": {"code": "token_role_changed"}})
    assert c.call("POST", "/api/v1/users/u-analyst", {"role": "analyst"})[0] == 200
    assert bot.call("GET", "/api/v1/alerts", headers=bearer)[0] == 200
    assert c.call("DELETE", "/api/v1/tokens/" + tid)[:2] == (200, {"ok": True})
    assert bot.call("GET", "/api/v1/alerts", headers=bearer)[:2] == (
        401, {"error": {"code": "token_revoked"}})
    assert c.call("DELETE", "/api/v1/tokens/" + tid)[0] == 404
    rows = audit_rows(store_db, "token.create", "token.revoke", "token.use")
    assert ("u-analyst", "token.create", tid, "ok") in rows
    assert ("admin", "token.revoke", tid, "ok") in rows
    assert (tid, "token.use", "/api/v1/alerts", "denied") in rows


def test_suppressions_are_honoured(server, store_db, correlator, tmp_path):
    ev = [dict(EICAR, src_ip="198.51.100.1", dest_ip="10.10.1.10"),
          dict(EICAR, src_ip="198.51.100.2", dest_ip="10.10.1.11",
               timestamp="2026-03-02T02:01:00.000000+0000")]
    run_correlator(correlator, store_db, tmp_path, ev)
    ids = dict(store_db.query("SELECT src_ip, id FROM alerts"))
    rule = store_db.query("SELECT rule_id FROM alerts WHERE id = '%s'" % ids["198.51.100.1"])[0][0]
    c = admin(server)
    sec = users(server, c)["secadmin"]
    exp = int(time.time() * 1000) + 30 * 86400000
    for body, code in (({"alert": ids["198.51.100.1"], "scope": "all", "reason": "r",
                         "expires_at": exp}, "bad_scope"),
                       ({"alert": ids["198.51.100.1"], "scope": "rule_source", "reason": "r",
                         "expires_at": 5}, "bad_expiry"),
                       ({"rule_id": rule, "src_ip": "not-an-ip", "reason": "r",
                         "expires_at": exp}, "bad_address"),
                       ({"rule_id": rule, "dest_ip": "10.0.0.1", "reason": "r",
                         "expires_at": exp}, "dest_needs_src"),
                       ({"alert": ids["198.51.100.1"], "scope": "rule_source",
                         "expires_at": exp}, "missing_field")):
        st, doc, _ = sec.call("POST", "/api/v1/suppressions", body)
        assert (st, doc["error"]["code"]) == (400, code), body
    assert sec.call("POST", "/api/v1/suppressions",
                    {"alert": "0" * 32, "scope": "rule", "reason": "r",
                     "expires_at": exp})[0] == 404
    st, doc, _ = sec.call("POST", "/api/v1/suppressions",
                          {"alert": ids["198.51.100.1"], "scope": "rule_source",
                           "reason": "漏洞扫描器（已报备）", "expires_at": exp})
    assert st == 201 and doc["src_ip"] == "198.51.100.1" and "dest_ip" not in doc, doc
    sid = doc["id"]
    # a revoked one and an expired one hide nothing
    st, doc, _ = sec.call("POST", "/api/v1/suppressions",
                          {"rule_id": rule, "src_ip": "198.51.100.2", "reason": "temp",
                           "expires_at": exp})
    assert sec.call("DELETE", "/api/v1/suppressions/" + doc["id"])[:2] == (200, {"ok": True})
    assert sec.call("DELETE", "/api/v1/suppressions/" + doc["id"])[0] == 404
    store_db.execute("INSERT INTO suppressions (id, rule_id, src_ip, reason, created_by, "
                     "created_at, expires_at) VALUES ('old', '%s', '198.51.100.3', 'x', 'y', 1, "
                     "2)" % rule)
    # the same sources again, and a third, a day later: 100.1's repeats are hidden
    later = [dict(e, timestamp="2026-03-03T0%d:00:00.000000+0000" % k)
             for k, e in enumerate(ev + [dict(EICAR, src_ip="198.51.100.3",
                                              dest_ip="10.10.2.2")] + ev[:1])]
    p = run_correlator(correlator, store_db, tmp_path, later, name="later.ndjson")
    counts = dict(store_db.query("SELECT src_ip, count FROM alerts WHERE rule_id = '%s'" % rule))
    assert counts == {"198.51.100.1": 1, "198.51.100.2": 2, "198.51.100.3": 1}, (counts, p.stderr)
    st, doc, _ = sec.call("GET", "/api/v1/suppressions?active=1")
    assert [(s["id"], s["hits"]) for s in doc["suppressions"]] == [(sid, 2)]
    assert doc["suppressions"][0]["last_hit"] == 1772506800000  # 2026-03-03T03:00Z
    assert len(sec.call("GET", "/api/v1/suppressions")[1]["suppressions"]) == 3
    rows = audit_rows(store_db, "suppression.create", "suppression.revoke")
    assert rows[0] == ("u-secadmin", "suppression.create", rule, "refused")
    assert ("u-secadmin", "suppression.create", sid, "ok") in rows
    assert [r[3] for r in rows if r[1] == "suppression.revoke"] == ["ok", "refused"]


RULE_OK = """title: Telnet to the finance department (test upload)
id: 3f2b7c1e-0000-4000-8000-00000000a001
status: test
level: high
logsource:
  category: flow
  product: fenghuo
detection:
  sel:
    dest_port: 2323
  condition: sel
tags:
  - gbt22239.8.1.4.1.c
"""


def test_rules_api(server, store_db, correlator, tmp_path):
    c = admin(server)
    u = users(server, c)
    sec, an = u["secadmin"], u["analyst"]
    run_correlator(correlator, store_db, tmp_path,
                   [dict(EICAR, src_ip="198.51.100.1", dest_ip="10.10.1.10")],
                   rules=server.rules)
    st, doc, _ = an.call("GET", "/api/v1/rules")
    assert st == 200 and doc["errors"] == []
    by = {r["id"]: r for r in doc["rules"]}
    (rule,), = store_db.query("SELECT rule_id FROM alerts")
    assert by[rule]["alerts"] == 1 and by[rule]["hits"] == 1 and by[rule]["enabled"] is True
    assert by[rule]["file"] == "l3_12_yara_malware.yml" and by[rule]["kind"] == "detection"
    assert any(r["kind"] == "correlation" for r in doc["rules"])
    # the Chinese titles of the rule files (title_zh), for every role that reads alerts
    import yaml
    with open(os.path.join(REPO, "rules", "level3", "l3_12_yara_malware.yml"), encoding="utf-8") as f:
        src = next(d for d in yaml.safe_load_all(f) if d.get("id") == rule)
    assert by[rule]["title_zh"] == src["title_zh"] and by[rule]["title"] == src["title"]
    st, doc, _ = u["compliance"].call("GET", "/api/v1/rules/titles")
    assert st == 200 and doc["titles"][rule] == {"title": src["title"], "title_zh": src["title_zh"]}
    assert set(doc["titles"]) == set(by)
    corr = next(r for r in by.values() if r["kind"] == "correlation")
    assert doc["titles"][corr["id"]]["title"] == corr["title"]
    st, doc, _ = an.call("GET", "/api/v1/rules/" + rule)
    assert st == 200 and doc["rule"]["id"] == rule and "id: " + rule in doc["source"]
    assert an.call("GET", "/api/v1/rules/nope")[0] == 404
    # validation: file:line errors; nothing written
    broken = RULE_OK.replace("dest_port: 2323", "dest_port|nosuchmod: 2323")
    st, doc, _ = sec.call("POST", "/api/v1/rules/validate", {"name": "t.yml", "text": broken})
    assert st == 200 and doc["ok"] is False and doc["rules"] == []
    assert [(e["file"], e["line"]) for e in doc["errors"]] == [("t.yml", 1)] or (
        doc["errors"][0]["file"] == "t.yml" and doc["errors"][0]["line"] >= 1), doc
    assert "nosuchmod" in doc["errors"][0]["reason"]
    for name in ("../x.yml", ".hidden.yml", "x.txt", "a/b.yml"):
        st, doc, _ = sec.call("POST", "/api/v1/rules", {"name": name, "text": RULE_OK})
        assert (st, doc["error"]["code"]) == (400, "bad_file_name"), name
    st, doc, _ = sec.call("POST", "/api/v1/rules", {"name": "t.yml", "text": broken})
    assert st == 422 and doc["ok"] is False
    assert not (server.rules / "t.yml").exists()
    st, doc, _ = sec.call("POST", "/api/v1/rules", {"name": "t.yml", "text": "title: x\n"})
    assert st == 422
    gen = store_db.query("SELECT rules FROM console_generation")[0][0]
    st, doc, _ = sec.call("POST", "/api/v1/rules", {"name": "t.yml", "text": RULE_OK})
    assert (st, doc["ok"], doc["rules"]) == (201, True, ["3f2b7c1e-0000-4000-8000-00000000a001"])
    assert (server.rules / "t.yml").read_text() == RULE_OK
    assert store_db.query("SELECT rules FROM console_generation")[0][0] == gen + 1
    assert "3f2b7c1e-0000-4000-8000-00000000a001" in {
        r["id"] for r in an.call("GET", "/api/v1/rules")[1]["rules"]}
    # switched off: the correlator raises nothing for it; on again: it does
    assert sec.call("POST", "/api/v1/rules/%s/disable" % rule)[:2] == (200, {"ok": True})
    assert sec.call("POST", "/api/v1/rules/nope/disable")[0] == 404
    assert {r["id"]: r for r in an.call("GET", "/api/v1/rules")[1]["rules"]}[rule][
        "enabled"] is False
    run_correlator(correlator, store_db, tmp_path,
                   [dict(EICAR, src_ip="198.51.100.9", dest_ip="10.10.1.10",
                         timestamp="2026-03-04T00:00:00.000000+0000")], rules=server.rules,
                   name="off.ndjson")
    assert store_db.query("SELECT COUNT(*) FROM alerts WHERE src_ip = '198.51.100.9'") == [(0,)]
    assert sec.call("POST", "/api/v1/rules/%s/enable" % rule)[0] == 200
    run_correlator(correlator, store_db, tmp_path,
                   [dict(EICAR, src_ip="198.51.100.9", dest_ip="10.10.1.10",
                         timestamp="2026-03-04T00:00:00.000000+0000")], rules=server.rules,
                   name="on.ndjson")
    assert store_db.query("SELECT COUNT(*) FROM alerts WHERE src_ip = '198.51.100.9'") == [(1,)]
    assert sec.call("POST", "/api/v1/rules/reload")[:2] == (200, {"ok": True})
    rows = audit_rows(store_db, "rule.upload", "rule.enable", "rule.disable", "rule.reload")
    assert [r[1:] for r in rows] == [
        ("rule.upload", "t.yml", "refused"), ("rule.upload", "t.yml", "refused"),
        ("rule.upload", "t.yml", "ok"), ("rule.disable", rule, "ok"),
        ("rule.enable", rule, "ok"), ("rule.reload", None, "ok")]


def test_running_correlator_reloads_on_the_consoles_word(server, store_db, correlator, tmp_path):
    """A correlator reading a pipe picks up an uploaded rule without a signal."""
    c = admin(server)
    sec = users(server, c)["secadmin"]
    p = subprocess.Popen([correlator, "--rules", str(server.rules), "--assets",
                          os.path.join(REPO, "rules", "assets.example.yaml"), "--input", "-",
                          "--db", store_db.target], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True, cwd=REPO)

    def wait_for(sql, want):
        deadline = time.time() + 60
        while time.time() < deadline:
            if store_db.query(sql) == want:
                return True
            time.sleep(0.1)
        return False

    flow = {"timestamp": "2026-03-05T00:00:00.000000+0000", "event_type": "flow",
            "schema_version": "1.0", "sensor": {"id": "s1"}, "flow_id": 9,
            "src_ip": "10.10.1.5", "src_port": 40000, "dest_ip": "10.30.64.5",
            "dest_port": 2323, "proto": "TCP"}
    try:
        # the same flow before the upload (no rule for it) and an EICAR alert to know it
        # was consumed
        for e in (flow, dict(EICAR, src_ip="198.51.100.1", dest_ip="10.10.1.10")):
            p.stdin.write(json.dumps(e) + "\n")
        p.stdin.flush()
        assert wait_for("SELECT COUNT(*) FROM alerts WHERE src_ip = '198.51.100.1'", [(1,)])
        assert sec.call("POST", "/api/v1/rules", {"name": "t.yml", "text": RULE_OK})[0] == 201
        time.sleep(1.2)  # longer than the correlator's one-second polling interval
        p.stdin.write(json.dumps(dict(flow, timestamp="2026-03-05T00:01:00.000000+0000",
                                      flow_id=10)) + "\n")
        p.stdin.flush()
        # one hit: the flow before the upload was not matched, the one after was
        assert wait_for("SELECT hits FROM alerts WHERE rule_id = "
                        "'3f2b7c1e-0000-4000-8000-00000000a001'", [(1,)])
    finally:
        p.stdin.close()
        assert p.wait(timeout=60) == 0
        err = p.stderr.read()
    assert "rules reloaded" in err, err


def test_assets_and_lists(server, store_db):
    c = admin(server)
    sec = users(server, c)["secadmin"]
    gen = lambda: store_db.query("SELECT rules FROM console_generation")[0][0]  # noqa: E731
    # lists
    st, doc, _ = sec.call("GET", "/api/v1/lists")
    by = {x["name"]: x["values"] for x in doc["lists"]}
    assert st == 200 and by["high_risk_ports"] >= 10
    st, doc, _ = sec.call("GET", "/api/v1/lists/high_risk_ports")
    text = doc["text"]
    assert st == 200 and "\n3389\n" in text
    assert sec.call("GET", "/api/v1/lists/nope")[0] == 404
    bad = text + "# a value longer than the loader takes\n" + "9" * 2000 + "\n"
    st, doc, _ = sec.call("POST", "/api/v1/lists/high_risk_ports/validate", {"text": bad})
    assert st == 200 and doc["ok"] is False, doc
    e = doc["errors"][0]
    assert e["file"] == "high_risk_ports.txt" and e["line"] == text.count("\n") + 2, doc
    g0 = gen()
    st, doc, _ = sec.call("POST", "/api/v1/lists/high_risk_ports", {"text": bad})
    assert st == 422 and gen() == g0
    lists_dir = server.rules.parent / "lists"
    assert (lists_dir / "high_risk_ports.txt").read_text() == text
    st, doc, _ = sec.call("POST", "/api/v1/lists/high_risk_ports", {"text": text + "2323\n"})
    assert (st, doc["ok"]) == (200, True) and gen() == g0 + 1
    assert (lists_dir / "high_risk_ports.txt").read_text().endswith("\n2323\n")
    st, doc, _ = sec.call("POST", "/api/v1/lists/blocked_hosts", {"text": "203.0.113.7\n"})
    assert st == 200 and (lists_dir / "blocked_hosts.txt").exists()
    for name in ("Bad-Name", "x-y"):
        st, doc, _ = sec.call("POST", "/api/v1/lists/%s" % name, {"text": "x\n"})
        assert (st, doc["error"]["code"]) == (400, "bad_list_name"), name
    for name in ("..", "a.txt", "x%2F..%2Fy"):  # not even a route: ids are [A-Za-z0-9_-]
        assert sec.call("POST", "/api/v1/lists/" + name, {"text": "x\n"})[0] == 404, name
    assert not list((server.rules.parent / "lists").glob("*.txt.*"))
    # a list that also names an inventory placeholder is refused with the rules' reason
    st, doc, _ = sec.call("POST", "/api/v1/lists/mail_servers/validate", {"text": "10.0.0.1\n"})
    assert doc["ok"] is False and doc["errors"], doc
    # the inventory
    st, doc, _ = sec.call("GET", "/api/v1/assets")
    inv = doc["text"]
    assert st == 200 and doc["file"] == "assets.yaml" and "management_networks" in inv
    broken = inv.replace("cidrs: [10.99.0.0/24]", "cidrs: [10.99.0/24]")
    st, doc, _ = sec.call("POST", "/api/v1/assets/validate", {"text": broken})
    assert st == 200 and doc["ok"] is False
    line = inv[:inv.index("cidrs: [10.99.0.0/24]")].count("\n") + 1
    assert (doc["errors"][0]["file"], doc["errors"][0]["line"]) == ("assets.yaml", line), doc
    # dropping a placeholder a rule expands: the rules that use it are named
    dropped = inv.replace("  management_networks: [10.99.0.0/24]       # L3-05: administration "
                          "only from here\n", "")
    assert dropped != inv
    st, doc, _ = sec.call("POST", "/api/v1/assets", {"text": dropped})
    assert st == 422 and doc["ok"] is False
    assert any("management_networks" in e["reason"] for e in doc["errors"]), doc
    assert server.assets.read_text() == inv
    st, doc, _ = sec.call("POST", "/api/v1/assets", {"text": inv + "# reviewed\n"})
    assert (st, doc["ok"]) == (200, True)
    assert server.assets.read_text().endswith("# reviewed\n")
    rows = audit_rows(store_db, "list.replace", "assets.replace")
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("list.replace", "high_risk_ports", "refused"), ("list.replace", "high_risk_ports", "ok"),
        ("list.replace", "blocked_hosts", "ok"), ("assets.replace", "assets", "refused"),
        ("assets.replace", "assets", "ok")]


def test_retention(console, correlator, store_db, tmp_path):
    """retention: ended incidents older than the kept days go (with their evidence and
    timeline), open ones stay whatever their age, 180 days is the least, and the audit
    chain still verifies; every run is audited."""
    ev = [dict(EICAR, src_ip="198.51.100.%d" % k, dest_ip="10.10.1.10",
               timestamp="2026-03-02T02:0%d:00.000000+0000" % k) for k in (1, 2, 3)]
    ev.append({"timestamp": "2026-03-02T02:10:00.000000+0000", "event_type": "stats",
               "schema_version": "1.0", "sensor": {"id": "s1", "segment": "core"},
               "stats": {"capture": {"packets": 1}}})
    run_correlator(correlator, store_db, tmp_path, ev)
    ids = dict(store_db.query("SELECT src_ip, id FROM alerts"))

    def cli(*args, now):
        env = dict(os.environ, FENGHUO_TEST_NOW=now)
        return subprocess.run([console, *args, "--db", store_db.target], capture_output=True,
                              text=True, cwd=REPO, timeout=120, env=env)

    def close(alert_id, now):
        for to in ("acknowledged", "rectifying", "rectified", "closed"):
            p = cli("move", to, alert_id, "--comment", "patched", now=now)
            assert p.returncode == 0, p.stdout + p.stderr

    close(ids["198.51.100.1"], "2026-03-03T10:00:00+08:00")
    assert cli("move", "false_positive", ids["198.51.100.2"], "--comment", "scanner",
               now="2026-03-03T10:00:00+08:00").returncode == 0
    assert store_db.query("SELECT COUNT(*) FROM sensor_stats") == [(1,)]
    p = cli("retention", "--keep-days", "179", now="2026-10-01T00:00:00+08:00")
    assert p.returncode == 2 and "180" in p.stderr
    # 2026-10-01 - 180 days = 2026-04-04: both ended incidents go, the open one stays
    p = cli("retention", now="2026-10-01T00:00:00+08:00")
    assert p.returncode == 0, p.stderr
    assert "2 incidents, 1 stats hours" in p.stdout, p.stdout
    assert [r[0] for r in store_db.query("SELECT src_ip FROM alerts")] == ["198.51.100.3"]
    for table in ("alert_evidence", "alert_tags", "incident_transitions"):
        assert store_db.query("SELECT COUNT(*) FROM %s WHERE alert_id IN ('%s', '%s')" % (
            table, ids["198.51.100.1"], ids["198.51.100.2"])) == [(0,)], table
    assert store_db.query("SELECT COUNT(*) FROM sensor_stats") == [(0,)]
    # an incident that ended recently is kept even when its events are old
    close(ids["198.51.100.3"], "2026-09-30T10:00:00+08:00")
    p = cli("retention", now="2026-10-01T00:00:00+08:00")
    assert "0 incidents" in p.stdout and store_db.query("SELECT COUNT(*) FROM alerts") == [(1,)]
    rows = store_db.query("SELECT action, outcome FROM audit_log WHERE action = 'retention'")
    assert rows == [("retention", "ok"), ("retention", "ok")]
    v = subprocess.run([console, "audit", "verify", "--db", store_db.target],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert v.returncode == 0, v.stdout


HOSTILE_URL = "/search?q=<script>alert(1)</script>&x=\"'%00;DROP TABLE alerts;--\u202e中文"
HOSTILE_UA = "Mozilla/5.0 <img src=x onerror=alert(1)> \\\" ' \u0000 \u2028 中文"
HOSTILE_HOST = "evil\".example<b>\u0007"


def test_attacker_strings_round_trip(console, correlator, store_db, tmp_path):
    """A URL, a user agent and a Host the attacker chose come back exactly (JSON data, never
    markup or SQL) from the alert's evidence and from the archive."""
    with open(os.path.join(REPO, "tests", "rules", "L3-11", "events.ndjson")) as f:
        ev = json.loads(f.readline())
    ev["http"].update(url=HOSTILE_URL, http_user_agent=HOSTILE_UA, hostname=HOSTILE_HOST)
    ev["ndpi"]["hostname"] = HOSTILE_HOST
    arch = tmp_path / "archive"
    path = tmp_path / "ev.ndjson"
    path.write_text(json.dumps(ev) + "\n")
    p = subprocess.run([correlator, "--rules", os.path.join(REPO, "rules", "level3"),
                        "--assets", os.path.join(REPO, "rules", "assets.example.yaml"),
                        "--input", str(path), "--db", store_db.target, "--archive", str(arch)],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    ids = [r[0] for r in store_db.query("SELECT id FROM alerts")]
    assert ids, p.stderr
    s = Console(console, store_db, tmp_path, "--archive", str(arch))
    try:
        c = admin(s)
        u = users(s, c)
        store_db.execute("UPDATE users SET departments = '大数据局' WHERE name = 'u-analyst'")
        an = u["analyst"]
        for alert_id in ids:
            st, doc, h = an.call("GET", "/api/v1/alerts/" + alert_id)
            assert st == 200 and h["content-type"].startswith("application/json")
            got = json.loads(doc["alert"]["evidence"][0]["event"])
            assert got["http"]["url"] == HOSTILE_URL
            assert got["http"]["http_user_agent"] == HOSTILE_UA
            assert got["http"]["hostname"] == HOSTILE_HOST
        st, doc, _ = an.call("GET", "/api/v1/alerts/%s/events?by=flow" % ids[0])
        assert st == 200 and len(doc["events"]) == 1
        assert doc["events"][0]["http"]["url"] == HOSTILE_URL
        assert doc["events"][0]["http"]["http_user_agent"] == HOSTILE_UA
        # and the store holds it verbatim (bound, not spliced into SQL)
        assert store_db.query("SELECT COUNT(*) FROM alerts") == [(len(ids),)]
    finally:
        s.stop()


def test_https(console, store_db, tmp_path):
    """--tls-cert/--tls-key: HTTPS only (plain HTTP on the port gets no answer), TLS 1.2 or
    newer (1.1 refused), HSTS, and the session cookie marked Secure."""
    import http.client
    import ssl
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
                    str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    s = Console(console, store_db, tmp_path, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        ctx = ssl.create_default_context(cafile=str(cert))

        def call(method, path, body=None, headers=None, context=ctx):
            c = http.client.HTTPSConnection("127.0.0.1", s.port, timeout=30, context=context)
            c.request(method, path, body=json.dumps(body) if body else None,
                      headers=dict({"Content-Type": "application/json"}, **(headers or {})))
            r = c.getresponse()
            data = r.read()
            out = (r.status, json.loads(data) if data else None,
                   {k.lower(): v for k, v in r.getheaders()}, c.sock.version())
            c.close()
            return out

        st, doc, h, version = call("POST", "/api/v1/session",
                                   {"user": "admin", "password": s.password})
        assert st == 200 and version in ("TLSv1.2", "TLSv1.3")
        assert "Secure" in h["set-cookie"] and "HttpOnly" in h["set-cookie"]
        assert "SameSite=Strict" in h["set-cookie"]
        assert h["strict-transport-security"].startswith("max-age=")
        old = ssl.create_default_context(cafile=str(cert))
        old.check_hostname = False
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            old.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        refused = None
        try:
            call("GET", "/api/v1/version", context=old)
        except (ssl.SSLError, ConnectionError, OSError) as e:
            refused = str(e)
        assert refused is not None, "TLS 1.1 was accepted"
        # the server's refusal (it closes the handshake), not the client declining to offer
        assert "NO_PROTOCOLS_AVAILABLE" not in refused, refused
        plain = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        try:
            plain.request("GET", "/api/v1/version")
            answered = plain.getresponse().status == 200
        except (http.client.HTTPException, ConnectionError, OSError):
            answered = False
        finally:
            plain.close()
        assert not answered
    finally:
        s.stop()


def test_overview(console, store_db, correlator, tmp_path):
    """GET /api/v1/overview: alerts per Asia/Shanghai day and severity, open and overdue,
    categories, sensors with their last stats; an analyst's departments only. The console
    runs at a fixed time (FENGHUO_TEST_NOW) so the days are known."""
    ev = [dict(EICAR, src_ip="198.51.100.1", dest_ip="10.10.1.10",
               timestamp="2026-03-01T15:59:00.000000+0000"),   # 2026-03-01 23:59 CST
          dict(EICAR, src_ip="198.51.100.2", dest_ip="10.10.1.10",
               timestamp="2026-03-01T16:01:00.000000+0000"),   # 2026-03-02 00:01 CST
          dict(EICAR, src_ip="198.51.100.3", dest_ip="10.30.64.5",
               timestamp="2026-03-02T02:00:00.000000+0000"),   # 市财政局
          {"timestamp": "2026-03-02T03:00:00.000000+0000", "event_type": "stats",
           "schema_version": "1.0", "sensor": {"id": "s9", "segment": "core"},
           "stats": {"capture": {"packets": 1}}}]
    run_correlator(correlator, store_db, tmp_path, ev)
    s = Console(console, store_db, tmp_path, env={"FENGHUO_TEST_NOW": "2026-03-10T12:00:00+08:00"})
    try:
        c = admin(s)
        u = users(s, c)
        store_db.execute("UPDATE users SET departments = '大数据局' WHERE name = 'u-analyst'")
        st, doc, _ = u["compliance"].call("GET", "/api/v1/overview?days=14")
        assert st == 200, doc
        assert doc["since"].startswith("2026-02-24T16:00:00")  # 2026-02-25 00:00 CST
        assert [d["day"] for d in doc["days"]][:1] == ["2026-02-25"]
        assert doc["days"][-1]["day"] == "2026-03-10" and len(doc["days"]) == 14
        days = {d["day"]: (d["high"], d["critical"]) for d in doc["days"]}
        assert days["2026-03-01"] == (1, 0) and days["2026-03-02"] == (2, 0)
        assert sum(h for h, _ in days.values()) == 3
        assert doc["open"] == 3 and doc["category"] == {"malware": 3}
        # the deadlines (policy, from first_seen) have passed by 2026-03-10 for high alerts
        assert doc["overdue"] == store_db.query(
            "SELECT COUNT(*) FROM alerts WHERE deadline_at < 1773115200000")[0][0]
        assert [(x["sensor"], x["segment"], x["stats_24h"]) for x in doc["sensors"]] == [
            ("s9", "core", 0)]  # its stats are over a day old at the console's now
        assert doc["sensors"][0]["last_seen"].startswith("2026-03-02T03:00:00")
        # the timely rectification rate of the same days, as the report counts it
        rect = doc["rectification"]
        st, rep, _ = u["compliance"].call(
            "GET", "/api/v1/rectification/report?from=2026-02-25&to=2026-03-10&by=department")
        assert st == 200, rep
        assert (rect["on_time"], rect["late"], rect["pending"], rect["overdue"]) == (
            rep["total"]["on_time"]["count"], rep["total"]["late"]["count"],
            rep["total"]["pending"]["count"], rep["total"]["overdue"]["count"])
        assert rect["late"] == 3 and rect["rate"] == 0 and rect["target"] == 0.95
        assert rect["from"] == doc["since"] and rect["to"] == doc["until"]
        st, doc, _ = u["analyst"].call("GET", "/api/v1/overview?days=14")
        assert doc["open"] == 2 and doc["category"] == {"malware": 2}
        assert doc["rectification"]["late"] == 2  # its departments only
        assert {d["day"]: d["high"] for d in doc["days"]}["2026-03-02"] == 1
        assert u["analyst"].call("GET", "/api/v1/overview?days=91")[1] == {
            "error": {"code": "bad_days"}}
        # another period: three days up to 2026-03-01 (inclusive); open and overdue stay now's
        st, doc, _ = u["compliance"].call("GET", "/api/v1/overview?days=3&end=2026-03-01")
        assert st == 200, doc
        assert [d["day"] for d in doc["days"]] == ["2026-02-27", "2026-02-28", "2026-03-01"]
        assert doc["since"].startswith("2026-02-26T16:00:00") and doc["until"].startswith(
            "2026-03-01T16:00:00")
        assert [d["high"] for d in doc["days"]] == [0, 0, 1] and doc["open"] == 3
        assert doc["latest_alert"].startswith("2026-03-02T02:00:00")
        assert u["compliance"].call("GET", "/api/v1/overview?end=yesterday")[1] == {
            "error": {"code": "bad_time"}}
        assert u["auditor"].call("GET", "/api/v1/overview")[0] == 403
    finally:
        s.stop()


def test_overview_traffic_and_sensor_health(console, store_db, correlator, run_sensor, testdata,
                                            tmp_path):
    """The overview's traffic (ended flows by application, nDPI category, destination country
    and segment, summed by the correlator from the sensor's own flow events, update events
    not counted) equals the sums over those events; each sensor's health from its stats
    events: packets/s between the last two, the drop ratio, Kafka failures, silent when no
    stats event arrived for five minutes (the console's clock, FENGHUO_TEST_NOW)."""
    pcaps = os.path.join(testdata, "pcap")
    geo = os.path.join(testdata, "geoip", "test-country.mmdb")
    events, err, rc = run_sensor(
        ["-r", os.path.join(pcaps, "geoip.pcap"), "-r", os.path.join(pcaps, "http.pcap"),
         "-r", os.path.join(pcaps, "dns.pcap"), "-r", os.path.join(pcaps, "long-flow.pcap"),
         "--geoip-country", geo, "--sensor-id", "t1", "--segment", "seg-a",
         "--set", "flow.update_interval=1"])
    assert rc == 0, err
    flows = [e for e in events if e["event_type"] == "flow"]
    ended = [e for e in flows if e["flow"]["reason"] != "update"]
    assert len(ended) < len(flows), "long-flow.pcap should give update events"
    assert any(e.get("geo", {}).get("dest", {}).get("country") for e in ended)
    # two stats events of a second sensor, ten seconds apart (event time, just after the
    # captures'), with live capture's figures
    live = {"event_type": "stats", "schema_version": "1.2",
            "sensor": {"id": "t2", "segment": "seg-b"}}
    base = max(datetime.datetime.strptime(e["timestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
               for e in events)

    def at(sec):
        return (base + datetime.timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")

    stats = [dict(live, timestamp=at(1),
                  stats={"capture": {"packets": 1000, "kernel_packets": 1000,
                                     "kernel_drops": 0, "ifdrops": 0}}),
             dict(live, timestamp=at(11),
                  stats={"capture": {"packets": 6000, "kernel_packets": 6100,
                                     "kernel_drops": 90, "ifdrops": 10},
                         "kafka": {"failed": 3, "dropped": 1, "spool": {"pending": 7}},
                         "output": {"dropped": 2}})]
    # an older stats event arriving late changes nothing
    late = dict(live, timestamp=at(-60),
                stats={"capture": {"packets": 1}})
    run_correlator(correlator, store_db, tmp_path, events + stats + [late])

    def sums(key):
        out = {}
        for e in ended:
            k = key(e)
            f, p, b = out.get(k, (0, 0, 0))
            fl = e["flow"]
            out[k] = (f + 1, p + fl["pkts_toserver"] + fl["pkts_toclient"],
                      b + fl["bytes_toserver"] + fl["bytes_toclient"])
        return out

    want = {"by_app": sums(lambda e: e.get("app_proto") or "unknown"),
            "by_category": sums(lambda e: e.get("ndpi", {}).get("category") or ""),
            "by_country": sums(lambda e: e.get("geo", {}).get("dest", {}).get("country") or ""),
            "by_segment": sums(lambda e: "seg-a")}
    first = min(e["timestamp"] for e in ended)
    # the console's day: the flows are in the range of its two weeks
    now = first[:10] + "T23:00:00+08:00"
    s = Console(console, store_db, tmp_path, env={"FENGHUO_TEST_NOW": now})
    try:
        c = admin(s)
        u = users(s, c)
        st, doc, _ = u["analyst"].call("GET", "/api/v1/overview?days=14")
        assert st == 200, doc
        tr = doc["traffic"]
        assert tr["flows"] == len(ended)
        assert tr["bytes"] == sum(v[2] for v in want["by_app"].values())
        for by, w in want.items():
            got = {r["key"]: (r["flows"], r["packets"], r["bytes"]) for r in tr[by]}
            top = sorted(w.items(), key=lambda kv: (-kv[1][2], kv[0]))[:10]
            assert got == dict(top), by
            assert [r["bytes"] for r in tr[by]] == sorted((r["bytes"] for r in tr[by]),
                                                         reverse=True)
        sensors = {x["sensor"]: x for x in doc["sensors"]}
        t2 = sensors["t2"]
        assert t2["segment"] == "seg-b" and t2["packets"] == 6000
        assert t2["packets_per_s"] == 500.0 and t2["interval_s"] == 10
        assert t2["kernel_drops"] == 90 and t2["ifdrops"] == 10
        assert t2["drop_ratio"] == round(100 / 6110, 6)
        assert (t2["kafka_failed"], t2["kafka_dropped"], t2["spool_pending"],
                t2["output_dropped"]) == (3, 1, 7, 2)
        # stored moments ago (wall clock), the console's clock is in the past: reporting
        assert t2["silent"] is False and t2["silent_after_s"] == 300
        assert sensors["t1"]["segment"] == "seg-a" and "kafka_failed" not in sensors["t1"]
    finally:
        s.stop()
    # an hour after the correlator stored them: both sensors went silent
    later = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
    s = Console(console, store_db, tmp_path, env={"FENGHUO_TEST_NOW": later}, first=False)
    try:
        u = s.client()
        assert u.login("u-analyst", PASSWORD + "-1")[0] == 200
        # changed at the first console's (past) time: too old now, changed again
        assert u.call("POST", "/api/v1/session/password",
                      {"old": PASSWORD + "-1", "new": PASSWORD + "-2"})[0] == 200
        st, doc, _ = u.call("GET", "/api/v1/overview?days=14")
        assert st == 200, doc
        assert {x["sensor"]: x["silent"] for x in doc["sensors"]} == {"t1": True, "t2": True}
        assert doc["traffic"]["flows"] == 0  # the flows are long before this fortnight
    finally:
        s.stop()
