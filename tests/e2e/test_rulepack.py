"""The level-3 rule pack on its test scenarios: tests/rules/L3-xx/events.ndjson run
through fenghuo-correlator with the whole pack (rules/level3), the example asset
inventory and rules/lists; the alerts must be exactly what expect.yaml lists.

expect.yaml:
  alerts:    [{rule: NAME, count: N, group: {field: value, ...}}]  N distinct alerts
             of rule NAME whose group matches (count 0: the rule must not alert there)
  no_alerts: [NAME, ...]  the rule raises no alert at all in this scenario

An alert's group fields are its correlation group key ("src_ip=a,dest_ip=b") when it
has one, and the alert's src.ip / dest.ip.
"""

import glob
import json
import os
import subprocess

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CASES = sorted(glob.glob(os.path.join(REPO, "tests", "rules", "L3-*")))


def parse_key(key):
    """'src_ip=a,dest_ip=b' (with \\ escapes) -> dict; a bare key is the source."""
    if "=" not in key:
        return {"src_ip": key} if key else {}
    out, k, cur, esc = {}, None, "", False
    for ch in key:
        if esc:
            cur += ch
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == "=" and k is None:
            k, cur = cur, ""
        elif ch == ",":
            out[k] = cur
            k, cur = None, ""
        else:
            cur += ch
    if k is not None:
        out[k] = cur
    return out


def alert_fields(a):
    f = parse_key(a.get("group_key", ""))
    f.setdefault("src_ip", (a.get("src") or {}).get("ip"))
    f.setdefault("dest_ip", (a.get("dest") or {}).get("ip"))
    return f


def run_case(correlator, case, tmp_path):
    out = tmp_path / "alerts.json"
    p = subprocess.run(
        [correlator, "--rules", os.path.join(REPO, "rules", "level3"),
         "--assets", os.path.join(REPO, "rules", "assets.example.yaml"),
         "--input", os.path.join(case, "events.ndjson"), "--alerts-out", str(out),
         "--db", str(tmp_path / "alerts.db")],
        capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    alerts = {}
    for line in out.read_text().splitlines():
        a = json.loads(line)
        alerts[a["id"]] = a  # the last update of each alert
    return list(alerts.values()), p.stderr


@pytest.fixture(scope="module")
def correlator(build_dir):
    path = os.path.join(build_dir, "bin", "fenghuo-correlator")
    if not os.access(path, os.X_OK):
        pytest.skip("fenghuo-correlator not built")
    return path


@pytest.mark.parametrize("case", CASES, ids=[os.path.basename(c) for c in CASES])
def test_rule_scenario(correlator, case, tmp_path):
    with open(os.path.join(case, "expect.yaml")) as f:
        expect = yaml.safe_load(f) or {}
    alerts, stderr = run_case(correlator, case, tmp_path)
    problems = []
    for exp in expect.get("alerts") or []:
        rule = exp["rule"]
        group = {k: str(v) for k, v in (exp.get("group") or {}).items()}
        found = [a for a in alerts
                 if rule in (a["rule"].get("name"), a["rule"].get("id"))
                 and all(str(alert_fields(a).get(k)) == v for k, v in group.items())]
        if len(found) != exp.get("count", 1):
            problems.append("rule %s group %s: %d alerts, expected %d"
                            % (rule, group, len(found), exp.get("count", 1)))
    for rule in expect.get("no_alerts") or []:
        found = [a for a in alerts if rule in (a["rule"].get("name"), a["rule"].get("id"))]
        if found:
            problems.append("rule %s: %d alerts, expected none (%s)"
                            % (rule, len(found), [alert_fields(a) for a in found][:3]))
    if problems:
        raised = sorted({(a["rule"].get("name"), a.get("group_key")) for a in alerts})
        pytest.fail("\n".join(problems) + "\nalerts raised: %s\n%s" % (raised, stderr[-2000:]))


def test_alert_fields(correlator, tmp_path):
    """An alert carries rule, level, tags split into clauses and categories, the group,
    times, count, both assets, the owning department and evidence with community_id."""
    alerts, _ = run_case(correlator, os.path.join(REPO, "tests", "rules", "L3-01"), tmp_path)
    assert alerts
    a = alerts[0]
    for k in ("id", "rule", "level", "group_key", "first_seen", "last_seen", "count",
              "src", "dest", "department", "clauses", "category"):
        assert k in a, (k, a)
    assert len(a["id"]) == 32
    assert a["clauses"] and a["clauses"][0]["clause"].startswith("8.")
    assert a.get("evidence"), a
    assert a["evidence"][0].get("community_id", "").startswith("1:")


def test_replay_creates_no_duplicates(correlator, tmp_path):
    """The same events twice into the same store: the same alert ids, no new alerts."""
    case = os.path.join(REPO, "tests", "rules", "L3-09")
    first, _ = run_case(correlator, case, tmp_path)
    second, _ = run_case(correlator, case, tmp_path)
    assert sorted(a["id"] for a in first) == sorted(a["id"] for a in second)
    db = str(tmp_path / "alerts.db")
    n = subprocess.run(["sqlite3", db, "select count(*) from alerts"], capture_output=True,
                       text=True).stdout.strip()
    assert int(n) == len(first)
