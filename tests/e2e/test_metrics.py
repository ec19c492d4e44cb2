"""/metrics of every program (issue 13): the sensor's listener (metrics.listen) during a live
capture on the loopback interface publishing to the embedded Kafka broker, the
correlator's (--metrics-listen) consuming from it, and the console's. Each answer is
checked against the Prometheus text format (HELP and TYPE before the samples, names and
labels well formed, counters ending in _total, histograms cumulative); then the Grafana
dashboards in dashboards/grafana are checked: importable structure, and every
expression names a metric that one of the running programs exported."""

import glob
import http.client
import json
import os
import re
import socket
import subprocess
import time

import pytest

from kafkalib import broker
from test_api import REPO, Console  # noqa: F401

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})? (\S+)$')


def parse(text):
    """{family: (type, [(labels dict, value)])}; asserts the text format."""
    fams, helps = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert NAME.match(name) and name not in helps, line
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "histogram") and name in helps, line
            assert name not in fams, "TYPE twice: " + line
            assert kind != "counter" or name.endswith("_total"), line
            fams[name] = (kind, [])
            continue
        assert line and not line.startswith("#"), repr(line)
        m = SAMPLE.match(line)
        assert m, "malformed sample: %r" % line
        name, labels, value = m.group(1), m.group(3) or "", float(m.group(4))
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in fams:
                fam = name[:-len(suffix)]
        assert fam in fams, "sample before its TYPE: " + line
        lab = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
        fams[fam][1].append((name, lab, value))
    for fam, (kind, samples) in fams.items():
        if kind == "histogram":
            series = {}
            for n, lab, v in samples:
                if n.endswith("_bucket"):
                    key = tuple(sorted((k, w) for k, w in lab.items() if k != "le"))
                    series.setdefault(key, []).append(v)
            for key, buckets in series.items():
                assert buckets == sorted(buckets), (fam, key)  # cumulative
    return fams


