#!/usr/bin/python3
"""bench/live_rate.py SENSOR PCAP - live capture: the highest replay rate on a veth pair at
which the sensor loses nothing, against ndpiReader on the same pair.

A veth pair is made with one end in a new network namespace (as tests/e2e/
test_live_veth.py does). The capturing tool runs on the host end; tcpreplay replays PCAP
from inside the namespace into the other end at rising packet rates (--pps), each step
FH_BENCH_LIVE_SECONDS long (the capture looped with --unique-ip, so every pass brings new
flows). A step is lossless when the tool received exactly what tcpreplay says it sent
("Successful packets") and, for the sensor, its final stats event reports
kernel_drops + ifdrops == 0. The ladder stops at the first lossy step or when tcpreplay can
no longer reach the rate asked for; after a lossy step the rate is bisected a few times.

The peer is Debian's ndpiReader -i IFACE (nDPI 4.2). It never calls pcap_stats(), so it has
no drop counters: its loss is what tcpreplay sent minus its "N packets total".

Prints a table on stdout (bench/bench.sh appends it to the results); progress goes to
stderr. Needs root and network namespaces: otherwise prints why it skipped and exits 0.
Exit status 1 when a tool fails (crash, non-zero exit, no stats). See bench/README.md,
"Live capture".

Environment (all optional):
  FH_BENCH_LIVE_SECONDS  seconds of replay per step (default 5)
  FH_BENCH_LIVE_RATES    the rising rates, packets/s (default 50000,100000,200000,400000,800000)
  FH_BENCH_LIVE_BISECT   bisection steps after the first lossy rate (default 3)
  FH_BENCH_LIVE_PEER     1 (default): also measure ndpiReader; 0: the sensor only
  FH_BENCH_LIVE_SMALL_RING 1 (default): also the sensor with ndpiReader's capture settings
                         (-s 1536 --set capture.buffer_mb=2: the same libpcap ring); 0: not
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

CEILING = 0.95       # sent/asked below this: tcpreplay could not reach the rate asked for
DRAIN_TIMEOUT = 30.0  # seconds to wait for a tool to empty its ring after the replay


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


SECONDS = float(os.environ.get("FH_BENCH_LIVE_SECONDS", "") or 5)
RATES = [int(x) for x in (os.environ.get("FH_BENCH_LIVE_RATES", "") or
                          "50000,100000,200000,400000,800000").split(",")]
BISECT = env_int("FH_BENCH_LIVE_BISECT", 3)
PEER = (os.environ.get("FH_BENCH_LIVE_PEER", "") or "1") == "1"
SMALL_RING = (os.environ.get("FH_BENCH_LIVE_SMALL_RING", "") or "1") == "1"
SMALL_NAME = "fenghuo, nDPI's ring"

CHILDREN = []        # processes to kill on the way out
CLEANUP = []         # (namespace, host end) to delete on the way out


def log(msg):
    print("live: " + msg, file=sys.stderr, flush=True)


def run(*argv, check=True, timeout=30):
    return subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, check=check)


def skip(reason):
    print()
    print("Live capture on a veth pair: skipped (%s)" % reason)
    sys.exit(0)


# ---- the veth pair -------------------------------------------------------------------------

def netns_problem():
    if os.geteuid() != 0:
        return "needs root: network namespace, veth pair, live capture"
    for t in ("ip", "tcpreplay"):
        if not shutil.which(t):
            return "'%s' not found: run 'make deps'" % t
    name = "fhlrprobe%s" % uuid.uuid4().hex[:6]
    r = run("ip", "netns", "add", name, check=False)
    if r.returncode != 0:
        return "'ip netns' unavailable: %s" % r.stderr.decode().strip()
    run("ip", "netns", "del", name, check=False)
    return None


def cleanup():
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    for ns, host in CLEANUP:
        run("ip", "netns", "del", ns, check=False)    # takes its veth end along
        run("ip", "link", "del", host, check=False)   # in case the pair is left
    CLEANUP.clear()


def on_signal(signum, _frame):
    raise SystemExit(128 + signum)   # unwinds through the finally: cleanup() runs


def make_veth():
    tag = uuid.uuid4().hex[:6]
    ns, host, peer = "fhlr%s" % tag, "fhlrh%s" % tag, "fhlrp%s" % tag
    run("ip", "netns", "add", ns)
    CLEANUP.append((ns, host))
    run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
    run("ip", "link", "set", peer, "netns", ns)
    # No router solicitations or MLD reports: only tcpreplay's frames on the link.
    run("sysctl", "-q", "-w", "net.ipv6.conf.%s.disable_ipv6=1" % host, check=False)
    run("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
        "net.ipv6.conf.%s.disable_ipv6=1" % peer, check=False)
    # The capture has frames longer than 1514 bytes: with the default MTU tcpreplay
    # could not send them (EMSGSIZE).
    run("ip", "link", "set", host, "mtu", "65535", "up")
    run("ip", "netns", "exec", ns, "ip", "link", "set", peer, "mtu", "65535", "up")
    return ns, host, peer


def link_stat(iface, name, ns=None):
    pre = ["ip", "netns", "exec", ns] if ns else []
    r = run(*(pre + ["cat", "/sys/class/net/%s/statistics/%s" % (iface, name)]), check=False)
    try:
        return int(r.stdout)
    except ValueError:
        return 0


def softnet_drops():
    # /proc/net/softnet_stat, second column: frames dropped because a CPU's input backlog
    # (net.core.netdev_max_backlog) was full. veth delivers through that backlog.
    n = 0
    with open("/proc/net/softnet_stat") as f:
        for line in f:
            cols = line.split()
            if len(cols) > 1:
                n += int(cols[1], 16)
    return n


def path_counters(ns, peer):
    # Frames lost on the way, before any capture socket saw them: the namespace end's
    # tx_dropped (veth could not hand the frame over) and the backlog drops (system-wide).
    # Not the host end's rx_dropped: the stack counts there frames it discards after the
    # capture taps have had them (on this capture ~3 per 1000 frames, e.g. VLAN-tagged
    # ones with no VLAN device), which the capture did receive.
    return link_stat(peer, "tx_dropped", ns) + softnet_drops()


def socket_on(ifindex, pid):
    """True once PID has a packet socket bound to ifindex (its capture is open)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", t)
            if m:
                inodes.add(m.group(1))
    except OSError:
        return False
    with open("/proc/net/packet") as f:
        next(f)
        for line in f:
            c = line.split()   # sk RefCnt Type Proto Iface R Rmem User Inode
            if len(c) >= 9 and c[4] == str(ifindex) and c[8] in inodes:
                return True
    return False


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def wait_rusage(p, timeout):
    """Waits for Popen p; returns (exit status, CPU seconds) or (None, None) on timeout."""
    end = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() > end:
            return None, None
        time.sleep(0.05)


