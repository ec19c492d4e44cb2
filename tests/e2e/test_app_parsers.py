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
* test_ftp_data_files                  sensor/ftp_expect.c: the data connections that PASV (227),
                                      EPSV (229) and PORT announce carry files named by RETR
                                      / STOR, whatever their content; a listing is no file;
                                      ndpi's ftp.pcap (the stream's hash)
* test_indicator_feeds                dpi.malicious_ja3_file / dpi.malicious_sha1_file in
                                      abuse.ch SSLBL's layouts set nDPI's malicious-JA3 and
                                      malicious-certificate risks; a missing feed stops the
                                      sensor with its path; a feed in the wrong layout warns
* test_smb_files                      sensor/smb.c, smb_files.c: files written and read over
                                      SMB2 (reads answered out of order put back in file
                                      order), hashed and scanned; a gap, a file never closed,
                                      a pipe, an unknown FileId; smb.enabled: false
* test_smb_files_real                 the shared captures: mimikatz.exe read from C$ over
                                      SMB2 (the hashes of tshark's export), EICAR written
                                      over SMB1
* test_smtp_messages                  sensor/smtp.c, mime.c: the envelope, the header fields
                                      (encoded words decoded), every attachment decoded and
                                      hashed, YARA on the decoded bytes, dot-stuffing, BDAT,
                                      an attached message, hostile names escaped, a MIME
                                      bomb not read, nothing after STARTTLS; smtp.enabled
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
                                 "--set", "ftp.enabled=false", "--set", "krb5.enabled=false",
                                 "--set", "smtp.enabled=false"])
    validator(on)
    validator(off)
    assert len([e for e in on if e["event_type"] == "anomaly"]) == 9
    assert on[-1]["stats"]["tls"] == {"flows": 7, "anomalies": 9}
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
    assert on[-1]["stats"]["ftp"] == {"flows": 1, "events": 6, "bounces": 2,
                                      "data_connections": 0, "data_files": 0}
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


def gen():
    """tests/traffic/gen_pcaps.py, for the contents of the files its captures carry."""
    import sys
    sys.path.insert(0, os.path.join(REPO, "tests", "traffic"))
    import gen_pcaps
    return gen_pcaps


def test_smb_files(run_sensor, testdata, validator):
    import hashlib
    written, read = gen().SMB_WRITTEN, gen().SMB_READ
    rules = os.path.join(REPO, "rules", "yara")
    on = events_of(run_sensor, ["-r", pcap(testdata, "app/smb-files.pcap"),
                                "--yara-rules", rules])
    validator(on)
    files = [e for e in on if e["event_type"] == "fileinfo"]
    got = [(f["fileinfo"]["filename"], f["fileinfo"]["direction"], f["fileinfo"]["size"],
            f["fileinfo"]["state"], f["fileinfo"]["gaps"], f["fileinfo"].get("sha256"),
            f["fileinfo"]["tx_id"]) for f in files]
    assert got == [
        ("docs\\report.exe", "to_server", 3000, "CLOSED", False,
         hashlib.sha256(written).hexdigest(), 0),
        ("data.bin", "to_client", 9192, "CLOSED", False, hashlib.sha256(read).hexdigest(), 1),
        ("gappy.txt", "to_server", 200, "TRUNCATED", True, None, 2),
        # 1 MiB held for a read never answered, then a gap
        ("big.iso", "to_client", 17 * 65536, "TRUNCATED", True, None, 3),
        ("open.txt", "to_server", 55, "TRUNCATED", False,
         hashlib.sha256(b"still open\n" * 5).hexdigest(), 4)]
    assert all(f["fileinfo"]["source"] == "smb" and f["smb"] == {"share": "\\\\fs01\\share"}
               for f in files)
    assert files[0]["fileinfo"]["yara"] == ["Fenghuo_EICAR_Test_File"]
    (y,) = [e for e in on if e["event_type"] == "yara"]
    assert y["file"] == {"source": "smb", "filename": "docs\\report.exe", "size": 3000}
    assert on[-1]["stats"]["files"]["smb"] == 5
    # With rules each file keeps its first files.max_bytes to scan; without, the 4 KiB
    # typing reads: the same hash, size and type either way.
    plain = [e for e in events_of(run_sensor, ["-r", pcap(testdata, "app/smb-files.pcap")])
             if e["event_type"] == "fileinfo"]
    assert [f["fileinfo"]["scanned_bytes"] for f in files] == [3000, 9192, 200, 1 << 20, 55]
    assert [f["fileinfo"]["scanned_bytes"] for f in plain] == [3000, 4096, 200, 4096, 55]
    keep = ("filename", "size", "state", "sha256", "mimetype", "magic")
    assert [{k: f["fileinfo"].get(k) for k in keep} for f in plain] == \
        [{k: f["fileinfo"].get(k) for k in keep} for f in files]
    off = events_of(run_sensor, ["-r", pcap(testdata, "app/smb-files.pcap"),
                                 "--set", "smb.enabled=false"])
    assert not [e for e in off if e["event_type"] == "fileinfo"]


