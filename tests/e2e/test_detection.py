"""The detection table: every attack capture of the shared corpus through sensor and
correlator, each with a small inventory that places its victims (tests/e2e/detection_table.yaml),
and every other capture as benign traffic.

* test_detection_table   prints one line per capture and the totals
                         `attacks detected N/M, benign clean K/L`; asserts that every attack
                         without `pending`/`passive` raises one of its expected alerts, that a
                         pending one is still missed (the table stays true), that every policy
                         capture raises its finding, and that no benign capture raises a high or
                         critical alert.

Each capture runs once (two at a time); the whole table takes about a minute. Skipped when the
shared corpus is absent. Environment: FH_BUILD, FH_SHARED as in test_corpus.py.
"""

import collections
import json
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

import test_corpus

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = test_corpus.REPO
SHARED, PCAP_ROOT = test_corpus.SHARED, test_corpus.PCAP_ROOT
BUILD = test_corpus._env_path("FH_BUILD", "build")
SENSOR = os.path.join(BUILD, "bin", "fenghuo-sensor")
CORRELATOR = os.path.join(BUILD, "bin", "fenghuo-correlator")
TABLE = os.path.join(HERE, "detection_table.yaml")
EXAMPLE_ASSETS = os.path.join(REPO, "rules", "assets.example.yaml")
ZONES = ["dmz", "business", "data", "management", "office"]
SEVERE = {"high", "critical"}
PCAP_EXT = (".pcap", ".pcapng", ".cap")

if not os.path.isdir(PCAP_ROOT):
    pytest.skip("shared corpus not found: %s does not exist (set FH_SHARED to the shared data "
                "directory, default ../shared/data from the repository root)" % PCAP_ROOT,
                allow_module_level=True)


def load_table():
    with open(TABLE, encoding="utf-8") as f:
        t = yaml.safe_load(f)
    return t.get("attacks") or [], t.get("policy") or []


def inventory_yaml(place):
    """The example inventory's policy and lists (management networks, approved resolvers
    and VPNs, threat intelligence) with its segments, hosts and devices replaced by one
    segment per zone named in `place` (department 测试部门); every zone pair allowed (L3-25
    is not what the table measures)."""
    with open(EXAMPLE_ASSETS, encoding="utf-8") as f:
        inv = yaml.safe_load(f)
    segs = []
    for zone, addrs in place.items():
        assert zone in ZONES, "unknown zone %r in the detection table" % zone
        cidrs = [a if "/" in a else a + ("/128" if ":" in a else "/32") for a in addrs]
        segs.append({"name": "victims-" + zone, "zone": zone, "department": "测试部门",
                     "cidrs": cidrs})
    for k in ("tenants", "hosts", "devices"):
        inv.pop(k, None)
    inv["departments"] = ["测试部门"]
    inv["segments"] = segs
    inv["zone_matrix"] = {"default": "allow"}
    return yaml.safe_dump(inv, allow_unicode=True)


def run_capture(pcap, assets_text):
    """Sensor then correlator; returns ({rule name: level} of the alerts opened, events by type)."""
    with tempfile.TemporaryDirectory(prefix="fh-detect-") as d:
        ev, al = os.path.join(d, "events.json"), os.path.join(d, "alerts.json")
        assets = EXAMPLE_ASSETS
        if assets_text is not None:
            assets = os.path.join(d, "assets.yaml")
            with open(assets, "w", encoding="utf-8") as f:
                f.write(assets_text)
        s = subprocess.run([SENSOR, "-q", "-r", os.path.join(PCAP_ROOT, pcap), "-w", ev,
                            "--yara-rules", os.path.join(REPO, "rules", "yara")],
                           capture_output=True, text=True, timeout=600)
        assert s.returncode == 0, "%s: sensor failed: %s" % (pcap, s.stderr[-2000:])
        types = collections.Counter()
        with open(ev, encoding="utf-8") as f:
            for line in f:
                types[json.loads(line)["event_type"]] += 1
        c = subprocess.run([CORRELATOR, "-q", "--strict", "--rules", os.path.join(REPO, "rules", "level3"),
                            "--assets", assets, "--input", ev, "--alerts-out", al,
                            "--max-clock-ahead", "3650d"],
                           capture_output=True, text=True, timeout=600)
        assert c.returncode == 0, "%s: correlator failed: %s" % (pcap, c.stderr[-2000:])
        rules = {}
        with open(al, encoding="utf-8") as f:
            for line in f:
                a = json.loads(line)
                name = a["rule"].get("name") or a["rule"]["id"]
                rules[name] = a.get("level", "")
        return rules, types


