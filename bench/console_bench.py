#!/usr/bin/python3
"""The console API under load (bench/README.md, "The console API"): one million alerts in
the store (SQLite, and PostgreSQL when FH_TEST_PG names a server, as tests/tools/pg.sh run
gives), fenghuo-console serve with its default four threads, and wrk (Debian) with 2
threads and 16 connections for FH_BENCH_WRK_SECONDS (default 10) per endpoint:

  floor    GET /api/v1/health                       the server and one trivial query
  list     GET /api/v1/alerts?limit=50              the queue's first page, newest first
  page     GET /api/v1/alerts?limit=50&cursor=...   a page deep in the queue (keyset)
  facets   GET /api/v1/alerts/facets                the queue's counts (total, by severity,
                                                    status, department, rule)
  groups   GET /api/v1/alerts/groups?by=rule        GROUP BY over every alert
  grp-24h  the same over the last day (the dashboard's default range)

Prints p50 and p99 latency and requests/s, and each p99 as a ratio to the floor measured in
the same run on the same store. Timings are reported, never checked.

usage: console_bench.py BUILD_DIR WORK_DIR
"""

import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

N = int(os.environ.get("FH_BENCH_ALERTS", "1000000"))
SECONDS = int(os.environ.get("FH_BENCH_WRK_SECONDS", "10"))
PASSWORD = "Bench-Passw0rd-2026"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RULES = 40
DEPTS = ["大数据局", "市财政局", "市委网信办", "市公安局", "市卫健委"]
STATES = ["new", "new", "acknowledged", "rectifying", "rectified", "closed", "false_positive"]
LEVELS = ["informational", "low", "medium", "high", "critical"]
BASE = 1767225600000  # 2026-01-01T00:00:00Z


def rows_sql(n):
    """One INSERT ... SELECT over a series, the same for both backends (series differs)."""
    return (
        "INSERT INTO alerts (id, rule_id, title, level, severity, status, group_key, "
        "window_start, first_seen, last_seen, count, hits, src_ip, dest_ip, department, "
        "created_at, updated_at) SELECT {ID}, 'rule-' || (n %% %(rules)d), "
        "'Bench rule ' || (n %% %(rules)d), %(level)s, n %% 5, %(state)s, "
        "'src_ip=10.' || (n %% 200) || '.' || ((n / 200) %% 250) || '.' || (n %% 7), "
        "%(base)d + n * 1000, %(base)d + n * 1000, %(base)d + n * 1000 + 500, 1 + n %% 7, "
        "1 + n %% 7, '10.' || (n %% 200) || '.' || ((n / 200) %% 250) || '.' || (n %% 7), "
        "'10.99.' || (n %% 250) || '.1', %(dept)s, %(base)d + n * 1000, %(base)d + n * 1000 "
        "FROM series" % {
            "rules": RULES, "base": BASE,
            "level": "CASE n % 5 " + " ".join("WHEN %d THEN '%s'" % (i, lv)
                                               for i, lv in enumerate(LEVELS)) + " END",
            "state": "CASE n % 7 " + " ".join("WHEN %d THEN '%s'" % (i, s)
                                               for i, s in enumerate(STATES)) + " END",
            "dept": "CASE n % 5 " + " ".join("WHEN %d THEN '%s'" % (i, d)
                                              for i, d in enumerate(DEPTS)) + " END"})


def fill_sqlite(path, n):
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    sql = rows_sql(n).replace("{ID}", "printf('%032x', n)")
    db.execute("WITH RECURSIVE series(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM series "
               "WHERE n < %d) " % n + sql)
    db.commit()
    db.execute("ANALYZE")
    db.close()


def fill_pg(uri, n):
    sql = rows_sql(n).replace("{ID}", "lpad(to_hex(n), 32, '0')")
    sql = "WITH series AS (SELECT generate_series(1, %d) AS n) " % n + sql
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", uri, "-c", sql], check=True)
    subprocess.run(["psql", "-q", uri, "-c", "VACUUM ANALYZE alerts"], check=True)


