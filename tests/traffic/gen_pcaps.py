#!/usr/bin/python3
"""Deterministic test traffic for the Fenghuo sensor's end-to-end tests.

    /usr/bin/python3 tests/traffic/gen_pcaps.py OUTDIR          writes OUTDIR/<case>.pcap
    /usr/bin/python3 tests/traffic/gen_pcaps.py --expect        prints the per-flow packet
                                                                and IP-byte counts (JSON)

Payload-inspection cases (YARA) go to OUTDIR/payload/, so that reading OUTDIR as a
directory (the paced Kafka outage tests replay all of it) keeps its size and duration.

Every case is one classic pcap (microsecond timestamps) written by this file's own writer:
fixed addresses, fixed timestamps from 2024-03-01T08:00:00Z, fixed TCP sequence numbers and
IP ids, no randomness, so the output is byte-identical on every run (scapy only builds the
packet bytes and their checksums).

Counts printed by --expect follow docs/events.md: the client is the side that sent the
SYN (else the first packet); bytes are IP-layer bytes (IP header + payload; for tunnelled
traffic the inner IP packet; for fragments the reassembled datagram, counted as 1 packet).
"""

import json
import os
import struct
import sys
from decimal import Decimal

from scapy.all import (ARP, DNS, DNSQR, DNSRR, GRE, ICMP, IP, TCP, UDP, VXLAN, CookedLinux,
                       CookedLinuxV2, Dot1AD, Dot1Q, Ether, ICMPv6EchoReply, ICMPv6ND_RA,
                       ICMPv6NDOptPrefixInfo, ICMPv6NDOptSrcLLAddr,
                       ICMPv6EchoRequest, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                       IPv6ExtHdrHopByHop, Loopback, PPP, PPPoE, PadN, Raw)
from scapy.contrib.mpls import MPLS

BASE = Decimal(1709280000)  # 2024-03-01T08:00:00Z

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

C, S = 0, 1  # direction: from client, from server

MAC = {C: "02:00:00:00:00:01", S: "02:00:00:00:00:02"}

# ---------------------------------------------------------------------------------------------
# pcap writer


class Pcap:
    def __init__(self, name, linktype=LINKTYPE_ETHERNET):
        self.name = name
        self.linktype = linktype
        self.records = []  # (time, bytes, wire length)
        self.flows = []    # Conv objects, for --expect

    def add(self, t, frame, wire_len=None):
        data = bytes(frame)
        self.records.append((t, data, len(data) if wire_len is None else wire_len))

    def write(self, outdir):
        path = os.path.join(outdir, self.name + ".pcap")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, self.linktype))
            for t, data, wire in self.records:
                sec = int(t)
                usec = int((t - sec) * 1000000)
                f.write(struct.pack("<IIII", sec, usec, len(data), wire))
                f.write(data)
        return path


# ---------------------------------------------------------------------------------------------
# link layers / encapsulations: functions (direction, ip packet) -> frame


def eth(d, ip, macs=MAC):
    return Ether(src=macs[d], dst=macs[1 - d]) / ip


def vlan(vid):
    return lambda d, ip: Ether(src=MAC[d], dst=MAC[1 - d]) / Dot1Q(vlan=vid, prio=0) / ip


def qinq(outer, inner):
    return lambda d, ip: (Ether(src=MAC[d], dst=MAC[1 - d], type=0x88A8) / Dot1AD(vlan=outer)
                          / Dot1Q(vlan=inner) / ip)


def mpls(labels):
    def f(d, ip):
        p = Ether(src=MAC[d], dst=MAC[1 - d], type=0x8847)
        for i, lab in enumerate(labels):
            p = p / MPLS(label=lab, cos=0, s=1 if i == len(labels) - 1 else 0, ttl=64)
        return p / ip
    return f


def pppoe(session):
    return lambda d, ip: (Ether(src=MAC[d], dst=MAC[1 - d], type=0x8864)
                          / PPPoE(version=1, type=1, code=0, sessionid=session)
                          / PPP(proto=0x0021) / ip)


def sll(d, ip):
    return CookedLinux(pkttype=4 if d == C else 0, lladdrtype=1, lladdrlen=6,
                       src=MAC[d], proto=0x0800) / ip


def sll2(d, ip):
    return CookedLinuxV2(proto=0x0800, ifindex=2, lladdrtype=1, pkttype=4 if d == C else 0,
                         lladdrlen=6, src=MAC[d]) / ip


def null_loop(d, ip):
    return Loopback(type=2) / ip


def raw_ip(d, ip):
    return ip


GRE_ENDPOINTS = ("192.0.2.1", "192.0.2.2")


def gre(d, ip):
    a, b = GRE_ENDPOINTS if d == C else GRE_ENDPOINTS[::-1]
    return (Ether(src=MAC[d], dst=MAC[1 - d]) / IP(src=a, dst=b, ttl=64, id=0x100 + d)
            / GRE(proto=0x0800) / ip)


VXLAN_ENDPOINTS = ("192.0.2.11", "192.0.2.12")
VXLAN_VNI = 4242
INNER_MAC = {C: "02:00:00:00:01:01", S: "02:00:00:00:01:02"}


def vxlan(d, ip):
    a, b = VXLAN_ENDPOINTS if d == C else VXLAN_ENDPOINTS[::-1]
    return (Ether(src=MAC[d], dst=MAC[1 - d]) / IP(src=a, dst=b, ttl=64, id=0x200 + d)
            / UDP(sport=54321 + d, dport=4789, chksum=0) / VXLAN(flags=0x08, vni=VXLAN_VNI)
            / Ether(src=INNER_MAC[d], dst=INNER_MAC[1 - d]) / ip)


# ---------------------------------------------------------------------------------------------
# conversations


class Conv:
    """One flow: builds IP packets in either direction, wraps them, counts what it sent."""

    def __init__(self, pcap, label, cli, srv, proto, sport=0, dport=0, encap=eth,
                 cli_ext=None):
        self.pcap = pcap
        self.label = label
        self.ip = {C: cli, S: srv}
        self.port = {C: sport, S: dport}
        self.proto = proto
        self.v6 = ":" in cli
        self.encap = encap
        self.cli_ext = cli_ext  # IPv6 extension headers on client packets (a callable)
        self.ipid = {C: 0x1000, S: 0x2000}
        self.pkts = {C: 0, S: 0}
        self.bytes = {C: 0, S: 0}
        self.first = self.last = None
        pcap.flows.append(self)

    def l3(self, d, l4):
        if self.v6:
            p = IPv6(src=self.ip[d], dst=self.ip[1 - d], hlim=64)
            if d == C and self.cli_ext:
                p = p / self.cli_ext()
            return p / l4
        self.ipid[d] += 1
        return IP(src=self.ip[d], dst=self.ip[1 - d], ttl=64, id=self.ipid[d]) / l4

    def count(self, d, t, ip_len, n=1):
        self.pkts[d] += n
        self.bytes[d] += ip_len
        if self.first is None:
            self.first = t
        self.last = t

    def emit(self, d, t, l4):
        ip = self.l3(d, l4)
        ipb = bytes(ip)
        self.count(d, t, len(ipb))
        self.pcap.add(t, self.encap(d, ip))
        return ip

    def expect(self):
        return {"flow": self.label, "src": "%s:%d" % (self.ip[C], self.port[C]),
                "dest": "%s:%d" % (self.ip[S], self.port[S]),
                "pkts_toserver": self.pkts[C], "pkts_toclient": self.pkts[S],
                "bytes_toserver": self.bytes[C], "bytes_toclient": self.bytes[S],
                "start": str(self.first), "end": str(self.last)}


class TcpConv(Conv):
    def __init__(self, pcap, label, cli, srv, sport, dport, **kw):
        super().__init__(pcap, label, cli, srv, "TCP", sport, dport, **kw)
        self.seq = {C: 1000000, S: 2000000}

    def seg(self, d, t, flags, data=b""):
        tcp = TCP(sport=self.port[d], dport=self.port[1 - d], flags=flags, seq=self.seq[d],
                  ack=self.seq[1 - d] if "A" in flags else 0, window=64240)
        if data:
            tcp = tcp / Raw(data)
        self.emit(d, t, tcp)
        self.seq[d] += len(data) + (1 if ("S" in flags or "F" in flags) else 0)

    def seg_at(self, d, t, flags, seq, data=b""):
        """A segment at an explicit sequence number (out of order, retransmitted,
        overlapping); self.seq is not moved."""
        tcp = TCP(sport=self.port[d], dport=self.port[1 - d], flags=flags, seq=seq,
                  ack=self.seq[1 - d] if "A" in flags else 0, window=64240)
        if data:
            tcp = tcp / Raw(data)
        self.emit(d, t, tcp)

    def handshake(self, t, rtt=Decimal("0.001")):
        self.seg(C, t, "S")
        self.seg(S, t + rtt, "SA")
        self.seg(C, t + 2 * rtt, "A")
        return t + 2 * rtt

    def fin(self, t, first=C, step=Decimal("0.001")):
        self.seg(first, t, "FA")
        self.seg(1 - first, t + step, "FA")
        self.seg(first, t + 2 * step, "A")
        return t + 2 * step


class UdpConv(Conv):
    def __init__(self, pcap, label, cli, srv, sport, dport, **kw):
        super().__init__(pcap, label, cli, srv, "UDP", sport, dport, **kw)

    def send(self, d, t, payload):
        return self.emit(d, t, UDP(sport=self.port[d], dport=self.port[1 - d]) / payload)


def ms(n):
    return Decimal(n) / 1000


# ---------------------------------------------------------------------------------------------
# application payloads

HTTP_UA = "Mozilla/5.0 (X11; Linux x86_64) FenghuoTest/1.0"


def http_get(host, url="/index.html", extra=b""):
    return (b"GET " + url + b" HTTP/1.1\r\nHost: " + host + b"\r\nUser-Agent: "
            + HTTP_UA.encode() + b"\r\nAccept: */*\r\n" + extra + b"\r\n")


HTTP_BODY = b"<html><body><h1>Fenghuo test page</h1></body></html>\n"
HTTP_200 = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: text/html\r\n"
            b"Content-Length: " + str(len(HTTP_BODY)).encode() + b"\r\nConnection: close\r\n\r\n"
            + HTTP_BODY)


def http_session(pcap, label, cli, srv, sport, dport=80, host=b"portal.example.gov.cn",
                 url=b"/index.html", extra=b"", t=BASE, **kw):
    c = TcpConv(pcap, label, cli, srv, sport, dport, **kw)
    t = c.handshake(t)
    c.seg(C, t + ms(1), "PA", http_get(host, url, extra))
    c.seg(S, t + ms(2), "A")
    c.seg(S, t + ms(5), "PA", HTTP_200)
    c.seg(C, t + ms(6), "A")
    c.fin(t + ms(10))
    return c


def dns_query(qname, qtype="A", qid=0x1A2B):
    return DNS(id=qid, rd=1, qd=DNSQR(qname=qname, qtype=qtype))


def dns_answer(qname, qtype="A", rdata="203.0.113.10", qid=0x1A2B, extra_answers=()):
    an = DNSRR(rrname=qname, type=qtype, ttl=300, rdata=rdata)
    for rr in extra_answers:
        an = an / rr
    return DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=qname, qtype=qtype), an=an)


def dns_exchange(pcap, label, cli, srv, sport, t, qname="www.example.gov.cn", qtype="A",
                 rdata="203.0.113.10", qid=0x1A2B, **kw):
    u = UdpConv(pcap, label, cli, srv, sport, 53, **kw)
    u.send(C, t, dns_query(qname, qtype, qid))
    u.send(S, t + ms(3), dns_answer(qname, qtype, rdata, qid))
    return u


# TLS 1.2 ClientHello / ServerHello, built by hand.

def _ext(etype, data):
    return struct.pack("!HH", etype, len(data)) + data


def _vec16(data):
    return struct.pack("!H", len(data)) + data


def _vec8(data):
    return struct.pack("!B", len(data)) + data


TLS_SNI = b"www.example.gov.cn"
TLS_CIPHERS = [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C,
               0x009D, 0x002F, 0x0035]
TLS_GROUPS = [0x001D, 0x0017, 0x0018]
TLS_SIGALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]


def tls_client_hello(ciphers=TLS_CIPHERS):
    sni = _vec16(b"\x00" + _vec16(TLS_SNI))
    exts = b"".join([
        _ext(0x0000, sni),                                                  # server_name
        _ext(0x0017, b""),                                                  # ext. master secret
        _ext(0xFF01, b"\x00"),                                              # renegotiation_info
        _ext(0x000A, _vec16(b"".join(struct.pack("!H", g) for g in TLS_GROUPS))),
        _ext(0x000B, _vec8(b"\x00")),                                       # ec_point_formats
        _ext(0x0023, b""),                                                  # session_ticket
        _ext(0x0010, _vec16(_vec8(b"h2") + _vec8(b"http/1.1"))),            # ALPN
        _ext(0x0005, b"\x01\x00\x00\x00\x00"),                              # status_request
        _ext(0x000D, _vec16(b"".join(struct.pack("!H", s) for s in TLS_SIGALGS))),
    ])
    body = (b"\x03\x03" + bytes(range(32))                                  # version, random
            + _vec8(bytes(range(0x40, 0x60)))                               # session id
            + _vec16(b"".join(struct.pack("!H", c) for c in ciphers))
            + _vec8(b"\x00") + _vec16(exts))
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + _vec16(hs)