def test_smb_compound(run_sensor, testdata, validator):
    """Files in SMB2 compound messages: a related WRITE (FileId 0xff..ff) to the CREATE
    before it, a WRITE whose header is past the bytes a message keeps, a related READ, and
    a related READ whose CLOSE comes in the same message, before the data."""
    import hashlib
    g = gen()
    evs = events_of(run_sensor, ["-r", pcap(testdata, "app/smb-compound.pcap"),
                                 "--yara-rules", os.path.join(REPO, "rules", "yara")])
    validator(evs)
    files = [e["fileinfo"] for e in evs if e["event_type"] == "fileinfo"]
    got = [(f["filename"], f["direction"], f["size"], f["state"], f["gaps"], f.get("sha256"))
           for f in files]
    assert got == [
        ("PSEXESVC.exe", "to_server", 3000, "CLOSED", False,
         hashlib.sha256(g.SMB_DROPPED).hexdigest()),
        ("parts.txt", "to_server", 8000, "CLOSED", False,
         hashlib.sha256(b"".join(g.SMB_PARTS)).hexdigest()),
        ("related.bin", "to_client", 4096, "CLOSED", False,
         hashlib.sha256(g.SMB_RELATED_READ).hexdigest()),
        ("closed.bin", "to_client", 3000, "CLOSED", False,
         hashlib.sha256(g.SMB_READ_CLOSED).hexdigest())]
    assert files[0]["yara"] == ["Fenghuo_EICAR_Test_File"]
    # each file's CREATE event comes before its fileinfo, as for single messages
    order = [e["smb"].get("filename") or e["fileinfo"]["filename"] for e in evs
             if e["event_type"] == "fileinfo" or e.get("smb", {}).get("command") ==
             "SMB2_COMMAND_CREATE"]
    assert order == ["PSEXESVC.exe", "PSEXESVC.exe", "parts.txt", "parts.txt", "related.bin",
                     "related.bin", "closed.bin", "closed.bin"]
    assert evs[-1]["stats"]["files"]["smb"] == 4


def test_smb_files_real(run_sensor, shared, validator):
    """Real captures: files as tshark --export-objects smb gives them."""
    base = os.path.join(shared, "pcap", "suricata-verify")
    if not os.path.exists(os.path.join(base, "smb-eicar-file.pcap")):
        pytest.skip("%s missing (the shared corpus)" % base)
    ev = events_of(run_sensor, ["-r", os.path.join(base, "smb-mimikatz-copy-to-host.pcap")])
    validator(ev)
    files = [(e["fileinfo"]["filename"], e["fileinfo"]["direction"], e["fileinfo"]["size"],
              e["fileinfo"]["state"], e["fileinfo"]["sha256"], e["smb"]["share"])
             for e in ev if e["event_type"] == "fileinfo"]
    # a first read of 4096 bytes, then the whole file with up to seven 64 KiB reads
    # outstanding, answered out of order
    assert files == [
        ("temp\\mimikatz.exe", "to_client", 4096, "CLOSED",
         "81ae6047547583c18a8e1e7104596e4ea8efebdf2ff37d44eebc1e4790941f19",
         "\\\\admin-pc\\c$"),
        ("temp\\mimikatz.exe", "to_client", 804352, "CLOSED",
         "fb55414848281f804858ce188c3dc659d129e283bd62d58d34f6e6f568feab37",
         "\\\\admin-pc\\c$")]
    rules = os.path.join(REPO, "rules", "yara")
    ev = events_of(run_sensor, ["-r", os.path.join(base, "smb-eicar-file.pcap"),
                                "--yara-rules", rules])
    validator(ev)
    (f,) = [e for e in ev if e["event_type"] == "fileinfo"]
    assert f["fileinfo"]["filename"] == "eicar" and f["fileinfo"]["direction"] == "to_server"
    assert f["fileinfo"]["sha256"] == \
        "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
    assert f["fileinfo"]["yara"] == ["Fenghuo_EICAR_Test_File"]
    assert f["smb"] == {"share": "\\\\192.168.1.3\\PUBLIC"}
    smb = [e["smb"] for e in ev if e["event_type"] == "smb" and "command" in e["smb"]]
    assert smb == [{"command": "SMB1_COMMAND_TREE_CONNECT_ANDX",
                    "share": "\\\\192.168.1.3\\PUBLIC", "admin_share": False}]


