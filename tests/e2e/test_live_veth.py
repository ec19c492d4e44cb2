"""Live capture on veth pairs, one end in a network namespace.

Each test makes its own namespace and veth pair(s) (fixtures; removed even when the
test fails), runs the sensor on the host end(s) and replays a crafted pcap from inside
the namespace with `tcpreplay --pps=200`. Checked: the flows and their fields, the
interface each event came from (in_iface), the per-interface pcap_stats counters in
the stats events (packets received, zero drops, drop ratio 0, deltas that add up to
the totals), SIGTERM with several interfaces, and run.user (the process drops root
after opening the capture and keeps capturing). Needs root and network namespaces:
skipped with the reason otherwise.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

NET = "net 10.1.1.0/24"  # the crafted pcaps' addresses; nothing else the host sends


def _run(*argv, check=True):
    return subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=20, check=check)


def _netns_problem():
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, live capture)"
    if not shutil.which("ip") or not shutil.which("tcpreplay"):
        return "needs iproute2 (ip) and tcpreplay"
    name = "fhprobe%s" % uuid.uuid4().hex[:6]
    r = _run("ip", "netns", "add", name, check=False)
    if r.returncode != 0:
        return "network namespaces unavailable: %s" % r.stderr.decode().strip()
    _run("ip", "netns", "del", name, check=False)
    return None


_PROBLEM = _netns_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=str(_PROBLEM))


def _disable_ipv6(iface, ns=None):
    # No router solicitations or MLD reports on the test links.
    pre = ["ip", "netns", "exec", ns] if ns else []
    _run(*(pre + ["sysctl", "-q", "-w", "net.ipv6.conf.%s.disable_ipv6=1" % iface]),
         check=False)


@pytest.fixture
def veth(request):
    """veth() -> (namespace, host_end, namespace_end); all removed at teardown."""
    made = []

    def cleanup():
        for ns, host in made:
            _run("ip", "netns", "del", ns, check=False)     # takes its veth end along
            _run("ip", "link", "del", host, check=False)    # in case the pair is left
    request.addfinalizer(cleanup)

    def make():
        tag = uuid.uuid4().hex[:6]
        ns, host, peer = "fhns%s" % tag, "fhh%s" % tag, "fhp%s" % tag
        _run("ip", "netns", "add", ns)
        made.append((ns, host))
        _run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", peer, "netns", ns)
        _disable_ipv6(host)
        _disable_ipv6(peer, ns)
        _run("ip", "link", "set", host, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
        return ns, host, peer
    return make


def _events(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    # Only whole lines: the sensor may be mid-write.
    return [json.loads(l) for l in data.split(b"\n")[:-1] if l.strip()]


def _wait_for(path, pred, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail("sensor exited early (%d): %s" % (proc.returncode,
                                                           proc.stderr.read().decode()))
        evs = _events(path)
        if pred(evs):
            return evs
        time.sleep(0.1)
    pytest.fail("timed out waiting for events in %s (%d so far)" % (path, len(_events(path))))


def _stats(evs):
    return [e for e in evs if e["event_type"] == "stats"]


def _iface_packets(evs, name):
    st = _stats(evs)
    if not st:
        return 0
    for i in st[-1]["stats"]["capture"].get("interfaces", []):
        if i["name"] == name:
            return i["packets"]
    return 0


def _start(sensor_bin, ifaces, out, extra=(), config=None, tmp=None):
    argv = [sensor_bin]
    if config:
        cfg = os.path.join(tmp, "sensor.yaml")
        with open(cfg, "w") as f:
            f.write(config)
        argv += ["-c", cfg]
    for i in ifaces:
        argv += ["-i", i]
    argv += ["-f", NET, "-w", out, "--set", "stats.interval=1", "--sensor-id", "veth-test"]
    argv += list(extra)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _replay(ns, peer, pcap):
    return subprocess.Popen(["ip", "netns", "exec", ns, "tcpreplay", "-q", "-i", peer,
                             "--pps=200", pcap], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish_replay(p):
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, "tcpreplay failed: %s %s" % (out.decode(), err.decode())


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err.decode()


def _check_iface_stats(stats_events, name, packets):
    """Totals in the last stats event; the deltas of all stats events add up to them."""
    per = [next(i for i in s["stats"]["capture"]["interfaces"] if i["name"] == name)
           for s in stats_events]
    last = per[-1]
    assert last["packets"] == packets, last
    assert last["kernel_packets"] >= packets, last
    assert last["kernel_drops"] == 0, last
    assert last["ifdrops"] == 0, last
    assert last["drop_ratio"] == 0, last
    for k in ("packets", "bytes", "kernel_packets", "kernel_drops", "ifdrops"):
        assert sum(p["delta"][k] for p in per) == last[k], (k, per)
    assert all(p["delta"]["drop_ratio"] == 0 for p in per)
    return last


def _http_flow_ok(f, iface):
    assert f["src_ip"] == "10.1.1.10" and f["src_port"] == 49152
    assert f["dest_ip"] == "10.1.1.80" and f["dest_port"] == 80
    assert f["proto"] == "TCP" and f["app_proto"] == "http"
    assert f["flow"]["pkts_toserver"] == 6 and f["flow"]["pkts_toclient"] == 4
    assert f["flow"]["bytes_toserver"] == 371 and f["flow"]["bytes_toclient"] == 318
    assert f["http"]["hostname"] == "portal.example.gov.cn"
    assert f["in_iface"] == iface
    assert f["sensor"]["id"] == "veth-test"


def test_live_veth_http(sensor_bin, testdata, validator, veth):
    ns, host, peer = veth()
    pcap = os.path.join(testdata, "pcap", "http.pcap")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        proc = _start(sensor_bin, [host], out)
        try:
            _wait_for(out, lambda evs: len(_stats(evs)) >= 1, proc)  # capture is up
            _finish_replay(_replay(ns, peer, pcap))
            _wait_for(out, lambda evs: _iface_packets(evs, host) >= 10, proc)
            err = _stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        evs = _events(out)
    validator(evs, "veth event")
    flows = [e for e in evs if e["event_type"] == "flow"]
    assert len(flows) == 1, flows
    _http_flow_ok(flows[0], host)
    assert flows[0]["flow"]["reason"] == "closed"
    http = [e for e in evs if e["event_type"] == "http"]
    assert len(http) == 1 and http[0]["http"]["url"] == "/index.html"
    assert http[0]["in_iface"] == host
    stats = _stats(evs)
    assert evs[-1]["event_type"] == "stats"
    assert all("in_iface" not in s for s in stats)
    _check_iface_stats(stats, host, 10)
    cap = stats[-1]["stats"]["capture"]
    assert cap["packets"] == 10 and cap["kernel_drops"] == 0 and cap["drop_ratio"] == 0


def test_live_veth_two_interfaces(sensor_bin, testdata, validator, veth):
    ns1, host1, peer1 = veth()
    ns2, host2, peer2 = veth()
    http = os.path.join(testdata, "pcap", "http.pcap")
    dns = os.path.join(testdata, "pcap", "dns.pcap")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        proc = _start(sensor_bin, [host1, host2], out)
        try:
            _wait_for(out, lambda evs: len(_stats(evs)) >= 1, proc)
            r1, r2 = _replay(ns1, peer1, http), _replay(ns2, peer2, dns)
            _finish_replay(r1)
            _finish_replay(r2)
            _wait_for(out, lambda evs: _iface_packets(evs, host1) >= 10 and
                      _iface_packets(evs, host2) >= 4, proc)
            err = _stop(proc)   # SIGTERM: the UDP flows are still open and get flushed
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        evs = _events(out)
    validator(evs, "veth event")
    flows = [e for e in evs if e["event_type"] == "flow"]
    by_port = {f["dest_port"]: f for f in flows}
    assert sorted(f["dest_port"] for f in flows) == [53, 53, 80], flows
    _http_flow_ok(by_port[80], host1)
    dns_flows = [f for f in flows if f["dest_port"] == 53]
    for f in dns_flows:
        assert f["in_iface"] == host2 and f["proto"] == "UDP" and f["app_proto"] == "dns"
        assert f["dest_ip"] == "10.1.1.53"
        assert f["flow"]["pkts_toserver"] == 1 and f["flow"]["pkts_toclient"] == 1
        assert f["flow"]["reason"] == "shutdown"
    dns_ev = [e for e in evs if e["event_type"] == "dns"]
    assert dns_ev and all(e["in_iface"] == host2 for e in dns_ev)
    stats = _stats(evs)
    assert evs[-1]["event_type"] == "stats"
    assert [i["name"] for i in stats[-1]["stats"]["capture"]["interfaces"]] == [host1, host2]
    _check_iface_stats(stats, host1, 10)
    _check_iface_stats(stats, host2, 4)
    cap = stats[-1]["stats"]["capture"]
    assert cap["packets"] == 14 and cap["kernel_drops"] == 0 and cap["drop_ratio"] == 0
    assert cap["kernel_packets"] == sum(i["kernel_packets"] for i in cap["interfaces"])


def _status_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                ids[k] = v.split()
    return ids


def test_live_veth_run_user(sensor_bin, testdata, validator, veth):
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    ns, host, peer = veth()
    pcap = os.path.join(testdata, "pcap", "http.pcap")
    tmp = tempfile.mkdtemp(prefix="fh-runuser-")
    try:
        os.chmod(tmp, 0o777)   # the output directory is writable by the user
        out = os.path.join(tmp, "out.json")
        proc = _start(sensor_bin, [host], out, tmp=tmp,
                      config="run:\n  user: nobody\n")
        try:
            _wait_for(out, lambda evs: len(_stats(evs)) >= 1, proc)
            ids = _status_ids(proc.pid)
            assert ids["Uid"] == [str(nobody.pw_uid)] * 4, ids
            assert ids["Gid"] == [str(nobody.pw_gid)] * 4, ids
            assert ids.get("Groups", []) in ([], [str(nobody.pw_gid)]), ids
            # Still capturing as nobody: traffic after the switch shows up.
            _finish_replay(_replay(ns, peer, pcap))
            _wait_for(out, lambda evs: _iface_packets(evs, host) >= 10, proc)
            n_stats = len(_stats(_events(out)))
            _wait_for(out, lambda evs: len(_stats(evs)) > n_stats, proc)  # and stats go on
            err = _stop(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err
        assert "running as user nobody" in err
        evs = _events(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    validator(evs, "veth event")
    flows = [e for e in evs if e["event_type"] == "flow"]
    assert len(flows) == 1
    _http_flow_ok(flows[0], host)
    _check_iface_stats(_stats(evs), host, 10)


def test_live_run_user_unknown(sensor_bin, tmp_path):
    p = subprocess.run([sensor_bin, "-i", "lo", "-f", "udp port 9", "-w", str(tmp_path / "o"),
                        "--set", "run.user=fenghuo-no-such-user"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert "run.user 'fenghuo-no-such-user': no such user" in err
    assert "not running on as root" in err
