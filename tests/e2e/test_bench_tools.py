"""bench/pcap_unpad.py: the bench's copies of the base capture are that capture with other
addresses, and nothing else.

tcprewrite 4.4.1-4.4.4 (Debian 12: 4.4.3) writes a frame's whole layer-3 length into the IP
length field: Ethernet padding becomes data, and a packet the capture cut short gets the
cut length. The bench strips the padding first (`strip`) and puts the length fields back
afterwards (`restore`); these tests run both on a crafted capture, with the real
tcprewrite in between.
"""

import os
import shutil
import struct
import subprocess

import pytest
from scapy.all import ARP, IP, TCP, Dot1Q, Ether, IPv6, PcapReader, Raw, wrpcap

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench", "pcap_unpad.py")
PY = "/usr/bin/python3"

MAC = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def padded(frame, to=60):
    raw = bytes(frame)
    return Ether(raw + b"\xaa" * (to - len(raw))) if len(raw) < to else frame


def base_frames():
    ack = Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1025, dport=80, flags="A",
                                                                   seq=100, ack=200)
    vlan_ack = (Ether(**MAC) / Dot1Q(vlan=7) / IP(src="10.0.0.3", dst="10.0.0.4") /
                TCP(sport=1026, dport=80, flags="A"))
    v6 = (Ether(**MAC) / IPv6(src="2001:db8::1", dst="2001:db8::2") /
          TCP(sport=1027, dport=80, flags="A"))
    data = (Ether(**MAC) / IP(src="10.0.0.1", dst="10.0.0.2") /
            TCP(sport=1025, dport=80, flags="PA", seq=100, ack=200) /
            Raw(b"GET / HTTP/1.1\r\n\r\n"))
    # an IPv4 packet of 137 bytes of which the capture kept 52 (frame 66), stored as whole
    cut = bytes(Ether(**MAC) / IP(src="10.0.0.5", dst="10.0.0.6", len=137) /
                TCP(sport=1028, dport=443, flags="PA"))
    arp = Ether(**MAC) / ARP(psrc="10.0.0.1", pdst="10.0.0.2")
    # captured before segmentation offload: IPv4 total length 0, 3,000 bytes of TCP data
    tso = bytes(Ether(**MAC) / IP(src="10.0.0.7", dst="10.0.0.8", len=0) /
                TCP(sport=1029, dport=80, flags="A") / Raw(b"t" * 3000))
    return [padded(ack), padded(vlan_ack, 64), padded(Ether(bytes(v6) + b"\0" * 8)), data,
            Ether(cut), padded(arp), Ether(tso)]


def frames_of(path):
    with PcapReader(path) as r:
        return [bytes(p) for p in r]


def ip_fields(raw):
    """(offset of the IP header, version, length field) of an Ethernet frame, or None."""
    off = 12
    etype = struct.unpack_from(">H", raw, off)[0]
    if etype == 0x8100:
        off += 4
        etype = struct.unpack_from(">H", raw, off)[0]
    l3 = off + 2
    if etype == 0x0800:
        return l3, 4, struct.unpack_from(">H", raw, l3 + 2)[0]
    if etype == 0x86DD:
        return l3, 6, struct.unpack_from(">H", raw, l3 + 4)[0]
    return None


def checksum_ok(header):
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def run(*args):
    return subprocess.run([PY, TOOL, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def base(tmp_path):
    path = str(tmp_path / "base-padded.pcap")
    wrpcap(path, base_frames())
    return path


def test_strip_removes_padding_only(base, tmp_path):
    out = str(tmp_path / "base.pcap")
    r = run("strip", base, out)
    assert r.returncode == 0, r.stderr
    before, after = frames_of(base), frames_of(out)
    assert len(before) == len(after) == 7
    # the three padded IP frames end where their IP packet ends
    for i in (0, 1, 2):
        off, version, length = ip_fields(after[i])
        assert len(after[i]) == off + (length if version == 4 else 40 + length)
        assert after[i] == before[i][: len(after[i])] and len(after[i]) < len(before[i])
    assert "3 padded frames stripped" in r.stdout
    # the data packet, the packet cut short, the ARP frame and the frame whose IPv4 length
    # is 0 (no length to go by: not cut to 14 bytes) are untouched
    assert after[3:] == before[3:]
    assert ip_fields(after[6])[2] == 0 and len(after[6]) > 3000


@pytest.mark.skipif(not shutil.which("tcprewrite"), reason="needs tcprewrite (Debian's tcpreplay)")
def test_copy_keeps_every_length(base, tmp_path):
    stripped, seeded, fixed = (str(tmp_path / n) for n in ("base.pcap", "seed.pcap", "copy.pcap"))
    assert run("strip", base, stripped).returncode == 0
    subprocess.run(["tcprewrite", "--seed=1", "-i", stripped, "-o", seeded], check=True,
                   capture_output=True, timeout=60)
    r = run("restore", stripped, seeded, fixed)
    assert r.returncode == 0, r.stderr
    orig, copy = frames_of(stripped), frames_of(fixed)
    assert len(orig) == len(copy)
    for i, (a, b) in enumerate(zip(orig, copy)):
        assert len(a) == len(b), i
        fa, fb = ip_fields(a), ip_fields(b)
        if fa is None:
            continue
        assert fa == fb, f"frame {i}: IP length {fb[2]} in the copy, {fa[2]} in the base"
        off, version, _ = fb
        if version == 4:
            ihl = (b[off] & 15) * 4
            assert checksum_ok(b[off : off + ihl]), f"frame {i}: bad IPv4 header checksum"
            assert b[off + 12 : off + 20] != a[off + 12 : off + 20], "addresses not rewritten"
    # the packet the capture cut short and the offloaded one had their lengths put back
    assert "2 IP length fields restored" in r.stdout


def test_restore_refuses_a_different_capture(base, tmp_path):
    short = str(tmp_path / "short.pcap")
    wrpcap(short, base_frames()[:-1])
    r = run("restore", base, short, str(tmp_path / "out.pcap"))
    assert r.returncode != 0 and "different numbers of frames" in r.stderr

    other = str(tmp_path / "other.pcap")
    frames = base_frames()
    frames[3] = frames[3] / Raw(b"x")  # one frame longer
    wrpcap(other, frames)
    r = run("restore", base, other, str(tmp_path / "out2.pcap"))
    assert r.returncode != 0 and "frame 4 differs in length" in r.stderr


def test_not_pcap(tmp_path):
    p = tmp_path / "x.pcapng"
    p.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\0" * 40)
    r = run("strip", str(p), str(tmp_path / "y.pcap"))
    assert r.returncode != 0 and "not a classic pcap file" in r.stderr