def sslv2_client_hello(kinds):
    """An SSLv2-framed ClientHello offering TLS 1.0 (as OpenSSL 0.9.8 sent it): 2-byte
    header with the high bit, type 1, version, the lengths of the cipher kinds (3 bytes
    each), session id and challenge."""
    specs = b"".join(k.to_bytes(3, "big") for k in kinds)
    body = (b"\x01\x03\x01" + struct.pack("!HHH", len(specs), 0, 16) + specs
            + bytes(range(0xA0, 0xB0)))
    return struct.pack("!H", 0x8000 | len(body)) + body


def tls_server_hello():
    exts = b"".join([
        _ext(0xFF01, b"\x00"),
        _ext(0x000B, _vec8(b"\x00")),
        _ext(0x0017, b""),
        _ext(0x0010, _vec16(_vec8(b"h2"))),
    ])
    body = (b"\x03\x03" + bytes(range(0x80, 0xA0)) + _vec8(bytes(range(0x40, 0x60)))
            + struct.pack("!H", 0xC02F) + b"\x00" + _vec16(exts))
    hs = b"\x02" + struct.pack("!I", len(body))[1:] + body
    done = b"\x0e\x00\x00\x00"  # ServerHelloDone (no certificate: resumed-looking session)
    return b"\x16\x03\x03" + _vec16(hs) + b"\x16\x03\x03" + _vec16(done)


TLS_CCS = b"\x14\x03\x03\x00\x01\x01"
TLS_FINISHED = b"\x16\x03\x03" + _vec16(bytes(range(40)))
TLS_APPDATA = b"\x17\x03\x03" + _vec16(bytes((i * 7) & 0xFF for i in range(120)))


# SSH

SSH_BANNER = b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n"
SSH_KEX = ["curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,"
           "diffie-hellman-group14-sha256",
           "rsa-sha2-512,rsa-sha2-256,ssh-ed25519",
           "chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com",
           "chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com",
           "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-256",
           "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-256",
           "none,zlib@openssh.com", "none,zlib@openssh.com", "", ""]


def ssh_packet(payload):
    pad = 8 - ((5 + len(payload)) % 8)
    if pad < 4:
        pad += 8
    return struct.pack("!IB", 1 + len(payload) + pad, pad) + payload + b"\x00" * pad


def ssh_kexinit(cookie_byte, server=False):
    lists = list(SSH_KEX)
    if server:  # a server offering a shorter kex list, so HASSH and HASSHServer differ
        lists[0] = "curve25519-sha256,curve25519-sha256@libssh.org"
    p = b"\x14" + bytes([cookie_byte]) * 16
    for n in lists:
        p += struct.pack("!I", len(n)) + n.encode()
    p += b"\x00" + b"\x00\x00\x00\x00"
    return ssh_packet(p)


# ---------------------------------------------------------------------------------------------
# cases

CASES = {}


def case(fn):
    CASES[fn.__name__.replace("_", "-")] = fn
    return fn


CLI = "10.1.1.10"


@case
def http():
    p = Pcap("http")
    http_session(p, "http", CLI, "10.1.1.80", 49152)
    return p


@case
def http_basic_auth():
    p = Pcap("http-basic-auth")
    http_session(p, "http", CLI, "10.1.1.80", 49153, url=b"/admin/",
                 extra=b"Authorization: Basic YWRtaW46cGFzc3dvcmQ=\r\n")
    return p


HTTP_401 = (b"HTTP/1.1 401 Unauthorized\r\nServer: nginx/1.24.0\r\n"
            b"WWW-Authenticate: Basic realm=\"admin\"\r\nContent-Type: text/html\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n")


@case
def http_401():
    """A failed HTTP Basic login: wrong credentials, 401 Unauthorized."""
    p = Pcap("http-401")
    c = TcpConv(p, "http", CLI, "10.1.1.80", 49154, 80)
    t = c.handshake(BASE)
    c.seg(C, t + ms(1), "PA", http_get(b"portal.example.gov.cn", b"/admin/",
                                       b"Authorization: Basic YWRtaW46d3Jvbmc=\r\n"))
    c.seg(S, t + ms(3), "PA", HTTP_401)
    c.seg(C, t + ms(4), "A")
    c.fin(t + ms(10))
    return p


@case
def dns():
    p = Pcap("dns")
    dns_exchange(p, "dns-a", CLI, "10.1.1.53", 53000, BASE)
    dns_exchange(p, "dns-aaaa", CLI, "10.1.1.53", 53001, BASE + ms(100), qname="ipv6.example.gov.cn",
                 qtype="AAAA", rdata="2001:db8::10", qid=0x1A2C)
    return p


