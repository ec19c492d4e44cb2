"""Flow-by-flow comparison of the sensor's nDPI verdicts with Debian's ndpiReader (nDPI 4.2).

Used by test_corpus.py; also runnable by hand to look at one capture or the whole corpus:

    /usr/bin/python3 tests/e2e/ndpi_compare.py [--build build] [--shared ../shared/data] [PCAP ...]

Only the standard library is needed. See CORPUS-NOTES.md next to this file for what is compared,
how flows are matched and why each class of disagreement exists.

ndpiReader invocation
---------------------
    ndpiReader -q -t -v 2 -i PCAP -C flows.csv -w flows.txt

* `-C` writes one CSV line per flow (`ndpi_proto` column = ndpi_protocol2name(), the same
  function the sensor uses for `ndpi.protocol`).
* `-v 2` is required: with `-q` alone the CSV lists only flows whose protocol is known
  (node_print_known_proto_walker), so the Unknown flows would be missing; `-v 2` prints every
  flow, to the CSV and to the `-w` text file, in the same order.
* `-t` makes ndpiReader decapsulate GTP-U (and TZSP/CAPWAP), as the sensor does for GTP-U.
* No -p/-c/-r/-j/-S files: the sensor runs with nDPI's built-in protocol list as well.
* The text file gives what the CSV lacks: the VLAN id ndpiReader keyed the flow with and the
  tunnel it came through (`[proto: GTP:...]`).
"""

import argparse
import csv
import io
import ipaddress
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

NDPI_READER = "ndpiReader"
NDPI_ARGS = ["-q", "-t", "-v", "2"]

PROTO_NUM = {"TCP": 6, "UDP": 17, "ICMP": 1, "IPv6-ICMP": 58, "SCTP": 132}

# Tunnels ndpiReader 4.2 does not decapsulate: it sees (and classifies) only the outer flow.
# IP-in-IP / IPv6-in-IPv4 are decapsulated by both (reader_util.c, always); GTP-U with -t.
TUNNELS_NOT_DECAPSULATED = {"gre", "erspan", "vxlan", "geneve"}
TUNNEL_UDP_PORTS = {4789: "vxlan", 6081: "geneve"}


# --------------------------------------------------------------------------- addresses

def _glibc_ntop6(a):
    """IPv6 text as glibc's inet_ntop() writes it (RFC 5952 compression; embedded IPv4 for
    ::a.b.c.d and ::ffff:a.b.c.d)."""
    ip = ipaddress.IPv6Address(a)
    w = [int.from_bytes(ip.packed[i:i + 2], "big") for i in range(0, 16, 2)]
    # longest run of >= 2 zero words, first one on ties (glibc and Python agree on this)
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
        v4 = ".".join(str(b) for b in ip.packed[12:])
        return ("::ffff:" if blen == 5 else "::") + v4
    return ip.compressed


def ndpi_patch_ipv6(s):
    """ndpi_patchIPv6Address() of nDPI 4.2: every ':0:' becomes '::' (ndpiReader applies it to
    the addresses it prints, which can make them ambiguous, e.g. fe80::1:0:5 -> fe80::1::5)."""
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
    """An address as ndpiReader prints it (its strings are compared as they are)."""
    if ":" in ip:
        return ndpi_patch_ipv6(_glibc_ntop6(ip))
    return ip


def flow_key(proto, vlan, a, ap, b, bp):
    """(proto, vlan, unordered endpoint pair): the unit both tools are compared on."""
    e1, e2 = (a, int(ap)), (b, int(bp))
    return (int(proto), int(vlan or 0)) + (tuple(sorted([e1, e2])))


def key_str(k):
    proto, vlan, (a, ap), (b, bp) = k
    pname = {v: n for n, v in PROTO_NUM.items()}.get(proto, str(proto))
    s = "%s %s:%d <-> %s:%d" % (pname, a if ":" not in a else "[%s]" % a, ap,
                                b if ":" not in b else "[%s]" % b, bp)
    return s + (" vlan %d" % vlan if vlan else "")


# --------------------------------------------------------------------------- ndpiReader

