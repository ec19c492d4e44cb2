"""The correlator against hostile rules and events (issue 10).

* A condition of 100,000 terms loads and runs (it once overflowed the stack).
* Rule files with an empty modifier or a key given twice are refused with file:line.
* An IOC list of 200,000 inline values loads and matches its last value.
* Addresses: a value with a NUL inside, or longer than any address, is grouped and shown
  whole and names no asset.
* One event stamped 9999-12-31 (before or among the normal events of every rule-pack
  scenario) changes no alert of the scenario.
* Rules refused at start are named in the log, the store's health row and the metrics
  file; --strict does not start.
"""

import json
import os
import re
import sqlite3
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACK = os.path.join(REPO, "rules", "level3")
ASSETS = os.path.join(REPO, "rules", "assets.example.yaml")
SCENARIOS = sorted(os.listdir(os.path.join(REPO, "tests", "rules")))


def run(correlator, args, timeout=300):
    return subprocess.run([correlator] + args, capture_output=True, text=True, timeout=timeout)


def alerts_of(path):
    last = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            a = json.loads(line)
            last[a["id"]] = a
    return list(last.values())


def flow(src, dst, second, app="telnet", sensor="s1"):
    return {"timestamp": "2026-11-20T02:00:%02d.000000+0000" % second, "event_type": "flow",
            "schema_version": "1.0", "sensor": {"id": sensor, "segment": "core"},
            "src_ip": src, "src_port": 40000, "dest_ip": dst, "dest_port": 23, "proto": "TCP",
            "app_proto": app}


def write_events(path, events):
    with open(path, "w", encoding="utf-8") as f:
        for e in events:
            f.write((e if isinstance(e, str) else json.dumps(e)) + "\n")


# ---- hostile rules --------------------------------------------------------------------------

def test_condition_of_100000_terms(correlator, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "long.yml").write_text(
        "title: long condition\nlogsource: {product: fenghuo}\ndetection:\n"
        "  sel:\n    app_proto: telnet\n  condition: " + " or ".join(["sel"] * 100000) +
        "\nlevel: high\n")
    p = run(correlator, ["--check-rules", str(rules), "-q"])
    assert p.returncode == 0, p.stderr[-2000:]
    assert "1 rules loaded (0 correlation), 0 refused" in p.stdout
    write_events(tmp_path / "ev.json", [flow("172.16.20.5", "10.20.1.20", 1)])
    p = run(correlator, ["--rules", str(rules), "--input", str(tmp_path / "ev.json"),
                         "--alerts-out", str(tmp_path / "a.json")])
    assert p.returncode == 0, p.stderr[-2000:]
    assert [a["rule"]["title"] for a in alerts_of(tmp_path / "a.json")] == ["long condition"]


def test_empty_modifier_and_duplicate_keys_refused(correlator, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.yml").write_text(
        "title: empty modifier\nlogsource: {product: fenghuo}\ndetection:\n"
        "  sel:\n    app_proto||contains: ssh\n  condition: sel\nlevel: high\n"
        "---\n"
        "title: key twice\nlogsource: {product: fenghuo}\ndetection:\n"
        "  sel:\n    dest_port: 22\n    app_proto: ssh\n    dest_port: 23\n"
        "  condition: sel\nlevel: high\n"
        "---\n"
        "title: selection twice\nlogsource: {product: fenghuo}\ndetection:\n"
        "  sel:\n    dest_port: 22\n  sel:\n    dest_port: 23\n  condition: sel\nlevel: high\n"
        "---\n"
        "title: trailing bar\nlogsource: {product: fenghuo}\ndetection:\n"
        "  sel:\n    app_proto|: ssh\n  condition: sel\nlevel: high\n")
    p = run(correlator, ["--check-rules", str(rules), "-q"])
    assert p.returncode == 1
    f = str(rules / "bad.yml")
    assert "%s:5: rule 'empty modifier': empty modifier in 'app_proto||contains'" % f \
        in p.stdout
    assert "%s:15: rule 'key twice': duplicate key 'dest_port' in a selection " \
           "(first at line 13)" % f in p.stdout
    assert "%s:24: rule 'selection twice': duplicate key 'sel' in 'detection' " \
           "(first at line 22)" % f in p.stdout
    assert "%s:33: rule 'trailing bar': empty modifier in 'app_proto|'" % f in p.stdout
    assert "0 rules loaded (0 correlation), 4 refused" in p.stdout
    # correlation rules too (they have their own compiler, the same YAML helper)
    (rules / "bad.yml").write_text(
        "title: base\nname: base\nlogsource: {product: fenghuo}\ndetection:\n"
        "  sel: {app_proto: ssh}\n  condition: sel\nlevel: low\n---\n"
        "title: corr twice\ncorrelation:\n  type: event_count\n  rules: [base]\n"
        "  group-by: [src_ip]\n  timespan: 5m\n  timespan: 10m\n  condition: {gte: 3}\n"
        "level: high\n")
    p = run(correlator, ["--check-rules", str(rules), "-q"])
    assert p.returncode == 1
    assert "%s:15: rule 'corr twice': duplicate key 'timespan' (first at line 14)" % f \
        in p.stdout, p.stdout