def test_smtp_messages(run_sensor, testdata, validator):
    import hashlib
    g = gen()
    sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    rules = os.path.join(REPO, "rules", "yara")
    on = events_of(run_sensor, ["-r", pcap(testdata, "app/smtp-messages.pcap"),
                                "--yara-rules", rules])
    validator(on)
    files = [(e["dest_port"], e["fileinfo"]["filename"], e["fileinfo"]["size"],
              e["fileinfo"]["sha256"], e["fileinfo"]["tx_id"], e["fileinfo"].get("mimetype"))
             for e in on if e["event_type"] == "fileinfo"]
    assert files == [
        (25, "report.pdf", len(g.SMTP_PDF), sha(g.SMTP_PDF), 0, "application/pdf"),
        (25, "update.exe", len(g.SMTP_PE), sha(g.SMTP_PE), 0, "application/x-dosexec"),
        # sent with its lines that start with a dot doubled; read as written
        (25, "dots.txt", len(g.SMTP_DOTS), sha(g.SMTP_DOTS), 0, "text/plain"),
        # in the attached message, quoted-printable
        (25, "inner.txt", len(g.SMTP_INNER), sha(g.SMTP_INNER), 0, "text/plain"),
        # the second message, sent in two BDAT chunks
        (25, "notes.txt", len(g.SMTP_NOTES), sha(g.SMTP_NOTES), 1, "text/plain"),
        (587, '"><script>x</script>.js', 10, sha(b"var a = 1;"), 0,
         "application/javascript")]
    first = [e for e in on if e["event_type"] == "fileinfo"][0]
    assert first["fileinfo"]["source"] == "smtp" and first["fileinfo"]["direction"] == "to_server"
    assert first["smtp"] == {"helo": "client.example.cn", "mail_from": "alice@example.cn",
                             "rcpt_to": ["bob@gov.example.cn", "carol@gov.example.cn"]}
    # the EICAR string is in the PE only once decoded from base64
    (y,) = [e for e in on if e["event_type"] == "yara"]
    assert y["yara"]["rule"] == "Fenghuo_EICAR_Test_File"
    assert y["file"] == {"source": "smtp", "filename": "update.exe", "size": len(g.SMTP_PE)}
    mails = [(e["dest_port"], e["smtp"], e["email"]) for e in on if e["event_type"] == "smtp"]
    assert mails == [
        (25, {"helo": "client.example.cn", "mail_from": "alice@example.cn",
              "rcpt_to": ["bob@gov.example.cn", "carol@gov.example.cn"]},
         {"status": "PARSE_DONE", "from": "张三 <alice@example.cn>",
          "to": "bob@gov.example.cn, Carol <carol@gov.example.cn>", "subject": "月度报告",
          "message_id": "m1@example.cn", "x_mailer": "Foxmail 7.2",
          "attachment": ["report.pdf", "update.exe", "dots.txt", "inner.txt"]}),
        (25, {"helo": "client.example.cn", "mail_from": "alice@example.cn",
              "rcpt_to": ["dave@gov.example.cn"]},
         {"status": "PARSE_DONE", "from": "alice@example.cn", "subject": "chunked",
          "attachment": ["notes.txt"]}),
        (587, {"helo": "x", "mail_from": "mallory@example.net", "rcpt_to": ["bob@gov.example.cn"]},
         {"status": "PARSE_DONE", "from": "mallory@example.net", "to": "bob@gov.example.cn",
          "subject": '<img src=x onerror=alert(1)> "quoted" \x01',
          "attachment": ['"><script>x</script>.js']}),
        # 300 nested multiparts, then 5,000 parts in one: not given to GMime
        (587, {"helo": "x", "mail_from": "x@example.net", "rcpt_to": ["bob@gov.example.cn"]},
         {"status": "TOO_COMPLEX"}),
        (587, {"helo": "x", "mail_from": "x@example.net", "rcpt_to": ["bob@gov.example.cn"]},
         {"status": "TOO_COMPLEX"})]
    # nothing of the session after STARTTLS
    assert not [e for e in on if e["event_type"] in ("smtp", "fileinfo") and e["src_port"] == 49822]
    assert on[-1]["stats"]["smtp"] == {"flows": 3, "messages": 5, "attachments": 6, "cut": 0,
                                       "mime_errors": 2}
    # smtp.max_message: a message cut short (here in the headers of update.exe's part) is
    # read on what was kept and says so; its last attachment is TRUNCATED
    cut = events_of(run_sensor, ["-r", pcap(testdata, "app/smtp-messages.pcap"),
                                 "--set", "smtp.max_message=700"])
    validator(cut)
    first = [e["email"] for e in cut if e["event_type"] == "smtp"][0]
    assert first["truncated"] is True and first["attachment"] == ["report.pdf", ""]
    states = [(e["fileinfo"].get("filename"), e["fileinfo"]["state"])
              for e in cut if e["event_type"] == "fileinfo" and e["fileinfo"]["tx_id"] == 0
              and e["dest_port"] == 25]
    assert states == [("report.pdf", "CLOSED"), (None, "TRUNCATED")]
    assert cut[-1]["stats"]["smtp"]["cut"] == 3  # and the two MIME bombs
    off = events_of(run_sensor, ["-r", pcap(testdata, "app/smtp-messages.pcap"),
                                 "--set", "smtp.enabled=false"])
    assert not [e for e in off if e["event_type"] in ("smtp", "fileinfo")]
    assert "smtp" not in off[-1]["stats"]


