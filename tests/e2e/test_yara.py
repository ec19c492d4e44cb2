"""Payload inspection with YARA, beyond the per-pcap cases in tests/cases/yara-*:

  * a rule file that does not compile stops the sensor at start (exit 2, FILE:LINE);
  * SIGHUP while a capture comes through a FIFO, at known points of it (no timing): a
    broken rule file is reported and the rules in service stay; a good one replaces them;
  * excerpts (yara.excerpt_bytes) and the options in --help-config;
  * sensor -> correlator: EICAR over HTTP raises the L3-12 virus alert.
"""

import json
import os
import re
import signal
import subprocess
import time

import pytest

import fhlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(REPO, "rules", "yara")
EICAR_RULE = "Fenghuo_EICAR_Test_File"
MARK_RULE = """rule Fenghuo_Reload_Mark : test
{
    meta:
        category = "test"
    strings:
        $m = "FENGHUO-RELOAD-MARK"
    condition:
        $m
}
"""
BROKEN_RULE = """rule Broken
{
    strings:
        $a = "abc"
    condition:
        $a and $undefined
}
"""


def pcap(testdata, name):
    path = os.path.join(testdata, "pcap", "payload", name)
    if not os.path.exists(path):
        pytest.skip("%s missing (make testdata)" % path)
    return path


def yara_events(events):
    return [e for e in events if e["event_type"] == "yara"]


def test_broken_rules_exit_2(sensor_run, testdata, tmp_path):
    bad = tmp_path / "bad.yar"
    bad.write_text(BROKEN_RULE)
    r = sensor_run(["-r", pcap(testdata, "yara-http.pcap"), "--yara-rules", str(bad)])
    assert r.returncode == 2, r.stderr
    assert re.search(re.escape(str(bad)) + r":\d+: undefined string", r.stderr), r.stderr
    assert r.raw == b""  # nothing was read


