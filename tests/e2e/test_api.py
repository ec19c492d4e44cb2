"""fenghuo-console serve: the HTTP API's foundations (issue 13, first part), on an SQLite
file and on PostgreSQL.

* Every response carries the security headers; errors are JSON codes; unknown paths,
  wrong methods and path traversal into or out of the static folder are refused.
* Bodies: over the cap (413, even before it is sent), invalid JSON, invalid UTF-8, deep
  nesting, wrong types and missing fields are answered with a JSON error and change
  nothing.
* Accounts: the first administrator's one-time password (printed once) must be changed
  before anything else; the password policy; five failures lock the account; a session
  idle longer than its timeout is gone; logout ends it.
* CSRF: a state change needs the session's token, and a browser's Origin must be ours.
* Roles: every route against every role, allowed and denied (403), unauthenticated 401.
* Audit log: logins, failures, denials, user creation and incident moves are recorded;
  `audit verify` and the auditor's endpoint find an edited, a deleted and an inserted
  record.
* The alert queue: an analyst sees its departments only; filters (severity, address,
  text with LIKE's wildcards taken literally, clause, status), sort and cursor pages
  (every alert once, in order), facets, groups, one alert with its evidence (an
  attacker's SNI round-trips exactly) and timeline, bulk moves over ids and over a
  filter whose count the user confirmed (409 with the new count when it changed).

Requests go through http.client, straight to the loopback address.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = ("sysadmin", "secadmin", "analyst", "compliance", "auditor")
PASSWORD = "Correct-Horse-42-battery"


class Client:
    """One browser: a cookie jar holding fh_session, and the CSRF token of its session."""

    def __init__(self, port):
        self.port, self.cookie, self.csrf = port, None, None

    def call(self, method, path, body=None, raw=None, csrf=True, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Content-Type": "application/json"}
        if self.cookie:
            h["Cookie"] = "fh_session=" + self.cookie
        if csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        m = re.match(r"fh_session=([^;]*)", hdrs.get("set-cookie", ""))
        if m:
            self.cookie = m.group(1) or None
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            doc = payload
        return r.status, doc, hdrs

    def login(self, user, password):
        st, doc, _ = self.call("POST", "/api/v1/session", {"user": user, "password": password})
        if st == 200:
            self.csrf = doc["csrf"]
        return st, doc


class Console:
    def __init__(self, console, store_db, tmp_path, *extra, env=None, first=True):
        """first: the store has no user yet (the console prints a one-time password)."""
        self.static = tmp_path / "static"
        self.static.mkdir(exist_ok=True)
        (self.static / "index.html").write_text("<!doctype html><title>烽火</title>")
        (tmp_path / "secret.txt").write_text("outside")
        if not (self.static / "link.txt").exists():
            os.symlink(tmp_path / "secret.txt", self.static / "link.txt")
        e = dict(os.environ)
        e.update(env or {})
        # a copy of the shipped rule folder (rules/level3 and its lists) that uploads may change
        self.rules = tmp_path / "rules" / "level3"
        if not self.rules.exists():
            shutil.copytree(os.path.join(REPO, "rules", "level3"), self.rules)
            shutil.copytree(os.path.join(REPO, "rules", "lists"), tmp_path / "rules" / "lists")
        self.assets = tmp_path / "rules" / "assets.yaml"
        if not self.assets.exists():
            shutil.copy(os.path.join(REPO, "rules", "assets.example.yaml"), self.assets)
        if "--rules" not in extra:
            extra = (*extra, "--rules", str(self.rules), "--assets", str(self.assets))
        self.proc = subprocess.Popen(
            [console, "serve", "--listen", "127.0.0.1:0", "--db", store_db.target, "--static",
             str(self.static), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=REPO, env=e)
        self.port = self.password = None
        deadline = time.time() + 60
        while time.time() < deadline and (self.port is None or (first and self.password is None)):
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on https?://127.0.0.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
            m = re.search(r"one-time password: (\S+) ", line)
            if m:
                self.password = m.group(1)
        assert self.port and (self.password or not first), \
            self.proc.stderr.read() if self.proc.poll() else ""

    def client(self):
        return Client(self.port)

    def stop(self):
        self.proc.terminate()
        try:
            assert self.proc.wait(timeout=30) == 0, self.proc.stderr.read()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def server(console, store_db, tmp_path):
    s = Console(console, store_db, tmp_path)
    yield s
    s.stop()


def admin(server):
    """A logged-in administrator whose one-time password was changed."""
    c = server.client()
    st, doc = c.login("admin", server.password)
    assert st == 200 and doc["must_change_password"] is True and doc["role"] == "sysadmin"
    st, doc, _ = c.call("POST", "/api/v1/session/password",
                        {"old": server.password, "new": PASSWORD})
    assert st == 200, doc
    return c


def users(server, c):
    """One user per role (the analyst sees 大数据局 only); a logged-in client each."""
    out = {}
    for role in ROLES:
        name = "u-" + role
        st, doc, _ = c.call("POST", "/api/v1/users",
                            {"name": name, "role": role, "password": PASSWORD + "-0"})
        assert st == 201, doc
        u = server.client()
        st, doc = u.login(name, PASSWORD + "-0")
        assert st == 200 and doc["must_change_password"] is True
        st, doc, _ = u.call("POST", "/api/v1/session/password",
                            {"old": PASSWORD + "-0", "new": PASSWORD + "-1"})
        assert st == 200, doc
        out[role] = u
    return out


def test_headers_errors_and_static(server):
    c = server.client()
    st, doc, h = c.call("GET", "/api/v1/version")
    assert st == 200 and doc["schema"] >= 6 and doc["version"]
    for k, v in (("content-security-policy", "frame-ancestors 'none'"),
                 ("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"),
                 ("cache-control", "no-store")):
        assert v in h[k], k
    assert "unsafe-inline" not in h["content-security-policy"]
    assert c.call("GET", "/api/v1/nothing")[:2] == (404, {"error": {"code": "not_found"}})
    assert c.call("PUT", "/api/v1/version")[:2] == (405,
                                                     {"error": {"code": "method_not_allowed"}})
    st, body, h = c.call("GET", "/")
    assert st == 200 and "烽火" in body.decode() and h["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/link.txt", "/.hidden",
                 "//etc/passwd", "/index.html/..", "/a\\..\\secret.txt"):
        st, doc, _ = c.call("GET", path)
        assert (st, doc) == (404, {"error": {"code": "not_found"}}), path
    st, _, _ = c.call("POST", "/index.html", raw=b"x")
    assert st == 405


def test_bad_bodies_change_nothing(server, store_db):
    c = server.client()
    before = store_db.query("SELECT COUNT(*) FROM users")
    cases = [
        (b"{", 400, "invalid_json"),
        (b'{"user": "admin", "password": "\xff\xfe"}', 400, "invalid_json"),
        (b"[" * 64 + b"]" * 64, 400, "too_deep"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, 400, "too_deep"),
        (b"[1, 2]", 400, "not_an_object"),
        (b'{"user": 7, "password": "x"}', 400, "wrong_type"),
        (b'{"user": "admin"}', 400, "missing_field"),
        (b'{"user": "admin", "user": "root", "password": "x"}', 400, "invalid_json"),
    ]
    for raw, status, code in cases:
        st, doc, _ = c.call("POST", "/api/v1/session", raw=raw)
        assert st == status and doc["error"]["code"] == code, (raw[:40], st, doc)
    st, doc, _ = c.call("POST", "/api/v1/session", raw=b'{"user": 7, "password": "x"}')
    assert doc["error"] == {"code": "wrong_type", "field": "user", "want": "string"}
    # a body announced larger than the cap is refused before it is sent
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/api/v1/session")
    conn.putheader("Content-Length", str(50 << 20))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["error"]["code"] == "body_too_large"
    conn.close()
    # and one that does not say its length (chunked) is cut at the cap: 2 MiB of it
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/api/v1/session", body=(b"x" * 65536 for _ in range(32)),
                 encode_chunked=True, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["error"]["code"] == "body_too_large"
    conn.close()
    assert store_db.query("SELECT COUNT(*) FROM users") == before
    assert store_db.query("SELECT COUNT(*) FROM sessions") == [(0,)]


def test_first_login_policy_lockout_and_logout(server, store_db):
    c = server.client()
    st, doc = c.login("admin", server.password)
    assert st == 200 and doc["must_change_password"]
    # nothing but the password change before it is changed
    st, doc, _ = c.call("POST", "/api/v1/users", {"name": "x", "role": "analyst",
                                                  "password": PASSWORD})
    assert (st, doc) == (403, {"error": {"code": "password_change_required"}})
    for new, code in (("short-1A", "too_short"), ("alllowercaseletters", "too_few_classes"),
                      (server.password, "same_password")):
        st, doc, _ = c.call("POST", "/api/v1/session/password",
                            {"old": server.password, "new": new})
        assert (st, doc["error"]["code"]) == (400, code)
    st, doc, _ = c.call("POST", "/api/v1/session/password", {"old": "wrong", "new": PASSWORD})
    assert (st, doc["error"]["code"]) == (400, "wrong_password")
    st, doc, _ = c.call("POST", "/api/v1/session/password",
                        {"old": server.password, "new": PASSWORD})
    assert st == 200
    # the one-time password is gone
    assert server.client().login("admin", server.password)[0] == 401
    # five failures lock the account (the one-time password above was the first), even
    # for the right password
    other = server.client()
    for i in range(3):
        assert other.login("admin", "nope-%d" % i)[1] == {"error": {"code": "bad_credentials"}}
    assert other.login("admin", "nope-5")[1] == {"error": {"code": "account_locked"}}
    assert other.login("admin", PASSWORD) == (423, {"error": {"code": "account_locked"}})
    # an unknown user is indistinguishable from a wrong password
    assert other.login("nobody", "x") == (401, {"error": {"code": "bad_credentials"}})
    # logout: the token is needed, then the session is gone
    st, doc, _ = c.call("DELETE", "/api/v1/session", csrf=False)
    assert (st, doc) == (403, {"error": {"code": "csrf_token_invalid"}})
    st, doc, _ = c.call("DELETE", "/api/v1/session",
                        headers={"Origin": "http://evil.example"})
    assert (st, doc) == (403, {"error": {"code": "origin_mismatch"}})
    st, doc, _ = c.call("DELETE", "/api/v1/session",
                        headers={"Origin": "http://127.0.0.1:%d" % server.port})
    assert st == 200
    assert c.call("GET", "/api/v1/session")[:2] == (401, {"error": {"code": "not_authenticated"}})
    # sessions are stored only as hashes
    assert all(len(h) == 64 for (h,) in store_db.query("SELECT id_hash FROM sessions"))
    actions = store_db.query("SELECT actor, action, outcome FROM audit_log ORDER BY seq")
    assert ("admin", "login", "ok") in actions
    assert ("admin", "login", "failed") in actions and ("admin", "login", "locked") in actions
    assert ("admin", "password.change", "ok") in actions
    assert ("admin", "logout", "ok") in actions
    assert ("admin", "csrf", "denied") in actions


def test_session_idle_timeout(console, store_db, tmp_path):
    s = Console(console, store_db, tmp_path, "--session-idle", "1")
    try:
        c = admin(s)
        assert c.call("GET", "/api/v1/session")[0] == 200
        time.sleep(2.5)  # longer than the idle timeout, whatever the machine's speed
        assert c.call("GET", "/api/v1/session")[:2] == (401,
                                                         {"error": {"code": "not_authenticated"}})
    finally:
        s.stop()


# method, path, body, the roles allowed
MATRIX = [
    ("GET", "/api/v1/session", None, set(ROLES)),
    ("POST", "/api/v1/users", {"name": "m-{role}", "role": "analyst",
                               "password": PASSWORD + "-m"}, {"sysadmin"}),
    ("GET", "/api/v1/audit", None, {"auditor"}),
    ("GET", "/api/v1/audit/verify", None, {"auditor"}),
    ("POST", "/api/v1/incidents/0000/transition", {"to": "acknowledged"}, {"analyst"}),
    ("GET", "/api/v1/alerts", None, {"analyst", "secadmin", "compliance"}),
    ("GET", "/api/v1/alerts/facets", None, {"analyst", "secadmin", "compliance"}),
    ("GET", "/api/v1/alerts/groups", None, {"analyst", "secadmin", "compliance"}),
    ("GET", "/api/v1/overview", None, {"analyst", "secadmin", "compliance"}),
    ("GET", "/api/v1/alerts/0000", None, {"analyst", "secadmin", "compliance"}),
    ("POST", "/api/v1/alerts/bulk", {"to": "acknowledged", "ids": []}, {"analyst"}),
    ("GET", "/api/v1/rectification/report?from=2026-03-01&to=2026-03-31", None,
     {"compliance"}),
    ("POST", "/api/v1/incidents/0000/assign", {"assignee": "x"}, {"analyst"}),
    ("POST", "/api/v1/incidents/0000/notice", {"number": "1", "issuer": "i",
                                               "date": "2026-03-01", "deadline": "2026-03-09"},
     {"analyst", "compliance"}),
    ("POST", "/api/v1/incidents/0000/comment", {"comment": "x"}, {"analyst"}),
    ("GET", "/api/v1/users", None, {"sysadmin"}),
    ("POST", "/api/v1/users/nobody", {"disabled": True}, {"sysadmin"}),
    ("POST", "/api/v1/users/nobody/password", {"password": PASSWORD}, {"sysadmin"}),
    ("GET", "/api/v1/tokens", None, set(ROLES)),
    ("POST", "/api/v1/tokens", {"name": "t", "expires_at": 1}, set(ROLES)),
    ("DELETE", "/api/v1/tokens/fht_0000000000000000", None, set(ROLES)),
    ("GET", "/api/v1/suppressions", None, {"secadmin"}),
    ("POST", "/api/v1/suppressions", {"rule_id": "r", "reason": "x", "expires_at": 1},
     {"secadmin"}),
    ("DELETE", "/api/v1/suppressions/0000", None, {"secadmin"}),
    ("GET", "/api/v1/rules", None, {"secadmin", "analyst"}),
    ("GET", "/api/v1/rules/titles", None, {"secadmin", "analyst", "compliance"}),
    ("GET", "/api/v1/rules/nope", None, {"secadmin", "analyst"}),
    ("POST", "/api/v1/rules", {"name": "bad name", "text": ""}, {"secadmin"}),
    ("POST", "/api/v1/rules/validate", {"name": "bad name", "text": ""}, {"secadmin"}),
    ("POST", "/api/v1/rules/reload", None, {"secadmin"}),
    ("POST", "/api/v1/rules/nope/enable", None, {"secadmin"}),
    ("POST", "/api/v1/rules/nope/disable", None, {"secadmin"}),
    ("GET", "/api/v1/assets", None, {"secadmin"}),
    ("POST", "/api/v1/assets", {"text": 5}, {"secadmin"}),
    ("POST", "/api/v1/assets/validate", {"text": 5}, {"secadmin"}),
    ("GET", "/api/v1/lists", None, {"secadmin"}),
    ("GET", "/api/v1/lists/nope", None, {"secadmin"}),
    ("POST", "/api/v1/lists/nope", {"text": 5}, {"secadmin"}),
    ("POST", "/api/v1/lists/nope/validate", {"text": 5}, {"secadmin"}),
    ("GET", "/api/v1/alerts/0000/events?by=flow", None, {"analyst", "secadmin", "compliance"}),
    ("GET", "/api/v1/events?host=10.0.0.1", None, {"secadmin"}),
    ("POST", "/api/v1/rules/test", {"name": "t.yml", "text": "x", "from": "2026-03-01",
                                    "to": "2026-03-02"}, {"secadmin"}),
]


def test_role_matrix(server):
    c = admin(server)
    clients = users(server, c)
    clients["sysadmin-admin"] = c
    anon = server.client()
    for method, path, body, allowed in MATRIX:
        st, doc, _ = anon.call(method, path, body)
        assert (st, doc) == (401, {"error": {"code": "not_authenticated"}}), (method, path)
        for role, u in clients.items():
            role = role.split("-")[0]
            b = json.loads(json.dumps(body).replace("{role}", role)) if body else None
            st, doc, _ = u.call(method, path, b)
            if role in allowed:
                assert st not in (401, 403), (role, method, path, st, doc)
            else:
                assert (st, doc) == (403, {"error": {"code": "forbidden"}}), (role, method, path)


def test_audit_chain_detects_tampering(server, store_db, console):
    c = admin(server)
    clients = users(server, c)
    auditor = clients["auditor"]
    st, doc, _ = auditor.call("GET", "/api/v1/audit/verify")
    assert st == 200 and doc["ok"] is True and doc["records"] >= 10
    st, doc, _ = auditor.call("GET", "/api/v1/audit?limit=5")
    assert [r["seq"] for r in doc["records"]] == [1, 2, 3, 4, 5]

    def verify():
        p = subprocess.run([console, "audit", "verify", "--db", store_db.target],
                           capture_output=True, text=True, cwd=REPO, timeout=60)
        return p.returncode, p.stdout

    cols = "seq, at, actor, source, action, object, outcome, detail, prev_hash, hash"

    def row(seq):
        return store_db.query("SELECT %s FROM audit_log WHERE seq = %d" % (cols, seq))[0]

    def sql_value(v):
        return "NULL" if v is None else str(v) if isinstance(v, int) else \
            "'%s'" % v.replace("'", "''")

    def put_back(r):
        store_db.execute("INSERT INTO audit_log (%s) VALUES (%s)"
                         % (cols, ", ".join(sql_value(v) for v in r)))

    rc, out = verify()
    assert rc == 0 and "audit log intact" in out
    # edited: one field of record 3
    saved = row(3)
    store_db.execute("UPDATE audit_log SET outcome = 'ok', actor = 'mallory' WHERE seq = 3")
    rc, out = verify()
    assert rc == 1 and "BROKEN at record 3" in out and "edited" in out, out
    st, doc, _ = auditor.call("GET", "/api/v1/audit/verify")
    assert (doc["ok"], doc["first_bad"]) == (False, 3)
    store_db.execute("DELETE FROM audit_log WHERE seq = 3")
    put_back(saved)
    assert verify()[0] == 0
    # deleted: record 5
    saved = row(5)
    store_db.execute("DELETE FROM audit_log WHERE seq = 5")
    rc, out = verify()
    assert rc == 1 and "BROKEN at record 5" in out and "deleted" in out, out
    put_back(saved)
    assert verify()[0] == 0
    # inserted: a forged record after the head
    head = store_db.query("SELECT seq, hash FROM audit_head")[0]
    store_db.execute("INSERT INTO audit_log (seq, at, actor, action, outcome, prev_hash, hash) "
                     "VALUES (%d, 1, 'mallory', 'login', 'ok', '%s', '%s')"
                     % (head[0] + 1, head[1], "0" * 64))
    rc, out = verify()
    assert rc == 1 and "BROKEN at record %d" % (head[0] + 1) in out and "inserted" in out, out


def test_transition_through_the_api(server, store_db, correlator, tmp_path):
    events = tmp_path / "ev.ndjson"
    ev = {"timestamp": "2026-03-02T02:00:00.000000+0000", "event_type": "yara",
          "schema_version": "1.0", "sensor": {"id": "s1", "segment": "core"}, "flow_id": 1,
          "src_ip": "198.51.100.9", "src_port": 5, "dest_ip": "10.10.1.10", "dest_port": 80,
          "proto": "TCP", "app_proto": "http",
          "yara": {"rule": "EICAR_Test_File", "namespace": "fenghuo", "tags": [],
                   "meta": {"severity": "high", "category": "malware.virus"},
                   "direction": "toclient", "offset": 0}}
    other = dict(ev, src_ip="198.51.100.10", dest_ip="10.30.64.5")  # 市财政局
    events.write_text(json.dumps(ev) + "\n" + json.dumps(other) + "\n")
    p = subprocess.run([correlator, "--rules", os.path.join(REPO, "rules", "level3"),
                        "--assets", os.path.join(REPO, "rules", "assets.example.yaml"),
                        "--input", str(events), "--db", store_db.target],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    ids = dict(store_db.query("SELECT src_ip, id FROM alerts"))
    c = admin(server)
    st, doc, _ = c.call("POST", "/api/v1/users", {"name": "li", "role": "analyst",
                                                  "password": PASSWORD})
    assert st == 201
    # the analyst sees 大数据局 only
    subprocess.run(["psql", "-q", store_db.target, "-c",
                    "UPDATE users SET departments = '大数据局' WHERE name = 'li'"]
                   if store_db.backend == "postgresql" else ["true"], check=True)
    if store_db.backend == "sqlite":
        store_db.execute("UPDATE users SET departments = '大数据局' WHERE name = 'li'")
    a = server.client()
    assert a.login("li", PASSWORD)[0] == 200
    assert a.call("POST", "/api/v1/session/password",
                  {"old": PASSWORD, "new": PASSWORD + "!"})[0] == 200
    mine, theirs = ids["198.51.100.9"], ids["198.51.100.10"]
    st, doc, _ = a.call("POST", "/api/v1/incidents/%s/transition" % mine,
                        {"to": "acknowledged", "comment": "看到了"})
    assert (st, doc) == (200, {"id": mine, "from": "new", "to": "acknowledged"})
    st, doc, _ = a.call("POST", "/api/v1/incidents/%s/transition" % mine, {"to": "closed"})
    assert (st, doc) == (409, {"error": {"code": "transition_refused", "to": "closed"}})
    # another department's incident looks absent
    st, doc, _ = a.call("POST", "/api/v1/incidents/%s/transition" % theirs, {"to": "acknowledged"})
    assert (st, doc) == (404, {"error": {"code": "not_found"}})
    assert store_db.query("SELECT status FROM alerts WHERE id = '%s'" % theirs) == [("new",)]
    rows = store_db.query("SELECT actor, action, object, outcome, detail FROM audit_log "
                          "WHERE action = 'incident.transition' ORDER BY seq")
    assert rows == [("li", "incident.transition", mine, "ok", "new -> acknowledged"),
                    ("li", "incident.transition", mine, "refused", "closed")]
    hist = store_db.query("SELECT actor, from_state, to_state, comment FROM incident_transitions "
                          "WHERE alert_id = '%s'" % mine)
    assert hist == [("li", "new", "acknowledged", "看到了")]
    # assignment and an official notice through the API, recorded and audited
    st, doc, _ = a.call("POST", "/api/v1/incidents/%s/assign" % mine,
                        {"assignee": "王工", "comment": "值班"})
    assert (st, doc) == (200, {"id": mine, "ok": True})
    st, doc, _ = a.call("POST", "/api/v1/incidents/%s/assign" % mine, {"comment": "x"})
    assert (st, doc) == (400, {"error": {"code": "missing_field"}})
    st, doc, _ = a.call("POST", "/api/v1/incidents/%s/notice" % mine,
                        {"number": "市网信通〔2026〕9号", "issuer": "市委网信办",
                         "date": "2026-03-03", "deadline": "2026-03-10"})
    assert st == 200 and doc["deadline"] == 1773158400000  # 2026-03-10 24:00 +08:00
    st, doc, _ = a.call("POST", "/api/v1/incidents/%s/notice" % mine,
                        {"number": "n", "issuer": "i", "date": "03/03", "deadline": "x"})
    assert (st, doc) == (400, {"error": {"code": "bad_time"}})
    assert a.call("POST", "/api/v1/incidents/%s/assign" % theirs,
                  {"assignee": "x"})[:2] == (404, {"error": {"code": "not_found"}})
    assert store_db.query("SELECT assignee, notice_no, deadline_source FROM alerts WHERE id = '%s'"
                          % mine) == [("王工", "市网信通〔2026〕9号", "notice")]
    kinds = store_db.query("SELECT kind FROM incident_transitions WHERE alert_id = '%s' "
                           "ORDER BY seq" % mine)
    assert kinds == [("status",), ("assign",), ("notice",)]
    assert store_db.query("SELECT action, outcome FROM audit_log WHERE action IN "
                          "('incident.assign', 'incident.notice') ORDER BY seq") == [
        ("incident.assign", "ok"), ("incident.notice", "ok")]


def test_metrics(server):
    c = server.client()
    c.call("GET", "/api/v1/version")
    c.call("GET", "/api/v1/nothing")
    st, body, h = c.call("GET", "/metrics")
    text = body.decode() if isinstance(body, bytes) else body
    assert st == 200 and h["content-type"].startswith("text/plain; version=0.0.4")
    # per route (method and path pattern); an unknown path counts under "other"
    assert re.search(r'^fenghuo_console_http_requests_total\{kind="api",method="GET",'
                     r'route="/api/v1/version",code="2xx"\} 1$', text, re.M), text
    assert re.search(r'^fenghuo_console_http_requests_total\{kind="api",method="other",'
                     r'route="other",code="4xx"\} 1$', text, re.M), text
    assert ('fenghuo_console_http_request_duration_seconds_bucket{kind="api",method="GET",'
            'route="/api/v1/version",le="+Inf"} 1') in text
    assert "# TYPE fenghuo_console_http_request_duration_seconds histogram" in text


HOSTILE_SNI = "<script>alert('x')</script>\"&%_\\\u202e中文.example\u0000end"


def alert_store(correlator, store_db, tmp_path):
    """Four EICAR alerts (three in 大数据局, one in 市财政局) and a weak-TLS alert whose
    evidence carries an attacker's SNI."""
    base = {"timestamp": "2026-03-02T02:00:00.000000+0000", "event_type": "yara",
            "schema_version": "1.0", "sensor": {"id": "s1", "segment": "core"}, "flow_id": 1,
            "src_port": 5, "dest_port": 80, "proto": "TCP", "app_proto": "http",
            "yara": {"rule": "EICAR_Test_File", "namespace": "fenghuo", "tags": [],
                     "meta": {"severity": "high", "category": "malware.virus"},
                     "direction": "toclient", "offset": 0}}
    lines = []
    for k, (src, dst) in enumerate((("198.51.100.1", "10.10.1.10"), ("198.51.100.2", "10.10.1.11"),
                                    ("198.51.100.3", "10.10.2.2"), ("198.51.100.4", "10.30.64.5"))):
        lines.append(json.dumps(dict(base, src_ip=src, dest_ip=dst,
                                     timestamp="2026-03-02T02:0%d:00.000000+0000" % k)))
    with open(os.path.join(REPO, "tests", "rules", "L3-02", "events.ndjson")) as f:
        tls = json.loads(f.readline())
    tls["tls"]["sni"] = HOSTILE_SNI
    tls["src_ip"] = "198.51.100.77"
    lines.append(json.dumps(tls))
    path = tmp_path / "queue.ndjson"
    path.write_text("\n".join(lines) + "\n")
    p = subprocess.run([correlator, "--rules", os.path.join(REPO, "rules", "level3"),
                        "--assets", os.path.join(REPO, "rules", "assets.example.yaml"),
                        "--input", str(path), "--db", store_db.target],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    return dict(store_db.query("SELECT src_ip, id FROM alerts"))


def test_alert_queue(server, store_db, correlator, tmp_path):
    ids = alert_store(correlator, store_db, tmp_path)
    c = admin(server)
    for name, role in (("li", "analyst"), ("zhou", "compliance")):
        assert c.call("POST", "/api/v1/users", {"name": name, "role": role,
                                                "password": PASSWORD})[0] == 201
    store_db.execute("UPDATE users SET departments = '大数据局' WHERE name = 'li'")
    li, zhou = server.client(), server.client()
    for u, name in ((li, "li"), (zhou, "zhou")):
        assert u.login(name, PASSWORD)[0] == 200
        assert u.call("POST", "/api/v1/session/password",
                      {"old": PASSWORD, "new": PASSWORD + "!"})[0] == 200
    mine = {ids[s] for s in ("198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.77")}
    # the analyst sees its department only, whatever it asks for
    st, doc, _ = li.call("GET", "/api/v1/alerts")
    assert st == 200 and {a["id"] for a in doc["alerts"]} == mine and doc["next"] is None
    st, doc, _ = li.call("GET", "/api/v1/alerts?department=%E5%B8%82%E8%B4%A2%E6%94%BF%E5%B1%80")
    assert doc["alerts"] == []
    st, doc, _ = zhou.call("GET", "/api/v1/alerts")
    assert {a["id"] for a in doc["alerts"]} == set(ids.values())
    # filters
    st, doc, _ = li.call("GET", "/api/v1/alerts?severity=medium")
    assert [a["id"] for a in doc["alerts"]] == [ids["198.51.100.77"]]
    st, doc, _ = li.call("GET", "/api/v1/alerts?address=10.10.1.11")
    assert [a["id"] for a in doc["alerts"]] == [ids["198.51.100.2"]]
    st, doc, _ = li.call("GET", "/api/v1/alerts?q=100.3")
    assert [a["id"] for a in doc["alerts"]] == [ids["198.51.100.3"]]
    st, doc, _ = li.call("GET", "/api/v1/alerts?q=%25")  # a literal %, not a wildcard
    assert doc["alerts"] == []
    st, doc, _ = li.call("GET", "/api/v1/alerts?clause=8.1.4.1.c&status=new")
    assert st == 200
    assert li.call("GET", "/api/v1/alerts?severity=bogus")[1] == {"error": {"code": "bad_severity"}}
    assert li.call("GET", "/api/v1/alerts?sort=bogus")[1] == {"error": {"code": "bad_sort"}}
    assert li.call("GET", "/api/v1/alerts?cursor=x")[1] == {"error": {"code": "bad_cursor"}}
    # cursor pagination: one per page, every alert once, newest first
    seen, cursor = [], None
    while True:
        st, doc, _ = li.call("GET", "/api/v1/alerts?limit=1&sort=-last_seen"
                             + ("&cursor=" + cursor if cursor else ""))
        assert st == 200
        seen += [(a["last_seen"], a["id"]) for a in doc["alerts"]]
        cursor = doc["next"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 4 and seen == sorted(seen, reverse=True)
    # facets and groups
    st, doc, _ = li.call("GET", "/api/v1/alerts/facets")
    assert doc["total"] == 4 and doc["severity"] == {"high": 3, "medium": 1}
    assert doc["department"] == {"大数据局": 4}
    st, doc, _ = zhou.call("GET", "/api/v1/alerts/groups?by=rule")
    assert sorted((g["rule_name"], g["alerts"]) for g in doc["groups"]) == [
        ("l3_02_weak_tls", 1), ("l3_12_yara_virus", 4)]
    assert zhou.call("GET", "/api/v1/alerts/groups?by=nonsense")[1] == {
        "error": {"code": "bad_group"}}
    # one alert: the attacker's SNI comes back exactly, as JSON data
    st, doc, h = li.call("GET", "/api/v1/alerts/" + ids["198.51.100.77"])
    assert st == 200 and h["content-type"].startswith("application/json")
    ev = json.loads(doc["alert"]["evidence"][0]["event"])
    assert ev["tls"]["sni"] == HOSTILE_SNI
    assert doc["incident"]["status"] == "new" and doc["timeline"] == []
    assert li.call("GET", "/api/v1/alerts/" + ids["198.51.100.4"])[0] == 404  # not theirs
    # bulk over a filter: the count confirmed, else 409 with the count now
    st, doc, _ = li.call("POST", "/api/v1/alerts/bulk?severity=high",
                         {"to": "acknowledged", "expect": 2})
    assert (st, doc) == (409, {"error": {"code": "count_changed", "count": 3}})
    st, doc, _ = li.call("POST", "/api/v1/alerts/bulk?severity=high",
                         {"to": "acknowledged", "expect": 3, "comment": "批量确认"})
    assert st == 200 and sorted(r["result"] for r in doc["results"]) == ["ok"] * 3
    # bulk over ids: a result each (already acknowledged, not theirs, absent)
    st, doc, _ = li.call("POST", "/api/v1/alerts/bulk",
                         {"to": "acknowledged", "ids": [ids["198.51.100.1"], ids["198.51.100.77"],
                                                        ids["198.51.100.4"], "nosuch"]})
    assert [r["result"] for r in doc["results"]] == ["transition_refused", "ok", "not_found",
                                                     "not_found"]
    assert store_db.query("SELECT status FROM alerts WHERE id = '%s'"
                          % ids["198.51.100.4"]) == [("new",)]
    st, doc, _ = li.call("GET", "/api/v1/alerts/" + ids["198.51.100.1"])
    assert [(t["from"], t["to"], t.get("comment")) for t in doc["timeline"]] == [
        ("new", "acknowledged", "批量确认")]


def test_openapi_matches_the_routes(console):
    """docs/openapi.yaml and the server's route table name the same operations with the
    same roles, both ways."""
    import yaml
    with open(os.path.join(REPO, "docs", "openapi.yaml")) as f:
        doc = yaml.safe_load(f)
    assert doc["openapi"].startswith("3.")
    documented = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            documented[(method.upper(), path)] = set(op["x-roles"])
    p = subprocess.run([console, "routes"], capture_output=True, text=True, check=True)
    served = {}
    for line in p.stdout.splitlines():
        method, path, *roles = line.split()
        served[(method, path)] = set(roles)
    assert set(served) - set(documented) == set(), "served but not documented"
    assert set(documented) - set(served) == set(), "documented but not served"
    for k in served:
        assert served[k] == documented[k], k


def test_report_download(server, store_db, correlator, tmp_path):
    alert_store(correlator, store_db, tmp_path)
    c = admin(server)
    assert c.call("POST", "/api/v1/users", {"name": "zhou", "role": "compliance",
                                            "password": PASSWORD})[0] == 201
    z = server.client()
    assert z.login("zhou", PASSWORD)[0] == 200
    assert z.call("POST", "/api/v1/session/password",
                  {"old": PASSWORD, "new": PASSWORD + "!"})[0] == 200
    q = "/api/v1/rectification/report?from=2026-03-01&to=2026-03-31&as_of=2026-03-20"
    st, doc, _ = z.call("GET", q)
    # the four EICAR incidents (high, due 03-05 10:00) are open past it; the TLS one (from
    # November) is not in the period
    assert st == 200 and doc["total"]["late"]["count"] == 4 and doc["total"]["rate"] == 0.0
    st, body, h = z.call("GET", q + "&format=csv")
    assert st == 200 and h["content-type"].startswith("text/csv")
    assert 'attachment; filename="rectification-2026-03-01-2026-03-31.csv"' == \
        h["content-disposition"]
    assert body.startswith(b"\xef\xbb\xbf")
    st, body, h = z.call("GET", q + "&format=pdf")
    assert st == 200 and h["content-type"] == "application/pdf" and body.startswith(b"%PDF-")
    assert z.call("GET", q.replace("2026-03-01", "bogus"))[1] == {"error": {"code": "bad_period"}}
    assert z.call("GET", q + "&format=doc")[1] == {"error": {"code": "bad_format"}}
    rows = store_db.query("SELECT actor, action, outcome FROM audit_log "
                          "WHERE action = 'report.download'")
    assert rows == [("zhou", "report.download", "ok")] * 3