@case
def dns_messages():
    """Several DNS messages in one UDP flow (each a dns event), answers of several types,
    attacker bytes in names and TXT, a compression loop and a datagram too short for DNS."""
    p = Pcap("app/dns-messages")
    u = UdpConv(p, "dns", CLI, "10.1.1.53", 53100, 53)
    t = BASE
    u.send(C, t, dns_query("www.example.gov.cn", qid=1))
    u.send(S, t + ms(2), DNS(id=1, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.gov.cn"),
                             an=DNSRR(rrname="www.example.gov.cn", type="CNAME", ttl=60,
                                      rdata="web.example.gov.cn")
                             / DNSRR(rrname="web.example.gov.cn", type="A", ttl=300,
                                     rdata="203.0.113.10")
                             / DNSRR(rrname="web.example.gov.cn", type="A", ttl=300,
                                     rdata="203.0.113.11")))
    evil = b"x\"<script>\x01"
    u.send(C, t + ms(10), dns_query(evil + b".t.example.net", "TXT", qid=2))
    u.send(S, t + ms(12), DNS(id=2, qr=1, rd=1, ra=1,
                              qd=DNSQR(qname=evil + b".t.example.net", qtype="TXT"),
                              an=DNSRR(rrname=evil + b".t.example.net", type="TXT", ttl=5,
                                       rdata=[b'"</td><img src=x>', b"\x00\xff"])))
    u.send(C, t + ms(20), dns_query("nx.example.gov.cn", qid=3))
    u.send(S, t + ms(22), DNS(id=3, qr=1, rd=1, ra=1, rcode=3,
                              qd=DNSQR(qname="nx.example.gov.cn")))
    # a response whose answer name points at itself: a compression loop
    loop = struct.pack("!HHHHHH", 4, 0x8180, 0, 1, 0, 0) + b"\xc0\x0c" + struct.pack(
        "!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1])
    u.send(S, t + ms(30), Raw(loop))
    u.send(C, t + ms(40), Raw(b"\x00\x05abc"))
    return p


@case
def tls_sni():
    p = Pcap("tls-sni")
    c = TcpConv(p, "tls", CLI, "10.1.1.43", 49200, 443)
    t = c.handshake(BASE)
    c.seg(C, t + ms(1), "PA", tls_client_hello())
    c.seg(S, t + ms(3), "PA", tls_server_hello())
    c.seg(C, t + ms(4), "PA", TLS_CCS + TLS_FINISHED)
    c.seg(S, t + ms(6), "PA", TLS_CCS + TLS_FINISHED)
    c.seg(C, t + ms(7), "PA", TLS_APPDATA)
    c.seg(S, t + ms(9), "PA", TLS_APPDATA)
    c.fin(t + ms(20))
    return p


@case
def ssh():
    p = Pcap("ssh")
    c = TcpConv(p, "ssh", CLI, "10.1.1.22", 50022, 22)
    t = c.handshake(BASE)
    c.seg(S, t + ms(2), "PA", SSH_BANNER)
    c.seg(C, t + ms(3), "PA", SSH_BANNER)
    c.seg(C, t + ms(4), "PA", ssh_kexinit(0x11))
    c.seg(S, t + ms(5), "PA", ssh_kexinit(0x22, server=True))
    c.seg(C, t + ms(6), "PA", ssh_packet(b"\x1e" + struct.pack("!I", 32) + bytes(range(32))))
    c.seg(S, t + ms(8), "PA", ssh_packet(b"\x1f" + bytes(range(200, 256)) * 3))
    c.seg(C, t + ms(9), "PA", ssh_packet(b"\x15"))
    c.fin(t + ms(30))
    return p


TELNET_SERVER_1 = b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27"
TELNET_CLIENT_1 = b"\xff\xfb\x18\xff\xfb\x20\xff\xfb\x23\xff\xfb\x27"
TELNET_SERVER_2 = b"\xff\xfa\x18\x01\xff\xf0"
TELNET_CLIENT_2 = b"\xff\xfa\x18\x00XTERM\xff\xf0"
TELNET_SERVER_3 = b"\xff\xfb\x03\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x05\xff\xfd\x21"
TELNET_CLIENT_3 = b"\xff\xfd\x03\xff\xfc\x01\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0"


@case
def telnet():
    p = Pcap("telnet")
    c = TcpConv(p, "telnet", CLI, "10.1.1.23", 50023, 23)
    t = c.handshake(BASE)
    steps = [(S, TELNET_SERVER_1), (C, TELNET_CLIENT_1), (S, TELNET_SERVER_2),
             (C, TELNET_CLIENT_2), (S, TELNET_SERVER_3), (C, TELNET_CLIENT_3),
             (S, b"Ubuntu 22.04.3 LTS\r\nlogin: "), (C, b"operator\r\n"),
             (S, b"Password: "), (C, b"s3cret\r\n"),
             (S, b"Last login: Fri Mar  1 07:59:01 2024\r\n$ ")]
    for i, (d, data) in enumerate(steps):
        c.seg(d, t + ms(10 * (i + 1)), "PA", data)
    c.fin(t + ms(500))
    return p


def ftp_login(name, sport, reply):
    """An FTP login (USER/PASS) answered with reply, then QUIT."""
    p = Pcap(name)
    c = TcpConv(p, "ftp", CLI, "10.1.1.21", sport, 21)
    t = c.handshake(BASE)
    for d, line in ((S, b"220 FTP server ready\r\n"), (C, b"USER operator\r\n"),
                    (S, b"331 Please specify the password.\r\n"), (C, b"PASS s3cret\r\n"),
                    (S, reply), (C, b"QUIT\r\n"), (S, b"221 Goodbye.\r\n")):
        t += ms(1)
        c.seg(d, t, "PA", line)
    c.fin(t + ms(2), first=S)
    return p


@case
def ftp_login_failed():
    return ftp_login("ftp-login-failed", 49610, b"530 Login incorrect.\r\n")


@case
def ftp_login_ok():
    return ftp_login("ftp-login-ok", 49611, b"230 Login successful.\r\n")


# Failed-login cases (sensor/login.c) go to OUTDIR/login/, like payload/, so that the flat
# directory the paced Kafka tests replay keeps its size and duration.


def dialogue(c, t, steps, step=ms(1)):
    """Sends each (direction, bytes) of steps as one PSH segment, step apart; returns
    the time of the last one."""
    for d, data in steps:
        t += step
        c.seg(d, t, "PA", data)
    return t


def login_conv(p, label, srv, sport, dport, steps, t=BASE, cli=CLI):
    """A whole TCP login conversation: handshake, steps, the server closes."""
    c = TcpConv(p, label, cli, srv, sport, dport)
    t = dialogue(c, c.handshake(t), steps)
    c.fin(t + ms(2), first=S)
    return c


POP3_GREETING = (S, b"+OK Dovecot ready.\r\n")


def pop3_steps(password, reply):
    return [(C, b"USER operator\r\n"), (S, b"+OK\r\n"), (C, b"PASS " + password + b"\r\n"),
            (S, reply)]


@case
def pop3_login_failed():
    """POP3: two USER/PASS attempts answered -ERR, then an AUTH PLAIN refused: three
    failed logins in one session (login.failures 3)."""
    p = Pcap("login/pop3-login-failed")
    steps = ([POP3_GREETING] + pop3_steps(b"s3cret", b"-ERR [AUTH] Authentication failed.\r\n")
             + pop3_steps(b"Passw0rd", b"-ERR [AUTH] Authentication failed.\r\n")
             + [(C, b"AUTH PLAIN\r\n"), (S, b"+ \r\n"),
                (C, b"AG9wZXJhdG9yAHdyb25n\r\n"),
                (S, b"-ERR [AUTH] Authentication failed.\r\n"),
                (C, b"QUIT\r\n"), (S, b"+OK Logging out\r\n")])
    login_conv(p, "pop3", "10.1.1.110", 49710, 110, steps)
    return p


@case
def imap_login_failed():
    """IMAP: a LOGIN refused with a tagged NO; around it a BAD for another tag and an
    untagged line, which are no failed login (login.failed, no failures count). The
    same again on port 10143, where only nDPI's verdict names the protocol."""
    p = Pcap("login/imap-login-failed")
    steps = [(S, b"* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n"),
             (C, b"a001 CAPABILITY\r\n"),
             (S, b"* CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN\r\na001 OK Pre-login capabilities\r\n"),
             (C, b"a002 NOOP\r\n"), (S, b"a002 BAD Error in IMAP command NOOP\r\n"),
             (C, b"a003 LOGIN operator s3cret\r\n"),
             (S, b"* BAD [ALERT] Please wait\r\na003 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
             (C, b"a004 LOGOUT\r\n"), (S, b"* BYE Logging out\r\na004 OK Logout completed.\r\n")]
    login_conv(p, "imap", "10.1.1.143", 49720, 143, steps)
    login_conv(p, "imap-10143", "10.1.1.143", 49721, 10143, steps, t=BASE + ms(100))
    return p


SMTP_EHLO = [(S, b"220 mail.example.gov.cn ESMTP Postfix\r\n"),
             (C, b"EHLO client.example.gov.cn\r\n"),
             (S, b"250-mail.example.gov.cn\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")]


@case
def smtp_auth_failed():
    """SMTP AUTH LOGIN: user name and password in 334 rounds, then a multi-line 535
    (one failed login); a 550 to RCPT afterwards is no failed login."""
    p = Pcap("login/smtp-auth-failed")
    steps = SMTP_EHLO + [
        (C, b"AUTH LOGIN\r\n"), (S, b"334 VXNlcm5hbWU6\r\n"), (C, b"b3BlcmF0b3I=\r\n"),
        (S, b"334 UGFzc3dvcmQ6\r\n"), (C, b"czNjcmV0\r\n"),
        (S, b"535-5.7.8 Error: authentication failed:\r\n535 5.7.8 UGFzc3dvcmQ6\r\n"),
        (C, b"MAIL FROM:<operator@example.gov.cn>\r\n"), (S, b"250 2.1.0 Ok\r\n"),
        (C, b"RCPT TO:<x@example.net>\r\n"), (S, b"554 5.7.1 Relay access denied\r\n"),
        (C, b"QUIT\r\n"), (S, b"221 2.0.0 Bye\r\n")]
    login_conv(p, "smtp", "10.1.1.25", 49730, 25, steps)
    return p


TELNET_NEGOTIATION = [(S, TELNET_SERVER_1), (C, TELNET_CLIENT_1), (S, TELNET_SERVER_2),
                      (C, TELNET_CLIENT_2), (S, TELNET_SERVER_3), (C, TELNET_CLIENT_3)]


@case
def telnet_login_failed():
    """Telnet: a warning banner mentioning "access denied" before any prompt (no
    failure), then two passwords refused with "Login incorrect" (login.failures 2); the
    server echoes the user name one character at a time."""
    p = Pcap("login/telnet-login-failed")
    steps = list(TELNET_NEGOTIATION) + [
        (S, b"Unauthorized access denied. All sessions are logged.\r\n\r\nrouter login: ")]
    for _ in range(2):
        for ch in b"operator":
            steps += [(C, bytes([ch])), (S, bytes([ch]))]
        steps += [(C, b"\r\n"), (S, b"\r\n"), (S, b"Password: "), (C, b"wrong\r\n"),
                  (S, b"\r\n"), (S, b"\r\nLogin incorrect\r\nrouter login: ")]
    login_conv(p, "telnet", "10.1.1.23", 50024, 23, steps)
    return p


@case
def login_ok():
    """Successful logins, one flow per protocol, none with login.failed: POP3 +OK to
    PASS then -ERR to RETR; IMAP "a1 OK" to LOGIN then "a2 NO" to SELECT; SMTP 235 to
    AUTH PLAIN then 550 to RCPT; Telnet "Last login:" after the password, then shell
    output with "access denied"."""
    p = Pcap("login/login-ok")
    login_conv(p, "pop3", "10.1.1.110", 49810, 110, [POP3_GREETING] + pop3_steps(
        b"s3cret", b"+OK Logged in.\r\n") + [(C, b"RETR 99\r\n"),
                                             (S, b"-ERR There's no message 99.\r\n"),
                                             (C, b"QUIT\r\n"), (S, b"+OK Logging out.\r\n")])
    login_conv(p, "imap", "10.1.1.143", 49820, 143, [
        (S, b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\r\n"),
        (C, b"a1 LOGIN operator s3cret\r\n"), (S, b"a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        (C, b"a2 SELECT Missing\r\n"), (S, b"a2 NO Mailbox doesn't exist: Missing\r\n"),
        (C, b"a3 LOGOUT\r\n"), (S, b"* BYE Logging out\r\na3 OK Logout completed.\r\n")],
        t=BASE + ms(100))
    login_conv(p, "smtp", "10.1.1.25", 49830, 25, SMTP_EHLO + [
        (C, b"AUTH PLAIN AG9wZXJhdG9yAHMzY3JldA==\r\n"),
        (S, b"235 2.7.0 Authentication successful\r\n"),
        (C, b"MAIL FROM:<operator@example.gov.cn>\r\n"), (S, b"250 2.1.0 Ok\r\n"),
        (C, b"RCPT TO:<nobody@example.gov.cn>\r\n"),
        (S, b"550 5.1.1 <nobody@example.gov.cn>: Recipient address rejected\r\n"),
        (C, b"QUIT\r\n"), (S, b"221 2.0.0 Bye\r\n")], t=BASE + ms(200))
    login_conv(p, "telnet", "10.1.1.23", 50025, 23, list(TELNET_NEGOTIATION) + [
        (S, b"Ubuntu 22.04.3 LTS\r\nrouter login: "), (C, b"operator\r\n"),
        (S, b"operator\r\n"), (S, b"Password: "), (C, b"s3cret\r\n"),
        (S, b"\r\nLast login: Fri Mar  1 07:59:01 2024 from 10.1.1.10\r\n$ "),
        (C, b"cat /root/secret\r\n"),
        (S, b"cat /root/secret\r\ncat: /root/secret: Access denied\r\n$ "),
        (C, b"exit\r\n"), (S, b"exit\r\nlogout\r\n")], t=BASE + ms(300))
    return p


BRUTE_SRC = "45.155.205.233"
BRUTE_SESSIONS = 10


@case
def pop3_bruteforce():
    """Password guessing on POP3 from an outside address: 10 sessions 10 s apart, each
    one USER/PASS refused with -ERR (tests/e2e/test_login.py: sensor -> correlator,
    L3-09)."""
    p = Pcap("login/pop3-bruteforce")
    for i in range(BRUTE_SESSIONS):
        login_conv(p, "pop3-guess-%d" % i, "10.1.1.110", 51000 + i, 110,
                   [POP3_GREETING] + pop3_steps(b"guess%d" % i,
                                                b"-ERR [AUTH] Authentication failed.\r\n")
                   + [(C, b"QUIT\r\n"), (S, b"+OK Logging out\r\n")],
                   t=BASE + 10 * i, cli=BRUTE_SRC)
    return p


HTTP_401_KEEPALIVE = HTTP_401.replace(b"Connection: close", b"Connection: keep-alive")


@case
def http_login_failed():
    """HTTP Basic on keep-alive: a first request without credentials gets the 401
    challenge (no failure), two wrong passwords are refused with 401 (login.failures 2),
    the third is accepted with 200. A second flow only gets the challenge: no login
    field."""
    p = Pcap("login/http-login-failed")
    get = lambda auth=b"": http_get(b"portal.example.gov.cn", b"/admin/",
                                    auth and b"Authorization: Basic " + auth + b"\r\n")
    steps = [(C, get()), (S, HTTP_401_KEEPALIVE),
             (C, get(b"YWRtaW46YWRtaW4=")), (S, HTTP_401_KEEPALIVE),
             (C, get(b"YWRtaW46MTIzNDU2")), (S, HTTP_401_KEEPALIVE),
             (C, get(b"YWRtaW46cGFzc3dvcmQ=")), (S, HTTP_200)]
    login_conv(p, "http", "10.1.1.80", 49910, 80, steps)
    login_conv(p, "http-challenge", "10.1.1.80", 49911, 80, steps[:2], t=BASE + ms(100))
    return p


def smb2_header(cmd, flags):
    """A 64-byte SMB2 header ([MS-SMB2] 2.2.1.2), status 0, message id 0."""
    return (b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ", 64, 0, 0, cmd, 1, flags, 0, 0, 0xFEFF, 0, 0)
            + b"\0" * 16)


def netbios(msg):
    return struct.pack("!I", len(msg)) + msg


SMB2_DIALECTS = (0x0202, 0x0210, 0x0300, 0x0302, 0x0311)


@case
def smb2_negotiate():
    """SMB2 NEGOTIATE offering 2.0.2 .. 3.1.1, answered with 3.1.1, then a SESSION_SETUP."""
    p = Pcap("smb2-negotiate")
    c = TcpConv(p, "smb", CLI, "10.1.1.45", 49700, 445)
    t = c.handshake(BASE)
    req = (smb2_header(0, 0)
           + struct.pack("<HHHHI16sQ", 36, len(SMB2_DIALECTS), 1, 0, 0x7F, b"C" * 16, 0)
           + b"".join(struct.pack("<H", d) for d in SMB2_DIALECTS))
    rsp = (smb2_header(0, 1)
           + struct.pack("<HHHH16sIIIIQQHHI", 65, 1, 0x0311, 0, b"S" * 16, 0x2F, 8388608,
                         8388608, 8388608, 0, 0, 128, 0, 0))
    c.seg(C, t + ms(1), "PA", netbios(req))
    c.seg(S, t + ms(2), "PA", netbios(rsp))
    c.seg(C, t + ms(3), "PA", netbios(smb2_header(1, 0) + b"\x19\x00" + b"\0" * 22))
    c.fin(t + ms(5))
    return p


@case
def icmp():
    p = Pcap("icmp")
    c = Conv(p, "icmp", CLI, "10.1.1.1", "ICMP")
    c6 = Conv(p, "icmpv6", "2001:db8:1::10", "2001:db8:1::1", "IPv6-ICMP")
    payload = bytes(range(0x10, 0x40))
    for i in range(3):
        t = BASE + i
        c.emit(C, t, ICMP(type=8, code=0, id=0x1234, seq=i + 1) / payload)
        c.emit(S, t + ms(1), ICMP(type=0, code=0, id=0x1234, seq=i + 1) / payload)
        c6.emit(C, t + ms(500), ICMPv6EchoRequest(id=0x4321, seq=i + 1, data=payload))
        c6.emit(S, t + ms(501), ICMPv6EchoReply(id=0x4321, seq=i + 1, data=payload))
    return p


ELF_HEAD = (b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00\x3e\x00\x01\x00\x00\x00"
            + b"\x00" * 40)


@case
def raw_tcp_files():
    """Files that are a whole TCP stream: an ELF pushed to a server, a PE stage behind a
    4-byte length sent by the server (Metasploit's framing), and a text stream (no file)."""
    p = Pcap("app/raw-tcp-files")
    c = TcpConv(p, "raw-elf", CLI, "10.1.1.80", 49800, 33333)
    t = c.handshake(BASE)
    body = ELF_HEAD + bytes(range(256)) * 8
    c.seg(C, t + ms(1), "PA", body[:1000])
    c.seg(C, t + ms(2), "PA", body[1000:])
    c.fin(t + ms(5))
    c = TcpConv(p, "raw-pe-stage", CLI, "10.1.1.81", 49801, 4444)
    t = c.handshake(BASE + 1)
    pe = b"MZ\x90\x00" + b"\x00" * 56 + struct.pack("<I", 64) + b"PE\x00\x00" + b"\x00" * 200
    c.seg(S, t + ms(1), "PA", struct.pack("<I", len(pe)))
    c.seg(S, t + ms(2), "PA", pe)
    c.fin(t + ms(5))
    c = TcpConv(p, "raw-text", CLI, "10.1.1.82", 49802, 7000)
    t = c.handshake(BASE + 2)
    c.seg(C, t + ms(1), "PA", b"HELLO fenghuo, this is a chat line and not a file\n")
    c.fin(t + ms(5))
    return p


@case
def odd_packets():
    """Packets no correct stack sends: SYN+FIN, SYN+URG, a TCP-AO option of length 3
    (URGENT/11), an MSS option of length 5; and ping carrying a whole IPv4 packet (an ICMP
    tunnel), next to an ordinary ping whose data is not IP."""
    p = Pcap("app/odd-packets")
    c = Conv(p, "syn-fin", CLI, "10.1.1.80", "TCP", 40001, 80)
    c.emit(C, BASE, TCP(sport=40001, dport=80, flags="SF", seq=1))
    c = Conv(p, "syn-urg", CLI, "10.1.1.80", "TCP", 40002, 80)
    c.emit(C, BASE + ms(1), TCP(sport=40002, dport=80, flags="SU", seq=1, urgptr=10))
    c = Conv(p, "tcp-ao-3", CLI, "10.1.1.80", "TCP", 40003, 443)
    c.emit(C, BASE + ms(2), TCP(sport=40003, dport=443, flags="S", seq=1,
                                options=[(29, b"a")]))
    c = Conv(p, "mss-5", CLI, "10.1.1.80", "TCP", 40004, 443)
    c.emit(C, BASE + ms(3), TCP(sport=40004, dport=443, flags="S", seq=1,
                                options=[(2, b"\x05\xb4\x00")]))
    c = Conv(p, "normal-syn", CLI, "10.1.1.80", "TCP", 40005, 443)
    c.emit(C, BASE + ms(4), TCP(sport=40005, dport=443, flags="S", seq=1,
                                options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)),
                                         ("NOP", None), ("WScale", 7)]))
    inner = bytes(IP(src="10.99.0.1", dst="10.99.0.2") / UDP(sport=1, dport=2) / (b"q" * 20))
    t = Conv(p, "icmp-tunnel", CLI, "10.1.1.80", "ICMP")
    for i in range(3):
        t.emit(C, BASE + 1 + ms(i), ICMP(type=8, id=7, seq=i) / inner)
    ok = Conv(p, "ping", CLI, "10.1.1.81", "ICMP")
    ok.emit(C, BASE + 2, ICMP(type=8, id=8, seq=1) / bytes(range(0x10, 0x40)))
    return p


@case
def ftp_commands():
    """An FTP control session: USER, PASS (never written), PORT to the client itself,
    PORT to a third host (bounce), EPRT with IPv6, RETR and STOR of a file."""
    p = Pcap("app/ftp-commands")
    c = TcpConv(p, "ftp", CLI, "10.1.1.21", 49900, 21)
    t = c.handshake(BASE)
    steps = [(S, b"220 FTP ready\r\n"), (C, b"USER alice\r\n"), (S, b"331 Password\r\n"),
             (C, b"PASS s3cr3t-ftp-pw\r\n"), (S, b"230 OK\r\n"),
             (C, b"PORT 10,1,1,10,195,80\r\n"), (S, b"200 OK\r\n"),
             (C, b"RETR report.pdf\r\n"), (S, b"150 Opening\r\n"),
             (C, b"port 192,0,2,99,0,25\r\n"), (S, b"200 OK\r\n"),
             (C, b"EPRT |2|2001:db8::99|8080|\r\n"), (S, b"200 OK\r\n"),
             (C, b"STOR up load.exe\r\n"), (S, b"150 Opening\r\n"), (C, b"QUIT\r\n")]
    for i, (d, data) in enumerate(steps):
        c.seg(d, t + ms(1 + i), "PA", data)
    c.fin(t + ms(40))
    return p


FTP_NOTES = b"notes for the meeting\n" * 40
FTP_UPLOAD = bytes((i * 7) % 256 for i in range(3000))
FTP_ACTIVE = b"fetched over an active data connection\n"


@case
def ftp_data():
    """FTP data connections named by their control connection (sensor/ftp_expect.c): RETR
    notes.txt after PASV (227, port 50001), STOR upload.bin after EPSV (229, port 50002; the
    server's address is the control connection's), RETR act.txt after PORT (the server
    connects from port 20 to the client's 50003), a LIST after PASV (50004: a listing, no
    file), a connection to a port nobody announced (50005: a raw stream, no file), and RETR
    nat.txt after a 227 naming another address (a NATed server: the port 50006 is taken on
    the control connection's server)."""
    p = Pcap("app/ftp-data")
    srv = "10.1.1.21"
    c = TcpConv(p, "ftp-control", CLI, srv, 49830, 21)
    t = c.handshake(BASE)

    def say(d, data):
        nonlocal t
        t += ms(1)
        c.seg(d, t, "PA", data)

    def data_conn(label, cli, srv_ip, sport, dport, d, payload):
        nonlocal t
        x = TcpConv(p, label, cli, srv_ip, sport, dport)
        t = x.handshake(t + ms(1))
        for k in range(0, len(payload), 1400):
            t += ms(1)
            x.seg(d, t, "PA", payload[k:k + 1400])
        t = x.fin(t + ms(1), first=d)

    for d, data in [(S, b"220 FTP ready\r\n"), (C, b"USER bob\r\n"), (S, b"331 pw\r\n"),
                    (C, b"PASS pw-not-written\r\n"), (S, b"230 OK\r\n"), (C, b"TYPE I\r\n"),
                    (S, b"200 OK\r\n"), (C, b"PASV\r\n"),
                    (S, b"227 Entering Passive Mode (10,1,1,21,195,81).\r\n"),
                    (C, b"RETR notes.txt\r\n"), (S, b"150 Opening\r\n")]:
        say(d, data)
    data_conn("ftp-data-pasv", CLI, srv, 49831, 50001, S, FTP_NOTES)
    for d, data in [(S, b"226 Done\r\n"), (C, b"EPSV\r\n"),
                    (S, b"229 Entering Extended Passive Mode (|||50002|)\r\n"),
                    (C, b"STOR upload.bin\r\n"), (S, b"150 Ok to send\r\n")]:
        say(d, data)
    data_conn("ftp-data-epsv", CLI, srv, 49832, 50002, C, FTP_UPLOAD)
    for d, data in [(S, b"226 Done\r\n"), (C, b"PORT 10,1,1,10,195,83\r\n"),
                    (S, b"200 OK\r\n"), (C, b"RETR act.txt\r\n"), (S, b"150 Opening\r\n")]:
        say(d, data)
    # active: the server opens the data connection, from port 20 to the client's 50003
    data_conn("ftp-data-active", srv, CLI, 20, 50003, C, FTP_ACTIVE)
    for d, data in [(S, b"226 Done\r\n"), (C, b"PASV\r\n"),
                    (S, b"227 Entering Passive Mode (10,1,1,21,195,84)\r\n"),
                    (C, b"LIST\r\n"), (S, b"150 Here comes the listing\r\n")]:
        say(d, data)
    data_conn("ftp-data-list", CLI, srv, 49834, 50004, S,
              b"-rw-r--r-- 1 bob bob 880 Mar 1 08:00 notes.txt\r\n")
    say(S, b"226 Done\r\n")
    data_conn("not-ftp-data", CLI, srv, 49835, 50005, S, b"just some bytes\n" * 10)
    # a server behind NAT names its inner address: the port is taken on the server itself
    for d, data in [(C, b"PASV\r\n"), (S, b"227 Entering Passive Mode (192,168,77,5,195,86)\r\n"),
                    (C, b"RETR nat.txt\r\n")]:
        say(d, data)
    data_conn("ftp-data-nat", CLI, srv, 49836, 50006, S, FTP_ACTIVE)
    say(S, b"226 Done\r\n")
    say(C, b"QUIT\r\n")
    c.fin(t + ms(1))
    return p


@case
def spoofed_floods():
    """Floods inside one flow and sources no host has: 1,200 ICMPv6 echo requests to ff02::1
    in one second, 600 ICMP echo requests at one host in one second, three LAND SYNs
    (source = destination) and two UDP datagrams from a multicast source."""
    p = Pcap("app/spoofed-floods")
    m6 = Conv(p, "icmpv6-multicast-flood", "2001:db8:10::5", "ff02::1", "IPv6-ICMP")
    for i in range(1200):
        m6.emit(C, BASE + Decimal(i) / 1200, ICMPv6EchoRequest(id=0x77, seq=i, data=b"x" * 32))
    f4 = Conv(p, "icmp-flood", "10.1.1.99", "10.1.1.80", "ICMP")
    for i in range(600):
        f4.emit(C, BASE + 2 + Decimal(i) / 600, ICMP(type=8, code=0, id=0x99, seq=i) / (b"y" * 32))
    land = Conv(p, "land", "10.1.1.80", "10.1.1.80", "TCP", 80, 80)
    for i in range(3):
        land.emit(C, BASE + 4 + ms(i), TCP(sport=80, dport=80, flags="S", seq=1000))
    mc = Conv(p, "multicast-source", "224.0.0.9", "10.1.1.80", "UDP", 520, 520)
    for i in range(2):
        mc.emit(C, BASE + 5 + ms(i), UDP(sport=520, dport=520) / (b"z" * 24))
    return p


def v6_ext():
    return (IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00" * 4)])
            / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00" * 4)]))


@case
def ipv6():
    p = Pcap("ipv6")
    http_session(p, "http6", "2001:db8:1::10", "2001:db8:1::80", 49300,
                 host=b"v6.example.gov.cn", cli_ext=v6_ext)
    return p


@case
def vlan_case():
    p = Pcap("vlan")
    dns_exchange(p, "dns", CLI, "10.1.1.53", 53010, BASE, encap=vlan(100))
    return p


@case
def qinq_case():
    p = Pcap("qinq")
    dns_exchange(p, "dns", CLI, "10.1.1.53", 53011, BASE, encap=qinq(200, 300))
    return p


@case
def gre_case():
    p = Pcap("gre")
    http_session(p, "http-in-gre", "10.2.0.10", "10.2.0.80", 49400, encap=gre)
    return p


@case
def vxlan_case():
    p = Pcap("vxlan")
    dns_exchange(p, "dns-in-vxlan", "10.3.0.10", "10.3.0.53", 53020, BASE, encap=vxlan)
    return p


FRAG_NAME = "big.example.gov.cn"


def _big_answer(qid, n=40):
    extra = [DNSRR(rrname="host%02d.%s" % (i, FRAG_NAME), type="A", ttl=300,
                   rdata="198.51.100.%d" % (i + 1)) for i in range(1, n)]
    return dns_answer(FRAG_NAME, "A", "198.51.100.1", qid, extra)


@case
def fragments():
    p = Pcap("fragments")
    # IPv4: query, then a ~1.4 kB response in 3 fragments sent last, first, middle.
    u = UdpConv(p, "dns-frag4", CLI, "10.1.1.53", 53030, 53)
    u.send(C, BASE, dns_query(FRAG_NAME, qid=0x3001))
    full = IP(src="10.1.1.53", dst=CLI, ttl=64, id=0x5151) / UDP(sport=53, dport=53030) \
        / _big_answer(0x3001)
    full = IP(bytes(full))
    l4 = bytes(full[UDP])
    assert len(l4) > 1000, len(l4)
    cuts = [0, 480, 960, len(l4)]
    frags = []
    for i in range(3):
        more = 1 if i < 2 else 0
        frags.append(IP(src="10.1.1.53", dst=CLI, ttl=64, id=0x5151, proto=17, flags=more,
                        frag=cuts[i] // 8) / Raw(l4[cuts[i]:cuts[i + 1]]))
    for j, i in enumerate((2, 0, 1)):
        p.add(BASE + ms(3 + j), eth(S, frags[i]))
    u.count(S, BASE + ms(5), 20 + len(l4))
    # IPv6: query, then the response in 2 fragments (Fragment extension header).
    u6 = UdpConv(p, "dns-frag6", "2001:db8:2::10", "2001:db8:2::53", 53031, 53)
    t6 = BASE + ms(100)
    u6.send(C, t6, dns_query(FRAG_NAME, qid=0x3002))
    full6 = IPv6(src="2001:db8:2::53", dst="2001:db8:2::10", hlim=64) \
        / UDP(sport=53, dport=53031) / _big_answer(0x3002, 20)
    l46 = bytes(IPv6(bytes(full6))[UDP])
    cut = 504
    for i, (a, b, m) in enumerate(((0, cut, 1), (cut, len(l46), 0))):
        fr = (IPv6(src="2001:db8:2::53", dst="2001:db8:2::10", hlim=64)
              / IPv6ExtHdrFragment(nh=17, offset=a // 8, m=m, id=0x6161) / Raw(l46[a:b]))
        p.add(t6 + ms(3 + i), eth(S, fr))
    u6.count(S, t6 + ms(4), 40 + len(l46))
    return p


@case
def mpls_case():
    p = Pcap("mpls")
    dns_exchange(p, "dns-in-mpls", CLI, "10.1.1.53", 53040, BASE, encap=mpls([1000, 2000]))
    return p


@case
def pppoe_case():
    p = Pcap("pppoe")
    dns_exchange(p, "dns-in-pppoe", CLI, "10.1.1.53", 53050, BASE, encap=pppoe(0x0042))
    return p


@case
def linux_sll():
    p = Pcap("linux-sll", LINKTYPE_LINUX_SLL)
    dns_exchange(p, "dns", CLI, "10.1.1.53", 53060, BASE, encap=sll)
    return p


@case
def linux_sll2():
    p = Pcap("linux-sll2", LINKTYPE_LINUX_SLL2)
    dns_exchange(p, "dns", CLI, "10.1.1.53", 53061, BASE, encap=sll2)
    return p


@case
def null_loopback():
    p = Pcap("null-loopback", LINKTYPE_NULL)
    http_session(p, "http", "127.0.0.1", "127.0.0.1", 49500, dport=8080, encap=null_loop)
    return p


@case
def raw_ip_case():
    p = Pcap("raw-ip", LINKTYPE_RAW)
    dns_exchange(p, "dns", CLI, "10.1.1.53", 53070, BASE, encap=raw_ip)
    return p


@case
def malformed():
    """Five undecodable frames (one per reason) and one non-IP frame, around a valid DNS flow."""
    p = Pcap("malformed")
    ether = Ether(src=MAC[C], dst=MAC[S])
    u = UdpConv(p, "dns", CLI, "10.1.1.53", 53080, 53)
    u.send(C, BASE, dns_query("ok.example.gov.cn", qid=0x4001))
    # eth.truncated: 10 bytes, shorter than an Ethernet header
    p.add(BASE + ms(1), bytes(ether)[:10])
    # ipv4.truncated: EtherType IPv4 followed by 12 bytes of an IPv4 header
    good = IP(src=CLI, dst="10.1.1.99", ttl=64, id=7) / UDP(sport=1111, dport=2222) / (b"x" * 8)
    p.add(BASE + ms(2), bytes(Ether(src=MAC[C], dst=MAC[S], type=0x0800)) + bytes(good)[:12])
    # ipv4.bad_header_len: IHL 4 (16 bytes)
    bad_ihl = bytearray(bytes(good))
    bad_ihl[0] = 0x44
    p.add(BASE + ms(3), bytes(Ether(src=MAC[C], dst=MAC[S], type=0x0800)) + bytes(bad_ihl))
    u.send(S, BASE + ms(4), dns_answer("ok.example.gov.cn", rdata="203.0.113.20", qid=0x4001))
    # tcp.bad_offset: data offset 3 (12 bytes)
    p.add(BASE + ms(5), ether / IP(src=CLI, dst="10.1.1.80", ttl=64, id=8)
          / TCP(sport=40000, dport=80, flags="S", seq=1, dataofs=3))
    # tcp.truncated: a valid IPv4 header whose datagram holds only 10 bytes of TCP header
    tcp10 = bytes(TCP(sport=40001, dport=80, flags="S", seq=1))[:10]
    p.add(BASE + ms(6), ether / IP(src=CLI, dst="10.1.1.80", ttl=64, id=9, proto=6) / Raw(tcp10))
    # non-IP: unassigned EtherType 0x9a9a with garbage
    p.add(BASE + ms(7), bytes(Ether(src=MAC[C], dst=MAC[S], type=0x9A9A))
          + bytes(range(0xA0, 0xD0)))
    return p


# Attacker-controlled strings with quote, backslash, control bytes, a lone CR, invalid
# UTF-8 (ff, then c3 followed by a non-continuation byte) and valid Chinese UTF-8 (政务云).
ESC_HOST = b'evil"q\\b\x01c\x1bd\re\xff\xc3(-\xe6\x94\xbf\xe5\x8a\xa1\xe4\xba\x91.example.gov.cn'
ESC_URL = b'/a"b\\c\x01d\x1be\rf\xff\xc3(g/\xe6\x94\xbf\xe5\x8a\xa1\xe4\xba\x91?q=1'
ESC_UA = b'Evil"Agent\\\x01\x1b\r\xff\xe6\x94\xbf/1.0'


@case
def escaping():
    p = Pcap("escaping")
    c = TcpConv(p, "http", CLI, "10.1.1.80", 49600, 80)
    t = c.handshake(BASE)
    req = (b"GET " + ESC_URL + b" HTTP/1.1\r\nHost: " + ESC_HOST + b"\r\nUser-Agent: "
           + ESC_UA + b"\r\nAccept: */*\r\n\r\n")
    c.seg(C, t + ms(1), "PA", req)
    c.seg(S, t + ms(3), "PA", HTTP_200)
    c.seg(C, t + ms(4), "A")
    c.fin(t + ms(10))
    return p


GEO_FLOWS = [  # label, client, server, client port (UDP DNS to port 53)
    ("cn-us", "1.2.3.4", "8.8.8.8", 40001),
    ("private-gb", "10.1.2.3", "81.2.69.142", 40002),      # 10/8 is in the test DB as ZZ
    ("cn6-cloudflare6", "2001:250::1", "2400:cb00::1", 40003),
    ("doc6-doc6", "2001:db8::1", "2001:db8::2", 40004),    # both in the DB as ZZ
    ("ru-ch", "77.88.8.8", "9.9.9.9", 40005),
    ("se-us", "89.160.20.112", "104.16.1.1", 40006),
]


@case
def geoip():
    """Addresses of tests/tools/build-test-mmdb.pl's networks (see its header table)."""
    p = Pcap("geoip")
    for i, (label, cli, srv, sport) in enumerate(GEO_FLOWS):
        dns_exchange(p, label, cli, srv, sport, BASE + ms(100 * i), qid=0x5000 + i)
    return p


@case
def timeout():
    """One UDP 5-tuple used twice, 30 minutes apart: longer than any idle timeout."""
    p = Pcap("timeout")
    a = UdpConv(p, "first", CLI, "10.1.1.99", 41000, 9999)
    a.send(C, BASE, Raw(b"ping-1"))
    a.send(S, BASE + ms(10), Raw(b"pong-1"))
    b = UdpConv(p, "second", CLI, "10.1.1.99", 41000, 9999)
    b.send(C, BASE + 1800, Raw(b"ping-2"))
    b.send(S, BASE + 1800 + ms(10), Raw(b"pong-2"))
    return p


@case
def tcp_rst():
    p = Pcap("tcp-rst")
    c = TcpConv(p, "rst", CLI, "10.1.1.81", 49700, 8081)
    t = c.handshake(BASE)
    c.seg(C, t + ms(1), "PA", b"HELLO\r\n")
    c.seg(S, t + ms(2), "RA")
    return p


LONG_FLOW_TICKS = (30, 90, 150, 210, 270, 335, 395, 455, 515, 575, 640, 690)


@case
def long_flow():
    """A TCP flow of 700 s with a data exchange about every 60 s. No packet falls on 300 s,
    600 s or 635 s, so whether the update clock runs from the flow start or from the last
    update, and whether "passed" means > or >=, the updates come with the packets at 335 s
    and 640 s (and carry them: flow_maybe_update() runs after the packet is counted)."""
    p = Pcap("long-flow")
    c = TcpConv(p, "long", CLI, "10.1.1.90", 49800, 9000)
    c.handshake(BASE)
    for k, sec in enumerate(LONG_FLOW_TICKS):
        t = BASE + sec
        c.seg(C, t, "PA", b"tick %02d\n" % k)
        c.seg(S, t + ms(1), "A")
    c.fin(BASE + 700)
    return p


# ---------------------------------------------------------------------------------------------
# payload inspection (YARA): the EICAR test string, split across scrambled TCP segments

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
assert len(EICAR) == 68


def scrambled(c, d, t, data, chunk=40, skip=None):
    """Sends data from side d as chunk-byte segments in a hostile order: every piece
    but the first, last to second; then a segment overlapping pieces 1 and 2 (same
    bytes); then piece 0, which makes the stream contiguous; then retransmissions of
    pieces 0 and 2. Piece `skip` is never sent (a hole). Returns the time after it."""
    base = c.seq[d]
    pieces = [(i, data[i:i + chunk]) for i in range(0, len(data), chunk)]
    step = ms(1)
    for i, piece in reversed(pieces[1:]):
        if i // chunk != skip:
            c.seg_at(d, t, "PA", base + i, piece)
            t += step
    if len(pieces) > 2 and skip not in (1, 2):
        c.seg_at(d, t, "PA", base + chunk // 2, data[chunk // 2:chunk // 2 + chunk + 10])
        t += step
    if skip != 0:
        c.seg_at(d, t, "PA", base, pieces[0][1])
        t += step
        c.seg_at(d, t, "PA", base, pieces[0][1])
        t += step
    if len(pieces) > 2 and skip != 2:
        c.seg_at(d, t, "PA", base + 2 * chunk, pieces[2][1])
        t += step
    c.seq[d] = base + len(data)
    return t


def eicar_http(pcap, label, sport, body_prefix=b"", skip=None):
    body = body_prefix + EICAR + b"\r\n"
    resp = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.24.0\r\nContent-Type: application/octet-stream"
            b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
            + body)
    c = TcpConv(pcap, label, CLI, "10.1.1.80", sport, 80)
    t = c.handshake(BASE)
    c.seg(C, t + ms(1), "PA", http_get(b"files.example.gov.cn", b"/eicar.com"))
    t = scrambled(c, S, t + ms(2), resp, skip=skip)
    c.seg(C, t, "A")
    c.fin(t + ms(1), first=S)
    return c


@case
def yara_http():
    p = Pcap("payload/yara-http")
    eicar_http(p, "eicar-http", 49500)
    return p


@case
def yara_ftp():
    """Passive FTP: the control connection asks for eicar.com, the server sends it on
    the data connection (the client connects to 10.1.1.21:50021)."""
    p = Pcap("payload/yara-ftp")
    ctl = TcpConv(p, "ftp-control", CLI, "10.1.1.21", 49510, 21)
    t = ctl.handshake(BASE)
    for d, line in ((S, b"220 FTP server ready\r\n"), (C, b"USER anonymous\r\n"),
                    (S, b"331 Please specify the password.\r\n"), (C, b"PASS guest@\r\n"),
                    (S, b"230 Login successful.\r\n"), (C, b"TYPE I\r\n"),
                    (S, b"200 Switching to Binary mode.\r\n"), (C, b"PASV\r\n"),
                    (S, b"227 Entering Passive Mode (10,1,1,21,195,165).\r\n"),
                    (C, b"RETR eicar.com\r\n"),
                    (S, b"150 Opening BINARY mode data connection for eicar.com (68 bytes).\r\n")):
        t += ms(1)
        ctl.seg(d, t, "PA", line)
    data = TcpConv(p, "ftp-data", CLI, "10.1.1.21", 49511, 50021)
    t = data.handshake(t + ms(1))
    t = scrambled(data, S, t + ms(1), EICAR, chunk=20)
    data.fin(t + ms(1), first=S)
    ctl.seg(S, t + ms(5), "PA", b"226 Transfer complete.\r\n")
    ctl.seg(C, t + ms(6), "PA", b"QUIT\r\n")
    ctl.seg(S, t + ms(7), "PA", b"221 Goodbye.\r\n")
    ctl.fin(t + ms(8), first=S)
    return p


@case
def yara_smtp():
    """SMTP: the client sends a message whose body holds the EICAR string; the whole
    DATA part arrives in scrambled segments."""
    p = Pcap("payload/yara-smtp")
    c = TcpConv(p, "smtp", CLI, "10.1.1.25", 49520, 25)
    t = c.handshake(BASE)
    for d, line in ((S, b"220 mail.example.gov.cn ESMTP Postfix\r\n"),
                    (C, b"EHLO client.example.gov.cn\r\n"), (S, b"250 mail.example.gov.cn\r\n"),
                    (C, b"MAIL FROM:<alice@example.gov.cn>\r\n"), (S, b"250 2.1.0 Ok\r\n"),
                    (C, b"RCPT TO:<bob@example.gov.cn>\r\n"), (S, b"250 2.1.5 Ok\r\n"),
                    (C, b"DATA\r\n"), (S, b"354 End data with <CR><LF>.<CR><LF>\r\n")):
        t += ms(1)
        c.seg(d, t, "PA", line)
    msg = (b"From: alice@example.gov.cn\r\nTo: bob@example.gov.cn\r\nSubject: test file\r\n"
           b"\r\nThe test file follows.\r\n" + EICAR + b"\r\n.\r\n")
    t = scrambled(c, C, t + ms(1), msg)
    c.seg(S, t, "PA", b"250 2.0.0 Ok: queued\r\n")
    c.seg(C, t + ms(1), "PA", b"QUIT\r\n")
    c.seg(S, t + ms(2), "PA", b"221 2.0.0 Bye\r\n")
    c.fin(t + ms(3))
    return p


@case
def yara_limit():
    """The EICAR string at stream offset 1500-1700 of the server's direction: found with
    yara.max_bytes 4096, not found with 1024."""
    p = Pcap("payload/yara-limit")
    eicar_http(p, "eicar-deep", 49530, body_prefix=b"A" * 1400 + b"\r\n")
    return p


@case
def yara_gap():
    """A segment of the response before the EICAR string never arrives: the flow ends
    with a hole, the scan is of what was buffered and notes the gap."""
    p = Pcap("payload/yara-gap")
    eicar_http(p, "eicar-gap", 49540, body_prefix=b"B" * 200 + b"\r\n", skip=1)
    return p


@case
def yara_udp():
    """UDP: the string in two client datagrams and one server datagram: one event per
    direction."""
    p = Pcap("payload/yara-udp")
    u = UdpConv(p, "eicar-udp", CLI, "10.1.1.69", 41069, 6969)
    u.send(C, BASE, Raw(b"PUT eicar.com\n" + EICAR))
    u.send(C, BASE + ms(10), Raw(b"PUT eicar.com again\n" + EICAR))
    u.send(S, BASE + ms(20), Raw(b"ECHO " + EICAR))
    return p


# ARP bindings (sensor/arp.c)

GW_MAC, CLI_MAC, EVIL_MAC = "52:54:00:00:00:01", "52:54:00:00:00:10", "52:54:00:66:66:66"


@case
def arp_spoofing():
    """The gateway 10.1.1.1 answers the client; the client's own binding; a probe (sender
    0.0.0.0); the gateway again (known: nothing); then an attacker's gratuitous reply
    claiming 10.1.1.1 from its MAC, and its own address; the same address on VLAN 20 is
    another host (new)."""
    p = Pcap("app/arp-spoofing")
    bc = "ff:ff:ff:ff:ff:ff"

    def arp(t, src, dst, op, psrc, hwsrc, pdst, hwdst="00:00:00:00:00:00", vlan=None):
        f = Ether(src=src, dst=dst)
        if vlan:
            f = f / Dot1Q(vlan=vlan)
        p.add(t, f / ARP(op=op, psrc=psrc, hwsrc=hwsrc, pdst=pdst, hwdst=hwdst))

    arp(BASE, CLI_MAC, bc, 1, CLI, CLI_MAC, "10.1.1.1")
    arp(BASE + ms(1), GW_MAC, CLI_MAC, 2, "10.1.1.1", GW_MAC, CLI, CLI_MAC)
    arp(BASE + ms(2), CLI_MAC, bc, 1, "0.0.0.0", CLI_MAC, "10.1.1.99")
    arp(BASE + ms(3), GW_MAC, CLI_MAC, 2, "10.1.1.1", GW_MAC, CLI, CLI_MAC)
    arp(BASE + ms(10), EVIL_MAC, bc, 2, "10.1.1.1", EVIL_MAC, "10.1.1.1", bc)
    arp(BASE + ms(11), EVIL_MAC, bc, 1, "10.1.1.66", EVIL_MAC, "10.1.1.66")
    arp(BASE + ms(12), GW_MAC, bc, 2, "10.1.1.1", GW_MAC, "10.1.1.1", bc, vlan=20)
    return p


@case
def rogue_router():
    """IPv6 router advertisements: the router fe80::1 offers 2001:db8:10::/64 (lifetime
    1800), repeats itself (nothing new), then a forger sends from fe80::1 with its own MAC
    and lifetime 0 (kill_router6); the router answers again."""
    p = Pcap("app/rogue-router")
    r_mac, f_mac = "52:54:00:00:00:01", "52:54:00:66:66:66"

    def ra(t, mac, lifetime, prefix=True):
        pkt = (Ether(src=mac, dst="33:33:00:00:00:01")
               / IPv6(src="fe80::1", dst="ff02::1", hlim=255)
               / ICMPv6ND_RA(routerlifetime=lifetime, chlim=64, M=0, O=1)
               / ICMPv6NDOptSrcLLAddr(lladdr=mac))
        if prefix:
            pkt = pkt / ICMPv6NDOptPrefixInfo(prefix="2001:db8:10::", prefixlen=64)
        p.add(t, pkt)

    ra(BASE, r_mac, 1800)
    ra(BASE + ms(100), r_mac, 1800)
    ra(BASE + ms(200), f_mac, 0, prefix=False)
    ra(BASE + ms(300), r_mac, 1800)
    return p


# SMB2 and DCE-RPC (sensor/smb.c)

def _smb2(cmd, body, msg_id, tree_id=0, response=False, status=0):
    hdr = (b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 1, status, cmd, 1,
                                     1 if response else 0, 0, msg_id, 0, tree_id, 0x1234,
                                     bytes(16)))
    return hdr + body


def _nbss(msg):
    return b"\x00" + struct.pack(">I", len(msg))[1:] + msg


def _u16le(text):
    return text.encode("utf-16-le")


SVCCTL_UUID = bytes.fromhex("81bb7a36449 8f135ad3298f038001003".replace(" ", ""))
ATSVC_UUID = bytes.fromhex("8206f71f510ae830076d740be8cee98b")
NDR_UUID = bytes.fromhex("045d888aeb1cc9119fe808002b104860")


def _rpc_bind(uuid, version=2, ctx_id=0):
    ctx = (struct.pack("<HBB", ctx_id, 1, 0) + uuid + struct.pack("<HH", version, 0)
           + NDR_UUID + struct.pack("<I", 2))
    body = struct.pack("<HHIB3s", 4280, 4280, 0, 1, b"\x00\x00\x00") + ctx
    return struct.pack("<BBBB4sHHI", 5, 0, 11, 3, b"\x10\x00\x00\x00", 16 + len(body), 0,
                       2) + body


def _rpc_request(opnum, stub, ctx_id=0):
    body = struct.pack("<IHH", len(stub), ctx_id, opnum) + stub
    return struct.pack("<BBBB4sHHI", 5, 0, 0, 3, b"\x10\x00\x00\x00", 16 + len(body), 0,
                       3) + body


@case
def smb_lateral():
    """Lateral movement in two flows: over SMB2, a TREE_CONNECT to \\\\db01\\ADMIN$
    (answered TreeId 5), a CREATE of PSEXESVC.exe there, a CREATE of a log file there
    (not an executable: still an smb event), the svcctl pipe opened on IPC$ (no event: not
    an admin share) and a bind to svcctl through a pipe IOCTL, then CreateServiceW (opnum 12)
    through a WRITE, twice (one event); over plain TCP to port 49155, a bind to atsvc and a
    JobAdd."""
    p = Pcap("app/smb-lateral")
    c = TcpConv(p, "smb", CLI, "10.1.1.30", 49800, 445)
    t = c.handshake(BASE)
    path = _u16le("\\\\db01\\ADMIN$")
    tree = struct.pack("<HHHH", 9, 0, 64 + 8, len(path)) + path
    c.seg(C, t + ms(1), "PA", _nbss(_smb2(3, tree, 10)))
    c.seg(S, t + ms(2), "PA", _nbss(_smb2(3, struct.pack("<HBBIII", 16, 1, 0, 0, 0, 0), 10,
                                          tree_id=5, response=True)))

    def create(name, msg_id, tree_id):
        n = _u16le(name)
        body = (struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x80, 0, 7, 1, 0, 64 + 56,
                            len(n), 0, 0) + n)
        return _nbss(_smb2(5, body, msg_id, tree_id=tree_id))

    c.seg(C, t + ms(3), "PA", create("PSEXESVC.exe", 11, 5))
    c.seg(C, t + ms(4), "PA", create("logs\\app.txt", 12, 5))
    c.seg(C, t + ms(5), "PA", create("svcctl", 13, 1))
    bind = _rpc_bind(SVCCTL_UUID)
    ioctl = struct.pack("<HHI16sIIIIIIII", 57, 0, 0x0011C017, bytes(16), 64 + 56, len(bind),
                        0, 0, 0, 1024, 1, 0) + bind
    # the IOCTL and the WRITE split across segments inside the NetBIOS framing
    msg = _nbss(_smb2(11, ioctl, 14, tree_id=1))
    c.seg(C, t + ms(6), "PA", msg[:30])
    c.seg(C, t + ms(7), "PA", msg[30:])
    req = _rpc_request(12, bytes(64))
    write = struct.pack("<HHIQ16sIIHHI", 49, 64 + 48, len(req), 0, bytes(16), 0, 0, 0, 0,
                        0) + req
    c.seg(C, t + ms(8), "PA", _nbss(_smb2(9, write, 15, tree_id=1)) * 2)
    c.fin(t + ms(20))
    r = TcpConv(p, "dcerpc-tcp", CLI, "10.1.1.30", 49801, 49155)
    t = r.handshake(BASE + ms(50))
    r.seg(C, t + ms(1), "PA", _rpc_bind(ATSVC_UUID, version=1))
    r.seg(C, t + ms(3), "PA", _rpc_request(0, bytes(40)))
    r.fin(t + ms(10))
    return p


def smb_file_bytes(name, size):
    """The content of a crafted SMB file: its name then a counter pattern (deterministic;
    tests/e2e/test_app_parsers.py recomputes it for the SHA-256)."""
    data = name.encode() + b"\n" + bytes(i % 251 for i in range(size))
    return data[:size]


SMB_WRITTEN = EICAR + b"\r\n" + smb_file_bytes("report", 3000 - len(EICAR) - 2)
SMB_READ = smb_file_bytes("data", 9192)


@case
def smb_files():
    """Files over SMB2 (sensor/smb.c, smb_files.c), one flow to \\\\fs01\\share (TreeId 7)
    and IPC$ (TreeId 1):
    - docs\\report.exe written in two WRITEs (1500 bytes each, the first split over two
      segments), starting with the EICAR string, then closed: CLOSED, to_server;
    - data.bin read with three READs outstanding (0, 4096, 8192) answered out of order
      (4096, 8192, 0), then closed: CLOSED, to_client, the bytes in file order;
    - gappy.txt written at 0 and at 500 (100 bytes each): TRUNCATED, gaps, no hash;
    - a WRITE to a FileId never created: nothing;
    - srvsvc opened on IPC$ and written: a pipe, no file;
    - big.iso read from 8192 on in 17 reads of 64 KiB while the read of its first 8 KiB is
      answered only after them: 1 MiB is held waiting for those bytes, then they are a gap
      (smb_files.c's SMB_REORDER_MAX) and come too late: TRUNCATED, gaps, 17 x 64 KiB;
    - open.txt written and never closed: TRUNCATED at the flow's end, with its hash."""
    p = Pcap("app/smb-files")
    c = TcpConv(p, "smb-files", CLI, "10.1.1.31", 49810, 445)
    t = c.handshake(BASE)
    msgs = []

    def tree(path, msg_id, tree_id):
        u = _u16le(path)
        msgs.append((C, _nbss(_smb2(3, struct.pack("<HHHH", 9, 0, 64 + 8, len(u)) + u,
                                    msg_id))))
        msgs.append((S, _nbss(_smb2(3, struct.pack("<HBBIII", 16, 1, 0, 0, 0, 0), msg_id,
                                    tree_id=tree_id, response=True))))

    def create(name, msg_id, tree_id, fid):
        n = _u16le(name)
        body = (struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x80, 0, 7, 1, 0, 64 + 56,
                            len(n), 0, 0) + n)
        msgs.append((C, _nbss(_smb2(5, body, msg_id, tree_id=tree_id))))
        resp = struct.pack("<HBBIQQQQQQII16sII", 89, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0, fid,
                           0, 0)
        msgs.append((S, _nbss(_smb2(5, resp, msg_id, tree_id=tree_id, response=True))))

    def write(fid, offset, data, msg_id, tree_id=7):
        body = struct.pack("<HHIQ16sIIHHI", 49, 64 + 48, len(data), offset, fid, 0, 0, 0, 0,
                           0) + data
        return _nbss(_smb2(9, body, msg_id, tree_id=tree_id))

    def read_req(fid, offset, length, msg_id):
        body = struct.pack("<HBBIQ16sIIIHHB", 49, 0, 0, length, offset, fid, 0, 0, 0, 0, 0, 0)
        return _nbss(_smb2(8, body, msg_id, tree_id=7))

    def read_resp(data, msg_id):
        body = struct.pack("<HBBIII", 17, 80, 0, len(data), 0, 0) + data
        return _nbss(_smb2(8, body, msg_id, tree_id=7, response=True))

    def close(fid, msg_id):
        return _nbss(_smb2(6, struct.pack("<HHI16s", 24, 0, 0, fid), msg_id, tree_id=7))

    tree("\\\\fs01\\share", 10, 7)
    tree("\\\\fs01\\IPC$", 11, 1)
    fid_w, fid_r, fid_g, fid_o, fid_p = (bytes([k]) * 16 for k in (0xa1, 0xb2, 0xc3, 0xd4, 0xe5))
    create("docs\\report.exe", 20, 7, fid_w)
    w1 = write(fid_w, 0, SMB_WRITTEN[:1500], 21)
    msgs.append((C, w1[:700]))
    msgs.append((C, w1[700:]))
    msgs.append((C, write(fid_w, 1500, SMB_WRITTEN[1500:], 22)))
    msgs.append((C, close(fid_w, 23)))
    create("data.bin", 30, 7, fid_r)
    msgs.append((C, read_req(fid_r, 0, 4096, 31) + read_req(fid_r, 4096, 4096, 32)
                 + read_req(fid_r, 8192, 4096, 33)))
    msgs.append((S, read_resp(SMB_READ[4096:8192], 32)))
    msgs.append((S, read_resp(SMB_READ[8192:], 33)))
    msgs.append((S, read_resp(SMB_READ[:4096], 31)))
    msgs.append((C, close(fid_r, 34)))
    create("gappy.txt", 40, 7, fid_g)
    msgs.append((C, write(fid_g, 0, b"g" * 100, 41) + write(fid_g, 500, b"h" * 100, 42)))
    msgs.append((C, close(fid_g, 43)))
    msgs.append((C, write(bytes(16), 0, b"no such file", 44)))
    create("srvsvc", 50, 1, fid_p)
    msgs.append((C, write(fid_p, 0, _rpc_bind(SVCCTL_UUID), 51, tree_id=1)))
    fid_b = bytes([0xf6]) * 16
    create("big.iso", 70, 7, fid_b)
    msgs.append((C, read_req(fid_b, 0, 8192, 71)))  # answered last, too late
    for k in range(17):  # one at a time, in one pending slot (MessageId % 16 == 1)
        chunk = bytes([k]) * 65536
        msgs.append((C, read_req(fid_b, 8192 + k * 65536, 65536, 97 + 16 * k)))
        msgs.append((S, read_resp(chunk, 97 + 16 * k)))
    msgs.append((S, read_resp(bytes(8192), 71)))
    msgs.append((C, close(fid_b, 90)))
    create("open.txt", 60, 7, fid_o)
    msgs.append((C, write(fid_o, 0, b"still open\n" * 5, 61)))
    for i, (d, m) in enumerate(msgs):
        # large messages go in MSS-sized segments, as a real stack sends them
        for k in range(0, len(m), 1460):
            c.seg(d, t + ms(1 + i), "PA", m[k:k + 1460])
    c.fin(t + ms(100))
    return p


def _compound(*cmds):
    """SMB2 commands chained in one message: each but the last padded to 8 bytes and
    pointing at the next (NextCommand, header offset 20)."""
    out = b""
    for i, c in enumerate(cmds):
        if i + 1 < len(cmds):
            c = c + bytes(-len(c) % 8)
            c = c[:20] + struct.pack("<I", len(c)) + c[24:]
        out += c
    return out


def _related(cmd):
    """The command with SMB2_FLAGS_RELATED_OPERATIONS set (header offset 16)."""
    flags = struct.unpack("<I", cmd[16:20])[0] | 4
    return cmd[:16] + struct.pack("<I", flags) + cmd[20:]


SMB_DROPPED = EICAR + b"\r\n" + smb_file_bytes("dropper", 3000 - len(EICAR) - 2)
SMB_PARTS = (b"p" * 3000, smb_file_bytes("parts", 5000))
SMB_RELATED_READ = smb_file_bytes("related", 4096)
SMB_READ_CLOSED = smb_file_bytes("read-and-close", 3000)


@case
def smb_compound():
    """Files in SMB2 compound messages (sensor/smb.c, NextCommand), to \\\\fs01\\ADMIN$:
    - PSEXESVC.exe: CREATE + related WRITE (FileId 0xff..ff, the CREATE's file) + related
      CLOSE in one message, the server's compound answer after it: CLOSED, to_server,
      3000 bytes starting with the EICAR string;
    - parts.txt: created alone, then WRITE + WRITE + CLOSE in one message, the second
      WRITE's header 3,112 bytes into the message (past what a message keeps, SMB_PEEK):
      CLOSED, to_server, both writes' 8,000 bytes;
    - related.bin: CREATE + related READ in one message, the answer's compound with the
      CREATE response (the real FileId) and the data, then a CLOSE by that FileId: CLOSED,
      to_client, 4096 bytes;
    - closed.bin: CREATE + related READ + related CLOSE in one message, so the CLOSE comes
      before the data it waits for (then an interim STATUS_PENDING answer to the READ,
      the real one with the data, the CLOSE's): CLOSED, to_client, 3000 bytes."""
    p = Pcap("app/smb-compound")
    c = TcpConv(p, "smb-compound", CLI, "10.1.1.32", 49820, 445)
    t = c.handshake(BASE)
    ones = b"\xff" * 16
    msgs = []

    def create(name, msg_id):
        n = _u16le(name)
        body = (struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x80, 0, 7, 1, 0, 64 + 56,
                            len(n), 0, 0) + n)
        return _smb2(5, body, msg_id, tree_id=9)

    def create_resp(fid, msg_id):
        body = struct.pack("<HBBIQQQQQQII16sII", 89, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0, fid,
                           0, 0)
        return _smb2(5, body, msg_id, tree_id=9, response=True)

    def write(fid, offset, data, msg_id):
        return _smb2(9, struct.pack("<HHIQ16sIIHHI", 49, 64 + 48, len(data), offset, fid, 0, 0,
                                    0, 0, 0) + data, msg_id, tree_id=9)

    def write_resp(n, msg_id):
        return _smb2(9, struct.pack("<HHIIHH", 17, 0, n, 0, 0, 0), msg_id, tree_id=9,
                     response=True)

    def close(fid, msg_id):
        return _smb2(6, struct.pack("<HHI16s", 24, 0, 0, fid), msg_id, tree_id=9)

    def close_resp(msg_id):
        return _smb2(6, struct.pack("<HHI", 60, 0, 0) + bytes(52), msg_id, tree_id=9,
                     response=True)

    u = _u16le("\\\\fs01\\ADMIN$")
    msgs.append((C, _nbss(_smb2(3, struct.pack("<HHHH", 9, 0, 64 + 8, len(u)) + u, 10))))
    msgs.append((S, _nbss(_smb2(3, struct.pack("<HBBIII", 16, 1, 0, 0, 0, 0), 10, tree_id=9,
                                response=True))))
    fid_x, fid_p, fid_r = (bytes([k]) * 16 for k in (0x11, 0x22, 0x33))
    msgs.append((C, _nbss(_compound(create("PSEXESVC.exe", 20),
                                    _related(write(ones, 0, SMB_DROPPED, 21)),
                                    _related(close(ones, 22))))))
    msgs.append((S, _nbss(_compound(create_resp(fid_x, 20), write_resp(3000, 21),
                                    close_resp(22)))))
    msgs.append((C, _nbss(create("parts.txt", 30))))
    msgs.append((S, _nbss(create_resp(fid_p, 30))))
    msgs.append((C, _nbss(_compound(write(fid_p, 0, SMB_PARTS[0], 31),
                                    write(fid_p, len(SMB_PARTS[0]), SMB_PARTS[1], 32),
                                    close(fid_p, 33)))))
    msgs.append((C, _nbss(_compound(create("related.bin", 40),
                                    _related(_smb2(8, struct.pack(
                                        "<HBBIQ16sIIIHHB", 49, 0, 0, 4096, 0, ones, 0, 0, 0,
                                        0, 0, 0), 41, tree_id=9))))))
    msgs.append((S, _nbss(_compound(create_resp(fid_r, 40), _smb2(8, struct.pack(
        "<HBBIII", 17, 80, 0, 4096, 0, 0) + SMB_RELATED_READ, 41, tree_id=9, response=True)))))
    msgs.append((C, _nbss(close(fid_r, 42))))
    fid_c = bytes([0x44]) * 16
    msgs.append((C, _nbss(_compound(create("closed.bin", 50),
                                    _related(_smb2(8, struct.pack(
                                        "<HBBIQ16sIIIHHB", 49, 0, 0, 4096, 0, ones, 0, 0, 0,
                                        0, 0, 0), 51, tree_id=9)),
                                    _related(close(ones, 52))))))
    msgs.append((S, _nbss(_compound(create_resp(fid_c, 50),
                                    _smb2(8, struct.pack("<HBB", 9, 0, 0) + bytes(6), 51,
                                          tree_id=9, response=True, status=0x103)))))
    msgs.append((S, _nbss(_compound(_smb2(8, struct.pack("<HBBIII", 17, 80, 0, 3000, 0, 0)
                                          + SMB_READ_CLOSED, 51, tree_id=9, response=True),
                                    close_resp(52)))))
    for i, (d, m) in enumerate(msgs):
        for k in range(0, len(m), 1460):
            c.seg(d, t + ms(1 + i), "PA", m[k:k + 1460])
    c.fin(t + ms(100))
    return p


# SMTP messages and their attachments (sensor/smtp.c, mime.c)

SMTP_PE = b"MZ\x90\x00" + b"\x00" * 56 + b"PE\x00\x00" + b"\x00" * 100 + EICAR + b"\x00" * 50
SMTP_PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"
SMTP_DOTS = b"line one\r\n.line that starts with a dot\r\n..two dots\r\n.\r\nlast\r\n"
SMTP_INNER = b"quarterly numbers: 100%"  # its CRLF belongs to the boundary after it
SMTP_NOTES = b"notes sent with BDAT"  # its CRLF belongs to the closing boundary


def _b64_lines(data):
    import base64
    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))


