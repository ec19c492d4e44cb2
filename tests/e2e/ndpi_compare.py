"""Flow-by-flow comparison of the sensor's nDPI verdicts with Debian's ndpiReader (nDPI 4.2).

Used by test_corpus.py; also runnable by hand on one capture or on the whole corpus:

    /usr/bin/python3 tests/e2e/ndpi_compare.py [--build build] [--shared ../shared/data] [PCAP ...]

Standard library only. CORPUS-NOTES.md (next to this file) explains what is compared, how flows
are matched and every class of disagreement; the rules that assign the classes are below.

ndpiReader invocation
---------------------
    ndpiReader -q -t -v 2 -i PCAP -C flows.csv -w flows.txt

* `-C` writes one CSV line per flow; its `ndpi_proto` column is ndpi_protocol2name(), the function
  the sensor uses for `ndpi.protocol`.
* `-v 2` is required: with `-q` alone the CSV lists only the flows whose protocol is known
  (node_print_known_proto_walker() in ndpiReader.c), so every Unknown flow would be missing.
  With `-v 2` every flow goes to the CSV and to the `-w` text file, in the same order.
* `-t` makes ndpiReader decapsulate GTP-U (and TZSP, CAPWAP): the sensor decapsulates GTP-U.
* No -p/-c/-r/-j/-S files: the sensor runs with nDPI's built-in protocol list as well.
* The text file adds what the CSV lacks: the VLAN id ndpiReader keyed the flow with, the tunnel
  it came through (`[proto: GTP:...]`), the confidence and the packet counts.
"""

import argparse
import datetime
import ipaddress
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

NDPI_READER = "ndpiReader"
NDPI_ARGS = ["-q", "-t", "-v", "2"]

PROTO_NUM = {"TCP": 6, "UDP": 17, "ICMP": 1, "IPv6-ICMP": 58, "SCTP": 132}
PROTO_NAME = {v: k for k, v in PROTO_NUM.items()}

# Tunnels ndpiReader 4.2 does not decapsulate: it sees (and classifies) only the outer flow.
# IP-in-IP / IPv6-in-IPv4 are decapsulated by both (reader_util.c, always); GTP-U with -t.
TUNNELS_NOT_DECAPSULATED = {"gre", "erspan", "vxlan", "geneve"}
TUNNEL_UDP_PORTS = {4789: "vxlan", 6081: "geneve"}
CAPWAP_DATA_PORT = 5247  # ndpiReader -t decapsulates CAPWAP data; the sensor does not

# The classes. "a" = expected difference by design (documented in CORPUS-NOTES.md, with the
# rule in this file); UNEXPLAINED = anything no rule covers (a suspected sensor bug until
# someone explains it).
CLASSES = {
    # disagreements on flows both tools report (excluded from the agreement denominator)
    "split-first": "the sensor split this connection on an idle timeout / new SYN; its first "
                   "segment saw fewer packets than ndpiReader's single flow for the whole capture",
    "giveup-ip-cache": "ndpiReader gives up on undetected flows only at the end of the capture, "
                       "when nDPI's mining IP cache already holds a Mining flow seen *later* "
                       "between the same addresses; the sensor gave up when the flow ended",
    # flows only the sensor reports
    "tunnel-inner": "inner flow of a GRE/ERSPAN/VXLAN/Geneve tunnel: the sensor decapsulates, "
                    "ndpiReader 4.2 reports only the outer flow",
    "capwap-outer": "CAPWAP data flow (UDP 5247): ndpiReader -t decapsulates CAPWAP and reports "
                    "the inner flows instead; the sensor does not decapsulate CAPWAP",
    "fragment": "IP fragments: the sensor reassembles datagrams (and drops incomplete ones); "
                "ndpiReader reads only the first fragment of each datagram",
    "split": "later segment of a connection the sensor split (idle timeout, new SYN after "
             "FIN/RST); ndpiReader never expires flows when reading a file",
    "outer-vlan": "a flow that differs from another only in an outer VLAN tag: the sensor keys "
                  "flows by the two outermost tags, ndpiReader by the innermost tag only",
    # flows only ndpiReader reports
    "tunnel-outer": "outer GRE / VXLAN / Geneve flow of a tunnel the sensor decapsulated",
    "capwap-inner": "flow inside CAPWAP, seen only by ndpiReader -t",
    "reader-misparse": "ndpiReader read a non-IP frame as IPv4 (reader_util.c checks the version "
                       "nibble whatever the ethertype); no such IP packet exists in the capture",
}


