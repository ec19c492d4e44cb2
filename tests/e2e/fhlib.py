"""Test helpers shared by the end-to-end tests (no third-party libraries).

* community_id()  - Community ID v1 (https://github.com/corelight/community-id-spec),
                    an independent Python implementation used to cross-check the sensor's C one.
* ja3() / ja3s()  - JA3 / JA3S (https://github.com/salesforce/ja3) from raw TLS handshake bytes.
* hassh()         - HASSH (https://github.com/salesforce/hassh) from a raw SSH KEXINIT payload.
* get_path()      - dotted-path lookup into an event ("stats.decoder.errors.ipv4.truncated"
                    works although the reason names contain dots).
* match_value()   - the operators allowed in case.yaml `match:` values (see OPERATORS).
"""

import base64
import json
import hashlib
import ipaddress
import os
import re
import struct
import subprocess

# ---------------------------------------------------------------------------------------------
# Community ID v1

PROTO_NUMBERS = {"ICMP": 1, "TCP": 6, "UDP": 17, "IPv6-ICMP": 58, "SCTP": 132}
PORT_PROTOS = {6, 17, 132}

_ICMP4_EQUIV = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_EQUIV = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135,
                139: 140, 140: 139, 144: 145, 145: 144}


def community_id(src_ip, dest_ip, proto, src_port=0, dest_port=0, seed=0,
                 icmp_type=None, icmp_code=None):
    """Community ID v1 string ("1:<base64 sha1>") of a flow.

    proto is a number or an EVE name (TCP, UDP, ICMP, IPv6-ICMP, SCTP). For ICMP/ICMPv6
    give icmp_type/icmp_code (the ports are then derived from them as in the spec).
    """
    if isinstance(proto, str):
        proto = PROTO_NUMBERS[proto] if proto in PROTO_NUMBERS else int(proto)
    saddr = ipaddress.ip_address(src_ip).packed
    daddr = ipaddress.ip_address(dest_ip).packed
    if len(saddr) != len(daddr):
        raise ValueError("address families differ")
    one_way = False
    has_ports = proto in PORT_PROTOS or proto in (1, 58)
    sport, dport = src_port, dest_port
    if proto in (1, 58):
        equiv = _ICMP6_EQUIV if proto == 58 else _ICMP4_EQUIV
        sport = icmp_type
        if icmp_type in equiv:
            dport = equiv[icmp_type]
        else:
            dport = icmp_code
            one_way = True
    if has_ports:
        ordered = saddr < daddr or (saddr == daddr and sport < dport)
    else:
        ordered = saddr <= daddr
    if not (one_way or ordered):
        saddr, daddr = daddr, saddr
        sport, dport = dport, sport
    data = struct.pack("!H", seed) + saddr + daddr + struct.pack("!BB", proto, 0)
    if has_ports:
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def community_id_of_event(ev, seed=0):
    """Community ID computed from a flow event's own fields."""
    return community_id(ev["src_ip"], ev["dest_ip"], ev["proto"], ev.get("src_port", 0),
                        ev.get("dest_port", 0), seed=seed, icmp_type=ev.get("icmp_type"),
                        icmp_code=ev.get("icmp_code"))


# ---------------------------------------------------------------------------------------------
# JA3 / JA3S / HASSH

GREASE = {0x0A0A + 0x1010 * i for i in range(16)}


def _u8(b, o):
    return b[o], o + 1


def _u16(b, o):
    return struct.unpack_from("!H", b, o)[0], o + 2


def _u24(b, o):
    return (b[o] << 16) | (b[o + 1] << 8) | b[o + 2], o + 3


def _handshake(record_bytes, want_type):
    """Body of the first handshake message of type want_type in TLS record bytes."""
    o = 0
    data = b""
    while o + 5 <= len(record_bytes):
        ctype = record_bytes[o]
        ln = struct.unpack_from("!H", record_bytes, o + 3)[0]
        if ctype == 22:
            data += record_bytes[o + 5:o + 5 + ln]
        o += 5 + ln
    o = 0
    while o + 4 <= len(data):
        htype = data[o]
        hlen = (data[o + 1] << 16) | (data[o + 2] << 8) | data[o + 3]
        if htype == want_type:
            return data[o + 4:o + 4 + hlen]
        o += 4 + hlen
    raise ValueError("no handshake message of type %d" % want_type)


def _extensions(body, o):
    exts = []
    if o + 2 > len(body):
        return exts
    total, o = _u16(body, o)
    end = o + total
    while o + 4 <= end:
        etype, o = _u16(body, o)
        elen, o = _u16(body, o)
        exts.append((etype, body[o:o + elen]))
        o += elen
    return exts


