"""The event schema itself: hand-written events per docs/events.md must pass, and
typical sensor mistakes must fail. Needs no sensor binary."""

import copy

import pytest

TS = "2024-03-01T08:00:00.014000+0000"

FLOW = {
    "timestamp": TS, "flow_id": 1234567890123456789, "event_type": "flow",
    "schema_version": "1.2", "sensor": {"id": "s1", "segment": "dmz"},
    "src_ip": "10.1.1.10", "src_port": 49152, "dest_ip": "10.1.1.80", "dest_port": 80,
    "proto": "TCP", "vlan": [200, 300], "community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
    "app_proto": "http",
    "ether": {"src_mac": "02:00:00:00:00:01", "dest_mac": "02:00:00:00:00:02"},
    "tunnel": {"type": "gre", "depth": 1, "src_ip": "192.0.2.1", "dest_ip": "192.0.2.2"},
    "flow": {"pkts_toserver": 6, "pkts_toclient": 4, "bytes_toserver": 371,
             "bytes_toclient": 318, "start": "2024-03-01T08:00:00.000000+0000", "end": TS,
             "age": 0, "state": "closed", "reason": "closed", "alerted": False},
    "tcp": {"tcp_flags": "1b", "tcp_flags_ts": "1b", "tcp_flags_tc": "1b", "syn": True,
            "ack": True, "fin": True, "psh": True, "state": "closed"},
    "ndpi": {"protocol": "HTTP", "master_protocol": "HTTP", "app_protocol": "HTTP",
             "category": "Web", "confidence": "DPI", "guessed": False,
             "risks": ["Clear-Text Credentials"], "risk_score": 100,
             "hostname": "portal.example.gov.cn"},
    "http": {"hostname": "portal.example.gov.cn", "url": "/index.html",
             "http_user_agent": "curl/8.0", "http_method": "GET", "status": 200,
             "http_content_type": "text/html"},
    "geo": {"src": {"country": "CN", "asn": 4134, "as_org": "CHINANET-BACKBONE",
                    "city": "Beijing"}, "dest": {"country": "US"}},
}
TLS_FLOW = dict(copy.deepcopy(FLOW), app_proto="tls", tls={
    "sni": "www.example.gov.cn", "version": "TLSv1.2",
    "ja3": {"hash": "28c5ccbede76b2f055e58ebfdf59dfdf"},
    "ja3s": {"hash": "9e2f82ce1921cb46d92e1f4e66458108"},
    "cipher": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "alpn": "h2"})
SSH_DNS_FLOW = dict(copy.deepcopy(FLOW), ssh={
    "client": {"software_version": "OpenSSH_8.9p1", "proto_version": "2.0"},
    "server": {"software_version": "OpenSSH_8.9p1", "proto_version": "2.0"},
    "hassh": {"client": "b6e729c57046f168144cb7ad7a7112f8",
              "server": "b8d8d8ae48d1715d729f7b7b5b57282c"}})
UDP_FLOW = copy.deepcopy(FLOW)
del UDP_FLOW["tcp"], UDP_FLOW["http"]
UDP_FLOW.update(proto="UDP", app_proto="dns", dest_port=53,
                dns={"rrname": "www.example.gov.cn", "rrtype": "A", "rcode": "NOERROR",
                     "answers": []})
ICMP6_FLOW = copy.deepcopy(UDP_FLOW)
del ICMP6_FLOW["dns"]
ICMP6_FLOW.update(proto="IPv6-ICMP", src_ip="2001:db8:1::10", dest_ip="2001:db8:1::1",
                  src_port=0, dest_port=0, icmp_type=128, icmp_code=0, app_proto="icmpv6")
# An FTP flow with a failed login (tests/cases/ftp-login-failed).
FTP_FLOW = copy.deepcopy(FLOW)
del FTP_FLOW["http"]
FTP_FLOW.update(app_proto="ftp_control", dest_port=21, login={"failed": True})
# Application metadata events: the flow's header fields and one object.
META_HEAD = {k: FLOW[k] for k in ("timestamp", "schema_version", "sensor", "flow_id", "src_ip",
                                  "src_port", "dest_ip", "dest_port", "proto", "vlan",
                                  "community_id")}
HTTP_EV = dict(copy.deepcopy(META_HEAD), event_type="http", app_proto="http",
               http=copy.deepcopy(FLOW["http"]))
TLS_EV = dict(copy.deepcopy(META_HEAD), event_type="tls", app_proto="tls",
              tls=copy.deepcopy(TLS_FLOW["tls"]))