def test_inline_list_of_200000_values(correlator, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    with open(rules / "iocs.yml", "w") as f:
        f.write("title: ioc list\nlogsource: {product: fenghuo}\ndetection:\n"
                "  sel:\n    dest_ip:\n")
        for i in range(200000):
            f.write("      - '10.%d.%d.%d'\n" % (i >> 16, (i >> 8) & 255, i & 255))
        f.write("  condition: sel\nlevel: high\n")
    write_events(tmp_path / "ev.json", [flow("172.16.20.5", "10.3.13.63", 1),   # the last
                                        flow("172.16.20.6", "10.3.13.64", 2)])  # not listed
    p = run(correlator, ["--rules", str(rules), "--input", str(tmp_path / "ev.json"),
                         "--alerts-out", str(tmp_path / "a.json")])
    assert p.returncode == 0, p.stderr[-2000:]
    got = alerts_of(tmp_path / "a.json")
    assert [a["group_key"] for a in got] == ["src_ip=172.16.20.5"]


# ---- attribution from the whole value --------------------------------------------------------

ATTRIBUTION_RULES = """\
title: telnet seen
id: 4b1c7a52-0d7e-4f7a-9d64-1b2c3d4e5f60
logsource: {product: fenghuo}
detection:
  sel:
    app_proto: telnet
  condition: sel
level: high
---
title: to the jump host
id: 4b1c7a52-0d7e-4f7a-9d64-1b2c3d4e5f61
logsource: {product: fenghuo}
detection:
  sel:
    dest_ip: 10.99.0.10
  condition: sel
level: medium
---
title: repeated telnet
id: 4b1c7a52-0d7e-4f7a-9d64-1b2c3d4e5f62
correlation:
  type: event_count
  rules: [4b1c7a52-0d7e-4f7a-9d64-1b2c3d4e5f60]
  group-by: [src_ip]
  timespan: 10m
  condition: {gte: 2}
  generate: true
level: high
"""


def test_attribution_uses_the_whole_value(correlator, tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "t.yml").write_text(ATTRIBUTION_RULES)
    pad = "x" * 300
    write_events(tmp_path / "ev.json", [
        flow("172.16.20.5", "10.99.0.10\u0000junk", 1),   # not the jump host
        flow("172.16.20.9\u0000a", "10.20.1.20", 2),      # two sources that differ
        flow("172.16.20.9\u0000b", "10.20.1.20", 3),      # only after a NUL
        flow("172.16.20.8" + pad + "1", "10.20.1.20", 4),  # or only after 300 bytes
        flow("172.16.20.8" + pad + "2", "10.20.1.20", 5),
        flow("172.16.20.7", "10.99.0.10", 6),              # the real jump host
    ])
    p = run(correlator, ["--rules", str(rules), "--assets", ASSETS, "--input",
                         str(tmp_path / "ev.json"), "--alerts-out", str(tmp_path / "a.json"),
                         "--db", str(tmp_path / "a.db")])
    assert p.returncode == 0, p.stderr
    got = alerts_of(tmp_path / "a.json")
    by = {(a["rule"]["title"], a["group_key"]): a for a in got}
    titles = sorted(t for t, _ in by)
    # six telnet alerts (each source its own), one for the jump host, no correlation
    assert titles.count("telnet seen") == 6, sorted(by)
    assert titles.count("to the jump host") == 1
    assert "repeated telnet" not in titles, "values differing after a NUL were merged"
    a = by[("telnet seen", "src_ip=172.16.20.5")]
    assert a["dest"] == {"ip": "10.99.0.10\\x00junk"}, a["dest"]
    assert a["department"] == "市委网信办"  # the source's: the destination is no asset
    assert ("telnet seen", "src_ip=172.16.20.9\\x00a") in by
    assert ("telnet seen", "src_ip=172.16.20.9\\x00b") in by
    long_keys = [k for _, k in by if k.startswith("src_ip=172.16.20.8x")]
    assert len(long_keys) == 2 and all(re.search(r"~[0-9a-f]{16}$", k) for k in long_keys)
    assert all(len(k) < 300 for k in long_keys)
    j = by[("to the jump host", "src_ip=172.16.20.7")]
    assert j["dest"]["asset"] == "堡垒机-jump01" and j["dest"]["zone"] == "management"
    # The store holds the same, whole texts.
    db = sqlite3.connect(str(tmp_path / "a.db"))
    rows = db.execute("SELECT dest_ip, dest_zone, dest_asset FROM alerts "
                      "WHERE group_key = 'src_ip=172.16.20.5'").fetchall()
    assert rows == [("10.99.0.10\\x00junk", None, None)]


# ---- a clock far ahead ------------------------------------------------------------------------

def _pack_alerts(correlator, events_path, tmp_path, tag):
    out = tmp_path / ("alerts-%s.json" % tag)
    p = run(correlator, ["--rules", PACK, "--assets", ASSETS, "--input", str(events_path),
                         "--alerts-out", str(out)])
    assert p.returncode == 0, p.stderr
    return {(a["rule"].get("name"), a["group_key"], a["count"]) for a in alerts_of(out)}, \
        p.stderr


def _bogus_events():
    stats = None
    with open(os.path.join(REPO, "tests", "rules", "L3-28", "events.ndjson")) as f:
        for line in f:
            e = json.loads(line)
            if e["event_type"] == "stats":
                stats = e
                break
    stats = dict(stats, timestamp="9999-12-31T23:59:59.000000+0000",
                 sensor={"id": "s-bogus", "segment": "core"})
    flow9999 = dict(flow("192.0.2.77", "192.0.2.78", 0, app="http", sensor="s-bogus"),
                    timestamp="9999-12-31T23:59:59.000000+0000")
    return {"stats": stats, "flow": flow9999}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_future_event_moves_no_clock(correlator, tmp_path, scenario):
    path = os.path.join(REPO, "tests", "rules", scenario, "events.ndjson")
    want, _ = _pack_alerts(correlator, path, tmp_path, "plain")
    lines = open(path, encoding="utf-8").read().splitlines()
    for kind, bogus in _bogus_events().items():
        for pos in (0, len(lines) // 2):
            mixed = tmp_path / ("mixed-%s-%d.json" % (kind, pos))
            write_events(mixed, lines[:pos] + [bogus] + lines[pos:])
            got, err = _pack_alerts(correlator, mixed, tmp_path, "%s-%d" % (kind, pos))
            got = {a for a in got if "192.0.2.77" not in a[1] and "s-bogus" not in a[1]}
            assert got == want, "%s at %d changed %s" % (kind, pos, sorted(got ^ want))
            if pos:
                assert "set aside from correlation" in err


# ---- refused rules cannot go unnoticed -------------------------------------------------------

def test_refused_rules_are_named_everywhere(correlator, tmp_path):
    inv = open(ASSETS, encoding="utf-8").read()
    inv = inv[:inv.index("\nlists:\n")] + "\n"  # no mail_servers, no threat_intel_ips
    (tmp_path / "assets.yaml").write_text(inv, encoding="utf-8")
    events = os.path.join(REPO, "tests", "rules", "L3-01", "events.ndjson")
    base = ["--rules", PACK, "--assets", str(tmp_path / "assets.yaml"), "--input", events]
    metrics, db = tmp_path / "m.prom", tmp_path / "a.db"
    p = run(correlator, base + ["--metrics", str(metrics), "--db", str(db),
                                "--instance", "corr-test"])
    assert p.returncode == 0, p.stderr
    refused = {"l3_14_known_malicious.yml:20", "l3_19_unauthorised_outbound.yml:31",
               "l3_22_dns_tunnel_dga.yml:134", "l3_27_spam_sender.yml:52",
               "l3_22_dns_tunnel_dga.yml:98", "l3_27_spam_sender.yml:15"}
    m = re.search(r"error: 6 of 89 rules refused, running without them .*", p.stderr)
    assert m and all(r in m.group(0) for r in refused), p.stderr
    assert re.search(r"error: ran without 6 refused rules: .*l3_27_spam_sender.yml:15",
                     p.stderr)
    text = metrics.read_text()
    assert "fenghuo_correlator_rules_refused 6\n" in text
    got = set(re.findall(r'fenghuo_correlator_rule_refused\{file="[^"]*/([^"/]+)",line="(\d+)"',
                         text))
    assert {"%s:%s" % g for g in got} == refused
    row = sqlite3.connect(str(db)).execute(
        "SELECT rules_loaded, rules_refused, strict, report FROM correlator_health "
        "WHERE instance = 'corr-test'").fetchone()
    assert row[:3] == (83, 6, 0)
    report = json.loads(row[3])
    assert {"%s:%d" % (os.path.basename(r["file"]), r["line"]) for r in report["refused"]} \
        == refused
    assert report["rules"] == {"loaded": 83, "correlation": 21, "refused": 6, "files": 29}
    assert report["events"]["total"] == 6
    # Strict: the same start is refused, and says which rules.
    p = run(correlator, base + ["--strict"])
    assert p.returncode == 1
    assert re.search(r"strict mode: 6 of 89 rules refused, not starting: .*"
                     r"l3_14_known_malicious.yml:20", p.stderr), p.stderr
    # With the full inventory, strict starts.
    p = run(correlator, ["--rules", PACK, "--assets", ASSETS, "--input", events, "--strict"])
    assert p.returncode == 0, p.stderr
