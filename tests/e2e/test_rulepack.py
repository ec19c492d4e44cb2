"""The level-3 rule pack on its test scenarios: tests/rules/L3-xx/events.ndjson run
through fenghuo-correlator with the whole pack (rules/level3), the example asset
inventory and rules/lists; the alerts must be exactly what expect.yaml lists.

expect.yaml:
  alerts:    [{rule: NAME, count: N, group: {field: value, ...}}]  N distinct alerts
             of rule NAME whose group matches (count 0: the rule must not alert there)
  also:      the same form, for the co-alerts: other rules of the pack that fire on
             these events too
  no_alerts: [NAME, ...]  the rule raises no alert at all in this scenario
  others:    allowed  (optional) alerts beyond those listed are no failure

The match is exact: every alert raised must be one that alerts: or also: lists with a
count of at least 1, unless the scenario says `others: allowed`. So a new false positive
of any rule on any scenario fails its test.

An alert's group fields are its correlation group key ("src_ip=a,dest_ip=b") when it
has one, and the alert's src.ip / dest.ip.
"""

import glob
import os
import subprocess

import pytest
import yaml

import fhlib

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
    return fhlib.run_level3(correlator, os.path.join(case, "events.ndjson"), tmp_path)



@pytest.mark.parametrize("case", CASES, ids=[os.path.basename(c) for c in CASES])
def test_rule_scenario(correlator, case, tmp_path):
    with open(os.path.join(case, "expect.yaml")) as f:
        expect = yaml.safe_load(f) or {}
    alerts, stderr = run_case(correlator, case, tmp_path)
    problems, covered = [], set()
    for exp in (expect.get("alerts") or []) + (expect.get("also") or []):
        rule = exp["rule"]
        group = {k: str(v) for k, v in (exp.get("group") or {}).items()}
        found = [a for a in alerts
                 if rule in (a["rule"].get("name"), a["rule"].get("id"))
                 and all(str(alert_fields(a).get(k)) == v for k, v in group.items())]
        if len(found) != exp.get("count", 1):
            problems.append("rule %s group %s: %d alerts, expected %d"
                            % (rule, group, len(found), exp.get("count", 1)))
        covered.update(a["id"] for a in found)
    if expect.get("others") != "allowed":
        for a in alerts:
            if a["id"] not in covered:
                problems.append("alert of rule %s, group %s, is listed nowhere (add it to "
                                "also:, or say others: allowed)"
                                % (a["rule"].get("name"), a.get("group_key")))
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


SURICATA = [
    # Suricata 7 EVE flow events (its field names and values): telnet and FTP to a DMZ
    # server, and an unanswered SYN that must not alert.
    '{"timestamp":"2026-11-20T10:00:00.123456+0800","flow_id":1949306413372581,'
    '"in_iface":"ens3","event_type":"flow","src_ip":"172.16.5.9","src_port":51000,'
    '"dest_ip":"10.10.1.10","dest_port":23,"proto":"TCP","app_proto":"telnet",'
    '"flow":{"pkts_toserver":12,"pkts_toclient":10,"bytes_toserver":900,'
    '"bytes_toclient":1400,"start":"2026-11-20T09:59:40.000000+0800",'
    '"end":"2026-11-20T10:00:00.123456+0800","age":20,"state":"closed","reason":"timeout",'
    '"alerted":false},"tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b",'
    '"syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"},'
    '"community_id":"1:3sE8QZrKkmQ5ZtqxmJa5eC6XhBo="}',
    '{"timestamp":"2026-11-20T10:05:00.000000+0800","flow_id":1949306413372582,'
    '"event_type":"flow","src_ip":"172.16.5.10","src_port":51001,"dest_ip":"10.10.1.10",'
    '"dest_port":21,"proto":"TCP","app_proto":"ftp","flow":{"pkts_toserver":8,'
    '"pkts_toclient":8,"bytes_toserver":600,"bytes_toclient":800,"state":"closed",'
    '"reason":"timeout","alerted":false},"tcp":{"tcp_flags":"1b","state":"closed"}}',
    '{"timestamp":"2026-11-20T10:06:00.000000+0800","flow_id":1949306413372583,'
    '"event_type":"flow","src_ip":"172.16.5.11","src_port":51002,"dest_ip":"10.10.1.10",'
    '"dest_port":23,"proto":"TCP","flow":{"pkts_toserver":1,"pkts_toclient":0,'
    '"bytes_toserver":60,"bytes_toclient":0,"state":"new","reason":"timeout",'
    '"alerted":false},"tcp":{"tcp_flags":"02","syn":true,"state":"syn_sent"}}',
    # a Suricata alert event: not a flow, no flow rule may match it
    '{"timestamp":"2026-11-20T10:07:00.000000+0800","event_type":"alert",'
    '"src_ip":"172.16.5.12","dest_ip":"10.10.1.10","dest_port":23,"proto":"TCP",'
    '"app_proto":"telnet","alert":{"signature_id":2200003,"signature":"SURICATA Ethertype unknown"}}',
]


def test_suricata_eve_input(correlator, tmp_path):
    """The correlator reads Suricata EVE JSON: the same rules work on its flow events."""
    case = tmp_path / "suricata"
    case.mkdir()
    (case / "events.ndjson").write_text("\n".join(SURICATA) + "\n")
    alerts, _ = run_case(correlator, str(case), tmp_path)
    l301 = sorted(alert_fields(a)["src_ip"] for a in alerts
                  if a["rule"].get("name") == "l3_01_plaintext_remote_admin")
    assert l301 == ["172.16.5.10", "172.16.5.9"], [
        (a["rule"].get("name"), a.get("group_key")) for a in alerts]
    # the department and zone come from the inventory, as for Fenghuo's events
    a = [a for a in alerts if a["rule"].get("name") == "l3_01_plaintext_remote_admin"][0]
    assert a["dest"]["zone"] == "dmz" and a["department"]