def wait_idle(p):
    """After the replay: wait until p stops using CPU (its ring is empty). Seconds waited."""
    t0 = time.monotonic()
    last, quiet = cpu_seconds(p.pid), 0
    while time.monotonic() - t0 < DRAIN_TIMEOUT and p.poll() is None:
        time.sleep(0.3)
        now = cpu_seconds(p.pid)
        if now is None or last is None:
            break
        quiet = quiet + 1 if now - last <= 0.011 else 0   # at most one clock tick
        last = now
        if quiet >= 2:
            break
    return time.monotonic() - t0


# ---- the tools -----------------------------------------------------------------------------

class Sensor:
    def __init__(self, binary, work, name="fenghuo-sensor", extra=()):
        self.binary, self.work, self.name, self.extra = binary, work, name, list(extra)

    def start(self, iface):
        self.out = os.path.join(self.work, "events.json")
        self.err = open(os.path.join(self.work, "sensor.err"), "w+b")
        # The default configuration (DPI on, snaplen 65535, 64 MiB ring, promiscuous);
        # events to a file: the final stats event carries the counters.
        return subprocess.Popen([self.binary, "-i", iface, "-w", self.out] + self.extra,
                                stdout=subprocess.DEVNULL, stderr=self.err)

    def stop(self, p):
        p.send_signal(signal.SIGTERM)

    def result(self, status):
        """(received, kernel_drops + ifdrops, problem or None)."""
        self.err.seek(0)
        tail = self.err.read().decode(errors="replace").strip().splitlines()[-3:]
        self.err.close()
        stats = None
        try:
            with open(self.out, "rb") as f:
                for line in f:
                    if b'"event_type":"stats"' in line.replace(b" ", b""):
                        stats = json.loads(line)
        except (OSError, ValueError):
            pass
        if os.path.exists(self.out):
            os.unlink(self.out)
        if status != 0:
            return None, None, "exit status %s: %s" % (status, " | ".join(tail))
        if stats is None:
            return None, None, "no stats event: %s" % " | ".join(tail)
        cap = stats["stats"]["capture"]
        return cap["packets"], cap.get("kernel_drops", 0) + cap.get("ifdrops", 0), None