def test_broken_rules_in_directory_exit_2(sensor_run, testdata, tmp_path):
    (tmp_path / "good.yar").write_text(MARK_RULE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.yara").write_text(BROKEN_RULE)
    r = sensor_run(["-r", pcap(testdata, "yara-http.pcap"), "--set",
                    "yara.rules=%s" % tmp_path])
    assert r.returncode == 2, r.stderr
    assert re.search(re.escape(str(tmp_path / "sub" / "bad.yara")) + r":\d+: ", r.stderr), r.stderr


def test_missing_rules_exit_2(sensor_run, testdata, tmp_path):
    r = sensor_run(["-r", pcap(testdata, "yara-http.pcap"), "--yara-rules",
                    str(tmp_path / "nothing-here")])
    assert r.returncode == 2, r.stderr


@pytest.mark.parametrize("value", ["0", "abc", "128m"])
def test_bad_max_bytes(sensor_run, testdata, value):
    r = sensor_run(["-r", pcap(testdata, "yara-http.pcap"), "--yara-rules", RULES,
                    "--yara-max-bytes", value])
    assert r.returncode == 2, r.stderr
    assert "yara.max_bytes" in r.stderr


def test_help_config_lists_options(sensor_run):
    r = sensor_run(["--help-config"], output=False)
    assert r.returncode == 0
    text = r.raw.decode()
    for opt in ("yara.rules", "yara.max_bytes", "yara.excerpt_bytes", "yara.memcap",
                "reassembly.memcap", "reassembly.dir_cap"):
        assert opt in text, opt
    r = sensor_run(["--help"], output=False)
    assert "--yara-rules" in r.raw.decode() and "--yara-max-bytes" in r.raw.decode()


def test_excerpt(run_sensor, testdata, validator):
    events, err, rc = run_sensor(["-r", pcap(testdata, "yara-http.pcap")],
                                 config={"yara": {"rules": RULES, "excerpt_bytes": 20}})
    assert rc == 0, err
    validator(events)
    (ev,) = yara_events(events)
    # the match is the response body's (a file: offsets in the file, docs/events.md)
    assert ev["file"]["source"] == "http"
    assert ev["yara"]["strings"] == [{"id": "$eicar", "offset": 0, "length": 68,
                                      "data": "X5O!P%@AP[4\\PZX54(P^"}]


def test_same_pcap_same_events(sensor_run, testdata):
    """Deterministic: two runs give byte-identical yara events."""
    runs = [sensor_run(["-r", pcap(testdata, "yara-smtp.pcap"), "--yara-rules", RULES])
            for _ in range(2)]
    lines = [[l for l in r.lines if b'"event_type":"yara"' in l] for r in runs]
    assert len(lines[0]) == 1 and lines[0] == lines[1]


def test_memcap_counted(run_sensor, testdata, validator):
    """yara.memcap too small for one buffer: nothing buffered, counted, no crash."""
    events, err, rc = run_sensor(["-r", pcap(testdata, "yara-http.pcap"), "--yara-rules", RULES,
                                  "--set", "yara.memcap=100"])
    assert rc == 0, err
    validator(events)
    assert yara_events(events) == []
    stats = events[-1]["stats"]["yara"]
    assert stats["drops"]["memcap"] > 0 and stats["buffer_memory_peak"] == 0
    flow = [e for e in events if e["event_type"] == "flow"][0]
    assert flow["reassembly"]["toclient"]["truncated"] is True


@pytest.mark.parametrize("threads", [1, 2])
def test_tight_limits_on_real_traffic(run_sensor, shared, validator, threads):
    """Real browsing traffic with YARA on and every limit far too small: flows evicted
    while their directions are still buffered (each is scanned and freed at eviction),
    scan buffers past yara.memcap: all counted, every event valid, nothing leaks or
    crashes (the suite also runs under ASan), with and without worker threads."""
    cap = os.path.join(shared, "pcap", "bench", "pcapplusplus-example-browsing.pcap")
    if not os.path.exists(cap):
        pytest.skip("%s absent (the shared corpus)" % cap)
    events, err, rc = run_sensor(["-r", cap, "--yara-rules", RULES, "--threads", str(threads),
                                  "--set", "flow.max_flows=8", "--set", "yara.memcap=16k",
                                  "--set", "reassembly.memcap=8k", "--set", "yara.max_bytes=64k"])
    assert rc == 0, err
    validator(events)
    st = events[-1]["stats"]
    assert st["flow"]["evicted"] > 100, st["flow"]
    assert st["flow"]["by_reason"]["forced"] == st["flow"]["evicted"]
    assert st["yara"]["drops"]["memcap"] > 0 and st["yara"]["scans"] > 0, st["yara"]
    assert st["yara"]["buffer_memory"] == 0 and st["flow"]["memory"] == 0, st
    ended = [e for e in events if e["event_type"] == "flow" and e["flow"]["reason"] != "update"]
    assert len(ended) == st["flow"]["ended"]
    assert sum(1 for e in ended if e["flow"]["reason"] == "forced") == st["flow"]["evicted"]


def wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def assert_rules_switched(events, validator):
    """The events of yara-reload.pcap (60 datagrams with the EICAR string and a marker)
    with the EICAR rule replaced by the marker rule mid-run: valid, every datagram matched
    by exactly one of the two sets, enough of each, all EICAR matches first. Returns the
    yara events."""
    validator(events)
    ys = yara_events(events)
    eicar = [e for e in ys if e["yara"]["rule"] == EICAR_RULE]
    mark = [e for e in ys if e["yara"]["rule"] == "Fenghuo_Reload_Mark"]
    assert len(eicar) + len(mark) == len(ys) == 60, [e["yara"]["rule"] for e in ys]
    assert len(eicar) >= 10 and len(mark) >= 5, (len(eicar), len(mark))
    assert max(e["timestamp"] for e in eicar) < min(e["timestamp"] for e in mark)
    return ys


def _pcap_records(path):
    """(global header, [record bytes]) of a classic pcap file."""
    data = open(path, "rb").read()
    head, off, recs = data[:24], 24, []
    little = data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    while off + 16 <= len(data):
        caplen = int.from_bytes(data[off + 8:off + 12], "little" if little else "big")
        recs.append(data[off:off + 16 + caplen])
        off += 16 + caplen
    return head, recs


def _wait_blocked_on_pipe(pid, fd, timeout=30):
    """Waits until the pipe holds no unread byte and the sensor's main thread (with
    --threads 1 it reads, decodes and scans) sleeps in read(2): then everything written
    so far has been scanned. Linux /proc; x86_64 and arm64 number read 0 and 63."""
    import fcntl
    import termios
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        unread = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
        with open("/proc/%d/syscall" % pid) as f:
            call = f.read().split()
        if int.from_bytes(unread, "little") == 0 and call and call[0] in ("0", "63"):
            # twice in a row, 20 ms apart, to be sure it is not between two reads
            time.sleep(0.02)
            with open("/proc/%d/syscall" % pid) as f:
                again = f.read().split()
            if again[:2] == call[:2]:
                return
        time.sleep(0.01)
    raise AssertionError("the sensor did not drain the pipe")


def test_sighup_reload(sensor_bin, testdata, tmp_path, validator):
    """The pcap has 60 one-datagram UDP flows, each with the EICAR string and a marker. The
    first 20 go through a FIFO; then a broken rule file and SIGHUP: logged with FILE:LINE,
    the EICAR rule stays in force; 10 more; then a good file (the marker rule only) and
    SIGHUP, and the last 30 match the new rule. No timing: before each reload the test
    waits until the sensor has scanned what was written (_wait_blocked_on_pipe)."""
    head, recs = _pcap_records(pcap(testdata, "yara-reload.pcap"))
    fifo = tmp_path / "in.pcap"
    os.mkfifo(str(fifo))
    rules = tmp_path / "rules.yar"
    rules.write_text(open(os.path.join(RULES, "eicar.yar")).read())
    out, errf = tmp_path / "out.ndjson", tmp_path / "stderr.txt"
    with open(errf, "w") as err_w:
        # yara.udp_datagrams 1: each one-datagram flow is scanned when its datagram comes,
        # not when it ends (the default keeps 4 per direction for one scan)
        p = subprocess.Popen([sensor_bin, "-r", str(fifo), "--threads", "1", "--yara-rules",
                              str(rules), "--set", "yara.udp_datagrams=1", "-w", str(out)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_w)
    try:
        def log():
            return errf.read_text(errors="replace")
        w = os.open(str(fifo), os.O_WRONLY)
        os.write(w, head + b"".join(recs[:20]))
        _wait_blocked_on_pipe(p.pid, w)
        rules.write_text(BROKEN_RULE)
        p.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reload failed" in log(), 10), log()
        assert re.search(re.escape(str(rules)) + r":\d+: undefined string", log()), log()
        os.write(w, b"".join(recs[20:30]))
        _wait_blocked_on_pipe(p.pid, w)
        rules.write_text(MARK_RULE)
        p.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "rules reloaded" in log(), 10), log()
        os.write(w, b"".join(recs[30:]))
        os.close(w)
        assert p.wait(timeout=60) == 0, log()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    events = [json.loads(l) for l in out.read_text().splitlines()]
    ys = assert_rules_switched(events, validator)
    assert [e["yara"]["rule"] for e in ys] == [EICAR_RULE] * 30 + ["Fenghuo_Reload_Mark"] * 30
    assert sorted(e["src_port"] for e in ys) == list(range(42000, 42060))
    stats = events[-1]["stats"]["yara"]
    assert stats["rule_sets"] == 2 and stats["rules"] == 1 and stats["matches"] == 60


def test_sighup_rereads_the_configuration(sensor_bin, testdata, tmp_path, validator):
    """With -c FILE, SIGHUP reads the file again: log.level and yara.rules (a new path) are
    applied while the sensor runs, flow.max_flows is reported as waiting for a restart, a
    command-line --set still wins over the file, and a file that does not parse is reported
    with FILE:LINE while the running configuration stays.

    Deterministic (no timing): the capture comes through a FIFO. The first 30 datagrams
    are written, the test waits until the sensor has read and scanned them (the pipe is
    empty and its only packet thread sleeps in read), reloads, then writes the other 30:
    exactly 30 EICAR matches, then exactly 30 marker matches."""
    head, recs = _pcap_records(pcap(testdata, "yara-reload.pcap"))
    assert len(recs) == 60
    fifo = tmp_path / "in.pcap"
    os.mkfifo(str(fifo))
    eicar = tmp_path / "eicar.yar"
    eicar.write_text(open(os.path.join(RULES, "eicar.yar")).read())
    mark = tmp_path / "mark.yar"
    mark.write_text(MARK_RULE)
    cfg = tmp_path / "sensor.yaml"
    cfg.write_text("log:\n  level: info\nflow:\n  max_flows: 1000\n"
                   "yara:\n  rules: %s\n  max_bytes: 4k\n  udp_datagrams: 1\n" % eicar)
    out, errf = tmp_path / "out.ndjson", tmp_path / "stderr.txt"
    with open(errf, "w") as err_w:
        p = subprocess.Popen([sensor_bin, "-c", str(cfg), "-r", str(fifo), "--threads", "1",
                              "--set", "yara.max_bytes=8k", "-w", str(out)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_w)
    try:
        def log():
            return errf.read_text(errors="replace")
        w = os.open(str(fifo), os.O_WRONLY)  # returns once the sensor opened it
        os.write(w, head + b"".join(recs[:30]))
        _wait_blocked_on_pipe(p.pid, w)
        cfg.write_text("log:\n  level: debug\nflow:\n  max_flows: 2000\n"
                       "yara:\n  rules: %s\n  max_bytes: 16k\n  udp_datagrams: 1\n" % mark)
        p.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "YARA rules reloaded" in log(), 10), log()
        text = log()
        assert "SIGHUP: log.level info -> debug" in text, text
        assert "SIGHUP: yara.rules %s -> %s" % (eicar, mark) in text, text
        assert re.search(r"option 'flow\.max_flows' changed \(1000 -> 2000\); it takes effect at "
                         r"the next start", text), text
        # --set yara.max_bytes=8k is replayed over the file: no change to report.
        assert "yara.max_bytes" not in text, text
        assert "2 changes applied, 1 waiting for a restart" in text, text
        cfg.write_text("log:\n  level: [debug\n")
        p.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "configuration reload failed" in log(), 10), log()
        assert re.search(re.escape(str(cfg)) + r":\d+: ", log()), log()
        os.write(w, b"".join(recs[30:]))
        os.close(w)
        assert p.wait(timeout=60) == 0, log()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    ys = assert_rules_switched([json.loads(l) for l in out.read_text().splitlines()], validator)
    assert [e["yara"]["rule"] for e in ys] == [EICAR_RULE] * 30 + ["Fenghuo_Reload_Mark"] * 30


