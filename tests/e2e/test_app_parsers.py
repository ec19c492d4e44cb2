"""The application parsers' switches and promises (sensor/http.c, files.c, tls_records.c;
docs/events.md): what each option turns off, and what never leaves the sensor.

* test_session_cookie_never_written   the cookie's value appears in no event, its hash does
* test_http_parser_off                http.enabled: false gives nDPI's one http event per
                                      flow back, no fileinfo, no per-transaction events
* test_tls_records_off                tls.enabled: false: no applayer anomaly
* test_malformed_http_counted         a stream that starts like HTTP and then is garbage:
                                      no crash, the flow and what was parsed are written
* test_raw_tcp_files                  a stream with no protocol that starts as a file (an ELF;
                                      a PE after a 4-byte length) is a fileinfo of source tcp,
                                      typed and hashed; text is not; files.raw_tcp: false
* test_ftp_commands                   sensor/ftp.c: the file and data-connection commands as
                                      ftp events, PASS never, PORT/EPRT parsed, a PORT to a
                                      third host flagged as a bounce; ftp.enabled: false
* test_indicator_feeds                dpi.malicious_ja3_file / dpi.malicious_sha1_file in
                                      abuse.ch SSLBL's layouts set nDPI's malicious-JA3 and
                                      malicious-certificate risks; a missing feed stops the
                                      sensor with its path; a feed in the wrong layout warns
* test_dns_every_message              sensor/dns.c: one dns event per query and per
                                      response of a flow, every answer, attacker bytes
                                      escaped, a compression loop and a runt counted;
                                      dns.enabled: false gives nDPI's one event back
"""

import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def pcap(testdata, name):
    return os.path.join(testdata, "pcap", name)


def events_of(run_sensor, args, **kw):
    events, err, rc = run_sensor(args, **kw)
    assert rc == 0, err
    return events


def test_session_cookie_never_written(sensor_run, testdata):
    r = sensor_run(["-r", pcap(testdata, "payload/http-keepalive.pcap")])
    raw = b"\n".join(r.lines)
    assert b"k3y5e55i0n" not in raw
    assert b"f71e6862f4130b4af1160b98397f3b1d06c67d6fd6188259ccf78cc9f48f5926" in raw


def test_http_parser_off(run_sensor, testdata, validator):
    on = events_of(run_sensor, ["-r", pcap(testdata, "payload/http-keepalive.pcap")])
    off = events_of(run_sensor, ["-r", pcap(testdata, "payload/http-keepalive.pcap"),
                                 "--set", "http.enabled=false"])
    validator(on)
    validator(off)
    http_on = [e for e in on if e["event_type"] == "http"]
    http_off = [e for e in off if e["event_type"] == "http"]
    assert len(http_on) == 5 and all("tx_id" in e["http"] for e in http_on)
    # nDPI's: one per flow, its first transaction only, no tx_id
    assert len(http_off) == 2 and all("tx_id" not in e["http"] for e in http_off)
    assert not [e for e in off if e["event_type"] == "fileinfo"]
    assert "http" not in off[-1]["stats"] and off[-1]["stats"].get("reassembly") is not None
    assert on[-1]["stats"]["http"] == {"flows": 2, "transactions": 5, "errors": 0}


def test_tls_records_off(run_sensor, testdata, validator):
    on = events_of(run_sensor, ["-r", pcap(testdata, "app/tls-anomalies.pcap")])
    off = events_of(run_sensor, ["-r", pcap(testdata, "app/tls-anomalies.pcap"),
                                 "--set", "tls.enabled=false", "--set", "http.enabled=false",
                                 "--set", "smb.enabled=false", "--set", "files.raw_tcp=false",
                                 "--set", "ftp.enabled=false", "--set", "krb5.enabled=false"])
    validator(on)
    validator(off)
    assert len([e for e in on if e["event_type"] == "anomaly"]) == 5
    assert on[-1]["stats"]["tls"] == {"flows": 4, "anomalies": 5}
    assert not [e for e in off if e["event_type"] == "anomaly"]
    # nothing left that needs reassembly: no payload counters at all
    assert "reassembly" not in off[-1]["stats"]


