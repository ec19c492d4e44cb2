"""The correlator's Kafka mode (--kafka): events from the embedded broker, alerts into the
store and onto the alerts topic.

* End to end: level-3 scenarios produced with kcat into two topics, consumed as a group;
  the alerts table (ids, counts, hits, first/last seen, evidence) equals a --input file
  run over the same events, and fenghuo.alerts carries every alert, keyed by its id. A
  malformed message is counted and skipped, and the stored position moves past it.
* kill -9 in the middle of a stream (twice), restart with the same --db and group: the
  final alerts table equals a run without the crash. No alert is lost or duplicated and
  every count is exact.

  The guarantee that holds is exactly-once *from the events topics into the store*: the
  consumer positions are written in the same transaction (SQLite or PostgreSQL) as the
  alerts that the consumed events produced, and every (re)assignment starts at the
  stored positions. A kill before COMMIT loses the batch together with its positions, so
  it is consumed again and applied once; after COMMIT consumption resumes behind it.
  Kafka offset commits are monitoring only. The alerts topic is at-least-once
  (transactional outbox): a message may be sent twice across a crash, always with the
  same (id, hits) content.

  This stream uses the detection scenarios (one alert per rule and source, the count
  being the hits; checked in file mode) over three partitions keyed by source address,
  so each alert's hits stay in order within one partition (a detection alert's id is
  taken from its first hit) whatever the interleaving of partitions.
* kill -9 in the middle of correlation windows (twice), one partition: the window state
  saved with each batch (corr_state) is restored at every restart, and the final alerts,
  correlation alerts included, equal the uninterrupted run's.
* --exit-at-end: the detection stream spread by source over three of four partitions
  (the fourth stays empty); the correlator stops by itself, exit 0, once every partition
  is at its end, with every position stored, the alerts equal to the file run, the outbox
  sent to fenghuo.alerts and the file run's counters. On an empty topic it stops too.
* An unreachable broker is a clear error within the start-up timeout, never a hang.
* Consumption rate through Kafka vs `kcat -C -e -o beginning` on the same topic (printed;
  run with -s to see it).
"""

import datetime
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import zlib

import pytest

import kafkalib
from conftest import query

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(REPO, "rules", "level3")
ASSETS = os.path.join(REPO, "rules", "assets.example.yaml")
SCENARIOS = os.path.join(REPO, "tests", "rules")
# scenarios whose rules are detection rules only (no correlation)
DETECTION = ["L3-%02d" % i for i in (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 16, 17, 18, 19, 23, 25)]
SESSION = ["-X", "session.timeout.ms=6000"]  # a restarted member rejoins in ~5 s (docs/kafka.md)
RUN_TIMEOUT = 120

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None,
                                reason="kcat is not installed (make deps installs it)")



# ---- events ------------------------------------------------------------------------------

TS = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?([+-]\d{4}|Z)")


def shifted(line, hours):
    """The event with every timestamp moved by `hours`."""
    def f(m):
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
        t += datetime.timedelta(hours=hours)
        return t.strftime("%Y-%m-%dT%H:%M:%S") + (m.group(2) or "") + m.group(3)
    return TS.sub(f, line)


def scenario(name):
    with open(os.path.join(SCENARIOS, name, "events.ndjson")) as f:
        return [line for line in f.read().splitlines() if line.strip()]


def key_of(line):
    """Message key: the source address (the detection alerts' group), else the sensor."""
    try:
        e = json.loads(line)
    except ValueError:
        return ""
    return e.get("src_ip") or (e.get("sensor") or {}).get("id", "")


def detection_stream(n):
    """About n events: the detection scenarios repeated, each round an hour later."""
    base = [line for s in DETECTION for line in scenario(s)]
    rounds = (n + len(base) - 1) // len(base)
    return [shifted(line, r) for r in range(rounds) for line in base]


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ---- Kafka helpers -----------------------------------------------------------------------

def produce(bootstrap, topic, lines, keyed=False, compress=None):
    args = ["kcat", "-P", "-b", bootstrap, "-t", topic]
    if keyed:
        args += ["-K", "\t"]
        lines = [key_of(line) + "\t" + line for line in lines]
    if compress:
        args += ["-z", compress]
    subprocess.run(args, input="\n".join(lines) + "\n", text=True, check=True,
                   capture_output=True, timeout=120)