SSH_EV = dict(copy.deepcopy(META_HEAD), event_type="ssh", app_proto="ssh",
              ssh=copy.deepcopy(SSH_DNS_FLOW["ssh"]))
DNS_EV = dict(copy.deepcopy(META_HEAD), event_type="dns", app_proto="dns", proto="UDP",
              dns={"type": "answer", "rrname": "www.example.gov.cn", "rrtype": "A",
                   "rcode": "NOERROR", "answers": [{"rrtype": "A", "rdata": "203.0.113.10"}]})
SMB_EV = dict(copy.deepcopy(META_HEAD), event_type="smb", app_proto="netbios", dest_port=445,
              smb={"dialect": "3.1.1"})
SMB1_EV = dict(copy.deepcopy(SMB_EV), smb={"dialect": "SMB1"})
DNS_QUERY_EV = dict(copy.deepcopy(DNS_EV), dns={"type": "query", "rrname": "x.example",
                                                 "rrtype": "AAAA"})
# A live-capture stats event: kernel counters and the drop ratio are present.
C = dict({k: 0 for k in ("packets", "bytes", "kernel_packets", "kernel_drops", "ifdrops")},
         drop_ratio=0.0)
STATS = {
    "timestamp": TS, "event_type": "stats", "schema_version": "1.2",
    "sensor": {"id": "s1", "segment": "dmz"},
    "stats": {
        "capture": C,
        "decoder": dict({k: 0 for k in ("packets", "bytes", "ipv4", "ipv6", "tcp", "udp", "icmp",
                                        "sctp", "other_l4", "vlan", "mpls", "pppoe", "gre",
                                        "vxlan", "geneve", "gtp", "ipip", "erspan",
                                        "fragments", "reassembled", "non_ip", "arp")},
                        errors={"ipv4.truncated": 1, "ipv6.truncated_ext_hdr": 2}),
        "flow": {"created": 1, "ended": 1, "evicted": 0, "active": 0, "max_active": 1,
                 "updates": 0, "unaccounted_packets": 0, "memory": 0,
                 "by_reason": {"timeout": 0, "closed": 1, "forced": 0, "shutdown": 0}},
        "dpi": {"flows_detected": 1, "flows_guessed": 0, "flows_unknown": 0,
                "packets_inspected": 3},
        "app_proto": {"http": 1},
        "geoip": {"lookups": 0, "found": 0, "errors": 0},
        "output": {"events": 2, "dropped": 0, "write_errors": 0},
    },
}
ANOMALY = {"timestamp": TS, "event_type": "anomaly", "schema_version": "1.2",
           "sensor": {"id": "s1", "segment": "dmz"}, "src_ip": "10.1.1.10",
           "dest_ip": "10.1.1.80", "proto": "TCP",
           "anomaly": {"type": "decode", "event": "tcp.bad_offset", "count": 10, "layer": "tcp"}}


@pytest.mark.parametrize("ev", [FLOW, TLS_FLOW, SSH_DNS_FLOW, UDP_FLOW, ICMP6_FLOW, STATS, ANOMALY,
                                HTTP_EV, TLS_EV, SSH_EV, DNS_EV, DNS_QUERY_EV, FTP_FLOW, SMB_EV,
                                SMB1_EV],
                         ids=["http", "tls", "ssh", "dns", "icmp6", "stats", "anomaly",
                              "http-event", "tls-event", "ssh-event", "dns-event",
                              "dns-query-event", "ftp-login-failed", "smb-event",
                              "smb1-event"])
def test_valid(validator, ev):
    validator([ev])


def mutate(ev, path, value=KeyError):
    ev = copy.deepcopy(ev)
    *parents, last = path.split("/" if "/" in path else ".")
    o = ev
    for p in parents:
        o = o[p]
    if value is KeyError:
        del o[last]
    else:
        o[last] = value
    return ev