def test_malformed_http_counted(run_sensor, tmp_path, validator):
    """Hand-made frames: a request line, then binary garbage and a bogus response."""
    scapy = pytest.importorskip("scapy.all")
    from scapy.all import IP, TCP, Ether, Raw, wrpcap
    cli, srv = "10.1.1.10", "10.1.1.80"
    pkts, seq = [], {0: 1000, 1: 5000}

    def seg(d, flags, data=b""):
        src, dst = (cli, srv) if d == 0 else (srv, cli)
        sp, dp = (40000, 80) if d == 0 else (80, 40000)
        p = Ether() / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq[d],
                                                 ack=seq[1 - d])
        if data:
            p = p / Raw(data)
        pkts.append(p)
        seq[d] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    seg(0, "S")
    seg(1, "SA")
    seg(0, "A")
    seg(0, "PA", b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n")
    seg(0, "PA", bytes(range(256)) * 8)
    seg(1, "PA", b"HTTP/1.1 999999 \x00\xff\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    seg(0, "FA")
    seg(1, "FA")
    path = tmp_path / "bad-http.pcap"
    for i, p in enumerate(pkts):
        p.time = 1700000000 + i / 1000
    wrpcap(str(path), pkts)
    events = events_of(run_sensor, ["-r", str(path)])
    validator(events)
    flows = [e for e in events if e["event_type"] == "flow"]
    assert len(flows) == 1
    http = [e for e in events if e["event_type"] == "http"]
    assert len(http) == 1 and http[0]["http"]["url"] == "/x"
    assert events[-1]["stats"]["http"]["flows"] == 1


def test_dns_every_message(run_sensor, testdata, validator):
    on = events_of(run_sensor, ["-r", pcap(testdata, "app/dns-messages.pcap")])
    validator(on)
    dns = [e["dns"] for e in on if e["event_type"] == "dns"]
    assert [(d["type"], d["id"]) for d in dns] == [
        ("query", 1), ("answer", 1), ("query", 2), ("answer", 2), ("query", 3), ("answer", 3),
        ("answer", 4)]
    assert dns[0]["rrname"] == "www.example.gov.cn" and dns[0]["rrtype"] == "A"
    assert "rcode" not in dns[0] and "answers" not in dns[0]
    assert dns[1]["rcode"] == "NOERROR" and dns[1]["ra"] is True
    assert dns[1]["answers"] == [
        {"rrname": "www.example.gov.cn", "rrtype": "CNAME", "ttl": 60,
         "rdata": "web.example.gov.cn"},
        {"rrname": "web.example.gov.cn", "rrtype": "A", "ttl": 300, "rdata": "203.0.113.10"},
        {"rrname": "web.example.gov.cn", "rrtype": "A", "ttl": 300, "rdata": "203.0.113.11"}]
    # names and text are attacker bytes: non-printable ones as \xHH, the rest JSON-escaped
    assert dns[2]["rrname"] == 'x"<script>\\x01.t.example.net'
    assert dns[3]["answers"][0]["rdata"] == '"</td><img src=x>\\x00\\xff'
    assert dns[5]["rcode"] == "NXDOMAIN" and "answers" not in dns[5]
    assert dns[6].get("malformed") is True and dns[6]["answers"] == []
    assert on[-1]["stats"]["dns"] == {"queries": 3, "answers": 4, "malformed": 2}
    # all in one flow, whose flow event keeps nDPI's summary of the first query
    assert len({e["flow_id"] for e in on if e["event_type"] == "dns"}) == 1

    off = events_of(run_sensor, ["-r", pcap(testdata, "app/dns-messages.pcap"),
                                 "--set", "dns.enabled=false"])
    validator(off)
    assert len([e for e in off if e["event_type"] == "dns"]) == 1
    assert "version" not in [e for e in off if e["event_type"] == "dns"][0]["dns"]
    assert "dns" not in off[-1]["stats"]


def test_raw_tcp_files(run_sensor, testdata, validator):
    import hashlib
    import struct
    on = events_of(run_sensor, ["-r", pcap(testdata, "app/raw-tcp-files.pcap")])
    validator(on)
    files = {e["dest_port"]: e["fileinfo"] for e in on if e["event_type"] == "fileinfo"}
    assert sorted(files) == [4444, 33333]
    elf = files[33333]
    body = (b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00\x3e\x00\x01\x00\x00\x00"
            + b"\x00" * 40) + bytes(range(256)) * 8
    assert elf["source"] == "tcp" and elf["direction"] == "to_server"
    assert elf["size"] == len(body) and elf["sha256"] == hashlib.sha256(body).hexdigest()
    assert elf["state"] == "CLOSED" and elf["magic"].startswith("ELF 64-bit")
    pe = files[4444]
    stage = b"MZ\x90\x00" + b"\x00" * 56 + struct.pack("<I", 64) + b"PE\x00\x00" + b"\x00" * 200
    # the 4-byte length in front is not part of the file
    assert pe["direction"] == "to_client" and pe["size"] == len(stage)
    assert pe["sha256"] == hashlib.sha256(stage).hexdigest()
    assert on[-1]["stats"]["files"]["raw_tcp"] == 2
    off = events_of(run_sensor, ["-r", pcap(testdata, "app/raw-tcp-files.pcap"),
                                 "--set", "files.raw_tcp=false"])
    assert not [e for e in off if e["event_type"] == "fileinfo"]


def test_ftp_commands(run_sensor, testdata, validator):
    on = events_of(run_sensor, ["-r", pcap(testdata, "app/ftp-commands.pcap")])
    validator(on)
    ftp = [e["ftp"] for e in on if e["event_type"] == "ftp"]
    assert ftp == [
        {"command": "USER", "command_data": "alice"},
        {"command": "PORT", "command_data": "10,1,1,10,195,80",
         "active": {"ip": "10.1.1.10", "port": 50000}, "bounce": False},
        {"command": "RETR", "command_data": "report.pdf"},
        {"command": "PORT", "command_data": "192,0,2,99,0,25",
         "active": {"ip": "192.0.2.99", "port": 25}, "bounce": True},
        {"command": "EPRT", "command_data": "|2|2001:db8::99|8080|",
         "active": {"ip": "2001:db8::99", "port": 8080}, "bounce": True},
        {"command": "STOR", "command_data": "up load.exe"}]
    raw = json.dumps(on)
    assert "s3cr3t-ftp-pw" not in raw and '"PASS"' not in raw
    assert on[-1]["stats"]["ftp"] == {"flows": 1, "events": 6, "bounces": 2}
    off = events_of(run_sensor, ["-r", pcap(testdata, "app/ftp-commands.pcap"),
                                 "--set", "ftp.enabled=false"])
    assert not [e for e in off if e["event_type"] == "ftp"] and "ftp" not in off[-1]["stats"]


def test_indicator_feeds(run_sensor, sensor_bin, shared, tmp_path):
    cap = os.path.join(shared, "pcap", "ndpi", "tls_malicious_sha1.pcapng")
    if not os.path.exists(cap):
        pytest.skip("%s absent (the shared corpus)" % cap)
    plain = events_of(run_sensor, ["-r", cap])
    tls = [e for e in plain if e["event_type"] == "tls"][0]["tls"]
    assert not [e for e in plain if e["event_type"] == "flow" and e["ndpi"]["risks"]]
    ja3, sha1 = tmp_path / "ja3_fingerprints.csv", tmp_path / "sslblacklist.csv"
    ja3.write_text("# ja3_md5,Firstseen,Lastseen,Listingreason\n%s,2020-01-01,2020-01-02,Test\n"
                   % tls["ja3"]["hash"])
    sha1.write_text("# Listingdate,SHA1,Listingreason\n2020-01-01 00:00:00,%s,Test C&C\n"
                    % tls["fingerprint"].replace(":", ""))
    for opt, risk in (("dpi.malicious_ja3_file=%s" % ja3, "Possibly Malicious JA3 Fingerprint"),
                      ("dpi.malicious_sha1_file=%s" % sha1,
                       "Possibly Malicious SSL Cert. SHA1 Fingerprint")):
        ev = events_of(run_sensor, ["-r", cap, "--set", opt])
        flows = [e for e in ev if e["event_type"] == "flow"]
        assert [risk] in [f["ndpi"]["risks"] for f in flows], (opt, [f["ndpi"] for f in flows])
    p = subprocess.run([sensor_bin, "-r", cap, "-w", os.devnull, "--set",
                        "dpi.malicious_sha1_file=%s" % (tmp_path / "missing.csv")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "missing.csv" in p.stderr
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("%s,just one column\n" % tls["fingerprint"].replace(":", ""))
    p = subprocess.run([sensor_bin, "-r", cap, "-w", os.devnull, "--set",
                        "dpi.malicious_sha1_file=%s" % wrong], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and "no certificate SHA-1 fingerprint in" in p.stderr, p.stderr
