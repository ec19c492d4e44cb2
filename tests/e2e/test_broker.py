"""fenghuo-broker: librdkafka's built-in Kafka-protocol broker as a program (broker/README.md).

Every test drives the broker with kcat, a real Kafka client, so what passes here also works
against a Kafka cluster. Each subprocess has a timeout and every broker started is stopped
(SIGKILL as a last resort) in a finally block, so a hang fails one test and leaks nothing.
"""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import time

import pytest

KCAT = shutil.which("kcat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat not installed (make deps)")

START_TIMEOUT = 10    # seconds for the bootstrap line to appear
KCAT_TIMEOUT = 30     # hard limit on any kcat run
ADDR_RE = re.compile(r"^127\.0\.0\.1:\d{1,5}(,127\.0\.0\.1:\d{1,5})*$")


@pytest.fixture(scope="module")
def broker_bin(build_dir):
    path = os.path.join(build_dir, "bin", "fenghuo-broker")
    if not os.access(path, os.X_OK):
        pytest.skip("broker binary %s not built (run `make`)" % path)
    return path


class Broker:
    """One running fenghuo-broker; use as a context manager."""

    def __init__(self, binary, args, tmp_path):
        self.argv = [binary] + list(args)
        self.errpath = str(tmp_path / ("broker-%d.stderr" % time.monotonic_ns()))
        self.proc = None
        self.addr = None

    def __enter__(self):
        self._err = open(self.errpath, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._err)
        try:
            self.addr = self._first_line(START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def _first_line(self, timeout):
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no bootstrap line within %ds; stderr:\n%s"
                                     % (timeout, self.stderr()))
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError("broker exited (rc %s) before printing its address; "
                                         "stderr:\n%s" % (self.proc.poll(), self.stderr()))
                buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    def stderr(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=5):
        """Waits until a stderr line matches the regex; returns the line."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr().splitlines():
                if rx.search(line):
                    return line
            time.sleep(0.05)
        raise AssertionError("no stderr line matching %r within %ss; stderr:\n%s"
                             % (pattern, timeout, self.stderr()))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM, then SIGKILL; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc.stdout.close()
        self._err.close()
        return self.proc.returncode


@pytest.fixture
def broker(broker_bin, tmp_path):
    """broker(*args) -> a started Broker, stopped at the end of the test."""
    started = []

    def start(*args):
        b = Broker(broker_bin, args, tmp_path).__enter__()
        started.append(b)
        return b
    try:
        yield start
    finally:
        for b in started:
            b.stop()


def kcat(*args, input=None, timeout=KCAT_TIMEOUT):
    return subprocess.run([KCAT] + list(args), input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


def metadata(addr, wait_s=5):
    """kcat -L -J; returns (returncode, parsed JSON or None, stderr)."""
    r = kcat("-L", "-J", "-b", addr, "-m", str(wait_s), timeout=wait_s + 15)
    try:
        md = json.loads(r.stdout) if r.returncode == 0 else None
    except ValueError:
        md = None
    return r.returncode, md, r.stderr.decode("utf-8", "replace")


def topics_of(md):
    return {t["topic"]: len(t["partitions"]) for t in md["topics"]}


def assert_reachable(addr):
    rc, md, err = metadata(addr)
    assert rc == 0 and md is not None, "kcat -L failed against %s (rc %d):\n%s" % (addr, rc, err)
    return md


def assert_unreachable(addr):
    """kcat -L with a 2 s metadata timeout must fail, and not hang."""
    t0 = time.monotonic()
    rc, _, err = metadata(addr, wait_s=2)
    took = time.monotonic() - t0
    assert rc != 0, "kcat -L still works against %s while the brokers are down" % addr
    assert took < 10, "kcat -L took %.1fs to fail" % took
    return err


def listening_addresses(ports):
    """Local addresses of the listening TCP sockets on these ports, from /proc/net/tcp{,6}."""
    found = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, state = cols[1], cols[3]
            addr_hex, port_hex = local.split(":")
            port = int(port_hex, 16)
            if state == "0A" and port in ports:  # 0A = LISTEN
                found.setdefault(port, []).append(addr_hex)
    return found


# ---------------------------------------------------------------------------------------------


def test_prints_bootstrap_first_line(broker, tmp_path):
    bootfile = tmp_path / "bootstrap"
    b = broker("--brokers", "3", "--bootstrap-file", str(bootfile))
    assert ADDR_RE.match(b.addr), "first stdout line is not an address list: %r" % b.addr
    ports = [int(hp.split(":")[1]) for hp in b.addr.split(",")]
    assert len(set(ports)) == 3
    assert bootfile.read_text() == b.addr + "\n"
    # Loopback only: every listener is 127.0.0.1 (0100007F in /proc/net/tcp).
    listen = listening_addresses(set(ports))
    assert set(listen) == set(ports), "not every broker port is listening: %s" % listen
    for port, addrs in listen.items():
        assert addrs == ["0100007F"], "port %d listens on %s, not 127.0.0.1 only" % (port, addrs)
    md = assert_reachable(b.addr)
    assert sorted(br["id"] for br in md["brokers"]) == [1, 2, 3]
    assert b.stop() == 0
    assert not bootfile.exists(), "the bootstrap file should be removed on a clean exit"


def test_produce_consume_roundtrip(broker):
    b = broker()
    msgs = ["key-%03d\t{\"n\":%d,\"text\":\"event %d \\u70fd\\u706b\"}" % (i % 17, i, i)
            for i in range(100)]
    r = kcat("-P", "-b", b.addr, "-t", "fenghuo.events", "-K", "\t",
             input=("\n".join(msgs) + "\n").encode())
    assert r.returncode == 0, r.stderr.decode()
    r = kcat("-C", "-b", b.addr, "-t", "fenghuo.events", "-o", "beginning", "-e", "-q",
             "-f", "%k\t%s\n")
    assert r.returncode == 0, r.stderr.decode()
    got = r.stdout.decode().splitlines()
    # Order is kept per partition only; compare as multisets.
    assert sorted(got) == sorted(msgs)


def test_same_key_same_partition(broker):
    b = broker("--partitions", "4")
    lines = "".join("flow-%d\tv%d\n" % (i % 5, i) for i in range(50))
    assert kcat("-P", "-b", b.addr, "-t", "fenghuo.events", "-K", "\t",
                input=lines.encode()).returncode == 0
    r = kcat("-C", "-b", b.addr, "-t", "fenghuo.events", "-o", "beginning", "-e", "-q",
             "-f", "%k %p\n")
    assert r.returncode == 0, r.stderr.decode()
    part = {}
    for line in r.stdout.decode().splitlines():
        k, p = line.split()
        part.setdefault(k, set()).add(p)
    assert len(part) == 5 and all(len(ps) == 1 for ps in part.values()), part


def test_default_topic(broker):
    b = broker()
    assert topics_of(assert_reachable(b.addr)) == {"fenghuo.events": 3}


@pytest.mark.parametrize("n", [1, 7])
def test_partitions(broker, n):
    b = broker("--partitions", str(n))
    assert topics_of(assert_reachable(b.addr)) == {"fenghuo.events": n}


def test_several_topics(broker):
    b = broker("--topic", "fenghuo.events", "--topic", "fenghuo.alerts", "--topic", "t-3",
               "--partitions", "2", "--brokers", "2")
    assert topics_of(assert_reachable(b.addr)) == {
        "fenghuo.events": 2, "fenghuo.alerts": 2, "t-3": 2}


def test_unknown_topic_is_auto_created(broker):
    """The mock cluster auto-creates a topic on first use, with 4 partitions (its default,
    not --partitions). Pinned here because docs/kafka.md says so."""
    b = broker("--partitions", "2")
    assert kcat("-P", "-b", b.addr, "-t", "not.declared", input=b"x\n").returncode == 0
    assert topics_of(assert_reachable(b.addr))["not.declared"] == 4


def test_sigusr1_down_sigusr2_up(broker):
    b = broker("--brokers", "3")
    assert_reachable(b.addr)
    b.signal(signal.SIGUSR1)
    b.wait_log(r"brokers 1-3 down")
    assert_unreachable(b.addr)
    b.signal(signal.SIGUSR2)
    b.wait_log(r"brokers 1-3 up")
    assert_reachable(b.addr)
    assert b.proc.poll() is None


def test_control_file(broker, tmp_path):
    ctl = tmp_path / "control"
    b = broker("--brokers", "3", "--control-file", str(ctl))

    def command(text):
        tmp = tmp_path / "control.tmp"
        tmp.write_text(text + "\n")
        os.rename(tmp, ctl)

    command("down")
    b.wait_log(r"brokers 1-3 down \(control file\)")
    assert_unreachable(b.addr)
    command("up")
    b.wait_log(r"brokers 1-3 up \(control file\)")
    assert_reachable(b.addr)

    # One broker: the cluster keeps answering metadata through the others.
    command("down 2")
    b.wait_log(r"broker 2 down")
    assert_reachable(b.addr)
    ctl.write_text("up 2\n")  # a plain in-place write works too
    b.wait_log(r"broker 2 up")

    # Not a command: a warning, and the broker carries on.
    command("reboot")
    b.wait_log(r"unknown command 'reboot'")
    assert b.proc.poll() is None
    assert_reachable(b.addr)


def test_control_file_and_signals_mix(broker, tmp_path):
    """The same command written again is applied again (the file is watched for changes)."""
    ctl = tmp_path / "control"
    b = broker("--control-file", str(ctl))
    ctl.write_text("down\n")
    b.wait_log(r"broker 1 down \(control file\)")
    b.signal(signal.SIGUSR2)
    b.wait_log(r"broker 1 up \(SIGUSR2\)")
    time.sleep(0.05)
    with open(ctl, "w") as f:  # same content, new mtime
        f.write("down\n")
    deadline = time.monotonic() + 5
    while b.stderr().count("broker 1 down") < 2:
        assert time.monotonic() < deadline, "rewrite of the control file ignored:\n" + b.stderr()
        time.sleep(0.05)
    assert_unreachable(b.addr)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero_quickly(broker, sig):
    b = broker("--brokers", "3")
    assert_reachable(b.addr)  # with connections open
    t0 = time.monotonic()
    b.signal(sig)
    rc = b.proc.wait(timeout=5)
    took = time.monotonic() - t0
    assert rc == 0, "exit status %d after %s; stderr:\n%s" % (rc, sig.name, b.stderr())
    assert took < 2.0, "took %.2fs to exit after %s" % (took, sig.name)


def test_old_batches_dropped_past_5mib_per_partition(broker):
    """librdkafka 2.0.2's mock keeps at most ~5 MiB of batches per partition and drops the
    oldest silently (docs/kafka.md). If a librdkafka upgrade changes this, update the docs."""
    b = broker("--partitions", "1")
    value = "v" * 1000
    data = "".join("k%d\t%s\n" % (i, value) for i in range(8000)).encode()  # ~8 MB
    # The mock drops whole batches, so what it keeps lies between 5 MiB less one batch and
    # 5 MiB. How full kcat's batches are depends on timing; batch.size bounds them, so the
    # range below holds however fast the machine is (at the default 1 MB it did not).
    batch = 64 << 10
    r = kcat("-P", "-b", b.addr, "-t", "fenghuo.events", "-K", "\t",
             "-X", "batch.size=%d" % batch, input=data)
    assert r.returncode == 0, r.stderr.decode()
    r = kcat("-C", "-b", b.addr, "-t", "fenghuo.events", "-o", "beginning", "-e", "-q",
             "-f", "%o\n")
    offsets = [int(x) for x in r.stdout.split()]
    assert offsets and offsets[-1] == 7999
    assert 0 < offsets[0] < 8000, "expected the oldest batches gone, first offset %d" % offsets[0]
    assert offsets == list(range(offsets[0], 8000)), "kept offsets are not contiguous"
    # Each record is its 1000-byte value, a key of up to 5 bytes and about 10 bytes of
    # record header: at most 1.02 x the value bytes.
    kept_bytes = len(offsets) * 1000
    limit = 5 << 20
    assert (limit - batch) / 1.02 <= kept_bytes <= limit, "kept %d bytes" % kept_bytes


def test_version_and_help(broker_bin, repo_root):
    version = open(os.path.join(repo_root, "VERSION")).read().strip()
    for flag in ("--version", "-V"):
        r = subprocess.run([broker_bin, flag], capture_output=True, timeout=10)
        assert r.returncode == 0
        assert r.stdout.decode() == "fenghuo-broker %s\n" % version
    r = subprocess.run([broker_bin, "--help"], capture_output=True, timeout=10)
    assert r.returncode == 0
    for opt in ("--brokers", "--partitions", "--topic", "--bootstrap-file", "--control-file",
                "SIGUSR1", "SIGUSR2"):
        assert opt in r.stdout.decode(), "%s missing from --help" % opt


@pytest.mark.parametrize("args,mention", [
    (["--brokers", "0"], "--brokers"),
    (["--brokers", "many"], "--brokers"),
    (["--brokers"], "--brokers"),
    (["--partitions", "-1"], "--partitions"),
    (["--partitions", "3x"], "--partitions"),
    (["--topic", "bad name"], "--topic"),
    (["--topic", ""], "--topic"),
    (["--bogus"], "--bogus"),
    (["stray"], "stray"),
])
def test_bad_arguments(broker_bin, args, mention):
    r = subprocess.run([broker_bin] + args, capture_output=True, timeout=10)
    lines = [l for l in r.stderr.decode().splitlines() if l.strip()]
    assert r.returncode == 2, "exit %d for %s" % (r.returncode, args)
    assert len(lines) == 1, "expected one line on stderr, got:\n%s" % r.stderr.decode()
    assert mention in lines[0], "%r does not mention %r" % (lines[0], mention)
    assert r.stdout == b""