def test_ftp_data_files(run_sensor, testdata, shared, validator):
    import hashlib
    g = gen()
    sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    # one worker: a data connection is known by what its control connection said before
    ev = events_of(run_sensor, ["-r", pcap(testdata, "app/ftp-data.pcap"), "--threads", "1"])
    validator(ev)
    files = [(e["src_port"], e["dest_port"], e["fileinfo"]["source"], e["fileinfo"]["filename"],
              e["fileinfo"]["direction"], e["fileinfo"]["state"], e["fileinfo"]["sha256"],
              e["ftp"]) for e in ev if e["event_type"] == "fileinfo"]
    assert files == [
        (49831, 50001, "ftp", "notes.txt", "to_client", "CLOSED", sha(g.FTP_NOTES),
         {"command": "RETR"}),
        (49832, 50002, "ftp", "upload.bin", "to_server", "CLOSED", sha(g.FTP_UPLOAD),
         {"command": "STOR"}),
        # active mode: the server connected to the client, so the file goes "to_server"
        (20, 50003, "ftp", "act.txt", "to_server", "CLOSED", sha(g.FTP_ACTIVE),
         {"command": "RETR"}),
        (49836, 50006, "ftp", "nat.txt", "to_client", "CLOSED", sha(g.FTP_ACTIVE),
         {"command": "RETR"})]
    ftp = [e["ftp"]["command"] for e in ev if e["event_type"] == "ftp"]
    assert ftp == ["USER", "RETR", "STOR", "PORT", "RETR", "RETR"]  # LIST, PASV: no events
    assert ev[-1]["stats"]["ftp"] == {"flows": 1, "events": 6, "bounces": 0,
                                      "data_connections": 5, "data_files": 4}
    off = events_of(run_sensor, ["-r", pcap(testdata, "app/ftp-data.pcap"), "--threads", "1",
                                 "--set", "ftp.enabled=false"])
    assert not [e for e in off if e["event_type"] == "fileinfo"]
    real = os.path.join(shared, "pcap", "ndpi", "ftp.pcap")
    if not os.path.exists(real):
        pytest.skip("%s missing (the shared corpus)" % real)
    ev = events_of(run_sensor, ["-r", real, "--threads", "1"])
    (f,) = [e for e in ev if e["event_type"] == "fileinfo"]
    # the whole TCP stream as tshark's "follow tcp" shows it (its ftp-data export misses the
    # out-of-order first segment); the capture ends before the transfer did
    assert (f["fileinfo"]["filename"], f["fileinfo"]["size"], f["fileinfo"]["state"]) == \
        ("1MB.zip", 109440, "TRUNCATED")
    assert f["fileinfo"]["sha256"] == \
        "e7bdd0dc6a20da6a5d685ef7a4c9dff386e3eaea3bcb7841cf9af358368feb3d"
