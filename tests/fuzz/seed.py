#!/usr/bin/python3
"""Seeds the fuzz corpora: tests/fuzz/seed.py OUTDIR [SHARED]

OUTDIR/decode  frames of the crafted captures (build/testdata/pcap) and of the shared
               public captures (SHARED/pcap, when present), in fuzz_decode's format:
               [link type index][length, 2 bytes big endian][frame], up to 8 frames a seed
OUTDIR/event   the rule-pack scenario events (tests/rules/*/events.ndjson), 20 lines a seed
OUTDIR/rules   the shipped rule files (rules/level3) and the correlation test rules
OUTDIR/flow    TCP conversations to the ports fuzz_flow.c serves (HTTP 80/8080, SMB 445,
               TLS 443, FTP 21, SMTP 25) from the crafted and shared captures, in its format:
               [port index][flags (bit 0 = from the server)][length, 2 bytes][payload]...
OUTDIR/dns     UDP port 53 payloads of the captures named *dns*: one DNS message each
OUTDIR/krb5    port 88 payloads of the captures named *krb*/*kerb*, a chunk-size byte first
OUTDIR/yara_prefilter  the YARA rules shipped (rules/yara) and shared (SHARED/yara), one rule
               a seed with its file's imports

Deterministic: the same inputs give the same seeds (file names are content hashes).
"""

import glob
import hashlib
import os
import sys

from scapy.utils import RawPcapReader

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# fuzz_decode.c's LINKTYPES, in order
LINKTYPES = [1, 12, 12, 0, 108, 113, 276, 9, 228, 229]
MAX_FILES_PER_TARGET = 400


def put(outdir, data):
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(data)


def frames(path, limit):
    try:
        r = RawPcapReader(path)
    except Exception:
        return None, []
    out = []
    try:
        for pkt, _meta in r:
            out.append(pkt)
            if len(out) >= limit:
                break
    except Exception:
        pass
    lt = getattr(r, "linktype", 1)
    try:
        r.close()
    except Exception:
        pass
    return lt, out


def captures(shared):
    """The crafted captures, then the shared ones when present."""
    caps = sorted(glob.glob(os.path.join(REPO, "build", "testdata", "pcap", "**", "*.pcap"),
                            recursive=True))
    if shared and os.path.isdir(os.path.join(shared, "pcap")):
        caps += sorted(glob.glob(os.path.join(shared, "pcap", "**", "*.pcap*"), recursive=True))
    return caps


def seed_decode(outdir, shared):
    n = 0
    for cap in captures(shared):
        lt, fr = frames(cap, 8)
        if lt not in LINKTYPES or not fr:
            continue
        idx = LINKTYPES.index(lt)
        data = b"".join(bytes([idx]) + len(f[:65535]).to_bytes(2, "big") + f[:65535]
                        for f in fr)
        put(outdir, data)
        n += 1
        if n >= MAX_FILES_PER_TARGET:
            break
    return n


# fuzz_flow.c's PORTS, in order
FLOW_PORTS = [80, 8080, 445, 443, 21, 25]


def _tcp_payloads(path, limit):
    """{(client, cport, server, sport): [(from_server, payload), ...]} of a capture's TCP
    flows to FLOW_PORTS, in capture order (the first limit packets)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    lt, fr = frames(path, limit)
    convs = {}
    if lt != 1:
        return convs
    for f in fr:
        try:
            e = Ether(f)
        except Exception:
            continue
        if IP not in e or TCP not in e:
            continue
        ip, tcp = e[IP], e[TCP]
        data = bytes(tcp.payload)
        if tcp.dport in FLOW_PORTS:
            key, d = (ip.src, tcp.sport, ip.dst, tcp.dport), 0
        elif tcp.sport in FLOW_PORTS:
            key, d = (ip.dst, tcp.dport, ip.src, tcp.sport), 1
        else:
            continue
        if data:
            convs.setdefault(key, []).append((d, data))
    return convs


def _port_payloads(shared, names, port, limit, protos):
    """The payloads to or from `port` (transport layers `protos`: "tcp", "udp") of the
    Ethernet captures whose names contain one of `names`, in capture order."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    layers = [l for p, l in (("tcp", TCP), ("udp", UDP)) if p in protos]
    for cap in captures(shared):
        base = os.path.basename(cap).lower()
        if not any(n in base for n in names):
            continue
        lt, fr = frames(cap, limit)
        if lt != 1:
            continue
        for f in fr:
            try:
                e = Ether(f)
            except Exception:
                continue
            l4 = next((l for l in layers if l in e), None)
            if l4 is None or (IP not in e and IPv6 not in e):
                continue
            if port in (e[l4].sport, e[l4].dport):
                yield bytes(e[l4].payload)


