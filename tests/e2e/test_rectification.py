"""Rectification through the real programs (issue 12): the correlator stores alerts from
events, fenghuo-console moves them, the correlator reopens a rectified incident that
fires again, and the reports (JSON, CSV, PDF) give the rate of a hand-made history.

Moves run at a fixed instant (FENGHUO_TEST_NOW) and reports at a fixed --as-of, so
every figure below is computed by hand and nothing depends on the machine's clock or
speed. The concurrency test runs a correlator and the console on one store at the same
time and requires every update of both. Every test runs on an SQLite file and on a
PostgreSQL database (store_db in conftest.py).
"""

import csv
import io
import json
import os
import shutil
import struct
import subprocess
import zlib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(REPO, "rules", "level3")
ASSETS = os.path.join(REPO, "rules", "assets.example.yaml")

# Five EICAR downloads at 2026-03-02 10:00 Asia/Shanghai: rule l3_12_yara_virus (high,
# 72 h), one alert per source, owned by the destination's department.
HOSTS = {
    "I1": ("198.51.100.1", "10.10.1.10"),    # dmz-web: 大数据局
    "I2": ("198.51.100.2", "10.10.8.5"),     # dmz-api-gateway: 市政务服务管理办公室
    "I3": ("198.51.100.3", "10.20.8.5"),     # biz-rsj: 市人力资源和社会保障局
    "I4": ("198.51.100.4", "10.30.64.5"),    # data-czj: 市财政局
    "I5": ("198.51.100.5", "10.10.2.2"),     # dmz-web: 大数据局
}


def yara_event(src, dst, ts, sensor="s-core-01"):
    return json.dumps({
        "timestamp": ts, "event_type": "yara", "schema_version": "1.0",
        "sensor": {"id": sensor, "segment": "core"}, "flow_id": 1, "src_ip": src,
        "src_port": 56000, "dest_ip": dst, "dest_port": 80, "proto": "TCP",
        "app_proto": "http",
        "yara": {"rule": "EICAR_Test_File", "namespace": "fenghuo", "tags": ["test"],
                 "meta": {"severity": "high", "category": "malware.virus"},
                 "direction": "toclient", "offset": 0}}, separators=(",", ":")) + "\n"


def correlate(correlator, db, events, tmp_path, *extra):
    path = tmp_path / ("events-%d.ndjson" % len([f for f in os.listdir(tmp_path)
                                                 if f.startswith("events-")]))
    path.write_text("".join(events))
    p = subprocess.run([correlator, "--rules", RULES, "--assets", ASSETS, "--input", str(path),
                        "--db", str(db), *extra], capture_output=True, text=True, timeout=300,
                       cwd=REPO)
    assert p.returncode == 0, p.stderr
    return p


def run(console, db, *args, now=None, stdin=None):
    env = dict(os.environ)
    env.pop("FENGHUO_TEST_NOW", None)
    if now:
        env["FENGHUO_TEST_NOW"] = now
    return subprocess.run([console, *args, "--db", str(db)], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env, input=stdin)


def ids_by_src(store):
    return {src: i for i, src in store.query("SELECT id, src_ip FROM alerts")}


@pytest.fixture
def incidents(correlator, store_db, tmp_path):
    db = store_db.target
    correlate(correlator, db, [yara_event(s, d, "2026-03-02T02:00:00.000000+0000")
                               for s, d in HOSTS.values()], tmp_path)
    by_src = ids_by_src(store_db)
    ids = {name: by_src[src] for name, (src, _) in HOSTS.items()}
    assert len(set(ids.values())) == 5
    return db, ids