def test_sighup_without_yara_is_harmless(sensor_bin, testdata, tmp_path):
    out, errf = tmp_path / "out.ndjson", tmp_path / "stderr.txt"
    with open(errf, "w") as err_w:
        p = subprocess.Popen([sensor_bin, "-r", pcap(testdata, "yara-reload.pcap"),
                              "--set", "capture.replay_rate=50", "-w", str(out)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_w)
    time.sleep(0.3)
    p.send_signal(signal.SIGHUP)
    assert p.wait(timeout=60) == 0
    assert "nothing to reload" in errf.read_text()
    events = [json.loads(l) for l in out.read_text().splitlines()]
    assert not yara_events(events) and events[-1]["event_type"] == "stats"



def test_sensor_to_correlator_l3_12(sensor_bin, correlator, testdata, tmp_path):
    """EICAR over HTTP, through both binaries: one L3-12 virus alert (malware.virus)
    whose evidence is the sensor's yara event."""
    events = tmp_path / "events.ndjson"
    s = subprocess.run([sensor_bin, "-q", "-r", pcap(testdata, "yara-http.pcap"),
                        "--yara-rules", RULES, "-w", str(events)],
                       capture_output=True, text=True, timeout=120)
    assert s.returncode == 0, s.stderr
    alerts, _ = fhlib.run_level3(correlator, events, tmp_path)
    assert [a["rule"]["name"] for a in alerts] == ["l3_12_yara_virus"], alerts
    (a,) = alerts
    assert a["category"] == "malware" and a["subcategory"] == "virus"
    assert a["src"]["ip"] == "10.1.1.10" and a["dest"]["ip"] == "10.1.1.80"
    ev = json.loads(a["evidence"][0]["event"])
    assert ev["event_type"] == "yara" and ev["yara"]["rule"] == EICAR_RULE
    assert a["evidence"][0]["community_id"] == ev["community_id"]


def test_clean_cache_floods(run_sensor, tmp_path, validator):
    """yara.clean_cache: a flood of one payload from 300 spoofed sources (a new flow per
    packet) is scanned about once; a payload that matches is scanned, and reported, in every
    flow; the events are the same as with the cache off."""
    pytest.importorskip("scapy.all")
    from scapy.all import IP, UDP, Ether, Raw, wrpcap

    eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    pkts = []
    t = 1700000000.0
    for i in range(300):  # the clean flood
        p = Ether() / IP(src="198.51.%d.%d" % (i // 250, 1 + i % 250), dst="10.1.1.1") / \
            UDP(sport=40000 + i, dport=1900) / Raw(b"M-SEARCH * HTTP/1.1\r\nMX: 1\r\n\r\n")
        p.time = t + i * 0.001
        pkts.append(p)
    for i in range(20):  # the same matching payload in 20 flows
        p = Ether() / IP(src="203.0.113.%d" % (1 + i), dst="10.1.1.2") / \
            UDP(sport=50000 + i, dport=9999) / Raw(eicar)
        p.time = t + 1 + i * 0.001
        pkts.append(p)
    path = tmp_path / "flood.pcap"
    wrpcap(str(path), pkts)

    runs = {}
    for entries in (0, 4096):
        events, err, rc = run_sensor(["-r", str(path), "--threads", "1", "--yara-rules", RULES,
                                      "--set",
                                      "yara.udp_datagrams=1", "--set",
                                      "yara.clean_cache=%d" % entries])
        assert rc == 0, err
        validator(events)
        runs[entries] = events
    off, on = runs[0][-1]["stats"]["yara"], runs[4096][-1]["stats"]["yara"]
    assert off["scans"] == on["scans"] == 320
    assert off["cache_hits"] == 0
    assert on["cache_hits"] == 299  # every flood packet but the first (one worker, one cache)
    assert on["matches"] == off["matches"] == 20

    def hits(events):
        return sorted((e["src_ip"], e["yara"]["rule"], json.dumps(e["yara"]["strings"]))
                      for e in yara_events(events))
    assert len(hits(runs[4096])) == 20
    assert hits(runs[4096]) == hits(runs[0])
    assert {h[1] for h in hits(runs[4096])} == {EICAR_RULE}


def test_tls_scanned_to_its_handshake(run_sensor, tmp_path, validator):
    """A TLS server's direction is scanned up to its first ChangeCipherSpec or application
    data record (yara.tls_bytes at most): a certificate's text is scanned, the ciphertext
    after it is not. The client's ClientHello is not scanned at all."""
    import sys
    sys.path.insert(0, os.path.join(REPO, "tests", "traffic"))
    import gen_pcaps as g
    pytest.importorskip("scapy.all")

    cert = b"\x0b" + b"\x00\x00\x40" + b"FENGHUO-CERT-MARK " * 3 + b"." * 10  # Certificate
    handshake = g.tls_server_hello()[:-9] + b"\x16\x03\x03" + g._vec16(cert) + \
        b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00"
    appdata = b"\x17\x03\x03" + g._vec16(b"FENGHUO-APPDATA-MARK " * 4)
    p = g.Pcap("tls-scan")
    c = g.TcpConv(p, "tls", "10.1.1.10", "10.1.1.30", 49900, 443)
    t = c.handshake(g.BASE)
    c.seg(g.C, t + g.ms(1), "PA", g.tls_client_hello())
    c.seg(g.S, t + g.ms(2), "PA", handshake)
    c.seg(g.C, t + g.ms(3), "PA", g.TLS_CCS + g.TLS_FINISHED)
    c.seg(g.S, t + g.ms(4), "PA", g.TLS_CCS + g.TLS_FINISHED + appdata)
    c.fin(t + g.ms(10))
    path = p.write(str(tmp_path))
    rules = tmp_path / "marks.yar"
    rules.write_text("rule cert_mark { strings: $a = \"FENGHUO-CERT-MARK\" condition: $a }\n"
                     "rule appdata_mark { strings: $a = \"FENGHUO-APPDATA-MARK\" "
                     "condition: $a }\n")
    events, err, rc = run_sensor(["-r", path, "--yara-rules", str(rules), "--threads", "1"])
    assert rc == 0, err
    validator(events)
    assert [(e["yara"]["rule"], e["yara"]["direction"]) for e in yara_events(events)] == \
        [("cert_mark", "to_client")]
    st = events[-1]["stats"]["yara"]
    assert st["scanned_bytes"] == len(handshake) and st["tcp_unscanned"] == 1


def _prefilter_inputs(shared, testdata):
    """Every capture of the shared corpus (the bench mix and browsing capture included) and
    the project's own crafted ones: a few thousand scans of every kind of buffer."""
    files = []
    for root in (os.path.join(shared, "pcap"), os.path.join(testdata, "pcap")):
        for d, _, names in sorted(os.walk(root)):
            files += [os.path.join(d, n) for n in sorted(names)
                      if n.endswith((".pcap", ".pcapng", ".cap"))]
    return files


@pytest.mark.parametrize("rules", ["shipped", "index.yar"])
def test_prefilter_same_events(run_sensor, shared, testdata, validator, rules):
    """yara.prefilter (sensor/yara_prefilter.c) skips libyara on buffers holding none of the
    literals the rules need: on the whole shared corpus and the crafted captures, with the
    shipped rules and with the shared rule set, every event (every YARA match with its
    strings, every fileinfo) is the same with the filter on and off, and the filter did
    answer most scans."""
    path = RULES if rules == "shipped" else os.path.join(shared, "yara", "index.yar")
    if not os.path.exists(path):
        pytest.skip("%s absent (the shared corpus)" % path)
    files = _prefilter_inputs(shared, testdata)
    assert len(files) > 100, files
    argv = ["--threads", "1", "--yara-rules", path, "--set", "yara.clean_cache=0"]
    for f in files:
        argv += ["-r", f]
    runs = {}
    for on in ("true", "false"):
        events, err, rc = run_sensor(argv + ["--set", "yara.prefilter=%s" % on])
        assert rc == 0, err
        runs[on] = events
    validator(runs["true"][-1:], "stats event")
    on, off = runs["true"][-1]["stats"]["yara"], runs["false"][-1]["stats"]["yara"]
    assert off["prefiltered"] == 0
    assert on["scans"] == off["scans"] and on["scanned_bytes"] == off["scanned_bytes"]
    assert on["prefiltered"] > on["scans"] // 3, on
    assert on["matches"] == off["matches"] > 20, (on, off)

    def body(events):
        return [json.dumps(e, sort_keys=True) for e in events if e["event_type"] != "stats"]
    a, b = body(runs["true"]), body(runs["false"])
    assert len(a) == len(b) > 1000
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    assert not diff, diff[:3]
    assert len(yara_events(runs["true"])) > 20