def call(port, method, path, body=None, cookie=None, csrf=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    h = {"Content-Type": "application/json"}
    if cookie:
        h["Cookie"] = "fh_session=" + cookie
    if csrf:
        h["X-CSRF-Token"] = csrf
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    m = re.match(r"fh_session=([^;]*)", r.getheader("Set-Cookie") or "")
    c.close()
    return r.status, json.loads(data) if data else None, m.group(1) if m else cookie


def login(port, user, pw, new):
    st, doc, cookie = call(port, "POST", "/api/v1/session", {"user": user, "password": pw})
    assert st == 200, doc
    st, doc2, cookie = call(port, "POST", "/api/v1/session/password", {"old": pw, "new": new},
                            cookie, doc["csrf"])
    assert st == 200, doc2
    return cookie, doc["csrf"]


def token(bin_dir, target, work):
    """A compliance user (sees every department) and an API token for wrk."""
    proc = subprocess.Popen([os.path.join(bin_dir, "fenghuo-console"), "serve", "--listen",
                             "127.0.0.1:0", "--db", target, "--static", work],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=ROOT)
    port = pw = None
    while port is None or pw is None:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("fenghuo-console serve did not start")
        m = re.search(r"listening on http://127.0.0.1:(\d+)/", line)
        port = int(m.group(1)) if m else port
        m = re.search(r"one-time password: (\S+) ", line)
        pw = m.group(1) if m else pw
    cookie, csrf = login(port, "admin", pw, PASSWORD)
    call(port, "POST", "/api/v1/users", {"name": "bench", "role": "compliance",
                                         "password": PASSWORD + "-0"}, cookie, csrf)
    cookie, csrf = login(port, "bench", PASSWORD + "-0", PASSWORD + "-1")
    st, doc, _ = call(port, "POST", "/api/v1/tokens",
                      {"name": "wrk", "expires_at": int(time.time() * 1000) + 86400000},
                      cookie, csrf)
    assert st == 201, doc
    return proc, port, doc["token"]


def ms(text):
    v = float(re.match(r"[\d.]+", text).group(0))
    return v / 1000 if text.endswith("us") else v * 1000 if text.endswith("s") and \
        not text.endswith("ms") else v


def wrk(port, path, tok):
    out = subprocess.run(["wrk", "-t2", "-c16", "-d%ds" % SECONDS, "--timeout", "60s", "--latency",
                          "-H",
                          "Authorization: Bearer " + tok, "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, check=True).stdout
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    if os.environ.get("FH_BENCH_VERBOSE"):
        print(out)
    bad = ("%s non-2xx" % non2xx.group(1)) if non2xx else ""
    if errors and any(int(x) for x in errors.groups()):
        bad += "%ssocket errors: connect %s, read %s, write %s, timeout %s" % (
            "; " if bad else "", *errors.groups())
    return p50, p99, rps, bad


def run(backend, bin_dir, target, work):
    t0 = time.time()
    subprocess.run([os.path.join(bin_dir, "fenghuo-correlator"), "--rules",
                    os.path.join(ROOT, "rules", "level3"), "--input", "/dev/null", "--db",
                    target], check=True, capture_output=True, cwd=ROOT)
    (fill_sqlite if backend == "sqlite" else fill_pg)(target, N)
    fill = time.time() - t0
    proc, port, tok = token(bin_dir, target, work)
    try:
        # a page deep in the queue: the cursor after 20 pages of 500
        cursor = None
        for _ in range(20):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            c.request("GET", "/api/v1/alerts?limit=500" + ("&cursor=" + cursor if cursor else ""),
                      headers={"Authorization": "Bearer " + tok})
            page = json.loads(c.getresponse().read())
            c.close()
            cursor = page["next"]
        day = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                            time.gmtime((BASE + N * 1000 - 86400000) / 1000))
        rows = [("floor", "/api/v1/health"), ("list", "/api/v1/alerts?limit=50"),
                ("page", "/api/v1/alerts?limit=50&cursor=" + cursor),
                ("facets", "/api/v1/alerts/facets"),
                ("fac-24h", "/api/v1/alerts/facets?from=" + day),
                ("groups", "/api/v1/alerts/groups?by=rule"),
                ("grp-24h", "/api/v1/alerts/groups?by=rule&from=" + day)]
        res = {name: wrk(port, path, tok) for name, path in rows}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print("  %s: %d alerts filled in %.0f s" % (backend, N, fill))
    floor = res["floor"][1]
    for name, path in rows:
        p50, p99, rps, bad = res[name]
        print("    %-7s %-36s p50 %8.2f ms  p99 %8.2f ms  %8.0f req/s  p99/floor %6.1f%s" % (
            name, path if len(path) < 36 else path[:33] + "...", p50, p99, rps, p99 / floor,
            "  (%s)" % bad if bad else ""))


def main():
    bin_dir, work = os.path.join(sys.argv[1], "bin"), sys.argv[2]
    os.makedirs(work, exist_ok=True)
    print()
    print("Console API, %d alerts, wrk -t2 -c16 -d%ds (p99 as a ratio to the floor, "
          "GET /api/v1/health, same run):" % (N, SECONDS))
    path = os.path.join(work, "console-bench.db")
    for f in (path, path + "-wal", path + "-shm"):
        if os.path.exists(f):
            os.unlink(f)
    run("sqlite", bin_dir, path, work)
    if os.environ.get("FH_TEST_PG"):
        run("postgresql", bin_dir, os.environ["FH_TEST_PG"], work)
    else:
        print("  postgresql: skipped (no server: run through tests/tools/pg.sh run)")


if __name__ == "__main__":
    main()