BAD = [
    (FLOW, "timestamp", "2024-03-01T08:00:00Z"),
    (FLOW, "timestamp", "2024-03-01T08:00:00.014+0000"),
    (FLOW, "flow.start", "2024-03-01 08:00:00.000000+0000"),
    (FLOW, "schema_version", "1.0"),
    (FLOW, "schema_version", 1.1),
    (FLOW, "event_type", "flows"),
    (FLOW, "src_ip", "10.1.1.256"),
    (FLOW, "dest_ip", "portal.example.gov.cn"),
    (FLOW, "src_port", 65536),
    (FLOW, "dest_port", -1),
    (FLOW, "dest_port", "80"),
    (FLOW, "community_id", "1:LQU9qZlK+B5F3KDmev6m5PMibrg"),
    (FLOW, "community_id", KeyError),
    (FLOW, "flow_id", KeyError),
    (FLOW, "flow_id", "1234"),
    (FLOW, "src_ip", KeyError),
    (FLOW, "proto", "tcp"),
    (FLOW, "app_proto", "HTTP"),
    (FLOW, "vlan", []),
    (FLOW, "vlan", [4096]),
    (FLOW, "ether.src_mac", "02-00-00-00-00-01"),
    (FLOW, "tunnel.type", "l2tp"),
    (FLOW, "flow.pkts_toserver", -1),
    (FLOW, "flow.state", "open"),
    (FLOW, "flow.reason", "eof"),
    (FLOW, "flow.alerted", KeyError),
    (FLOW, "flow.bytes_toclinet", 3),          # typo
    (FLOW, "flow_ID", 3),                      # typo at top level
    (FLOW, "tcp.tcp_flags", "1B"),
    (FLOW, "tcp.state", "SYN_SENT"),
    (FLOW, "tcp", KeyError),                   # TCP flow without tcp{}
    (FLOW, "ndpi.risks", "Clear-Text Credentials"),
    (FLOW, "ndpi.confidence", "dpi"),
    (FLOW, "http.status", "200"),
    (FLOW, "http.hostnme", "x"),
    (FLOW, "geo.src.country", "CHN"),
    (FLOW, "geo.src.asn", "4134"),
    (FLOW, "geo.src.org", "x"),
    (FLOW, "sensor.name", "x"),
    (FLOW, "sensor", KeyError),
    (TLS_FLOW, "tls.ja3", "28c5ccbede76b2f055e58ebfdf59dfdf"),
    (TLS_FLOW, "tls.ja3.hash", "28C5CCBEDE76B2F055E58EBFDF59DFDF"),
    (TLS_FLOW, "tls.snii", "x"),
    (SSH_DNS_FLOW, "ssh.client.software", "x"),
    (UDP_FLOW, "tcp", {"tcp_flags": "00", "tcp_flags_ts": "00", "tcp_flags_tc": "00",
                       "state": "closed"}),
    (ICMP6_FLOW, "icmp_type", KeyError),
    (ICMP6_FLOW, "src_port", 128),
    (UDP_FLOW, "icmp_type", 8),
    (STATS, "stats/decoder/errors/ipv4.truncated", -1),
    (STATS, "stats/decoder/errors/IPv4 truncated", 1),
    (STATS, "stats.flow.by_reason.update", 1),
    (STATS, "stats.capture.kernel_drops", KeyError),
    (STATS, "stats.output.queued", 0),
    (STATS, "flow_id", 1),
    (ANOMALY, "anomaly.count", 0),
    (ANOMALY, "anomaly.layer", KeyError),
    (ANOMALY, "anomaly.event", "bad"),
    (HTTP_EV, "http", KeyError),               # metadata event without its object
    (HTTP_EV, "community_id", KeyError),
    (HTTP_EV, "flow", FLOW["flow"]),           # not a flow event
    (HTTP_EV, "http.status", "401"),
    (HTTP_EV, "http.uri", "/"),
    (TLS_EV, "tls.ja3.hash", "xyz"),
    (SSH_EV, "ssh.client.version", "x"),
    (DNS_EV, "dns.type", "response"),
    (DNS_EV, "dns.answers", [{"rrtype": "A", "rdata": "not-an-ip"}]),
    (DNS_EV, "dns.answers", 1),
    (DNS_QUERY_EV, "dns.rcode", "NOERROR"),    # a query has no rcode
    (DNS_EV, "dns.type", KeyError),
    (FTP_FLOW, "login.failed", False),         # written only for a failed login
    (FTP_FLOW, "login.failed", KeyError),
    (FTP_FLOW, "login.reply", "530"),
    (SMB_EV, "smb", KeyError),
    (SMB_EV, "smb.dialect", "3.11"),
    (SMB_EV, "smb.dialect", KeyError),
    (SMB_EV, "smb.signing", True),
    (SMB_EV, "ndpi", FLOW["ndpi"]),            # not a flow event
    (SMB_EV, "login", {"failed": True}),       # login is in the flow event only
]


@pytest.mark.parametrize("ev,path,value", BAD,
                         ids=["%s=%r" % (p, v if v is not KeyError else "<deleted>")
                              for _, p, v in BAD])
def test_invalid(validator, ev, path, value):
    bad = mutate(ev, path, value)
    assert list(validator.raw.iter_errors(bad)), "schema accepted %s = %r" % (path, value)