def produce_by_key(bootstrap, topic, lines, partitions):
    """Each line to partition crc32(key) % partitions (kcat -p), in order within each;
    returns {partition: lines}."""
    parts = {}
    for line in lines:
        parts.setdefault(zlib.crc32(key_of(line).encode()) % partitions, []).append(line)
    for p, part in sorted(parts.items()):
        subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-p", str(p), "-z", "lz4"],
                       input="\n".join(part) + "\n", text=True, check=True,
                       capture_output=True, timeout=120)
    return parts


def end_offsets(bootstrap, topic, expect):
    """{partition: end offset} of what the broker holds; checks nothing was dropped (the
    embedded broker silently keeps only ~5 MiB per partition)."""
    deadline = time.time() + 30
    while True:
        out = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning",
                              "-e", "-q", "-f", "%p %o\n"], capture_output=True, text=True,
                             timeout=60).stdout
        ends, n, first = {}, 0, {}
        for line in out.splitlines():
            p, o = map(int, line.split())
            ends[p] = max(ends.get(p, 0), o + 1)
            first.setdefault(p, o)
            n += 1
        if n >= expect or time.time() > deadline:
            break
        time.sleep(0.2)
    assert n == expect, "the broker holds %d of the %d events produced" % (n, expect)
    assert all(o == 0 for o in first.values()), "the broker dropped old batches: %s" % first
    return {(topic, p): o for p, o in ends.items()}


def positions(db):
    """{(topic, partition): next offset} stored by the correlator ({} before it exists)."""
    if db.startswith("postgresql://"):
        try:
            return {(t, p): o for t, p, o in
                    query(db, "SELECT topic, partition_id, next_offset FROM consumer_offsets")}
        except subprocess.CalledProcessError:  # before the correlator made its tables
            return {}
    if not os.path.exists(db):
        return {}
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=1)
        try:
            return {(t, p): o for t, p, o in
                    con.execute("SELECT topic, partition_id, next_offset FROM consumer_offsets")}
        finally:
            con.close()
    except sqlite3.Error:
        return {}


def progress(db, ends):
    pos = positions(db)
    return sum(min(pos.get(k, 0), v) for k, v in ends.items())


class Correlator:
    """fenghuo-correlator --kafka as a child process (stderr to a file)."""

    def __init__(self, binary, bootstrap, tmp, db, topics=("fenghuo.events",), group="corr-test",
                 alerts_out=None, extra=()):
        self.log = os.path.join(tmp, "correlator-%d.log" % time.monotonic_ns())
        args = [binary, "--rules", RULES, "--assets", ASSETS, "--kafka", bootstrap,
                "--group", group, "--db", db] + SESSION + list(extra)
        for t in topics:
            args += ["--topic", t]
        if alerts_out:
            args += ["--alerts-out", alerts_out]
        self.args = args
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)

    def wait_exit(self, timeout):
        """Waits for the process to stop by itself; returns (exit status, stderr)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("the correlator did not stop by itself within %d s:\n%s"
                        % (timeout, self.stderr()))
        return rc, self.stderr()

    def stderr(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait_progress(self, db, ends, at_least, timeout=60, poll=0.01):
        """Waits until the store holds at least `at_least` consumed events."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            done = progress(db, ends)
            if done >= at_least:
                return done
            if self.proc.poll() is not None:
                pytest.fail("the correlator exited (%s):\n%s" % (self.proc.returncode,
                                                                  self.stderr()))
            time.sleep(poll)
        pytest.fail("the correlator stored %d of %d events in %d s:\n%s"
                    % (progress(db, ends), at_least, timeout, self.stderr()))

    def wait_started(self, timeout=30):
        """Waits until it consumes (its signal handlers are in place long before)."""
        deadline = time.time() + timeout
        while "kafka: assigned" not in self.stderr():
            if self.proc.poll() is not None or time.time() > deadline:
                pytest.fail("the correlator did not start consuming:\n" + self.stderr())
            time.sleep(0.05)

    def stop(self, timeout=30):
        """SIGTERM once it consumes; it must exit 0 within the timeout."""
        self.wait_started()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("the correlator did not stop within %d s of SIGTERM:\n%s"
                        % (timeout, self.stderr()))
        assert rc == 0, "exit status %d:\n%s" % (rc, self.stderr())
        return self.stderr()

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


FILE_COUNTS = re.compile(r"(\d+) events, (\d+) malformed, (\d+) rule matches")
KAFKA_COUNTS = re.compile(r"(\d+) events consumed \((\d+) malformed\) .* (\d+) rule matches")


