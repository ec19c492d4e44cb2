"""Unit tests of the Python helpers (fhlib.py) and the traffic generator: no sensor needed."""

import glob
import json
import os
import subprocess
import sys

import pytest
import yaml

import fhlib
from fhlib import MISSING, community_id, get_path, match_value

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "traffic"))
import gen_pcaps  # noqa: E402

SHARED = os.environ.get("FH_SHARED") or os.path.join(REPO, "..", "shared", "data")
if not os.path.isabs(SHARED):
    SHARED = os.path.join(REPO, SHARED)


# Community ID v1 spec test vectors (corelight/community-id-spec baseline).
@pytest.mark.parametrize("args,kw,want", [
    (("128.232.110.120", "66.35.250.204", "TCP", 34855, 80), {}, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (("66.35.250.204", "128.232.110.120", "TCP", 80, 34855), {}, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (("128.232.110.120", "66.35.250.204", "TCP", 34855, 80), {"seed": 1},
     "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    (("192.168.1.52", "8.8.8.8", "UDP", 54585, 53), {}, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (("192.168.0.89", "192.168.0.1", "ICMP"), {"icmp_type": 8, "icmp_code": 0},
     "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    (("192.168.0.1", "192.168.0.89", "ICMP"), {"icmp_type": 0, "icmp_code": 0},
     "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    (("fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", "IPv6-ICMP"),
     {"icmp_type": 135, "icmp_code": 0}, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="),
    (("2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", "TCP", 63943, 25), {},
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="),
])
def test_community_id_vectors(args, kw, want):
    assert community_id(*args, **kw) == want


def _client_hello_of(pcap):
    from scapy.all import TCP, rdpcap
    for p in rdpcap(pcap):
        if TCP in p and bytes(p[TCP].payload)[:1] == b"\x16":
            b = bytes(p[TCP].payload)
            if len(b) > 5 and b[5] == 1:
                return b
    raise AssertionError("no ClientHello in " + pcap)


def test_ja3_matches_ndpi_reader_on_public_pcap():
    """JA3/JA3S of nDPI's 443-curl.pcap equal ndpiReader 4.2's published output."""
    pcap = os.path.join(SHARED, "pcap", "ndpi", "443-curl.pcap")
    out = os.path.join(SHARED, "expected", "ndpiReader-4.2", "ndpi", "443-curl.pcap.out")
    if not os.path.exists(pcap):
        pytest.skip("shared corpus not found at %s" % SHARED)
    assert fhlib.ja3(_client_hello_of(pcap)) == "2a26b1a62e40d25d4de3babc9d532f30"
    assert "JA3C: 2a26b1a62e40d25d4de3babc9d532f30" in open(out).read()


def test_ja3_string_of_generated_client_hello():
    s = fhlib.ja3_string(gen_pcaps.tls_client_hello())
    assert s == ("771,49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,"
                 "0-23-65281-10-11-35-16-5-13,29-23-24,0")


def test_ja3_grease_ignored():
    ch = bytearray(gen_pcaps.tls_client_hello())
    # first cipher (offset: 5 record + 4 hs + 2 ver + 32 random + 1+32 session + 2 len)
    o = 5 + 4 + 2 + 32 + 33 + 2
    ch[o:o + 2] = b"\x0a\x0a"
    assert fhlib.ja3_string(bytes(ch)).split(",")[1].startswith("49199-")


def _case_match(case, key):
    for c in yaml.safe_load(open(os.path.join(REPO, "tests", "cases", case, "case.yaml")))["checks"]:
        m = c.get("filter", {}).get("match", {})
        if key in m:
            return m[key]
    raise AssertionError("%s not in case %s" % (key, case))


def test_case_literals_match_python():
    """The JA3/JA3S/HASSH literals in the cases are what Python computes from the bytes."""
    assert _case_match("tls-sni", "tls.ja3") == {"hash": fhlib.ja3(gen_pcaps.tls_client_hello())}
    assert _case_match("tls-sni", "tls.ja3s") == {"hash": fhlib.ja3s(gen_pcaps.tls_server_hello())}
    assert _case_match("ssh", "ssh.hassh") == {
        "client": fhlib.hassh(gen_pcaps.ssh_kexinit(0x11)),
        "server": fhlib.hassh(gen_pcaps.ssh_kexinit(0x22, server=True), server=True)}


def test_get_path_and_operators():
    ev = {"a": {"b": 1, "l": [1, 2]}, "stats": {"decoder": {"errors": {"ipv4.truncated": 3}}},
          "t": True}
    assert get_path(ev, "a.b") == 1
    assert get_path(ev, "a.l.1") == 2
    assert get_path(ev, "stats.decoder.errors.ipv4.truncated") == 3
    assert get_path(ev, "a.c") is MISSING
    assert match_value(get_path(ev, "t"), True)
    assert not match_value(get_path(ev, "a.b"), True)       # 1 is not true
    assert not match_value(get_path(ev, "t"), 1)
    assert match_value(MISSING, {"__exists": False})
    assert match_value("abc", {"__contains": "b"})
    assert match_value([1, 2], {"__contains": 2, "__len": 2})
    assert match_value(5, {"__ge": 5, "__lt": 6})
    assert match_value("x", {"__in": ["x", "y"]})
    assert match_value(MISSING, {"__ne": True}) and not match_value(True, {"__ne": True})
    assert match_value("TLSv1.2", {"__re": r"^TLSv1\.[23]$"})
    flow = {"src_ip": "128.232.110.120", "dest_ip": "66.35.250.204", "proto": "TCP",
            "src_port": 34855, "dest_port": 80}
    assert match_value("1:LQU9qZlK+B5F3KDmev6m5PMibrg=", {"__community_id": True}, flow)
    with pytest.raises(ValueError):
        match_value(1, {"__bogus": 1})


def test_generator_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    gen = os.path.join(REPO, "tests", "traffic", "gen_pcaps.py")
    for d in (a, b):
        subprocess.run([sys.executable, gen, str(d)], check=True)
    names = sorted(os.path.relpath(os.path.join(r, f), a)
                   for r, _, fs in os.walk(a) for f in fs)  # with payload/
    assert names == sorted(os.path.relpath(os.path.join(r, f), b)
                           for r, _, fs in os.walk(b) for f in fs) and len(names) >= 20
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


def test_generated_pcaps_parse(tmp_path):
    """scapy reads every pcap back with the intended link type and first timestamp."""
    from scapy.utils import PcapReader
    gen_pcaps.main(["gen", str(tmp_path)])
    want_lt = {"linux-sll": 113, "linux-sll2": 276, "null-loopback": 0, "raw-ip": 101}
    for path in glob.glob(str(tmp_path / "*.pcap")):
        name = os.path.basename(path)[:-5]
        with PcapReader(path) as r:
            assert r.linktype == want_lt.get(name, 1), name
            pkts = list(r)
        assert pkts and float(pkts[0].time) == 1709280000.0, name


def test_alert_lines_titles_in_the_users_language():
    """tools/alert-lines.py (make run's terminal): one line per opened alert, the rule's
    title_zh from the rule files by default, the alert's own title with LANG=en, control
    characters from traffic replaced; updates of an alert are not printed again."""
    with open(os.path.join(REPO, "rules", "level3", "l3_12_yara_malware.yml"), encoding="utf-8") as f:
        rule = next(d for d in yaml.safe_load_all(f) if d.get("title_zh"))
    alert = {"update": "opened", "first_seen": "2026-03-02T02:00:00.000Z", "level": "high",
             "rule": {"id": rule["id"], "title": rule["title"]},
             "src": {"ip": "198.51.100.1"}, "dest": {"ip": "10.10.1.10", "asset": "web\x1b[31m01"},
             "department": "大数据局"}
    feed = json.dumps(alert) + "\n" + json.dumps(dict(alert, update="updated")) + "\n"

    def run(lang):
        env = dict(os.environ, LANG=lang)
        p = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "tools", "alert-lines.py")],
                           input=feed, capture_output=True, text=True, env=env, cwd=REPO, check=True)
        return p.stdout.splitlines()

    (zh,) = run("C.UTF-8")
    assert zh == ("2026-03-02 10:00:00 [高危] %s  198.51.100.1 → 10.10.1.10 (web\ufffd[31m01)  大数据局"
                  % rule["title_zh"])
    (en,) = run("en_US.UTF-8")
    assert en.startswith("2026-03-02 10:00:00 [HIGH] %s  " % rule["title"]), en