class NdpiReader:
    name = "ndpiReader"

    def __init__(self, work):
        self.work = work

    def start(self, iface):
        self.outf = open(os.path.join(self.work, "ndpi.out"), "w+b")
        return subprocess.Popen(["ndpiReader", "-i", iface], stdout=self.outf,
                                stderr=subprocess.STDOUT)

    def stop(self, p):
        p.send_signal(signal.SIGINT)    # its handler stops the capture and prints the report

    def result(self, status):
        self.outf.seek(0)
        text = self.outf.read().decode(errors="replace")
        self.outf.close()
        m = re.search(r"IP packets:\s+\d+\s+of\s+(\d+)\s+packets total", text)
        if status != 0:
            return None, None, "exit status %s: %s" % (
                status, " | ".join(text.strip().splitlines()[-3:]))
        if not m:
            return None, None, "no 'packets total' line in its report"
        return int(m.group(1)), None, None


# ---- one step ------------------------------------------------------------------------------

def rx_packets(iface):
    try:
        with open("/sys/class/net/%s/statistics/rx_packets" % iface) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def busy_share(samples, k):
    """CPU share (1.0 = one core) of column k over the samples where frames were arriving."""
    moving = [i for i in range(1, len(samples))
              if samples[i][3] is not None and samples[i - 1][3] is not None and
              samples[i][3] > samples[i - 1][3]]
    if not moving:
        return None
    a, b = samples[moving[0] - 1], samples[moving[-1]]
    if a[k] is None or b[k] is None or b[0] - a[0] < 0.2:
        return None
    return (b[k] - a[k]) / (b[0] - a[0])


def replay(ns, peer, host, pcap, rate, tool_pid):
    limit = max(1, int(rate * SECONDS))
    argv = ["ip", "netns", "exec", ns, "tcpreplay", "-q", "-i", peer, "-K", "--no-flow-stats",
            "--unique-ip", "--loop=0", "--limit=%d" % limit,
            # when tcpreplay cannot keep up, the step still ends after about SECONDS
            "--duration=%d" % max(1, int(SECONDS * 1.2 + 0.999)), "--pps=%d" % rate, pcap]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    CHILDREN.append(p)
    # ip netns exec execs tcpreplay in the same process. Sampled every 0.1 s: time, CPU
    # of tcpreplay and of the tool, frames arrived on the host end. -K loads the whole
    # capture first, so the CPU shares are taken only over the samples while frames flowed.
    samples = []
    end = time.monotonic() + SECONDS * 4 + 60
    while True:
        pid, status, _ = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > end:
            p.kill()
            p.wait()
            raise RuntimeError("tcpreplay did not finish (--pps=%d)" % rate)
        samples.append((time.monotonic(), cpu_seconds(p.pid), cpu_seconds(tool_pid),
                        rx_packets(host)))
        time.sleep(0.1)
    out = p.stdout.read().decode(errors="replace")
    err = p.stderr.read().decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError("tcpreplay failed (%s): %s %s" % (p.returncode, out, err))

    def num(rx, conv=int):
        m = re.search(rx, out)
        return conv(m.group(1)) if m else None
    r = {"sent": num(r"Successful packets:\s+(\d+)"),
         "failed": num(r"Failed packets:\s+(\d+)") or 0,
         "secs": num(r"sent in ([\d.]+) seconds", float),
         "pps": num(r"Rated: .*?([\d.]+) pps", float),
         "cpu": busy_share(samples, 1), "tool_cpu": busy_share(samples, 2)}
    if r["sent"] is None or r["pps"] is None:
        raise RuntimeError("cannot read tcpreplay's statistics: %s" % out)
    return r


def step(tool, ns, host, peer, ifindex, pcap, rate):
    before = path_counters(ns, peer)
    p = tool.start(host)
    CHILDREN.append(p)
    end = time.monotonic() + 20
    while not socket_on(ifindex, p.pid):
        if p.poll() is not None or time.monotonic() > end:
            break
        time.sleep(0.05)
    time.sleep(0.5)      # the ring is set up just after the socket is bound
    problem = None
    if p.poll() is None:
        rep = replay(ns, peer, host, pcap, rate, p.pid)
        drain = wait_idle(p)
        tool.stop(p)
        status, _ = wait_rusage(p, 60)
        if status is None:
            p.kill()
            p.wait()
            status = "timeout"
    else:
        rep, drain, status = None, 0, p.returncode
    received, drops, problem = tool.result(status)
    after = path_counters(ns, peer)
    row = {"tool": tool.name, "asked": rate, "rep": rep, "received": received,
           "drops": drops, "path": after - before, "drain": drain, "problem": problem}
    if rep is None or problem:
        row["ok"] = False
        row["failed"] = True
        return row
    row["failed"] = False
    row["lost"] = rep["sent"] - received
    row["ok"] = received >= rep["sent"] and not drops
    return row