def seed_dns(outdir, shared):
    """fuzz_dns.c: one DNS message per input, from the captures' UDP port 53 datagrams."""
    n = 0
    for data in _port_payloads(shared, ("dns",), 53, 64, ("udp",)):
        put(outdir, data)
        n += 1
        if n >= MAX_FILES_PER_TARGET:
            break
    return n


def seed_krb5(outdir, shared):
    """fuzz_krb5.c: [chunk size] then the port 88 payloads of the captures named *krb*/*kerb*
    (a TCP payload keeps its 4-byte length, so it is a framed record)."""
    n = 0
    for data in _port_payloads(shared, ("krb", "kerb"), 88, 200, ("tcp", "udp")):
        if len(data) > 8:
            put(outdir, bytes([n % 64]) + data)
            n += 1
            if n >= MAX_FILES_PER_TARGET:
                break
    return n


def seed_flow(outdir, shared):
    n = 0
    for cap in captures(shared):
        for key, segs in sorted(_tcp_payloads(cap, 400).items()):
            data = bytes([FLOW_PORTS.index(key[3])])
            for d, p in segs[:24]:
                p = p[:8192]
                data += bytes([d]) + len(p).to_bytes(2, "big") + p
            put(outdir, data)
            n += 1
            if n >= MAX_FILES_PER_TARGET:
                return n
    return n


def seed_event(outdir):
    n = 0
    for path in sorted(glob.glob(os.path.join(REPO, "tests", "rules", "*", "events.ndjson"))):
        lines = open(path, "rb").read().splitlines()
        for i in range(0, min(len(lines), 200), 20):
            put(outdir, b"\n".join(lines[i:i + 20]) + b"\n")
            n += 1
    return n


def seed_rules(outdir):
    n = 0
    for path in sorted(glob.glob(os.path.join(REPO, "rules", "level3", "*.yml"))):
        put(outdir, open(path, "rb").read())
        n += 1
    return n


def seed_yara_prefilter(outdir, shared):
    """fuzz_yara_prefilter.c: rule sources, one rule per seed (small inputs fuzz faster)."""
    paths = sorted(glob.glob(os.path.join(REPO, "rules", "yara", "*.yar")))
    if shared:
        paths += sorted(glob.glob(os.path.join(shared, "yara", "**", "*.yar*"), recursive=True))
    n = 0
    for path in paths:
        text = open(path, "rb").read()
        imports = b"".join(l + b"\n" for l in text.splitlines() if l.startswith(b"import "))
        rule = []
        for line in text.splitlines():
            if rule or line.split(b" ")[0] in (b"rule", b"private", b"global"):
                rule.append(line)
            if rule and line.startswith(b"}"):
                put(outdir, imports + b"\n".join(rule) + b"\n")
                n += 1
                rule = []
                if n >= MAX_FILES_PER_TARGET:
                    return n
    return n


def main():
    out = sys.argv[1]
    shared = sys.argv[2] if len(sys.argv) > 2 else None
    counts = {}
    for target, fn in (("decode", lambda d: seed_decode(d, shared)), ("event", seed_event),
                       ("rules", seed_rules), ("flow", lambda d: seed_flow(d, shared)),
                       ("dns", lambda d: seed_dns(d, shared)),
                       ("krb5", lambda d: seed_krb5(d, shared)),
                       ("yara_prefilter", lambda d: seed_yara_prefilter(d, shared))):
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        counts[target] = fn(d)
    print("fuzz seeds: " + ", ".join("%s %d" % kv for kv in counts.items()))


if __name__ == "__main__":
    main()