# --------------------------------------------------------------------------- addresses

def _glibc_ntop6(ip):
    """IPv6 text as glibc's inet_ntop() writes it (RFC 5952 compression, plus the embedded-IPv4
    forms ::a.b.c.d and ::ffff:a.b.c.d)."""
    ip = ipaddress.IPv6Address(ip)
    w = [int.from_bytes(ip.packed[i:i + 2], "big") for i in range(0, 16, 2)]
    best, blen, i = -1, 0, 0
    while i < 8:
        if w[i] == 0:
            j = i
            while j < 8 and w[j] == 0:
                j += 1
            if j - i > blen and j - i >= 2:
                best, blen = i, j - i
            i = j
        else:
            i += 1
    if best == 0 and (blen == 6 or (blen == 5 and w[5] == 0xFFFF)):
        return ("::ffff:" if blen == 5 else "::") + ".".join(str(b) for b in ip.packed[12:])
    return ip.compressed


def ndpi_patch_ipv6(s):
    """ndpi_patchIPv6Address() of nDPI 4.2: every ':0:' becomes '::'. ndpiReader applies it to the
    addresses it prints (it can make them ambiguous: fe80::1:0:5 -> fe80::1::5)."""
    out, i = [], 0
    while i < len(s):
        if s[i] == ":" and s[i + 1:i + 3] == "0:":
            out.append("::")
            i += 3
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def reader_addr(ip):
    """An address as ndpiReader prints it (addresses are matched as strings in that form)."""
    return ndpi_patch_ipv6(_glibc_ntop6(ip)) if ":" in ip else ip


def addr_sum(a, b):
    """flow->saddr + flow->daddr of nDPI (u32 in network order, read on a little-endian host):
    the key of nDPI 4.2's mining cache. None for IPv6 (the cache is IPv4 only)."""
    try:
        x, y = ipaddress.IPv4Address(a), ipaddress.IPv4Address(b)
    except ValueError:
        return None
    return (int.from_bytes(x.packed, "little") + int.from_bytes(y.packed, "little")) & 0xFFFFFFFF


def flow_key(proto, vlan, a, ap, b, bp):
    """(proto, vlan, unordered endpoint pair): the unit both tools are compared on. Ports count
    only for TCP and UDP (ndpiReader keys every other protocol, SCTP included, with ports 0)."""
    if proto not in (6, 17):
        ap = bp = 0
    return (int(proto), int(vlan or 0)) + tuple(sorted([(a, int(ap)), (b, int(bp))]))


def key_str(k):
    proto, vlan, (a, ap), (b, bp) = k
    fa = "[%s]" % a if ":" in a else a
    fb = "[%s]" % b if ":" in b else b
    return "%s %s:%d <-> %s:%d%s" % (PROTO_NAME.get(proto, str(proto)), fa, ap, fb, bp,
                                     " vlan %d" % vlan if vlan else "")


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


# --------------------------------------------------------------------------- ndpiReader

_TXT_FLOW = re.compile(
    r"^\t(\d+)\t(\S+) (\[[^\]]+\]|[^ \[]+):(\d+) (?:<->|->) (\[[^\]]+\]|[^ \[]+):(\d+) "
    r"(?:\[VLAN: (\d+)\])?.*?\[proto: (?:([A-Za-z]+):)?([0-9.]+)/([^\]]*)\]")
_TXT_CONF = re.compile(r"\[Confidence: ([^\]]*)\]")
_TXT_PKTS = re.compile(r"\[(\d+) pkts/\d+ bytes (?:<->|->) (\d+) pkts/\d+ bytes\]")