def run_file(correlator, events_path, db, alerts_out=None):
    args = [correlator, "--rules", RULES, "--assets", ASSETS, "--input", events_path,
            "--db", db]
    if alerts_out:
        args += ["--alerts-out", alerts_out]
    p = subprocess.run(args, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert p.returncode == 0, p.stderr
    return p.stderr


ALERT_COLS = ("id, rule_id, group_key, window_start, first_seen, last_seen, count, hits, "
              "src_ip, dest_ip, created_at, updated_at")


def alerts_table(db):
    """The alerts, their evidence and the outbox's length, from SQLite or PostgreSQL."""
    alerts = query(db, "SELECT %s FROM alerts ORDER BY id" % ALERT_COLS)
    evidence = query(db, "SELECT alert_id, seq, ts, community_id, event FROM alert_evidence "
                         "ORDER BY alert_id, seq")
    outbox = query(db, "SELECT count(*) FROM alert_outbox")[0][0]
    return alerts, evidence, outbox


def assert_same_alerts(db, ref_db):
    got, got_ev, outbox = alerts_table(db)
    want, want_ev, _ = alerts_table(ref_db)
    assert got, "no alerts at all"
    gd, wd = {a[0]: a for a in got}, {a[0]: a for a in want}
    missing = sorted(set(wd) - set(gd))
    extra = sorted(set(gd) - set(wd))
    differ = [(wd[i], gd[i]) for i in sorted(set(gd) & set(wd)) if gd[i] != wd[i]]
    assert not (missing or extra or differ), (
        "alerts differ from the file run (%s)\nmissing: %s\nextra: %s\ndiffering (want, got): %s"
        % (ALERT_COLS, [wd[i] for i in missing][:5], [gd[i] for i in extra][:5], differ[:5]))
    assert got_ev == want_ev, "the evidence differs from the file run"
    assert outbox == 0, "%d alert updates left undelivered in the outbox" % outbox
    return got


def last_updates(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                a = json.loads(line)
                out[a["id"]] = (a["count"], a["hits"], a["first_seen"], a["last_seen"])
    return out


def assert_alerts_topic(bootstrap, alerts):
    """Every alert is on fenghuo.alerts keyed by its id; its last message is its state."""
    want = {a[0]: a[7] for a in alerts}  # id -> hits
    deadline = time.time() + 30
    while True:
        msgs = kafkalib.consume(bootstrap, "fenghuo.alerts", timeout=0)
        latest = {}
        for key, value in msgs:
            v = json.loads(value)
            assert v["id"] == key, "message keyed %r carries alert %r" % (key, v["id"])
            latest[key] = max(latest.get(key, 0), v["hits"])
        if latest == want or time.time() > deadline:
            break
        time.sleep(0.5)
    assert set(latest) == set(want), "alerts topic ids differ: missing %s, extra %s" % (
        sorted(set(want) - set(latest))[:5], sorted(set(latest) - set(want))[:5])
    assert latest == want, "the alerts topic's last hits differ from the store"
    return msgs


# ---- tests -------------------------------------------------------------------------------

def test_end_to_end(correlator, build_dir, tmp_path):
    """Two topics (correlation scenarios in one, detection scenarios a day earlier in the
    other) consumed as a group: the same alerts as the file mode, published by id."""
    a = scenario("L3-09") + scenario("L3-26") + scenario("L3-07")
    # topic b: detection scenarios a day earlier, from sources that topic a does not have
    # (a detection alert is per source: its id comes from its first hit)
    a_src = {key_of(line) for line in a}
    b = [shifted(line, -24) for s in DETECTION for line in scenario(s)
         if key_of(line) not in a_src]
    b.insert(len(b) // 2, '{"event_type": "flow", "src_ip": ')  # malformed: counted, skipped
    # precondition: the two topics' events do not interact (either order gives the same
    # alerts), so any interleaving of the topics by the consumer must as well
    ref_db, ref_out = str(tmp_path / "ref.db"), str(tmp_path / "ref.json")
    run_file(correlator, write_lines(str(tmp_path / "ab.ndjson"), a + b), ref_db, ref_out)
    run_file(correlator, write_lines(str(tmp_path / "ba.ndjson"), b + a),
             str(tmp_path / "ba.db"))
    assert alerts_table(ref_db)[:2] == alerts_table(str(tmp_path / "ba.db"))[:2]

    db, out = str(tmp_path / "kafka.db"), str(tmp_path / "kafka.json")
    topics = ("fenghuo.events", "fenghuo.events.b")
    with kafkalib.broker(build_dir, partitions=1, topics=topics) as (bootstrap, _):
        produce(bootstrap, topics[0], a)
        produce(bootstrap, topics[1], b)
        ends = end_offsets(bootstrap, topics[0], len(a))
        ends.update(end_offsets(bootstrap, topics[1], len(b)))
        c = Correlator(correlator, bootstrap, str(tmp_path), db, topics=topics, alerts_out=out)
        try:
            c.wait_progress(db, ends, len(a) + len(b))
            log = c.stop()
        finally:
            c.cleanup()
        assert positions(db) == ends
        assert "%d events consumed (1 malformed)" % (len(a) + len(b)) in log, log
        alerts = assert_same_alerts(db, ref_db)
        assert last_updates(out) == last_updates(ref_out)
        msgs = assert_alerts_topic(bootstrap, alerts)
        print("\nend to end: %d events, %d alerts, %d alert messages"
              % (len(a) + len(b), len(alerts), len(msgs)))


def test_kill9_mid_stream(correlator, build_dir, tmp_path, store_db):
    """kill -9 twice while a paced producer is still writing; restarts with the same
    store and group; the final alerts equal an uninterrupted file run exactly. On an
    SQLite file and on PostgreSQL (the positions and the alerts in one transaction)."""
    events = detection_stream(20000)
    ref_db = str(tmp_path / "ref.db")
    run_file(correlator, write_lines(str(tmp_path / "stream.ndjson"), events), ref_db)
    alerts, _, _ = alerts_table(ref_db)
    # precondition: detection alerts only (group = source), so no correlation window is
    # in play; counts in the thousands show double or lost batches
    assert all(a[2].startswith(("src_ip=", "sensor.id=")) and "," not in a[2] for a in alerts)
    assert max(a[6] for a in alerts) > 1000

    db = store_db.target
    topic = "fenghuo.events"
    total = len(events)
    with kafkalib.broker(build_dir, partitions=3, topics=(topic,)) as (bootstrap, _):
        # a sensor-like producer: ~2,000 events/s, keyed by source, zstd
        kills, ends, log = crash_and_finish(correlator, bootstrap, str(tmp_path), db, topic, 3,
                                            events, keyed=True, compress="zstd", pause=0.05,
                                            fractions=(0.3, 0.6))
        assert kills[0][0] < total, "the first kill came after the end of the stream"
        assert positions(db) == ends
        assert "resuming at stored offset" in log
        got = assert_same_alerts(db, ref_db)
        assert_alerts_topic(bootstrap, got)
        print("\nkill -9 at %s of %d events (stored positions); %d alerts, counts up to %d, "
              "all equal to the uninterrupted run" % (
                  [k[0] for k in kills], total, len(got), max(a[6] for a in got)))


# scenarios of the correlation rules (windows over many events)
CORRELATION = ["L3-%02d" % i for i in (7, 8, 9, 10, 15, 20, 21, 22, 24, 26, 27, 28)]


def correlation_rule_ids():
    """The ids of the pack's correlation rules (documents with a `correlation` key)."""
    ids = set()
    for name in sorted(os.listdir(RULES)):
        with open(os.path.join(RULES, name)) as f:
            for doc in re.split(r"(?m)^---\s*$", f.read()):
                m = re.search(r"(?m)^id:\s*(\S+)", doc)
                if m and re.search(r"(?m)^correlation:", doc):
                    ids.add(m.group(1).strip("'\""))
    assert ids, "no correlation rule found in " + RULES
    return ids


def corr_state_rows(db):
    return query(db, "SELECT COUNT(*) FROM corr_state")[0][0]


def crash_and_finish(correlator, bootstrap, tmp, db, topic, partitions, events, keyed,
                     compress, pause, fractions):
    """A paced kcat producer writes `events` (100 every `pause` s) while the correlator is
    killed with SIGKILL once the store holds each fraction of them, restarted each time with
    the same store and group; a last instance consumes to the end and is stopped.
    Returns ([(stored events, saved window groups, stderr) per kill], end offsets, the last
    instance's stderr)."""
    kcat = subprocess.Popen(["kcat", "-P", "-b", bootstrap, "-t", topic, "-z", compress] +
                            (["-K", "\t"] if keyed else []),
                            stdin=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pace():
        try:
            for i in range(0, len(events), 100):
                kcat.stdin.write("".join((key_of(e) + "\t" if keyed else "") + e + "\n"
                                         for e in events[i:i + 100]))
                kcat.stdin.flush()
                time.sleep(pause)
        finally:
            kcat.stdin.close()

    feeder = threading.Thread(target=pace, daemon=True)
    unknown = {(topic, p): 10 ** 9 for p in range(partitions)}
    procs, kills = [], []
    try:
        feeder.start()
        for fraction in fractions:
            c = Correlator(correlator, bootstrap, tmp, db)
            procs.append(c)
            c.wait_progress(db, unknown, int(len(events) * fraction))
            c.kill9()
            kills.append((progress(db, unknown), corr_state_rows(db), c.stderr()))
        feeder.join(timeout=60)
        assert kcat.wait(timeout=60) == 0
        ends = end_offsets(bootstrap, topic, len(events))
        c = Correlator(correlator, bootstrap, tmp, db)
        procs.append(c)
        c.wait_progress(db, ends, len(events))
        log = c.stop()
    finally:
        for p in procs:
            p.cleanup()
        if kcat.poll() is None:
            kcat.kill()
            kcat.wait()
    return kills, ends, log


def test_kill9_correlation_windows(correlator, build_dir, tmp_path):
    """kill -9 twice in the middle of correlation windows (the store holds open
    window state at each kill); every restart restores the windows saved with the stored
    positions, and the final alerts equal an uninterrupted file run exactly. One
    partition: the file order is the consumption order, so the comparison is exact."""
    base = [line for s in CORRELATION for line in scenario(s)]
    events = [shifted(line, 6 * r) for r in range(3) for line in base]
    ref_db = str(tmp_path / "ref.db")
    run_file(correlator, write_lines(str(tmp_path / "stream.ndjson"), events), ref_db)
    alerts, _, _ = alerts_table(ref_db)
    con = sqlite3.connect(ref_db)
    corr_alerts = sum(con.execute("SELECT COUNT(*) FROM alerts WHERE rule_id = ?",
                                  (i,)).fetchone()[0] for i in correlation_rule_ids())
    con.close()
    assert len(alerts) >= 30 and corr_alerts >= 3, (len(alerts), corr_alerts)

    db = str(tmp_path / "kafka.db")
    topic = "fenghuo.events"
    total = len(events)
    with kafkalib.broker(build_dir, partitions=1, topics=(topic,)) as (bootstrap, _):
        # ~1,000 events/s: the kills land mid-stream
        kills, ends, log = crash_and_finish(correlator, bootstrap, str(tmp_path), db, topic, 1,
                                            events, keyed=False, compress="lz4", pause=0.1,
                                            fractions=(0.25, 0.6))
        assert kills[0][0] < total, "the first kill came after the end of the stream"
        # open windows at every kill, and the restarts restored them
        assert all(k[1] > 0 for k in kills), [k[1] for k in kills]
        for k in kills[1:] + [(None, None, log)]:
            m = re.search(r"correlation windows restored: (\d+) groups", k[2])
            assert m and int(m.group(1)) > 0, k[2]
        assert positions(db) == ends
        got = assert_same_alerts(db, ref_db)
        print("\nkill -9 at %s of %d events with %s saved window groups; %d alerts (%d from "
              "correlation windows), all equal to the uninterrupted run"
              % ([k[0] for k in kills], total, [k[1] for k in kills], len(got), corr_alerts))


def test_exit_at_end(correlator, build_dir, tmp_path):
    """--exit-at-end on four partitions, one of them empty: the correlator stops by itself
    (exit 0) only when all are at their end, with the file run's alerts and counters."""
    events = detection_stream(6000)
    events.insert(len(events) // 3, '{"event_type": "flow", "src_ip": ')  # malformed
    ref_db, ref_out = str(tmp_path / "ref.db"), str(tmp_path / "ref.json")
    ref_log = run_file(correlator, write_lines(str(tmp_path / "stream.ndjson"), events), ref_db,
                       ref_out)
    alerts, _, _ = alerts_table(ref_db)
    # precondition (as for the kill -9 test): detection alerts only, grouped by source, so
    # the spread over partitions by source cannot change them
    assert all(a[2].startswith(("src_ip=", "sensor.id=")) and "," not in a[2] for a in alerts)
    want = FILE_COUNTS.search(ref_log)
    assert want, ref_log

    db, out = str(tmp_path / "kafka.db"), str(tmp_path / "kafka.json")
    topic = "fenghuo.events"
    with kafkalib.broker(build_dir, partitions=4, topics=(topic,)) as (bootstrap, _):
        parts = produce_by_key(bootstrap, topic, events, 3)  # partition 3 stays empty
        assert len(parts) >= 2, "the sources all hash to one partition: %s" % sorted(parts)
        ends = end_offsets(bootstrap, topic, len(events))
        t0 = time.monotonic()
        c = Correlator(correlator, bootstrap, str(tmp_path), db, alerts_out=out,
                       extra=["--exit-at-end"])
        try:
            rc, log = c.wait_exit(RUN_TIMEOUT)
        finally:
            c.cleanup()
        took = time.monotonic() - t0
        assert rc == 0, "exit status %d:\n%s" % (rc, log)
        assert "all 4 assigned partitions are at the end of their log" in log, log
        assert positions(db) == ends, "stored positions %s, ends %s" % (positions(db), ends)
        got = KAFKA_COUNTS.search(log)
        assert got, log
        assert got.groups() == want.groups(), (
            "events, malformed, rule matches: %s from Kafka, %s from the file"
            % (got.groups(), want.groups()))
        assert_same_alerts(db, ref_db)  # also: nothing left in the outbox
        assert last_updates(out) == last_updates(ref_out)
        assert_alerts_topic(bootstrap, alerts)
    print("\nexit at end: %d events on partitions %s (3 empty), stopped by itself in %.1f s, "
          "%d alerts" % (len(events), {p: len(v) for p, v in sorted(parts.items())}, took,
                         len(alerts)))


def test_exit_at_end_empty_topic(correlator, build_dir, tmp_path):
    """--exit-at-end on a topic with nothing in it: exit 0 by itself, nothing stored."""
    db = str(tmp_path / "empty.db")
    with kafkalib.broker(build_dir, partitions=3, topics=("fenghuo.events",)) as (bootstrap, _):
        c = Correlator(correlator, bootstrap, str(tmp_path), db, extra=["--exit-at-end"])
        try:
            rc, log = c.wait_exit(60)
        finally:
            c.cleanup()
    assert rc == 0, "exit status %d:\n%s" % (rc, log)
    assert "all 3 assigned partitions are at the end of their log" in log, log
    assert "0 events consumed (0 malformed)" in log, log
    assert positions(db) == {}


def test_unreachable_broker(correlator, tmp_path):
    """Nothing listens on 127.0.0.1:1: exit 1 with the reason, within the start-up
    timeout (10 s), never a hang."""
    t0 = time.monotonic()
    p = subprocess.run([correlator, "--rules", RULES, "--assets", ASSETS, "--kafka",
                        "127.0.0.1:1", "--db", str(tmp_path / "a.db")],
                       capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert p.returncode == 1, p.stderr
    assert "cannot reach the brokers at '127.0.0.1:1'" in p.stderr, p.stderr
    assert took < 15, "took %.1f s" % took


def test_usage_errors(correlator, tmp_path):
    """--kafka needs --db; --kafka and --input exclude each other; -X needs name=value;
    --exit-at-end is for --kafka."""
    base = [correlator, "--rules", RULES, "--kafka", "127.0.0.1:1"]
    for extra, msg in (([], "--kafka needs --db"),
                       (["--db", "x.db", "--input", "-"], "not both"),
                       (["--db", "x.db", "-X", "nonsense"], "name=value")):
        p = subprocess.run(base + extra, capture_output=True, text=True, timeout=30,
                           cwd=str(tmp_path))
        assert p.returncode == 2 and msg in p.stderr, (extra, p.returncode, p.stderr)
    p = subprocess.run([correlator, "--rules", RULES, "--input", "-", "--exit-at-end"],
                       capture_output=True, text=True, timeout=30, cwd=str(tmp_path),
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "--exit-at-end is for --kafka" in p.stderr, p.stderr
    p = subprocess.run(base + ["--db", "x.db", "-X", "no.such.property=1"], capture_output=True,
                       text=True, timeout=30, cwd=str(tmp_path))
    assert p.returncode == 1 and "no.such.property" in p.stderr, p.stderr