def _smtp_stuff(msg):
    """SMTP transparency (RFC 5321 4.5.2): a line that starts with '.' gets one more."""
    return b"\r\n".join((b"." + l) if l.startswith(b".") else l for l in msg.split(b"\r\n"))


def smtp_message_1():
    return (b"From: =?UTF-8?B?5byg5LiJ?= <alice@example.cn>\r\n"
            b"To: bob@gov.example.cn, Carol <carol@gov.example.cn>\r\n"
            b"Subject: =?UTF-8?B?5pyI5bqm5oql5ZGK?=\r\n"
            b"Message-ID: <m1@example.cn>\r\nX-Mailer: Foxmail 7.2\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            b"preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Please see the attachments.\r\n"
            b"--b1\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n"
            + _b64_lines(SMTP_PDF) + b"\r\n"
            b"--b1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"update.exe\"\r\n\r\n"
            + _b64_lines(SMTP_PE) + b"\r\n"
            b"--b1\r\nContent-Type: text/plain; name=\"dots.txt\"\r\n"
            b"Content-Disposition: attachment\r\n\r\n"
            + SMTP_DOTS +
            b"\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n"
            b"From: dave@example.cn\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b2\"\r\n\r\n"
            b"--b2\r\nContent-Type: text/plain\r\n\r\ninner body\r\n"
            b"--b2\r\nContent-Type: text/plain; name=\"inner.txt\"\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n"
            b"Content-Disposition: attachment; filename=\"inner.txt\"\r\n\r\n"
            b"quarterly numbers: 100=25\r\n"
            b"--b2--\r\n"
            b"\r\n--b1--\r\n")