def test_bulk_moves_report_per_incident(console, incidents, store_db):
    db, ids = incidents
    p = run(console, db, "move", "acknowledged", ids["I1"], ids["I2"], "nosuch", "--actor",
            "analyst-li", now="2026-03-02T11:00:00+08:00")
    assert p.returncode == 1
    assert p.stdout.splitlines() == [
        ids["I1"] + "\tok\tnew -> acknowledged",
        ids["I2"] + "\tok\tnew -> acknowledged",
        "nosuch\trefused\tno incident nosuch",
    ]
    # ids from stdin; one illegal move among legal ones
    p = run(console, db, "move", "rectifying", "-", now="2026-03-02T12:00:00+08:00",
            stdin="%s\n%s\n" % (ids["I1"], ids["I3"]))
    assert p.returncode == 1
    assert p.stdout.splitlines() == [
        ids["I1"] + "\tok\tacknowledged -> rectifying",
        ids["I3"] + "\trefused\tan incident that is new cannot become rectifying "
                    "(from new: acknowledged, false_positive, duplicate, accepted_risk)",
    ]
    p = run(console, db, "move", "duplicate", ids["I4"], now="2026-03-02T12:00:00+08:00")
    assert p.returncode == 1 and "id of the incident it duplicates" in p.stdout
    p = run(console, db, "move", "duplicate", ids["I4"], "--duplicate-of", ids["I3"],
            "--comment", "同一事件", "--actor", "analyst-zhao", now="2026-03-02T12:05:00+08:00")
    assert p.returncode == 0, p.stdout + p.stderr
    p = run(console, db, "assign", ids["I1"], "--department", "市委网信办", "--assignee", "张三",
            "--actor", "admin-wang", now="2026-03-02T12:10:00+08:00")
    assert p.returncode == 0
    p = run(console, db, "show", ids["I1"])
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "rectifying (整改中)" in out
    assert "市委网信办" in out and "张三" in out
    assert "2026-03-05 10:00" in out  # deadline: first_seen + 72 h
    hist = out.split("history (处置记录):\n")[1].splitlines()
    assert len(hist) == 3
    assert "2026-03-02 11:00  status        new -> acknowledged  by analyst-li" in hist[0]
    assert "acknowledged -> rectifying" in hist[1]
    assert "assign" in hist[2] and "by admin-wang" in hist[2]
    assert "department: 大数据局 -> 市委网信办; assignee: (none) -> 张三" in hist[2]
    # the store says the same
    rows = store_db.query("SELECT actor, kind, from_state, to_state, comment FROM "
                          "incident_transitions WHERE alert_id = '%s' ORDER BY seq" % ids["I4"])
    assert rows == [("analyst-zhao", "status", "new", "duplicate", "同一事件")]


def history_for(correlator, console, incidents, tmp_path):
    """The hand-made history of the rate tests (times Asia/Shanghai)."""
    db, ids = incidents

    def mv(state, who, when, *extra):
        p = run(console, db, "move", state, ids[who], *extra, now=when)
        assert p.returncode == 0, p.stdout + p.stderr

    for who in ("I1", "I2", "I5"):
        mv("acknowledged", who, "2026-03-02T11:00:00+08:00")
        mv("rectifying", who, "2026-03-02T12:00:00+08:00")
    mv("rectified", "I1", "2026-03-03T09:00:00+08:00")         # on time
    mv("rectified", "I2", "2026-03-06T09:00:00+08:00")         # after the deadline
    mv("rectified", "I5", "2026-03-04T09:00:00+08:00")         # on time, then recurs
    mv("false_positive", "I4", "2026-03-02T13:00:00+08:00", "--comment", "扫描器")
    # I3 is never touched: open past its deadline
    # I5's source sends EICAR again: the correlator reopens it
    correlate(correlator, db, [yara_event(*HOSTS["I5"], "2026-03-04T04:00:00.000000+0000")],
              tmp_path)
    return db, ids