def ja3_string(tls_records):
    """JA3 string of the ClientHello in the given TLS record bytes (GREASE values removed)."""
    b = _handshake(tls_records, 1)
    version, o = _u16(b, 0)
    o += 32  # random
    sid_len, o = _u8(b, o)
    o += sid_len
    cs_len, o = _u16(b, o)
    ciphers = [struct.unpack_from("!H", b, o + i)[0] for i in range(0, cs_len, 2)]
    o += cs_len
    comp_len, o = _u8(b, o)
    o += comp_len
    exts = _extensions(b, o)
    curves, pfs = [], []
    for etype, edata in exts:
        if etype == 10:
            n = struct.unpack_from("!H", edata, 0)[0]
            curves = [struct.unpack_from("!H", edata, 2 + i)[0] for i in range(0, n, 2)]
        elif etype == 11:
            pfs = list(edata[1:1 + edata[0]])
    def j(values):
        return "-".join(str(v) for v in values if v not in GREASE)
    return ",".join([str(version), j(ciphers), j(e for e, _ in exts), j(curves), j(pfs)])


def ja3s_string(tls_records):
    """JA3S string of the ServerHello in the given TLS record bytes."""
    b = _handshake(tls_records, 2)
    version, o = _u16(b, 0)
    o += 32
    sid_len, o = _u8(b, o)
    o += sid_len
    cipher, o = _u16(b, o)
    o += 1  # compression
    exts = _extensions(b, o)
    return "%d,%d,%s" % (version, cipher, "-".join(str(e) for e, _ in exts if e not in GREASE))


def ja3(tls_records):
    return hashlib.md5(ja3_string(tls_records).encode()).hexdigest()


def ja3s(tls_records):
    return hashlib.md5(ja3s_string(tls_records).encode()).hexdigest()


def parse_kexinit(payload):
    """Name lists of an SSH_MSG_KEXINIT given the unencrypted binary packet bytes."""
    plen = struct.unpack_from("!I", payload, 0)[0]
    pad = payload[4]
    msg = payload[5:4 + plen - pad]
    if msg[0] != 20:
        raise ValueError("not a KEXINIT")
    o = 1 + 16
    lists = []
    for _ in range(10):
        n = struct.unpack_from("!I", msg, o)[0]
        lists.append(msg[o + 4:o + 4 + n].decode())
        o += 4 + n
    return lists