def smtp_message_hostile():
    return (b"From: <mallory@example.net>\r\nTo: <bob@gov.example.cn>\r\n"
            b"Subject: <img src=x onerror=alert(1)> \"quoted\" \x01\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n"
            b"--x\r\nContent-Type: application/javascript\r\n"
            b"Content-Disposition: attachment; filename=\"\\\"><script>x</script>.js\"\r\n\r\n"
            b"var a = 1;\r\n--x--\r\n")


def smtp_message_bomb(depth=300):
    parts = [b"From: <x@example.net>\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"]
    for i in range(depth):
        parts.append(b"Content-Type: multipart/mixed; boundary=\"n%d\"\r\n\r\n--n%d\r\n"
                     % (i, i))
    parts.append(b"Content-Type: text/plain; name=\"deep.txt\"\r\n\r\ndeep\r\n")
    return b"".join(parts)


@case
def smtp_messages():
    """SMTP (sensor/smtp.c, mime.c). Session 1 (port 25): EHLO, a message by DATA to two
    recipients with a UTF-8 encoded From and Subject, a PDF and a PE (the EICAR string
    inside, base64: only the decoded attachment shows it), a text attachment with lines
    that start with a dot (stuffed on the wire), and an attached message with a
    quoted-printable attachment; then a second message in two BDAT chunks with one
    attachment. Session 2 (port 587): a message with a hostile subject and file name, then
    a message nesting 300 multiparts and one of 5,000 parts (neither read: TOO_COMPLEX).
    Session 3 (port 25): STARTTLS,
    then bytes that would read as a message: nothing after STARTTLS is parsed."""
    p = Pcap("app/smtp-messages")
    c = TcpConv(p, "smtp", CLI, "10.1.1.25", 49820, 25)
    t = c.handshake(BASE)
    steps = [
        (S, b"220 mx.gov.example.cn ESMTP\r\n"),
        (C, b"EHLO client.example.cn\r\n"),
        (S, b"250-mx.gov.example.cn\r\n250 CHUNKING\r\n"),
        (C, b"MAIL FROM:<alice@example.cn> SIZE=4096\r\n"),
        (S, b"250 OK\r\n"),
        (C, b"RCPT TO:<bob@gov.example.cn>\r\n"),
        (S, b"250 OK\r\n"),
        (C, b"RCPT TO:<carol@gov.example.cn>\r\n"),
        (S, b"250 OK\r\n"),
        (C, b"DATA\r\n"),
        (S, b"354 go ahead\r\n"),
    ]
    wire = _smtp_stuff(smtp_message_1()) + b"\r\n.\r\n"
    for k in range(0, len(wire), 700):
        steps.append((C, wire[k:k + 700]))
    second = (b"From: <alice@example.cn>\r\nSubject: chunked\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=\"c\"\r\n\r\n"
              b"--c\r\nContent-Type: text/plain; name=\"notes.txt\"\r\n\r\n" + SMTP_NOTES
              + b"\r\n--c--\r\n")
    steps += [
        (S, b"250 queued\r\n"),
        (C, b"MAIL FROM:<alice@example.cn>\r\n"),
        (C, b"RCPT TO:<dave@gov.example.cn>\r\n"),
        (C, b"BDAT 60\r\n" + second[:60]),
        (C, b"BDAT %d LAST\r\n" % (len(second) - 60) + second[60:]),
        (S, b"250 OK\r\n"),
        (C, b"QUIT\r\n"),
        (S, b"221 bye\r\n"),
    ]
    for i, (d, data) in enumerate(steps):
        c.seg(d, t + ms(1 + i), "PA", data)
    c.fin(t + ms(100))

    h = TcpConv(p, "smtp-hostile", CLI, "10.1.1.25", 49821, 587)
    t = h.handshake(BASE + ms(200))
    steps = [(S, b"220 mx ESMTP\r\n"), (C, b"EHLO x\r\n"),
             (C, b"MAIL FROM:<mallory@example.net>\r\n"), (C, b"RCPT TO:<bob@gov.example.cn>\r\n"),
             (C, b"DATA\r\n"), (C, _smtp_stuff(smtp_message_hostile()) + b"\r\n.\r\n"),
             (C, b"MAIL FROM:<x@example.net>\r\n"), (C, b"RCPT TO:<bob@gov.example.cn>\r\n"),
             (C, b"DATA\r\n")]
    bomb = smtp_message_bomb() + b"\r\n.\r\n"
    for k in range(0, len(bomb), 1400):
        steps.append((C, bomb[k:k + 1400]))
    # 5,000 parts in one multipart: a part object each in GMime
    wide = (b"From: <x@example.net>\r\nSubject: wide\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"w\"\r\n\r\n"
            + b"--w\r\n\r\nx\r\n" * 5000 + b"--w--\r\n\r\n.\r\n")
    steps += [(C, b"MAIL FROM:<x@example.net>\r\n"), (C, b"RCPT TO:<bob@gov.example.cn>\r\n"),
              (C, b"DATA\r\n")]
    for k in range(0, len(wide), 1400):
        steps.append((C, wide[k:k + 1400]))
    steps.append((C, b"QUIT\r\n"))
    for i, (d, data) in enumerate(steps):
        h.seg(d, t + ms(1 + i), "PA", data)
    h.fin(t + ms(100))

    x = TcpConv(p, "smtp-starttls", CLI, "10.1.1.25", 49822, 25)
    t = x.handshake(BASE + ms(400))
    for i, (d, data) in enumerate([(S, b"220 mx ESMTP\r\n"), (C, b"EHLO y\r\n"),
                                   (C, b"STARTTLS\r\n"), (S, b"220 ready\r\n"),
                                   (C, b"MAIL FROM:<z@example.net>\r\nDATA\r\n"
                                       b"Content-Type: text/plain; name=\"t.txt\"\r\n\r\nx\r\n.\r\n")]):
        x.seg(d, t + ms(1 + i), "PA", data)
    x.fin(t + ms(50))
    return p