def test_recurrence_reopens_through_the_correlator(correlator, console, incidents, tmp_path,
                                                   store_db):
    db, ids = history_for(correlator, console, incidents, tmp_path)
    q = store_db.query
    assert q("SELECT COUNT(*) FROM alerts") == [(5,)]  # not a new alert
    status, reopened, count = q("SELECT status, reopen_count, count FROM alerts "
                                "WHERE id = '%s'" % ids["I5"])[0]
    last = q("SELECT actor, from_state, to_state, detail FROM incident_transitions "
             "WHERE alert_id = '%s' ORDER BY seq DESC LIMIT 1" % ids["I5"])[0]
    # untouched incidents stay as they were
    assert q("SELECT status FROM alerts WHERE id = '%s'" % ids["I1"]) == [("rectified",)]
    assert (status, reopened, count) == ("reopened", 1, 2)
    assert last[:3] == ("correlator", "rectified", "reopened")
    assert "recurrence at" in last[3]
    p = run(console, db, "move", "rectified", ids["I5"], now="2026-03-05T09:00:00+08:00")
    assert p.returncode == 1 and "from reopened: rectifying" in p.stdout


def report(console, db, *args):
    p = run(console, db, "report", "--from", "2026-03-01", "--to", "2026-03-31",
            "--as-of", "2026-03-10T12:00:00+08:00", *args)
    assert p.returncode == 0, p.stderr
    return p


def test_rate_per_department_equals_the_hand_table(correlator, console, incidents, tmp_path):
    db, ids = history_for(correlator, console, incidents, tmp_path)
    r = json.loads(report(console, db, "--format", "json").stdout)
    rows = {row["key"]: row for row in r["rows"]}

    def fig(row):
        return (row["rate"], sorted(row["on_time"]["ids"]), sorted(row["late"]["ids"]),
                sorted(row["pending"]["ids"]), sorted(row["excluded"]["ids"]),
                sorted(row["overdue"]["ids"]))

    want = {
        "大数据局": (0.5, [ids["I1"]], [ids["I5"]], [], [], [ids["I5"]]),
        "市政务服务管理办公室": (0.0, [], [ids["I2"]], [], [], []),
        "市人力资源和社会保障局": (0.0, [], [ids["I3"]], [], [], [ids["I3"]]),
        "市财政局": (None, [], [], [], [ids["I4"]], []),
    }
    assert {k: fig(v) for k, v in rows.items()} == want
    assert r["total"]["rate"] == 0.25
    assert r["total"]["on_time"]["count"] == 1 and r["total"]["late"]["count"] == 3
    assert r["period"] == {"from": "2026-02-28T16:00:00.000Z", "to": "2026-03-31T16:00:00.000Z"}
    assert "first_seen" in r["definition"]["en"] and "首次发现" in r["definition"]["zh"]
    assert r["policy"]["text"].startswith("critical 24 h (containment 2 h); high 72 h;")
    # MTTA over I1, I2, I5 (1 h each); MTTR over I1 (23 h), I2 (95 h), I5 (47 h)
    assert r["mtta"]["ms"] == 3600000
    assert r["mttr"]["ms"] == (23 + 95 + 47) * 3600000 // 3
    over = [(o["id"], o["overdue_ms"]) for o in r["overdue"]]
    # deadline 2026-03-05 10:00; as of 2026-03-10 12:00: 5 d 2 h
    assert sorted(over) == sorted([(ids["I3"], 122 * 3600000), (ids["I5"], 122 * 3600000)])
    # the rule of each, as the alert list names it (the dashboard shows it in the user's
    # language)
    import yaml
    with open(os.path.join(REPO, "rules", "level3", "l3_12_yara_malware.yml"), encoding="utf-8") as f:
        virus = next(d for d in yaml.safe_load_all(f) if d.get("name") == "l3_12_yara_virus")
    assert [o["rule_id"] for o in r["overdue"]] == [virus["id"]] * 2
    assert r["trend"][0]["month"] == "2026-03" and r["trend"][0]["rate"] == 0.25
    assert r["projection"]["target_reachable"] is False
    inc = {i["id"]: i for i in r["incidents"]}
    assert inc[ids["I5"]]["reason"] == "reopened after rectification"
    assert inc[ids["I1"]]["deadline"] == "2026-03-05T02:00:00.000Z"

    # an official notice moves I3's deadline to 2026-03-20: pending, not late
    p = run(console, db, "notice", ids["I3"], "--number", "市网信通〔2026〕7号", "--issuer",
            "市委网信办", "--date", "2026-03-06", "--deadline", "2026-03-20",
            now="2026-03-06T10:00:00+08:00")
    assert p.returncode == 0, p.stderr
    assert "deadline 2026-03-20 24:00" in p.stdout
    r = json.loads(report(console, db, "--format", "json").stdout)
    rows = {row["key"]: row for row in r["rows"]}
    assert rows["市人力资源和社会保障局"]["pending"]["ids"] == [ids["I3"]]
    assert rows["市人力资源和社会保障局"]["rate"] is None
    assert r["total"]["rate"] == round(1 / 3, 4)
    n = {i["id"]: i for i in r["incidents"]}[ids["I3"]]["notice"]
    assert n == {"number": "市网信通〔2026〕7号", "issuer": "市委网信办", "date": "2026-03-06"}

    # by severity and by clause: every incident is high, under L3-12's clauses
    r = json.loads(report(console, db, "--format", "json", "--by", "severity").stdout)
    assert [row["key"] for row in r["rows"]] == ["high"]
    r = json.loads(report(console, db, "--format", "json", "--by", "clause").stdout)
    assert all(row["late"]["count"] + row["on_time"]["count"] == 3 for row in r["rows"])