def hassh(payload, server=False):
    """HASSH (client) or HASSHServer of a KEXINIT packet."""
    kex, _hk, enc_cs, enc_sc, mac_cs, mac_sc, cmp_cs, cmp_sc, _l1, _l2 = parse_kexinit(payload)
    if server:
        s = ";".join([kex, enc_sc, mac_sc, cmp_sc])
    else:
        s = ";".join([kex, enc_cs, mac_cs, cmp_cs])
    return hashlib.md5(s.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Event field access and match operators

MISSING = object()


def get_path(obj, path):
    """Value at a dotted path, or MISSING. Keys that themselves contain dots (decode reasons
    such as "ipv4.truncated") are found by trying the longest key first; a numeric part
    indexes a list."""
    parts = path.split(".")

    def walk(o, ps):
        if not ps:
            return o
        if isinstance(o, dict):
            for i in range(len(ps), 0, -1):
                key = ".".join(ps[:i])
                if key in o:
                    r = walk(o[key], ps[i:])
                    if r is not MISSING:
                        return r
            return MISSING
        if isinstance(o, list) and re.fullmatch(r"-?\d+", ps[0]):
            idx = int(ps[0])
            if -len(o) <= idx < len(o):
                return walk(o[idx], ps[1:])
        return MISSING

    return walk(obj, parts)


def strict_equal(a, b):
    """Equality that does not confuse True with 1 or 1 with 1.0-as-string."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return a == b


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


OPERATORS = {
    # {__exists: true|false}    the field is present / absent
    "__exists": lambda v, arg, ev, ctx: (v is not MISSING) == bool(arg),
    # {__contains: x}           substring of a string, or element of a list
    "__contains": lambda v, arg, ev, ctx: (
        (isinstance(v, str) and isinstance(arg, str) and arg in v)
        or (isinstance(v, list) and any(strict_equal(x, arg) for x in v))),
    # {__len: n}                length of a string, list or object
    "__len": lambda v, arg, ev, ctx: isinstance(v, (str, list, dict)) and len(v) == arg,
    "__ge": lambda v, arg, ev, ctx: _num(v) and v >= arg,
    "__gt": lambda v, arg, ev, ctx: _num(v) and v > arg,
    "__le": lambda v, arg, ev, ctx: _num(v) and v <= arg,
    "__lt": lambda v, arg, ev, ctx: _num(v) and v < arg,
    # {__ne: x}                not equal to x (an absent field is not equal)
    "__ne": lambda v, arg, ev, ctx: v is MISSING or not strict_equal(v, arg),
    # {__in: [a, b]}            equal to one of the listed values
    "__in": lambda v, arg, ev, ctx: any(strict_equal(v, a) for a in arg),
    # {__re: "regex"}           string matching the regex (re.search)
    "__re": lambda v, arg, ev, ctx: isinstance(v, str) and re.search(arg, v) is not None,
    # {__community_id: true}    equals the Community ID computed in Python from the event's
    #                           own src/dest/proto/ports/icmp fields (seed from the config)
    "__community_id": lambda v, arg, ev, ctx: (
        isinstance(v, str) and v == community_id_of_event(ev, ctx.get("seed", 0))),
}


def match_value(actual, expected, event=None, ctx=None):
    """True if `actual` (possibly MISSING) satisfies `expected` from a case.yaml match."""
    ctx = ctx or {}
    if isinstance(expected, dict) and expected and all(k.startswith("__") for k in expected):
        for op, arg in expected.items():
            if op not in OPERATORS:
                raise ValueError("unknown match operator %r (known: %s)"
                                 % (op, ", ".join(sorted(OPERATORS))))
            if not OPERATORS[op](actual, arg, event, ctx):
                return False
        return True
    if actual is MISSING:
        return False
    return strict_equal(actual, expected)


# ---- comparing runs: the same events, in any order between flows ----------------------

# Stats fields that measure timing, not traffic: how often the capture thread waited for a
# worker's queue. Everything else in a stats event is a count of what the input held.
TIMING_FIELDS = (("stats", "workers", "per_thread", "*", "queue_full"),)


def _drop_path(obj, path):
    if not path or not isinstance(obj, (dict, list)):
        return
    head, rest = path[0], path[1:]
    items = obj if head == "*" and isinstance(obj, list) else (
        [obj[head]] if isinstance(obj, dict) and head in obj else [])
    if not rest:
        if isinstance(obj, dict) and head in obj:
            del obj[head]
        return
    for it in items:
        _drop_path(it, rest)


def canonical_event(ev, drop=()):
    """The event as sorted-key JSON without the timing fields (and without `drop` paths);
    worker thread details are left out of stats events (they depend on the thread count)."""
    ev = json.loads(json.dumps(ev))
    for path in TIMING_FIELDS + tuple(drop):
        _drop_path(ev, path)
    if ev.get("event_type") == "stats":
        ev.get("stats", {}).pop("workers", None)
        ev.get("stats", {}).get("flow", {}).pop("max_active", None)
        ev.get("stats", {}).get("flow", {}).pop("memory_peak", None)
        yara = ev.get("stats", {}).get("yara")
        if yara:
            yara.pop("buffer_memory_peak", None)
        reasm = ev.get("stats", {}).get("reassembly")
        if reasm:
            reasm.pop("memory_peak", None)
    return json.dumps(ev, sort_keys=True, separators=(",", ":"))


def event_streams(events, drop=()):
    """(multiset of canonical events, {flow_id: [canonical events in output order]},
    [canonical stats events in order])."""
    import collections
    every = collections.Counter()
    per_flow = collections.defaultdict(list)
    stats = []
    for ev in events:
        c = canonical_event(ev, drop)
        every[c] += 1
        if "flow_id" in ev:
            per_flow[ev["flow_id"]].append(c)
        if ev.get("event_type") == "stats":
            stats.append(c)
    return every, per_flow, stats


def compare_runs(a, b, drop=()):
    """Differences between two runs' event lists (a list of strings, empty if none):
    events only in one run, flows whose events come in a different order, stats events
    that differ. The order of events of different flows is not compared."""
    ea, fa, sa = event_streams(a, drop)
    eb, fb, sb = event_streams(b, drop)
    out = []
    for x in list((ea - eb).elements())[:5]:
        out.append("only in the first run: " + x[:700])
    for x in list((eb - ea).elements())[:5]:
        out.append("only in the second run: " + x[:700])
    n_only = sum((ea - eb).values()) + sum((eb - ea).values())
    if n_only > 10:
        out.append("... %d events in one run only" % n_only)
    for fid in fa:
        if fid in fb and fa[fid] != fb[fid] and sorted(fa[fid]) == sorted(fb[fid]):
            out.append("flow %s: same events in another order" % fid)
            break
    if sa != sb:
        out.append("stats events differ (%d vs %d)" % (len(sa), len(sb)))
    return out


# ---- the correlator over the level-3 pack ----------------------------------------------

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_level3(correlator, events_path, tmp_path):
    """Runs the correlator with the level-3 pack and the example inventory over an NDJSON
    file (alerts to tmp_path/alerts.json, store tmp_path/alerts.db). Returns (the last
    update of each alert, in first-seen order; the correlator's stderr); asserts exit 0."""
    out = tmp_path / "alerts.json"
    p = subprocess.run(
        [correlator, "--rules", os.path.join(_REPO, "rules", "level3"),
         "--assets", os.path.join(_REPO, "rules", "assets.example.yaml"),
         "--input", str(events_path), "--alerts-out", str(out),
         "--db", str(tmp_path / "alerts.db")],
        capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    alerts = {}
    for line in out.read_text().splitlines():
        a = json.loads(line)
        alerts[a["id"]] = a
    return list(alerts.values()), p.stderr