def show(row):
    rep = row["rep"]
    if rep is None or row["failed"]:
        return "  %-21s %9d  FAILED (%s)" % (row["tool"], row["asked"], row["problem"])
    tool_cpu = "%5.0f%%" % (100 * rep["tool_cpu"]) if rep["tool_cpu"] is not None else "    ?"
    rp_cpu = "%5.0f%%" % (100 * rep["cpu"]) if rep["cpu"] is not None else "    ?"
    drops = "-" if row["drops"] is None else str(row["drops"])
    res = "ok" if row["ok"] else "LOSS"
    if rep["failed"]:
        res += " (%d not sent)" % rep["failed"]
    if row["lost"] < 0:
        res += " (%d extra frames)" % -row["lost"]
    return "  %-21s %9d %9.0f %9d %9d %8d %8s %5d %6.1f %s %s  %s" % (
        row["tool"], row["asked"], rep["pps"], rep["sent"], row["received"], max(row["lost"], 0),
        drops, row["path"], row["drain"], tool_cpu, rp_cpu, res)


def search(tool, veth, pcap, rows):
    """Rising rates, then bisection. Returns (fastest lossless row, slowest lossy row)."""
    ns, host, peer, ifindex = veth
    good = bad = None

    def do(rate):
        log("%s at --pps=%d ..." % (tool.name, rate))
        row = step(tool, ns, host, peer, ifindex, pcap, rate)
        rows.append(row)
        log(show(row).strip())
        if row["failed"]:
            raise RuntimeError("%s failed: %s" % (tool.name, row["problem"]))
        return row

    for rate in RATES:
        prev = good
        row = do(rate)
        if not row["ok"]:
            bad = row
            break
        good = row
        # tcpreplay's ceiling: it fell short of the rate asked for and gained little on the
        # previous step (a short fall alone may be background load, which comes and goes).
        if row["rep"]["pps"] < CEILING * rate and (
                prev is None or row["rep"]["pps"] < 1.1 * prev["rep"]["pps"]):
            break
    if bad is not None:
        lo = good["rep"]["pps"] if good else 0
        hi = min(bad["asked"], bad["rep"]["pps"])
        for _ in range(BISECT):
            mid = int((lo + hi) / 2)
            if hi - lo < 0.02 * hi or mid <= 0:
                break
            row = do(mid)
            if row["ok"]:
                if good is None or row["rep"]["pps"] > good["rep"]["pps"]:
                    good = row
                lo = max(lo, row["rep"]["pps"])
                if row["rep"]["pps"] < CEILING * mid:
                    break
            else:
                bad = row
                hi = min(mid, row["rep"]["pps"])
    return good, bad


def verdict(tool, good, bad):
    """(highest no-loss rate or None, is it only a lower bound, the sentence)."""
    if good is None:
        return None, False, "%s lost packets already at the lowest rate (%d packets/s asked)" % (
            tool, RATES[0])
    g = good["rep"]["pps"]
    if bad is None:
        return g, True, ("%s lost nothing up to the highest rate tcpreplay reached: %.0f "
                         "packets/s (a lower bound)" % (tool, g))
    return g, False, ("%s: highest rate with nothing lost %.0f packets/s; lost %d of %d at "
                      "%.0f packets/s" % (tool, g, bad["lost"], bad["rep"]["sent"],
                                          bad["rep"]["pps"]))