def test_csv_report_is_excel_safe(correlator, console, incidents, tmp_path):
    db, ids = history_for(correlator, console, incidents, tmp_path)
    # person-typed and attacker-influenced values that a spreadsheet would run as formulas
    for who, name in (("I1", "=HYPERLINK(\"http://evil/\",\"x\")"), ("I2", "+1+1"),
                      ("I3", "-2+3"), ("I5", "@SUM(A1)")):
        p = run(console, db, "assign", ids[who], "--assignee", name,
                now="2026-03-02T12:30:00+08:00")
        assert p.returncode == 0, p.stdout
    out = tmp_path / "r.csv"
    report(console, db, "--format", "csv", "--output", str(out))
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
    assert rows[0] == ["网络安全事件及时整改率报告 / Timely rectification rate report"]
    assert any(r[:1] == ["定义"] and "first_seen" in r[1] for r in rows)
    head = rows.index(next(r for r in rows if r[:1] == ["部门 / department"]))
    figures = {r[0]: r for r in rows[head + 1:head + 6]}
    assert figures["大数据局"][1:5] == ["50.0%", "2", "1", "1"]
    assert figures["市财政局"][1] == "n/a"
    assert figures["合计 / total"][1:5] == ["25.0%", "4", "1", "3"]
    assert figures["大数据局"][9] == ids["I1"] and figures["大数据局"][10] == ids["I5"]
    table = rows.index(next(r for r in rows if r[:1] == ["事件 / incident"]))
    col = rows[table].index("责任人 / assignee")
    assignees = sorted(r[col] for r in rows[table + 1:] if r and r[col])
    assert assignees == sorted(["'=HYPERLINK(\"http://evil/\",\"x\")", "'+1+1", "'-2+3",
                                "'@SUM(A1)"])
    # every cell that starts a formula is neutralised
    for r in rows:
        for v in r:
            assert not v or v[0] not in "=+-@", v