# TLS record layer (sensor/tls_records.c). Application-parser cases go to OUTDIR/app/.

@case
def tls_anomalies():
    """Seven TLS conversations: a heartbeat request declaring 16384 bytes in a 3-byte
    record, sent before the handshake ends, and a 16403-byte heartbeat answer (Heartbleed);
    a server choosing SSL 3.0; a second handshake after the client's Finished
    (renegotiation); a stream that stops being TLS records; a client hello in SSLv2
    framing offering export kinds; a TLS hello offering an export suite; an SSLv2-framed
    hello offering strong suites only."""
    p = Pcap("app/tls-anomalies")
    srv = "10.1.1.43"
    hello = tls_client_hello()
    c = TcpConv(p, "heartbleed", CLI, srv, 49700, 443)
    t = c.handshake(BASE)
    c.seg(C, t + ms(1), "PA", hello[:7])   # the ClientHello split inside its header
    c.seg(C, t + ms(2), "PA", hello[7:])
    c.seg(S, t + ms(3), "PA", tls_server_hello())
    c.seg(C, t + ms(4), "PA", b"\x18\x03\x03\x00\x03\x01\x40\x00")
    leak = b"\x02\x40\x00" + bytes(16384) + bytes(16)
    c.seg(S, t + ms(5), "PA", b"\x18\x03\x03" + _vec16(leak)[:2] + leak[:1400])
    c.seg(S, t + ms(6), "PA", leak[1400:])
    c.fin(t + ms(10))
    _hello_conv(p, "sslv3", srv, 49701, BASE + ms(20), hello, _server_hello_version(b"\x03\x00"))
    c = TcpConv(p, "renegotiation", CLI, srv, 49702, 443)
    t = c.handshake(BASE + ms(40))
    c.seg(C, t + ms(1), "PA", hello)
    c.seg(S, t + ms(3), "PA", tls_server_hello())
    c.seg(C, t + ms(4), "PA", TLS_CCS + TLS_FINISHED)
    c.seg(S, t + ms(6), "PA", TLS_CCS + TLS_FINISHED)
    c.seg(C, t + ms(7), "PA", TLS_APPDATA)
    c.seg(C, t + ms(8), "PA", TLS_FINISHED)   # an encrypted ClientHello: a new handshake
    c.fin(t + ms(20))
    _hello_conv(p, "not-tls", srv, 49703, BASE + ms(60), hello,
                b"HTTP/1.1 400 Bad Request\r\n\r\n")
    # an SSLv2-framed hello offering export kinds, answered in TLS 1.0: the client's
    # anomalies only (the session is not SSLv2)
    _hello_conv(p, "sslv2-hello", srv, 49704, BASE + ms(80), sslv2_client_hello(TLS_V2_KINDS),
                _server_hello_version(b"\x03\x01"))
    # a TLS hello offering one export suite (TLS_RSA_EXPORT_WITH_RC4_40_MD5) last
    _hello_conv(p, "export", srv, 49705, BASE + ms(100),
                tls_client_hello(TLS_CIPHERS + [0x0003]), tls_server_hello())
    # an SSLv2-framed hello offering TLS suites without export ones: SSLv2 framing only
    _hello_conv(p, "sslv2-strong", srv, 49706, BASE + ms(120),
                sslv2_client_hello([0x00002F, 0x000035, 0x00000A]))
    return p