def main():
    if len(sys.argv) != 3:
        print("usage: %s SENSOR PCAP" % sys.argv[0], file=sys.stderr)
        return 2
    sensor, pcap = sys.argv[1], sys.argv[2]
    if not os.access(sensor, os.X_OK):
        print("live_rate: %s not found" % sensor, file=sys.stderr)
        return 1
    if not os.path.isfile(pcap):
        print("live_rate: %s not found" % pcap, file=sys.stderr)
        return 1
    problem = netns_problem()
    if problem:
        skip(problem)
    peer_tool = PEER and shutil.which("ndpiReader")
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    help_text = run(sensor, "--help", check=False).stdout.decode(errors="replace")
    version = run(sensor, "--version", check=False).stdout.decode(errors="replace").strip()
    threads = "--threads" in help_text
    load = open("/proc/loadavg").read().split()[:3]
    rows = []
    results = {}
    failure = None
    work = tempfile.mkdtemp(prefix="fh-live-")
    t_start = time.monotonic()
    try:
        ns, host, peer = make_veth()
        with open("/sys/class/net/%s/ifindex" % host) as f:
            ifindex = int(f.read())
        veth = (ns, host, peer, ifindex)
        tools = [Sensor(sensor, work)]
        if peer_tool:
            tools.append(NdpiReader(work))
        if SMALL_RING:
            tools.append(Sensor(sensor, work, SMALL_NAME,
                                ["-s", "1536", "--set", "capture.buffer_mb=2"]))
        for t in tools:
            results[t.name] = search(t, veth, pcap, rows)
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        failure = str(e)
    finally:
        cleanup()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print("Live capture on a veth pair: highest replay rate with nothing lost")
    print("  %s on one end, tcpreplay -K --pps=R --unique-ip (looped, %g s per step) from a" %
          ("the tool", SECONDS))
    print("  network namespace into the other; capture %s" % pcap)
    print("  sensor: %s, default configuration (DPI on, snaplen 65535, 64 MiB ring, promisc%s)" %
          (version or sensor, "; default --threads: one worker per CPU" if threads else ""))
    print("  peer:   %s" % ("ndpiReader -i IFACE (nDPI 4.2: snaplen 1536, libpcap's 2 MiB ring; "
                            "no drop counters, loss = sent - its 'packets total')"
                            if peer_tool else "not measured (%s)" % (
                                "FH_BENCH_LIVE_PEER=0" if not PEER else "ndpiReader missing")))
    print("  load average before: %s; %d CPUs; %.0f s" % (" ".join(load), os.cpu_count(),
                                                          time.monotonic() - t_start))
    print()
    print("  %-21s %9s %9s %9s %9s %8s %8s %5s %6s %6s %6s  %s" % (
        "tool", "asked pps", "sent pps", "sent", "received", "lost", "k.drops", "path",
        "drain", "tool", "replay", "result"))
    print("  %-21s %9s %9s %9s %9s %8s %8s %5s %6s %6s %6s" % (
        "", "", "", "", "", "", "+ifdrops", "", "s", "CPU", "CPU"))
    for r in rows:
        print(show(r))
    print()
    best = {}
    for name, (good, bad) in results.items():
        top = max((r["rep"]["pps"] for r in rows if r["tool"] == name and r["rep"]), default=0)
        rate, bound, line = verdict(name, good, bad)
        best[name] = (rate, bound)
        print("  " + line)
        if good is not None and good["rep"]["tool_cpu"] is not None:
            print("    (%s used %.0f%% of a core at %.0f packets/s, tcpreplay %.0f%%; tcpreplay's "
                  "highest rate with it capturing: %.0f packets/s)" % (
                      name, 100 * good["rep"]["tool_cpu"], good["rep"]["pps"],
                      100 * (good["rep"]["cpu"] or 0), top))
    for name in ("fenghuo-sensor", SMALL_NAME):
        if "ndpiReader" not in best or name not in best:
            continue
        (s, sb), (n, nb) = best[name], best["ndpiReader"]
        label = "%s vs ndpiReader, highest rates with nothing lost:" % name
        if not s or not n:
            print("  %s not determined" % label)
        elif sb and nb:
            print("  %s not determined (%.2fx): neither lost anything up to the rates "
                  "tcpreplay reached" % (label, s / n))
        elif sb:
            print("  %s at least %.2fx (the sensor's figure is a lower bound)" % (label, s / n))
        elif nb:
            print("  %s at most %.2fx (ndpiReader's figure is a lower bound)" % (label, s / n))
        else:
            print("  %s %.2fx" % (label, s / n))
    if failure:
        print("  FAILED: %s" % failure)
    print("  sent = tcpreplay's 'Successful packets'; lost = sent - received (the tool's own count);")
    print("  k.drops+ifdrops = the sensor's stats.capture counters; path = frames dropped before")
    print("  any capture socket (namespace end tx_dropped + softnet backlog, system-wide); drain =")
    print("  s from the end of the replay until the tool went idle; CPU = share of one core while")
    print("  frames arrived (tool; tcpreplay, which also pays the kernel's veth delivery and the")
    print("  copy into the capture ring). One step per rate: near the threshold a rerun can differ.")
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