_TXT_FLOW = re.compile(
    r"^\t(\d+)\t(\S+) (\[[^\]]+\]|[^ \[]+):(\d+) (?:<->|->) (\[[^\]]+\]|[^ \[]+):(\d+) "
    r"(?:\[VLAN: (\d+)\])?.*?\[proto: (?:([A-Za-z]+):)?([0-9.]+)/([^\]]*)\]")


_TXT_CONF = re.compile(r"\[Confidence: ([^\]]*)\]")


def run_ndpireader(pcap, workdir, timeout=600):
    """Runs ndpiReader on pcap; returns (flows, seconds). flows: list of dicts with
    proto, vlan, src, sport, dst, dport, ndpi_proto, tunnel."""
    csv_path = os.path.join(workdir, "ndpi.csv")
    txt_path = os.path.join(workdir, "ndpi.txt")
    t0 = time.monotonic()
    p = subprocess.run([NDPI_READER] + NDPI_ARGS + ["-i", pcap, "-C", csv_path, "-w", txt_path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=timeout)
    elapsed = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError("ndpiReader failed on %s (exit %d): %s"
                           % (pcap, p.returncode, p.stderr.decode("utf-8", "replace")[-500:]))
    return parse_ndpireader(csv_path, txt_path), elapsed


def parse_ndpireader(csv_path, txt_path):
    with open(csv_path, "rb") as f:
        rows = f.read().decode("utf-8", "replace").splitlines()
    with open(txt_path, "rb") as f:
        txt = [m for m in (_TXT_FLOW.match(l) for l in
                           f.read().decode("utf-8", "replace").splitlines()) if m]
    flows = []
    for line in rows:
        if not line or line.startswith("#"):
            continue
        # The first 11 columns never contain a comma (the SNI and later ones might).
        c = line.split(",", 11)
        flows.append({"proto": int(c[1]), "src": c[5], "sport": int(c[6]), "dst": c[7],
                      "dport": int(c[8]), "ndpi_proto": c[10], "vlan": 0, "tunnel": None})
    if len(txt) != len(flows):
        raise RuntimeError("ndpiReader: %d CSV flows but %d text flows (%s)"
                           % (len(flows), len(txt), txt_path))
    for fl, m in zip(flows, txt):
        src, dst = m.group(3).strip("[]"), m.group(5).strip("[]")
        if (src, int(m.group(4)), dst, int(m.group(6))) != \
                (fl["src"], fl["sport"], fl["dst"], fl["dport"]) or m.group(10) != fl["ndpi_proto"]:
            raise RuntimeError("ndpiReader CSV and text output disagree: %r vs %r"
                               % (fl, m.group(0)[:200]))
        fl["vlan"] = int(m.group(7) or 0)
        fl["tunnel"] = m.group(8).lower() if m.group(8) else None
        c = _TXT_CONF.search(m.string)
        fl["confidence"] = c.group(1) if c else None
        fl["line"] = m.string
    return flows


# --------------------------------------------------------------------------- sensor

def run_sensor(sensor, pcap, out_path, timeout=600):
    """Runs the sensor; returns dict(rc, stderr, raw, seconds)."""
    t0 = time.monotonic()
    p = subprocess.run([sensor, "-r", pcap, "-w", out_path], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    elapsed = time.monotonic() - t0
    raw = b""
    if os.path.exists(out_path):
        with open(out_path, "rb") as f:
            raw = f.read()
    return {"rc": p.returncode, "stderr": p.stderr.decode("utf-8", "replace"), "raw": raw,
            "seconds": elapsed}


def parse_events(raw):
    return [json.loads(l) for l in raw.split(b"\n") if l.strip()]


def sensor_flows(events):
    """Final flow events (periodic `update` events are interim copies of a flow)."""
    out = []
    for ev in events:
        if ev.get("event_type") != "flow" or ev["flow"]["reason"] == "update":
            continue
        proto = PROTO_NUM.get(ev["proto"])
        if proto is None:
            proto = int(ev["proto"])
        vl = ev.get("vlan") or []
        out.append({"proto": proto, "vlan": vl[-1] if vl else 0, "src": reader_addr(ev["src_ip"]),
                    "sport": ev.get("src_port", 0), "dst": reader_addr(ev["dest_ip"]),
                    "dport": ev.get("dest_port", 0), "ndpi_proto": ev["ndpi"]["protocol"],
                    "tunnel": (ev.get("tunnel") or {}).get("type"),
                    "tunnel_ends": ((ev.get("tunnel") or {}).get("src_ip"),
                                    (ev.get("tunnel") or {}).get("dest_ip")),
                    "start": ev["flow"]["start"], "reason": ev["flow"]["reason"],
                    "pkts": ev["flow"]["pkts_toserver"] + ev["flow"]["pkts_toclient"],
                    "guessed": ev["ndpi"].get("guessed"),
                    "confidence": ev["ndpi"].get("confidence"),
                    "end": ev["flow"]["end"],
                    "flow_id": ev["flow_id"]})
    return out


def sensor_stats(events):
    st = [e for e in events if e.get("event_type") == "stats"]
    return st[-1]["stats"] if st else {}


# --------------------------------------------------------------------------- comparison

# Classes of flows left out of the agreement denominator. Every one is explained in
# CORPUS-NOTES.md; the rule that assigns it is the code below.
EXCLUDED = {
    "tunnel-inner": "inner flow of a GRE/ERSPAN/VXLAN/Geneve tunnel: the sensor decapsulates, "
                    "ndpiReader 4.2 does not (it reports only the outer flow)",
    "tunnel-outer": "outer GRE / VXLAN / Geneve flow ndpiReader reports for a tunnel the "
                    "sensor decapsulated",
    "split": "later segment of a connection the sensor split (idle timeout, new SYN after "
             "FIN/RST); ndpiReader never expires flows when reading a pcap, so it has one flow",
    "fragment": "non-first IPv4 fragments: ndpiReader drops them, the sensor reassembles",
}


def compare_pcap(ours, theirs, known=None, pcap_name=""):
    """Matches the two flow lists by key and classifies every flow.

    Returns dict with:
      pairs:      [(key, our_flow, their_flow)] compared (first segment of ours vs theirs)
      agree / disagree: lists of (key, ours, theirs[, class])
      only_ours / only_theirs: [(key, flow, class or None)]
      splits:     [(key, later segment, theirs)]   (class "split", not compared)
    `known` maps (pcap_name, key_str) -> class name for documented disagreements.
    """
    known = known or {}
    by_ours = defaultdict(list)
    for f in ours:
        by_ours[flow_key(f["proto"], f["vlan"], f["src"], f["sport"], f["dst"], f["dport"])].append(f)
    by_theirs = defaultdict(list)
    for f in theirs:
        by_theirs[flow_key(f["proto"], f["vlan"], f["src"], f["sport"], f["dst"],
                           f["dport"])].append(f)
    for v in by_ours.values():
        v.sort(key=lambda f: (f["start"], f["flow_id"]))

    # Outer tunnel endpoints of decapsulated flows the reader cannot see into.
    tunnel_ends = set()
    for f in ours:
        if f["tunnel"] in TUNNELS_NOT_DECAPSULATED and f["tunnel_ends"][0]:
            tunnel_ends.add(frozenset(reader_addr(x) for x in f["tunnel_ends"]))

    res = {"agree": [], "disagree": [], "only_ours": [], "only_theirs": [], "splits": [],
           "excluded_pairs": []}
    for k in sorted(set(by_ours) | set(by_theirs), key=repr):
        o, t = by_ours.get(k, []), by_theirs.get(k, [])
        if o and t:
            # ndpiReader keeps one flow per key for the whole capture (no expiry when reading
            # files); it classified it from the key's first packets, i.e. our first segment.
            for i, tf in enumerate(t):
                if i >= len(o):
                    res["only_theirs"].append((k, tf, None))
                    continue
                of = o[i]
                if of["ndpi_proto"] == tf["ndpi_proto"]:
                    res["agree"].append((k, of, tf))
                else:
                    cls = known.get((pcap_name, key_str(k)))
                    res["disagree"].append((k, of, tf, cls))
            for of in o[len(t):]:
                res["splits"].append((k, of, t[-1]))
        elif o:
            for of in o:
                cls = "tunnel-inner" if of["tunnel"] in TUNNELS_NOT_DECAPSULATED else None
                res["only_ours"].append((k, of, cls))
        else:
            for tf in t:
                cls = None
                ends = frozenset([k[2][0], k[3][0]])
                if ends in tunnel_ends and (k[0] == 47 or (k[0] == 17 and (
                        k[2][1] in TUNNEL_UDP_PORTS or k[3][1] in TUNNEL_UDP_PORTS))):
                    cls = "tunnel-outer"
                res["only_theirs"].append((k, tf, cls))
    return res


def summarize(res):
    """Counts of one compare_pcap() result (or of several merged ones)."""
    dis_doc = [d for d in res["disagree"] if d[3]]
    return {
        "both": len(res["agree"]) + len(res["disagree"]),
        "agree": len(res["agree"]),
        "disagree": len(res["disagree"]),
        "disagree_documented": len(dis_doc),
        "only_ours": len(res["only_ours"]),
        "only_theirs": len(res["only_theirs"]),
        "splits": len(res["splits"]),
    }


# --------------------------------------------------------------------------- CLI

def find_pcaps(shared):
    root = os.path.join(shared, "pcap")
    out = []
    for d, _, files in os.walk(root):
        for fn in files:
            if fn.endswith((".pcap", ".pcapng")):
                out.append(os.path.join(d, fn))
    return sorted(out)


def _one(sensor, pcap, shared):
    with tempfile.TemporaryDirectory(prefix="fh-corpus-") as tmp:
        r = run_sensor(sensor, pcap, os.path.join(tmp, "out.ndjson"))
        theirs, _ = run_ndpireader(pcap, tmp)
    ours = sensor_flows(parse_events(r["raw"])) if r["rc"] == 0 else []
    return pcap, r, ours, theirs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap.add_argument("--build", default=os.path.join(repo, "build"))
    ap.add_argument("--shared", default=os.path.join(repo, "..", "shared", "data"))
    ap.add_argument("--all", action="store_true", help="print agreeing flows too")
    ap.add_argument("pcaps", nargs="*")
    a = ap.parse_args(argv)
    sensor = os.path.join(a.build, "bin", "fenghuo-sensor")
    pcaps = a.pcaps or find_pcaps(a.shared)
    tot = Counter()
    with ThreadPoolExecutor(2) as ex:
        for pcap, r, ours, theirs in ex.map(lambda p: _one(sensor, p, a.shared), pcaps):
            name = os.path.relpath(pcap, os.path.join(a.shared, "pcap")) if not a.pcaps else pcap
            if r["rc"] != 0:
                print("%s: SENSOR EXIT %d %s" % (name, r["rc"], r["stderr"][-300:]))
                continue
            res = compare_pcap(ours, theirs, pcap_name=name)
            s = summarize(res)
            tot.update(s)
            print("%-60s both %4d agree %4d dis %3d only-ours %3d only-ndpi %3d splits %3d"
                  % (name, s["both"], s["agree"], s["disagree"], s["only_ours"],
                     s["only_theirs"], s["splits"]))
            for k, o, t, c in res["disagree"]:
                print("   DIS %-70s ours %-22s ndpi %-22s %s" % (key_str(k), o["ndpi_proto"],
                                                               t["ndpi_proto"], c or ""))
            for k, o, c in res["only_ours"]:
                print("   OURS %-70s %-22s %s %s" % (key_str(k), o["ndpi_proto"], o["tunnel"] or "", c or ""))
            for k, t, c in res["only_theirs"]:
                print("   NDPI %-70s %-22s %s %s" % (key_str(k), t["ndpi_proto"], t["tunnel"] or "", c or ""))
            for k, o, t in res["splits"]:
                print("   SPLIT %-70s ours %-22s ndpi %-22s" % (key_str(k), o["ndpi_proto"], t["ndpi_proto"]))
            if a.all:
                for k, o, t in res["agree"]:
                    print("   OK %-70s %s" % (key_str(k), o["ndpi_proto"]))
    print("TOTAL", dict(tot))
    if tot["both"]:
        print("agreement %.2f%%" % (100.0 * tot["agree"] / tot["both"]))


if __name__ == "__main__":
    sys.exit(main())