def _hello_conv(p, label, srv, sport, t0, client, server=None):
    """A TLS conversation of one client segment and at most one server segment."""
    c = TcpConv(p, label, CLI, srv, sport, 443)
    t = c.handshake(t0)
    c.seg(C, t + ms(1), "PA", client)
    if server is not None:
        c.seg(S, t + ms(3), "PA", server)
    c.fin(t + ms(10))


def _server_hello_version(version):
    """tls_server_hello() choosing another version (2 bytes)."""
    sh = bytearray(tls_server_hello())
    sh[9:11] = version
    return bytes(sh)


# SSLv2 cipher kinds of an OpenSSL 0.9.8 client: TLS suites in 3 bytes, then SSLv2's own,
# RC4_128_EXPORT40_WITH_MD5 (0x020080) among them
TLS_V2_KINDS = [0x000039, 0x000035, 0x00000A, 0x0700C0, 0x010080, 0x030080, 0x020080]


# HTTP transactions (sensor/http.c, libhtp): keep-alive, pipelining, chunked + gzip bodies

HTTP_KA_COOKIE = b"PHPSESSID=k3y5e55i0n; theme=dark"
HTTP_KA_WEBSHELL = b"<?php @eval(base64_decode($_POST['z0'])); ?>"


def _chunked(data, size):
    out = b""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def _gzip(data):
    import gzip
    return gzip.compress(data, mtime=0)