def scrape(port, path="/metrics"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body


def value(fams, name, **labels):
    """The value of the first sample called name (any family) with these labels."""
    for _, samples in fams.values():
        for n, lab, v in samples:
            if n == name and all(lab.get(k) == w for k, w in labels.items()):
                return v
    return None


def wait_port(proc, timeout=60):
    """The port a program logs as 'metrics on http://...(port N)'."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        m = re.search(r"metrics on http://\S+ \(port (\d+)\)", line)
        if m:
            return int(m.group(1))
    raise AssertionError("no metrics port logged")


def wait_until(port, pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, body = scrape(port)
        if st == 200:
            fams = parse(body)
            if pred(fams):
                return fams
        time.sleep(0.2)
    raise AssertionError("metrics never satisfied the condition: %s" % body)


# a standard query for example.com, type A
DNS_QUERY = bytes.fromhex("123401000001000000000000076578616d706c6503636f6d0000010001")

EICAR = {"timestamp": "2026-03-02T02:00:00.000000+0000", "event_type": "yara",
         "schema_version": "1.0", "sensor": {"id": "s1", "segment": "core"}, "flow_id": 1,
         "src_ip": "198.51.100.1", "src_port": 5, "dest_ip": "10.10.1.10", "dest_port": 80,
         "proto": "TCP", "app_proto": "http",
         "yara": {"rule": "EICAR_Test_File", "namespace": "fenghuo", "tags": [],
                  "meta": {"severity": "high", "category": "malware.virus"},
                  "direction": "toclient", "offset": 0}}


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture on lo needs root")
def test_every_program_exports_metrics_and_the_dashboards_use_them(
        sensor_bin, correlator, console, build_dir, tmp_path):
    exported = {}
    with broker(build_dir, partitions=2) as (bootstrap, _):
        sensor = subprocess.Popen(
            [sensor_bin, "-i", "lo", "--kafka", bootstrap, "--topic", "fenghuo.events",
             "--sensor-id", "lo-test", "--set", "stats.interval=1", "--set",
             "flow.timeouts.udp=1", "--set",
             "metrics.listen=127.0.0.1:0", "--set", "spool.dir=%s" % (tmp_path / "spool"),
             "-f", "udp and (port 59999 or port 53)", "--threads", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
        corr = None
        try:
            sport = wait_port(sensor)
            st, body = scrape(sport, "/other")
            assert st == 404
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            deadline = time.time() + 60
            fams = None
            while time.time() < deadline:
                for _ in range(20):
                    s.sendto(b"fenghuo metrics test", ("127.0.0.1", 59999))
                # a flow nDPI names (app_proto), from a new port each time: it ends after
                # the 1 s UDP timeout and is counted
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as q:
                    q.sendto(DNS_QUERY, ("127.0.0.1", 53))
                st, body = scrape(sport)
                if st == 200:
                    fams = parse(body)
                    if (value(fams, "fenghuo_sensor_capture_packets_total", interface="lo") or 0) \
                            >= 20 and (value(fams, "fenghuo_sensor_events_published_total")
                                       or 0) >= 1 and value(
                                fams, "fenghuo_sensor_app_protocol_flows_total",
                                app_proto="dns"):
                        break
                time.sleep(0.3)
            s.close()
            assert fams and value(fams, "fenghuo_sensor_capture_packets_total",
                                  interface="lo") >= 20, body
            assert value(fams, "fenghuo_sensor_flows_total") >= 1
            assert value(fams, "fenghuo_sensor_info", sensor="lo-test") == 1
            assert value(fams, "fenghuo_sensor_kafka_errors_total", kind="delivery") == 0
            exported.update(fams)
            # the correlator consumes what the sensor published, plus an EICAR event
            subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", "fenghuo.events", "-p", "0"],
                           input=json.dumps(EICAR) + "\n", text=True, check=True, timeout=60)
            corr = subprocess.Popen(
                [correlator, "--rules", os.path.join(REPO, "rules", "level3"), "--assets",
                 os.path.join(REPO, "rules", "assets.example.yaml"), "--kafka", bootstrap,
                 "--topic", "fenghuo.events", "--group", "metrics-test", "--db",
                 str(tmp_path / "alerts.db"), "--metrics-listen", "127.0.0.1:0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
            cport = wait_port(corr)
            fams = wait_until(cport, lambda f: (value(
                f, "fenghuo_correlator_alerts_total", severity="high") or 0) >= 1 and any(
                n == "fenghuo_correlator_consumer_lag_messages" for n, _, _ in f.get(
                    "fenghuo_correlator_consumer_lag_messages", ("", []))[1]))
            assert value(fams, "fenghuo_correlator_rules_loaded") >= 20
            assert value(fams, "fenghuo_correlator_events_consumed_total") >= 2
            assert value(fams, "fenghuo_correlator_event_processing_seconds_count") >= 2
            lags = [v for n, lab, v in fams["fenghuo_correlator_consumer_lag_messages"][1]]
            assert all(v >= 0 for v in lags)
            exported.update(fams)
        finally:
            for p in (corr, sensor):
                if p and p.poll() is None:
                    p.terminate()
                    p.wait(timeout=60)
    # the console's
    class Db:
        target = str(tmp_path / "alerts.db")
    cons = Console(console, Db, tmp_path)
    try:
        assert scrape(cons.port, "/api/v1/version")[0] == 200  # a request to count
        st, body = scrape(cons.port)
        assert st == 200
        fams = parse(body)
        exported.update(fams)
    finally:
        cons.stop()
    # the dashboards
    files = sorted(glob.glob(os.path.join(REPO, "dashboards", "grafana", "*.json")))
    assert [os.path.basename(f) for f in files] == [
        "fenghuo-console.json", "fenghuo-correlator.json", "fenghuo-sensor.json"]
    used = set()
    for f in files:
        with open(f, encoding="utf-8") as fh:
            d = json.load(fh)
        assert d["title"] and d["uid"] and d["schemaVersion"] >= 30, f
        assert [i["name"] for i in d["__inputs"]] == ["DS_PROMETHEUS"], f
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)) and ids, f
        for p in d["panels"]:
            assert p["title"] and p["type"] and p["gridPos"]["w"] > 0, (f, p.get("title"))
            assert p["datasource"]["uid"] == "${DS_PROMETHEUS}", (f, p["title"])
            assert p["targets"], (f, p["title"])
            for t in p["targets"]:
                expr = t["expr"]
                assert expr.count("(") == expr.count(")"), (f, expr)
                names = re.findall(r"\bfenghuo_[a-z0-9_]+", expr)
                assert names, (f, expr)
                fams_here = []
                for n in names:
                    fam = re.sub(r"_(bucket|sum|count)$", "", n) if n not in exported else n
                    assert fam in exported, "%s: %s is not exported" % (os.path.basename(f), n)
                    used.add(fam)
                    fams_here.append(fam)
                # every label the expression groups by is one those metrics carry
                # (instance comes from Prometheus' scrape)
                for group in re.findall(r"\bby \(([^)]*)\)", expr):
                    for label in (x.strip() for x in group.split(",")):
                        if label == "instance":
                            continue
                        assert any(label in lab for fam in fams_here
                                   for _, lab, _ in exported[fam][1]), (f, expr, label)
        for v in d["templating"]["list"]:
            m = re.search(r"label_values\((fenghuo_[a-z0-9_]+)", v["query"])
            assert m and m.group(1) in exported, (f, v["query"])
    # and the dashboards show the essentials
    for need in ("fenghuo_sensor_capture_kernel_drops_total",
                 "fenghuo_correlator_consumer_lag_messages",
                 "fenghuo_correlator_event_processing_seconds",
                 "fenghuo_console_http_request_duration_seconds"):
        assert need in used, need