def benign_captures(listed):
    out = []
    for root, _dirs, files in os.walk(PCAP_ROOT):
        for fn in files:
            rel = os.path.relpath(os.path.join(root, fn), PCAP_ROOT)
            if fn.endswith(PCAP_EXT) and not rel.startswith("bench" + os.sep) \
                    and rel not in listed:
                out.append(rel)
    return sorted(out)


def test_detection_table(capsys):
    attacks, policy = load_table()
    listed = {e["pcap"] for e in attacks + policy}
    for e in attacks + policy:
        assert os.path.exists(os.path.join(PCAP_ROOT, e["pcap"])), \
            "detection table names a capture not in the corpus: %s" % e["pcap"]
    benign = benign_captures(listed)
    jobs = [(e["pcap"], None if e.get("assets") == "example" else
             inventory_yaml(e.get("place") or {})) for e in attacks + policy]
    jobs += [(p, None) for p in benign]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip([j[0] for j in jobs], pool.map(lambda j: run_capture(*j), jobs)))

    lines, failures = [], []
    detected = 0
    for e in attacks:
        rules, types = results[e["pcap"]]
        hit = sorted(set(e["expect"]) & set(rules))
        if hit:
            detected += 1
        if e.get("passive"):
            verdict = "MISSED  (passive sensor cannot: %s)" % e["passive"]
        elif e.get("pending"):
            verdict = "MISSED  (pending: %s)" % e["pending"]
            if hit:
                failures.append("%s is detected (%s) but marked pending: update the table"
                                % (e["pcap"], ", ".join(hit)))
        elif hit:
            verdict = "ok      %s" % ", ".join(hit)
        else:
            verdict = "MISSED"
            failures.append("%s (%s): none of %s raised; alerts: %s; events: %s"
                            % (e["pcap"], e["attack"], e["expect"], sorted(rules), dict(types)))
        lines.append("attack  %-58s %s" % (e["pcap"], verdict))
    policy_ok = 0
    for e in policy:
        rules, _types = results[e["pcap"]]
        hit = sorted(set(e["expect"]) & set(rules))
        policy_ok += bool(hit)
        if not hit:
            failures.append("policy %s (%s): none of %s raised; alerts: %s"
                            % (e["pcap"], e["finding"], e["expect"], sorted(rules)))
        lines.append("policy  %-58s %s" % (e["pcap"], ("ok      " + ", ".join(hit)) if hit
                                           else "MISSED"))
    clean = 0
    for p in benign:
        rules, _types = results[p]
        severe = sorted(r for r, lvl in rules.items() if lvl in SEVERE)
        if severe:
            failures.append("benign %s raised high/critical alerts: %s" % (p, severe))
            lines.append("benign  %-58s ALERTS  %s" % (p, ", ".join(severe)))
        else:
            clean += 1
            lines.append("benign  %-58s clean%s" % (p, ("  (lower: %s)" % ", ".join(sorted(rules)))
                                                    if rules else ""))
    total = "attacks detected %d/%d, benign clean %d/%d, policy findings %d/%d" % (
        detected, len(attacks), clean, len(benign), policy_ok, len(policy))
    with capsys.disabled():
        print("\n" + "\n".join(lines) + "\n" + total)
    report = os.path.join(BUILD, "test-artifacts", "detection-table.txt")
    os.makedirs(os.path.dirname(report), exist_ok=True)
    with open(report, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n" + total + "\n")
    assert not failures, "\n".join(failures)