@case
def http_keepalive():
    """One keep-alive connection, three transactions: a page (with a session cookie), a
    search whose query hides SQL injection in double percent-encoding and SQL comments
    and whose response is EICAR gzip-compressed then chunked in 7-byte chunks, and a
    POST uploading a PHP webshell; then a second connection with two pipelined requests
    in one segment and their two responses in one segment."""
    p = Pcap("payload/http-keepalive")
    c = TcpConv(p, "keepalive", CLI, "10.1.1.80", 49600, 80)
    t = c.handshake(BASE)
    host = b"portal.example.gov.cn"
    c.seg(C, t + ms(1), "PA", http_get(host, b"/index.html", b"Cookie: " + HTTP_KA_COOKIE
                                       + b"\r\n"))
    body = HTTP_BODY
    c.seg(S, t + ms(2), "PA", b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
          b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    c.seg(C, t + ms(3), "PA", http_get(
        host, b"/search.php?q=1%2527%2BUNION%2F**%2FSELECT+password%2Cuser+FROM+users--"))
    gz = _chunked(_gzip(EICAR + b"\r\n"), 7)
    resp = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + gz)
    # the response in three segments, the chunk framing split anywhere
    c.seg(S, t + ms(4), "PA", resp[:50])
    c.seg(S, t + ms(5), "PA", resp[50:97])
    c.seg(S, t + ms(6), "PA", resp[97:])
    post = (b"POST /upload.php HTTP/1.1\r\nHost: " + host + b"\r\nUser-Agent: "
            + HTTP_UA.encode() + b"\r\nContent-Type: application/x-php\r\nContent-Length: "
            + str(len(HTTP_KA_WEBSHELL)).encode() + b"\r\n\r\n" + HTTP_KA_WEBSHELL)
    c.seg(C, t + ms(7), "PA", post)
    c.seg(S, t + ms(8), "PA", b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    c.fin(t + ms(10))
    q = TcpConv(p, "pipelined", CLI, "10.1.1.80", 49601, 80)
    t = q.handshake(BASE + ms(20))
    q.seg(C, t + ms(1), "PA", http_get(host, b"/a.css") + http_get(host, b"/b.js"))
    r = b"HTTP/1.1 200 OK\r\nContent-Type: text/css\r\nContent-Length: 4\r\n\r\nbody"
    q.seg(S, t + ms(2), "PA", r + r.replace(b"text/css", b"text/javascript"))
    q.fin(t + ms(5))
    return p


HTTP_UTF16_XML = ('<?xml version="1.0" encoding="UTF-16"?>\r\n'
                  '<dept name="政务云">整改</dept>\r\n')
HTTP_UTF16_HTML = "<!DOCTYPE html>\n<html><body><p>烽火 test page</p></body></html>\n"


def http_type_bodies():
    """(url, declared type, body) of http_file_types, in order."""
    return [
        (b"/le.xml", b"text/xml", b"\xff\xfe" + HTTP_UTF16_XML.encode("utf-16-le")),
        (b"/be.html", b"text/html; charset=utf-16",
         b"\xfe\xff" + HTTP_UTF16_HTML.encode("utf-16-be")),
        # a control character (BEL): not the text it claims to be
        (b"/bell.txt", b"text/plain", b"\xff\xfe" + "ring\x07ring".encode("utf-16-le")),
        # a low surrogate with no high one before it: not UTF-16 text
        (b"/lone.txt", b"text/plain",
         b"\xff\xfe" + "ab".encode("utf-16-le") + b"\x00\xdc" + "cd".encode("utf-16-le")),
        # a pair (U+1F525) is text
        (b"/pair.txt", b"text/plain", b"\xff\xfe" + "fire \U0001f525\n".encode("utf-16-le")),
    ]


@case
def http_file_types():
    """Responses typed by the sensor or by libmagic (sensor/files.c file_type): UTF-16
    text with a byte order mark declared as text, little- and big-endian, and one with a
    surrogate pair, typed as declared; one with a control character and one with a lone
    surrogate, which go to libmagic."""
    p = Pcap("payload/http-file-types")
    c = TcpConv(p, "types", CLI, "10.1.1.80", 49610, 80)
    t = c.handshake(BASE)
    for i, (url, ctype, body) in enumerate(http_type_bodies()):
        c.seg(C, t + ms(1 + 2 * i), "PA", http_get(b"portal.example.gov.cn", url))
        c.seg(S, t + ms(2 + 2 * i), "PA", b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype
              + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    c.fin(t + ms(20))
    return p


RELOAD_MARK = b"FENGHUO-RELOAD-MARK"
RELOAD_DATAGRAMS = 60


@case
def yara_reload():
    """One UDP flow per datagram (source ports 42000..), each holding the EICAR string
    and a marker: paced with capture.replay_rate, the sensor is given new rules halfway
    (tests/e2e/test_yara.py)."""
    p = Pcap("payload/yara-reload")
    for i in range(RELOAD_DATAGRAMS):
        u = UdpConv(p, "reload-%d" % i, CLI, "10.1.1.69", 42000 + i, 6969)
        u.send(C, BASE + ms(100 * i), Raw(b"%03d " % i + RELOAD_MARK + b" " + EICAR))
    return p


# ---------------------------------------------------------------------------------------------


def build_all():
    return {name: fn() for name, fn in sorted(CASES.items())}


def main(argv):
    if len(argv) == 2 and argv[1] == "--expect":
        out = {}
        for name, p in build_all().items():
            out[p.name] = [f.expect() for f in p.flows]
        json.dump(out, sys.stdout, indent=1)
        print()
        return 0
    if len(argv) != 2 or argv[1].startswith("-"):
        sys.stderr.write("usage: gen_pcaps.py OUTDIR | --expect\n")
        return 2
    os.makedirs(argv[1], exist_ok=True)
    for name, p in build_all().items():
        p.write(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
