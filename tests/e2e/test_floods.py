"""Floods inside one flow and impossible sources (issue 15): the sensor's packet-rate
figure (flow.pps_peak) and its source anomalies, and the L3-26 rules that read them, on the
crafted capture spoofed-floods.pcap (tests/traffic/gen_pcaps.py):

* 1,200 ICMPv6 echo requests to ff02::1 in one second (one flow)
* 600 ICMP echo requests at 10.1.1.80 in one second (one flow)
* three LAND SYNs (10.1.1.80:80 -> 10.1.1.80:80), two UDP datagrams from 224.0.0.9

test_pps_and_packet_anomalies   what the sensor writes: pps_peak per flow, a sampled
                                anomaly event per kind with its count, the stats counters
test_odd_packets                TCP flags and options no stack sends, IP in ping:
                                anomaly events of type packet; ordinary SYNs and pings not
test_flood_rules                the correlator opens l3_26_icmp_flow_flood,
                                l3_26_multicast_flood and l3_26_impossible_source, and
                                not on ordinary traffic (http.pcap, dns.pcap, icmp.pcap)
"""

import json
import os
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def events(run_sensor, testdata, name):
    ev, err, rc = run_sensor(["-r", os.path.join(testdata, "pcap", name)])
    assert rc == 0, err
    return ev


def test_pps_and_packet_anomalies(run_sensor, testdata, validator):
    ev = events(run_sensor, testdata, "app/spoofed-floods.pcap")
    validator(ev)
    flows = {(e["src_ip"], e["dest_ip"]): e["flow"] for e in ev if e["event_type"] == "flow"}
    assert flows[("2001:db8:10::5", "ff02::1")]["pps_peak"] == 1200
    assert flows[("10.1.1.99", "10.1.1.80")]["pps_peak"] == 600
    assert flows[("10.1.1.80", "10.1.1.80")]["pps_peak"] == 3
    an = [(e["src_ip"], e["dest_ip"], e["anomaly"]["event"], e["anomaly"]["count"])
          for e in ev if e["event_type"] == "anomaly"]
    # sampled: the 1st, 10th, 100th, ... of each kind
    assert an == [("10.1.1.80", "10.1.1.80", "src.equals_dst", 1),
                  ("224.0.0.9", "10.1.1.80", "src.multicast", 1)]
    assert all(e["anomaly"]["layer"] == "src" for e in ev if e["event_type"] == "anomaly")
    assert ev[-1]["stats"]["decoder"]["packet_anomalies"] == {
        "src.multicast": 2, "src.broadcast": 0, "src.equals_dst": 3, "tcp.syn_fin": 0,
        "tcp.syn_urg": 0, "tcp.bad_option": 0, "icmp.ip_tunnel": 0}
    # a flow of one packet a second: pps_peak 1 (icmp.pcap: three pings, one per second)
    ping = [e for e in events(run_sensor, testdata, "icmp.pcap") if e["event_type"] == "flow"]
    assert ping and all(e["flow"]["pps_peak"] == 2 for e in ping)  # request + reply


def alerts(correlator, tmp_path, run_sensor, testdata, name):
    ev = events(run_sensor, testdata, name)
    path = tmp_path / (os.path.basename(name) + ".ndjson")
    path.write_text("".join(json.dumps(e) + "\n" for e in ev))
    with open(os.path.join(REPO, "rules", "assets.example.yaml"), encoding="utf-8") as f:
        inv = yaml.safe_load(f)
    for k in ("tenants", "hosts", "devices"):
        inv.pop(k, None)
    inv["departments"] = ["测试部门"]
    inv["segments"] = [{"name": "dmz", "zone": "dmz", "department": "测试部门",
                        "cidrs": ["10.1.1.0/24", "2001:db8:10::/64", "2001:db8:1::/64"]}]
    inv["zone_matrix"] = {"default": "allow"}
    assets = tmp_path / "assets.yaml"
    assets.write_text(yaml.safe_dump(inv, allow_unicode=True), encoding="utf-8")
    out = tmp_path / (os.path.basename(name) + ".alerts")
    c = subprocess.run([correlator, "-q", "--strict", "--rules",
                        os.path.join(REPO, "rules", "level3"), "--assets", str(assets),
                        "--input", str(path), "--alerts-out", str(out),
                        "--max-clock-ahead", "3650d"], capture_output=True, text=True,
                       timeout=300)
    assert c.returncode == 0, c.stderr
    found = {}
    for line in out.read_text().splitlines():
        a = json.loads(line)
        found.setdefault(a["rule"]["name"], []).append(a)
    return found


def test_flood_rules(correlator, tmp_path, run_sensor, testdata):
    found = alerts(correlator, tmp_path, run_sensor, testdata, "app/spoofed-floods.pcap")
    assert "l3_26_icmp_flow_flood" in found, sorted(found)
    assert "l3_26_multicast_flood" in found, sorted(found)
    assert "l3_26_impossible_source" in found, sorted(found)
    odd = alerts(correlator, tmp_path, run_sensor, testdata, "app/odd-packets.pcap")
    assert "l3_11_malformed_tcp" in odd and "l3_22_icmp_tunnel" in odd, sorted(odd)
    ftp = alerts(correlator, tmp_path, run_sensor, testdata, "app/ftp-commands.pcap")
    assert "l3_11_ftp_bounce" in ftp, sorted(ftp)
    assert all(a["level"] == "high" for n in ("l3_26_icmp_flow_flood", "l3_26_multicast_flood")
               for a in found[n])
    for name in ("http.pcap", "dns.pcap", "icmp.pcap"):
        quiet = alerts(correlator, tmp_path, run_sensor, testdata, name)
        assert not {n for n in quiet if n.startswith("l3_26_") or n in (
            "l3_11_malformed_tcp", "l3_22_icmp_tunnel", "l3_11_ftp_bounce")}, (name, sorted(quiet))


def test_odd_packets(run_sensor, testdata, validator):
    ev = events(run_sensor, testdata, "app/odd-packets.pcap")
    validator(ev)
    an = [(e["dest_port"] if "dest_port" in e else None, e["anomaly"]["event"],
           e["anomaly"]["layer"], e["anomaly"]["count"])
          for e in ev if e["event_type"] == "anomaly"]
    assert [(a[1], a[2], a[3]) for a in an] == [
        ("tcp.syn_fin", "tcp", 1), ("tcp.syn_urg", "tcp", 1), ("tcp.bad_option", "tcp", 1),
        ("icmp.ip_tunnel", "icmp", 1)]  # sampled: the 2nd bad option is only counted
    assert ev[-1]["stats"]["decoder"]["packet_anomalies"] == {
        "src.multicast": 0, "src.broadcast": 0, "src.equals_dst": 0, "tcp.syn_fin": 1,
        "tcp.syn_urg": 1, "tcp.bad_option": 2, "icmp.ip_tunnel": 3}