def read_png_rgb(data):
    """(width, height, RGB bytes) of an 8-bit RGB PNG (what pdftoppm -png writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            assert (depth, color) == (8, 2), "not 8-bit RGB"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, out, prev = zlib.decompress(idat), w * 3, bytearray(), bytearray(w * 3)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - 3] if x >= 3 else 0
            b, c = prev[x], prev[x - 3] if x >= 3 else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return w, h, bytes(out)


def test_pdf_report(correlator, console, incidents, tmp_path):
    for tool in ("pdftotext", "pdffonts", "pdftoppm"):
        if not shutil.which(tool):
            pytest.skip("%s not installed (poppler-utils: make deps)" % tool)
    db, ids = history_for(correlator, console, incidents, tmp_path)
    p = run(console, db, "notice", ids["I2"], "--number", "市网信通〔2026〕9号", "--issuer",
            "市委网信办", "--date", "2026-03-03", "--deadline", "2026-03-05",
            now="2026-03-03T10:00:00+08:00")
    assert p.returncode == 0, p.stderr
    out = tmp_path / "r.pdf"
    report(console, db, "--format", "pdf", "--output", str(out))
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout
    for want in ("网络安全事件及时整改率报告", "定义 Definition", "整改时限策略 Deadline policy",
                 "high 72 h", "first_seen", "市人力资源和社会保障局", "目标 target 95%",
                 "月度趋势", "超期未整改 Overdue (2)", "附录", "25.0%", "50.0%",
                 "市网信通〔2026〕9号", "2026-03-03"):
        assert want in text, want
    for i in ids.values():
        assert i in text  # the appendix lists every incident counted
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True,
                           check=True).stdout
    assert "NotoSansCJK" in fonts and " yes yes yes " in fonts  # embedded, subset, unicode
    # page 1 as a PNG: text, the bars and the red 95% line are drawn
    subprocess.run(["pdftoppm", "-png", "-f", "1", "-l", "1", "-r", "50", str(out),
                    str(tmp_path / "page")], check=True)
    png = next(f for f in os.listdir(tmp_path) if f.startswith("page") and f.endswith(".png"))
    w, h, px = read_png_rgb((tmp_path / png).read_bytes())
    dark = sum(1 for k in range(0, len(px), 3) if px[k] < 100 and px[k + 1] < 100)
    red = sum(1 for k in range(0, len(px), 3) if px[k] > 150 and px[k + 1] < 60
              and px[k + 2] < 60)
    assert dark > w * h // 100, "page 1 looks empty"
    assert red > 20, "no 95% target line"


def test_concurrent_correlator_and_console_lose_nothing(correlator, console, tmp_path,
                                                        store_db):
    """A correlator applying 20,000 events from a pipe and the console moving the same
    100 incidents while it runs: every hit is counted and every move is recorded. The
    events come in 20 chunks with console moves between them, so the console writes
    while the correlator is in the middle of its input (and must not hold the store's
    write lock while it waits for more)."""
    db = store_db.target
    srcs = ["198.51.%d.%d" % (101 + k // 50, k % 50 + 1) for k in range(100)]
    first = [yara_event(s, "10.10.1.10", "2026-03-02T02:00:00.000000+0000") for s in srcs]
    correlate(correlator, db, first, tmp_path)
    ids = sorted(ids_by_src(store_db).values())
    assert len(ids) == 100
    more = [yara_event(s, "10.10.1.10", "2026-03-02T02:%02d:%02d.000000+0000" % (r // 60, r % 60))
            for r in range(1, 200) for s in srcs]
    proc = subprocess.Popen([correlator, "--rules", RULES, "--assets", ASSETS, "--input", "-",
                             "--db", str(db), "--batch", "50"], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    batches = [(state, ids[i:i + 10]) for state in ("acknowledged", "rectifying")
               for i in range(0, 100, 10)]
    chunk = len(more) // len(batches) + 1
    try:
        for k, (state, group) in enumerate(batches):
            proc.stdin.write("".join(more[k * chunk:(k + 1) * chunk]))
            proc.stdin.flush()
            p = run(console, db, "move", state, *group, "--actor", "ops",
                    now="2026-03-02T11:00:00+08:00")
            assert p.returncode == 0, p.stdout + p.stderr
            assert p.stdout.count("\tok\t") == 10
        proc.stdin.close()
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rows = store_db.query("SELECT status, count, hits FROM alerts")
    assert rows == [("rectifying", 200, 200)] * 100
    assert store_db.query("SELECT COUNT(*) FROM incident_transitions") == [(200,)]