def ndpireader_available():
    try:
        subprocess.run([NDPI_READER, "-h"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def run_ndpireader(pcap, workdir, timeout=600):
    """Runs ndpiReader on pcap; returns (flows, seconds)."""
    csv_path = os.path.join(workdir, "ndpi.csv")
    txt_path = os.path.join(workdir, "ndpi.txt")
    t0 = time.monotonic()
    p = subprocess.run([NDPI_READER] + NDPI_ARGS + ["-i", pcap, "-C", csv_path, "-w", txt_path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout, cwd=workdir)
    elapsed = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("ndpiReader failed on %s (exit %d): %s"
                           % (pcap, p.returncode, p.stderr.decode("utf-8", "replace")[-500:]))
    return parse_ndpireader(csv_path, txt_path), elapsed


def parse_ndpireader(csv_path, txt_path):
    """Flows from ndpiReader's CSV (protocol verdict) joined line by line with its text output
    (VLAN, tunnel, confidence, packets). Each flow: proto, vlan, src, sport, dst, dport,
    ndpi_proto, tunnel, confidence, pkts, line."""
    with open(csv_path, "rb") as f:
        rows = f.read().decode("utf-8", "replace").splitlines()
    with open(txt_path, "rb") as f:
        txt = [m for m in (_TXT_FLOW.match(l) for l in
                           f.read().decode("utf-8", "replace").splitlines()) if m]
    flows = []
    for line in rows:
        if not line or line.startswith("#"):
            continue
        # The first 11 columns never contain a comma (the SNI and later columns might).
        c = line.split(",", 11)
        flows.append({"proto": int(c[1]), "src": c[5], "sport": int(c[6]), "dst": c[7],
                      "dport": int(c[8]), "ndpi_proto": c[10]})
    if len(txt) != len(flows):
        raise RuntimeError("ndpiReader: %d CSV flows but %d flows in the text output (%s)"
                           % (len(flows), len(txt), txt_path))
    for fl, m in zip(flows, txt):
        src, dst = m.group(3).strip("[]"), m.group(5).strip("[]")
        if (src, int(m.group(4)), dst, int(m.group(6))) != \
                (fl["src"], fl["sport"], fl["dst"], fl["dport"]) or m.group(10) != fl["ndpi_proto"]:
            raise RuntimeError("ndpiReader CSV and text output disagree: %r vs %r"
                               % (fl, m.group(0)[:200]))
        conf, pk = _TXT_CONF.search(m.string), _TXT_PKTS.search(m.string)
        fl.update(vlan=int(m.group(7) or 0),
                  tunnel=m.group(8).lower() if m.group(8) else None,
                  confidence=conf.group(1) if conf else None,
                  pkts=int(pk.group(1)) + int(pk.group(2)) if pk else None,
                  line=m.string.strip())
    return flows


# --------------------------------------------------------------------------- sensor

def run_sensor(sensor, pcap, workdir, timeout=600):
    """Runs `sensor -r pcap -w out.ndjson` in workdir; returns dict(rc, stderr, raw, seconds)."""
    out = os.path.join(workdir, "out.ndjson")
    t0 = time.monotonic()
    p = subprocess.run([sensor, "-r", pcap, "-w", out], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       cwd=workdir)
    elapsed = time.monotonic() - t0
    raw = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            raw = f.read()
    return {"rc": p.returncode, "stderr": p.stderr.decode("utf-8", "replace"), "raw": raw,
            "seconds": elapsed}


def parse_events(raw):
    return [json.loads(l) for l in raw.split(b"\n") if l.strip()]


def sensor_flows(events):
    """The sensor's final flow events (periodic `update` events are interim copies)."""
    out = []
    for ev in events:
        if ev.get("event_type") != "flow" or ev["flow"]["reason"] == "update":
            continue
        proto = PROTO_NUM.get(ev["proto"])
        if proto is None:
            proto = int(ev["proto"])
        vl = ev.get("vlan") or []
        tun = ev.get("tunnel") or {}
        out.append({"proto": proto, "vlan": vl[-1] if vl else 0, "vlans": tuple(vl),
                    "src": reader_addr(ev["src_ip"]), "sport": ev.get("src_port", 0),
                    "dst": reader_addr(ev["dest_ip"]), "dport": ev.get("dest_port", 0),
                    "ndpi_proto": ev["ndpi"]["protocol"],
                    "confidence": ev["ndpi"].get("confidence"),
                    "tunnel": tun.get("type"),
                    "tunnel_ends": (tun.get("src_ip"), tun.get("dest_ip")),
                    "start": parse_ts(ev["flow"]["start"]), "end": parse_ts(ev["flow"]["end"]),
                    "reason": ev["flow"]["reason"], "state": ev["flow"]["state"],
                    "pkts": ev["flow"]["pkts_toserver"] + ev["flow"]["pkts_toclient"],
                    "flow_id": ev["flow_id"]})
    return out


# --------------------------------------------------------------------------- pcap scanner

_LINK_ETH, _LINK_NULL, _LINK_PPP, _LINK_RAW, _LINK_SLL, _LINK_SLL2, _LINK_LOOP = \
    1, 0, 9, 101, 113, 276, 108


def _read_packets(path):
    """Yields (linktype, frame bytes) from a pcap or pcapng file."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        link = struct.unpack(e + "I", data[20:24])[0] & 0x0FFFFFFF
        off = 24
        while off + 16 <= len(data):
            caplen = struct.unpack(e + "I", data[off + 8:off + 12])[0]
            yield link, data[off + 16:off + 16 + caplen]
            off += 16 + caplen
        return
    if magic != b"\x0a\x0d\x0d\x0a":
        raise ValueError("%s: not a pcap/pcapng file" % path)
    off, e, links = 0, "<", []
    while off + 12 <= len(data):
        btype = struct.unpack(e + "I", data[off:off + 4])[0]
        if btype == 0x0A0D0D0A:
            e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        blen = struct.unpack(e + "I", data[off + 4:off + 8])[0]
        if blen < 12:
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1:
            links.append(struct.unpack(e + "H", body[0:2])[0])
        elif btype == 6:
            iface, caplen = struct.unpack(e + "I", body[0:4])[0], struct.unpack(e + "I", body[12:16])[0]
            yield links[iface] if iface < len(links) else _LINK_ETH, body[20:20 + caplen]
        elif btype == 3:
            yield links[0] if links else _LINK_ETH, body[4:]
        off += blen


def _l3_start(link, fr):
    """(ethertype-ish, offset) of the network layer, after VLAN/QinQ/MPLS/PPPoE; or (None, 0)."""
    if link == _LINK_ETH:
        if len(fr) < 14:
            return None, 0
        et, off = struct.unpack(">H", fr[12:14])[0], 14
    elif link in (_LINK_NULL, _LINK_LOOP):
        if len(fr) < 4:
            return None, 0
        fam = struct.unpack("<I", fr[:4])[0] if link == _LINK_NULL else struct.unpack(">I", fr[:4])[0]
        if fam > 0xFFFF:
            fam = struct.unpack(">I", fr[:4])[0]
        return (0x0800 if fam == 2 else 0x86DD), 4
    elif link == _LINK_SLL:
        if len(fr) < 16:
            return None, 0
        et, off = struct.unpack(">H", fr[14:16])[0], 16
    elif link == _LINK_SLL2:
        if len(fr) < 20:
            return None, 0
        et, off = struct.unpack(">H", fr[0:2])[0], 20
    elif link == _LINK_PPP:
        if len(fr) < 4:
            return None, 0
        off = 2 if fr[0] != 0xFF else 4
        pp = struct.unpack(">H", fr[off - 2:off])[0]
        return {0x21: 0x0800, 0x57: 0x86DD}.get(pp), off
    elif link in (_LINK_RAW, 12, 14, 228, 229):
        return (0x0800 if fr and fr[0] >> 4 == 4 else 0x86DD), 0
    else:
        return None, 0
    while True:
        if et in (0x8100, 0x88A8, 0x9100) and len(fr) >= off + 4:
            et, off = struct.unpack(">H", fr[off + 2:off + 4])[0], off + 4
        elif et in (0x8847, 0x8848):
            while len(fr) >= off + 4:
                bos = fr[off + 2] & 1
                off += 4
                if bos:
                    break
            if len(fr) <= off:
                return None, 0
            et = {4: 0x0800, 6: 0x86DD}.get(fr[off] >> 4)
            return et, off
        elif et == 0x8864 and len(fr) >= off + 8:
            pp = struct.unpack(">H", fr[off + 6:off + 8])[0]
            return {0x21: 0x0800, 0x57: 0x86DD}.get(pp), off + 8
        else:
            return et, off


def scan_pcap(path):
    """What test rules need from the packets themselves (addresses as reader_addr() writes them):
      pairs: set of frozenset({addr, addr}) of every IP header (outermost, and inside IP-in-IP),
      frags: {(version, proto, src, dst, id): datagram} for fragmented datagrams, with
             firsts: [(L4 bytes in a first fragment, (sport, dport) or None)], has_last."""
    pairs, frags = set(), {}

    def frag(ver, proto, src, dst, ident, offset, mf, l4):
        d = frags.setdefault((ver, proto, src, dst, ident),
                             {"proto": proto, "src": src, "dst": dst, "firsts": [],
                              "has_last": False})
        if offset == 0:
            # (L4 bytes in this first fragment, its ports); an IP id can be reused
            ports = struct.unpack(">HH", l4[:4]) if len(l4) >= 4 and proto in (6, 17) else None
            d["firsts"].append((len(l4), ports))
        if not mf:
            d["has_last"] = True

    def ip(buf, depth=0):
        if len(buf) < 1 or depth > 3:
            return
        if buf[0] >> 4 == 4 and len(buf) >= 20:
            ihl = (buf[0] & 15) * 4
            if ihl < 20:
                return
            tot = struct.unpack(">H", buf[2:4])[0]
            fo = struct.unpack(">H", buf[6:8])[0]
            proto = buf[9]
            src, dst = str(ipaddress.IPv4Address(buf[12:16])), str(ipaddress.IPv4Address(buf[16:20]))
            pairs.add(frozenset((src, dst)))
            l4 = buf[ihl:max(ihl, min(len(buf), tot))]
            mf, offset = bool(fo & 0x2000), fo & 0x1FFF
            if mf or offset:
                frag(4, proto, src, dst, struct.unpack(">H", buf[4:6])[0], offset, mf, l4)
            elif proto in (4, 41):
                ip(l4, depth + 1)
        elif buf[0] >> 4 == 6 and len(buf) >= 40:
            src = reader_addr(str(ipaddress.IPv6Address(buf[8:24])))
            dst = reader_addr(str(ipaddress.IPv6Address(buf[24:40])))
            pairs.add(frozenset((src, dst)))
            nh, off = buf[6], 40
            while nh in (0, 43, 60, 44) and len(buf) >= off + 8:
                if nh == 44:
                    fo = struct.unpack(">H", buf[off + 2:off + 4])[0]
                    ident = struct.unpack(">I", buf[off + 4:off + 8])[0]
                    frag(6, buf[off], src, dst, ident, fo >> 3, bool(fo & 1), buf[off + 8:])
                    return
                nh, off = buf[off], off + (buf[off + 1] + 1) * 8
            if nh in (4, 41):
                ip(buf[off:], depth + 1)

    for link, fr in _read_packets(path):
        et, off = _l3_start(link, fr)
        if et in (0x0800, 0x86DD):
            ip(fr[off:])
    return {"pairs": pairs, "frags": frags}


# --------------------------------------------------------------------------- comparison

TIMEOUTS = {"udp": 60, "icmp": 30, "other": 60, "tcp_new": 30, "tcp_established": 600,
            "tcp_closed": 10}


def split_justified(prev, nxt, timeouts=TIMEOUTS):
    """Whether the flow table had a reason to start `nxt` as a new flow after `prev` (same key):
    prev was closed (FIN both ways / RST, then a new SYN or the closed timeout), or the gap
    between them is at least prev's idle timeout. Packet times can run backwards in a file, so
    this is checked on packet times (the table's clock only moves forward: the gap it saw is
    at least as large)."""
    gap = nxt["start"] - prev["end"]
    if prev["proto"] == 6:
        if prev["state"] == "closed":
            return True
        need = timeouts["tcp_new"] if prev["state"] == "new" else timeouts["tcp_established"]
    elif prev["proto"] == 17:
        need = timeouts["udp"]
    elif prev["proto"] in (1, 58):
        need = timeouts["icmp"]
    else:
        need = timeouts["other"]
    return gap >= need - 1e-3


class PcapResult:
    """The comparison of one capture. Lists hold tuples (key, ours, theirs, class)."""

    def __init__(self, name):
        self.name = name
        self.agree, self.disagree, self.only_ours, self.only_theirs, self.splits = [], [], [], [], []

    def counts(self):
        c = Counter()
        c["both"] = len(self.agree) + len(self.disagree)
        c["agree"] = len(self.agree)
        c["disagree"] = len(self.disagree)
        c["disagree_excluded"] = sum(1 for d in self.disagree if d[3] != "UNEXPLAINED")
        c["only_ours"] = len(self.only_ours)
        c["only_theirs"] = len(self.only_theirs)
        c["splits"] = len(self.splits)
        for lst in (self.disagree, self.only_ours, self.only_theirs, self.splits):
            for d in lst:
                c["class:" + d[3]] += 1
        return c

    def unexplained(self):
        return [(kind, d) for kind, lst in (("disagree", self.disagree),
                                            ("only-sensor", self.only_ours),
                                            ("only-ndpiReader", self.only_theirs),
                                            ("split", self.splits))
                for d in lst if d[3] == "UNEXPLAINED"]


def compare_pcap(name, ours, theirs, pcap_path=None):
    """Matches our flows with ndpiReader's by flow_key() and classifies every difference.
    pcap_path is scanned (scan_pcap) only when a rule needs to look at the packets."""
    res = PcapResult(name)
    by_ours, by_theirs = defaultdict(list), defaultdict(list)
    for f in ours:
        by_ours[flow_key(f["proto"], f["vlan"], f["src"], f["sport"], f["dst"], f["dport"])].append(f)
    for f in theirs:
        by_theirs[flow_key(f["proto"], f["vlan"], f["src"], f["sport"], f["dst"],
                           f["dport"])].append(f)
    for v in by_ours.values():
        v.sort(key=lambda f: (f["start"], f["flow_id"]))

    tunnel_ends = {frozenset(reader_addr(x) for x in f["tunnel_ends"]) for f in ours
                   if f["tunnel"] in TUNNELS_NOT_DECAPSULATED and f["tunnel_ends"][0]}
    reader_capwap = any(t["tunnel"] == "capwap" for t in theirs)
    # Our flows nDPI detected as Mining by DPI, by nDPI's mining-cache key.
    miners = defaultdict(list)
    for f in ours:
        if f["ndpi_proto"] == "Mining" and f["confidence"] == "DPI":
            s = addr_sum(f["src"], f["dst"])
            if s is not None:
                miners[s].append(f)

    scan = {}

    def packets():
        if "s" not in scan:
            scan["s"] = scan_pcap(pcap_path) if pcap_path else {"pairs": set(), "frags": {}}
        return scan["s"]

    def frag_match(k, side):
        proto, _, (a, ap), (b, bp) = k
        for d in packets()["frags"].values():
            if d["proto"] != proto or {d["src"], d["dst"]} != {a, b}:
                continue
            for l4len, ports in d["firsts"]:
                short = l4len < {6: 20, 17: 8}.get(proto, 0)
                ports = tuple(sorted(ports)) if ports else None
                if side == "ours":
                    # We reassembled it; ndpiReader saw a first fragment too short for a TCP/UDP
                    # header and keyed it with ports 0.
                    if short and ports == tuple(sorted((ap, bp))):
                        return True
                else:
                    if short and (ap, bp) == (0, 0):
                        return True
                    # A datagram that never completes: we drop it, ndpiReader keeps its first
                    # fragment.
                    if not d["has_last"] and ports == tuple(sorted((ap, bp))):
                        return True
        return False

    for k in sorted(set(by_ours) | set(by_theirs), key=repr):
        o, t = by_ours.get(k, []), by_theirs.get(k, [])
        if o and t:
            # ndpiReader keeps one flow per key for the whole file (it expires flows only on live
            # capture) and classified it from the key's first packets: our first segment.
            for i, tf in enumerate(t):
                if i >= len(o):
                    res.only_theirs.append((k, None, tf, "UNEXPLAINED"))
                    continue
                of = o[i]
                if of["ndpi_proto"] == tf["ndpi_proto"]:
                    res.agree.append((k, of, tf, "agree"))
                    continue
                cls = "UNEXPLAINED"
                if len(o) > len(t) and tf["pkts"] is not None and of["pkts"] < tf["pkts"]:
                    cls = "split-first"
                elif (tf["confidence"] == "DPI (cache)" and tf["ndpi_proto"] == "Mining"
                      and of["confidence"] != "DPI (cache)"
                      and any(m["start"] >= of["end"] for m in
                              miners.get(addr_sum(of["src"], of["dst"]), []))):
                    cls = "giveup-ip-cache"
                res.disagree.append((k, of, tf, cls))
            segs = o[len(t):]
            for of in segs:
                prev = max((p for p in o if p["start"] <= of["start"] and p is not of
                            and p["vlans"] == of["vlans"]),
                           key=lambda p: (p["start"], p["flow_id"]), default=None)
                if prev is None and any(p["vlans"] != of["vlans"] for p in o):
                    cls = "outer-vlan"
                else:
                    cls = "split" if prev is not None and split_justified(prev, of) else "UNEXPLAINED"
                res.splits.append((k, of, t[-1], cls))
        elif o:
            for of in o:
                cls = "UNEXPLAINED"
                if of["tunnel"] in TUNNELS_NOT_DECAPSULATED:
                    cls = "tunnel-inner"
                elif (reader_capwap and k[0] == 17 and CAPWAP_DATA_PORT in (k[2][1], k[3][1])):
                    cls = "capwap-outer"
                elif frag_match(k, "ours"):
                    cls = "fragment"
                res.only_ours.append((k, of, None, cls))
        else:
            for tf in t:
                cls = "UNEXPLAINED"
                ends = frozenset([k[2][0], k[3][0]])
                if ends in tunnel_ends and (k[0] == 47 or (k[0] == 17 and (
                        k[2][1] in TUNNEL_UDP_PORTS or k[3][1] in TUNNEL_UDP_PORTS))):
                    cls = "tunnel-outer"
                elif tf["tunnel"] == "capwap":
                    cls = "capwap-inner"
                elif frag_match(k, "theirs"):
                    cls = "fragment"
                elif ends not in packets()["pairs"]:
                    cls = "reader-misparse"
                res.only_theirs.append((k, None, tf, cls))
    return res


def describe(kind, d):
    k, o, t, cls = d
    s = "%-15s %-62s sensor %-24s ndpiReader %-24s" % (
        kind, key_str(k), o["ndpi_proto"] if o else "-", t["ndpi_proto"] if t else "-")
    extra = []
    if o:
        extra.append("sensor: %d pkts, %s, %s" % (o["pkts"], o["confidence"], o["reason"]))
    if t:
        extra.append("ndpiReader: %s pkts, %s%s" % (t["pkts"], t["confidence"],
                                                    ", tunnel " + t["tunnel"] if t["tunnel"] else ""))
    return s + " [" + cls + "] (" + "; ".join(extra) + ")"


# --------------------------------------------------------------------------- report

def agreement(tot):
    """(agreeing, denominator, percent): the denominator is every flow both tools report minus
    the disagreements a documented class explains."""
    den = tot["both"] - tot["disagree_excluded"]
    return tot["agree"], den, (100.0 * tot["agree"] / den if den else 100.0)


def format_report(results):
    """results: [(pcap name, PcapResult)]. Returns (report text, Counter of totals)."""
    lines, tot = [], Counter()
    lines.append("Application protocol, sensor vs ndpiReader 4.2 (%s), flow by flow"
                 % " ".join([NDPI_READER] + NDPI_ARGS + ["-i PCAP -C CSV -w TXT"]))
    lines.append("%-58s %6s %6s %8s %11s %15s %6s" % ("pcap", "both", "agree", "disagree",
                                                      "only-sensor", "only-ndpiReader", "split"))
    for name, res in results:
        c = res.counts()
        tot.update(c)
        lines.append("%-58s %6d %6d %8d %11d %15d %6d" % (
            name, c["both"], c["agree"], c["disagree"], c["only_ours"], c["only_theirs"],
            c["splits"]))
    lines.append("%-58s %6d %6d %8d %11d %15d %6d" % (
        "TOTAL", tot["both"], tot["agree"], tot["disagree"], tot["only_ours"],
        tot["only_theirs"], tot["splits"]))
    a, den, pct = agreement(tot)
    lines.append("")
    lines.append("Agreement: %d of %d flows both tools report = %.3f%%  (the %d disagreements "
                 "of documented classes left out; raw %d/%d = %.3f%%)" % (
                     a, den, pct, tot["disagree_excluded"], a, tot["both"],
                     100.0 * a / tot["both"] if tot["both"] else 100.0))
    lines.append("")
    lines.append("Every difference, by class (see tests/e2e/CORPUS-NOTES.md):")
    by_class = defaultdict(list)
    for name, res in results:
        for kind, lst in (("DISAGREE", res.disagree), ("ONLY-SENSOR", res.only_ours),
                          ("ONLY-NDPIREADER", res.only_theirs), ("SPLIT", res.splits)):
            for d in lst:
                by_class[d[3]].append((name, kind, d))
    order = ["UNEXPLAINED"] + list(CLASSES)
    for cls in order:
        items = by_class.get(cls)
        if not items:
            continue
        lines.append("  [%s] %d: %s" % (cls, len(items), CLASSES.get(
            cls, "no documented rule covers these: suspected sensor bugs")))
        shown = 0
        for name, kind, d in items:
            # Later split segments are many and expected; list only those whose verdict
            # differs from ndpiReader's flow.
            if cls == "split" and d[1]["ndpi_proto"] == d[2]["ndpi_proto"]:
                continue
            lines.append("      %s: %s" % (name, describe(kind, d)))
            shown += 1
        if shown < len(items):
            lines.append("      (%d more with the same verdict as ndpiReader not listed)"
                         % (len(items) - shown))
    return "\n".join(lines), tot


# --------------------------------------------------------------------------- CLI

def find_pcaps(shared):
    root = os.path.join(shared, "pcap")
    out = []
    for d, _, files in os.walk(root):
        for fn in files:
            if fn.endswith((".pcap", ".pcapng")):
                out.append(os.path.join(d, fn))
    return sorted(out)


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--shared", default=os.path.join(repo, "..", "shared", "data"))
    ap.add_argument("--all", action="store_true", help="list agreeing flows too")
    ap.add_argument("pcaps", nargs="*")
    a = ap.parse_args(argv)
    sensor = os.path.join(a.build, "bin", "fenghuo-sensor")
    pcaps = a.pcaps or find_pcaps(a.shared)

    def one(pcap):
        with tempfile.TemporaryDirectory(prefix="fh-corpus-") as tmp:
            r = run_sensor(sensor, pcap, tmp)
            theirs, _ = run_ndpireader(pcap, tmp)
        return pcap, r, theirs

    results = []
    with ThreadPoolExecutor(2) as ex:
        for pcap, r, theirs in ex.map(one, pcaps):
            name = os.path.relpath(pcap, os.path.join(a.shared, "pcap"))
            if r["rc"] != 0:
                print("%s: SENSOR EXIT %d %s" % (name, r["rc"], r["stderr"][-300:]))
                continue
            results.append((name, compare_pcap(name, sensor_flows(parse_events(r["raw"])),
                                               theirs, pcap)))
    text, _ = format_report(results)
    print(text)
    if a.all:
        for name, res in results:
            for d in res.agree:
                print("%s: %s" % (name, describe("AGREE", d)))


if __name__ == "__main__":
    sys.exit(main())
