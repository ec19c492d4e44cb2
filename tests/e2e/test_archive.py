"""The event archive (issue 13): a correlator with --archive keeps what it consumed
(zstd segments, docs/archive.md); the console pivots from an alert to the events of its
flow, its source or its destination (an analyst only within its departments), security
administrators search it, and a rule file is tested against it before it is enabled.
On SQLite and PostgreSQL."""

import json
import os
import subprocess

from test_api import REPO, Console, admin, users  # noqa: F401
from test_api_admin import RULE_OK

CID = "1:AAAAAAAAAAAAAAAAAAAAAAAAAAA="
OTHER_CID = "1:BBBBBBBBBBBBBBBBBBBBBBBBBBB="


def ev(ts, **kw):
    e = {"timestamp": "2026-03-02T%s.000000+0000" % ts, "event_type": "flow",
         "schema_version": "1.0", "sensor": {"id": "s1", "segment": "core"}, "flow_id": 1,
         "src_ip": "198.51.100.1", "src_port": 40000, "dest_ip": "10.10.1.10",
         "dest_port": 8080, "proto": "TCP", "community_id": CID}
    e.update(kw)
    return e


def eicar(ts, **kw):
    return ev(ts, event_type="yara", dest_port=80, app_proto="http",
              yara={"rule": "EICAR_Test_File", "namespace": "fenghuo", "tags": [],
                    "meta": {"severity": "high", "category": "malware.virus"},
                    "direction": "toclient", "offset": 0}, **kw)


EVENTS = [
    ev("01:00:00"),                                               # same flow, before
    eicar("02:00:00"),                                            # the alert (大数据局)
    ev("02:30:00"),                                               # same flow, after
    ev("02:40:00", community_id=OTHER_CID, dest_ip="10.10.1.11"),  # same source, other flow
    ev("02:50:00", community_id=OTHER_CID, src_ip="198.51.100.4", dest_ip="10.10.1.10",
       dest_port=2323),                                           # same destination; port 2323
    eicar("03:00:00", src_ip="198.51.100.4", dest_ip="10.30.64.5",
          community_id=OTHER_CID),                                # 市财政局's alert
    ev("09:00:00", dest_port=2323),                               # same flow, 7 h later
]


def test_archive_pivots_and_rule_test(console, correlator, store_db, tmp_path):
    arch = tmp_path / "archive"
    path = tmp_path / "ev.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    p = subprocess.run([correlator, "--rules", os.path.join(REPO, "rules", "level3"),
                        "--assets", os.path.join(REPO, "rules", "assets.example.yaml"),
                        "--input", str(path), "--db", store_db.target, "--archive", str(arch),
                        "--instance", "corr-a"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert p.returncode == 0, p.stderr
    segs = sorted(os.listdir(arch / "corr-a"))
    assert any(s.endswith(".ndjson.zst") for s in segs) and any(s.endswith(".idx") for s in segs)
    ids = dict(store_db.query("SELECT dest_ip, id FROM alerts WHERE rule_id IN (SELECT rule_id "
                              "FROM alerts WHERE src_ip = '198.51.100.1')"))
    mine, theirs = ids["10.10.1.10"], ids["10.30.64.5"]
    s = Console(console, store_db, tmp_path, "--archive", str(arch))
    try:
        c = admin(s)
        u = users(s, c)
        store_db.execute("UPDATE users SET departments = '大数据局' WHERE name = 'u-analyst'")
        an, sec = u["analyst"], u["secadmin"]

        def times(doc):
            return sorted(e["timestamp"][11:19] for e in doc["events"])

        # the flow: by default an hour either side of the alert's events
        st, doc, _ = an.call("GET", "/api/v1/alerts/%s/events?by=flow" % mine)
        assert st == 200, doc
        assert times(doc) == ["01:00:00", "02:00:00", "02:30:00"] and not doc["truncated"]
        assert all(e["community_id"] == CID for e in doc["events"])
        # a wider range reaches the later event of the flow
        st, doc, _ = an.call("GET", "/api/v1/alerts/%s/events?by=flow&to=2026-03-02" % mine)
        assert times(doc) == ["01:00:00", "02:00:00", "02:30:00", "09:00:00"]
        st, doc, _ = an.call("GET", "/api/v1/alerts/%s/events?by=source" % mine)
        assert times(doc) == ["01:00:00", "02:00:00", "02:30:00", "02:40:00"]
        st, doc, _ = an.call("GET", "/api/v1/alerts/%s/events?by=destination" % mine)
        assert times(doc) == ["01:00:00", "02:00:00", "02:30:00", "02:50:00"]
        st, doc, _ = an.call("GET", "/api/v1/alerts/%s/events?by=source&limit=2" % mine)
        assert len(doc["events"]) == 2 and doc["truncated"] is True
        for q, code in (("by=everything", "bad_pivot"), ("by=flow&limit=0", "bad_limit"),
                        ("by=flow&from=yesterday", "bad_time")):
            st, doc, _ = an.call("GET", "/api/v1/alerts/%s/events?%s" % (mine, q))
            assert (st, doc["error"]["code"]) == (400, code), q
        # another department's alert looks absent
        assert an.call("GET", "/api/v1/alerts/%s/events?by=flow" % theirs)[:2] == (
            404, {"error": {"code": "not_found"}})
        # the search, for security administrators
        st, doc, _ = sec.call("GET", "/api/v1/events?host=198.51.100.4")
        assert times(doc) == ["02:50:00", "03:00:00"]
        st, doc, _ = sec.call("GET", "/api/v1/events?community_id=%s&from=2026-03-02T02:45:00Z"
                              % OTHER_CID.replace("=", "%3D").replace("+", "%2B"))
        assert times(doc) == ["02:50:00", "03:00:00"], doc
        assert sec.call("GET", "/api/v1/events")[1]["error"]["code"] == "community_id_or_host"
        # a rule file tested against the archive: which alerts it would raise, nothing saved
        st, doc, _ = sec.call("POST", "/api/v1/rules/test",
                              {"name": "t.yml", "text": RULE_OK, "from": "2026-03-02",
                               "to": "2026-03-02"})
        assert st == 200, doc
        assert doc["events"] == len(EVENTS) and doc["alerts_total"] == 2, doc
        assert sorted(a["group_key"] for a in doc["alerts"]) == [
            "src_ip=198.51.100.1", "src_ip=198.51.100.4"]
        assert {a["rule_id"] for a in doc["alerts"]} == {"3f2b7c1e-0000-4000-8000-00000000a001"}
        st, doc, _ = sec.call("POST", "/api/v1/rules/test",
                              {"name": "t.yml", "text": RULE_OK, "from": "2026-03-02T03:00:00Z",
                               "to": "2026-03-02"})
        assert (doc["events"], doc["alerts_total"]) == (2, 1)
        assert not (s.rules / "t.yml").exists()
        broken = RULE_OK.replace("dest_port: 2323", "dest_port|nosuchmod: 2323")
        st, doc, _ = sec.call("POST", "/api/v1/rules/test",
                              {"name": "t.yml", "text": broken, "from": "2026-03-02",
                               "to": "2026-03-02"})
        assert st == 422 and doc["ok"] is False and doc["errors"][0]["file"] == "t.yml"
        assert ("u-secadmin", "rule.test", "t.yml", "ok") in store_db.query(
            "SELECT actor, action, object, outcome FROM audit_log WHERE action = 'rule.test'")
    finally:
        s.stop()
