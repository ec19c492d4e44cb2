"""The sensor publishing to Kafka: the embedded broker, kcat as the consumer.

* Kafka output equals file output, event for event (sorted canonical JSON), on the
  crafted captures and on real ones; every message is keyed by its Community ID.
* A broker outage in the middle of a paced replay: events are spooled, replayed when
  the broker is back, nothing is lost, duplicates are counted, and the counters add up.
* A sensor stopped during an outage leaves its events in the spool; the next run sends
  them first. A corrupted spool record is skipped and counted; the rest is sent.
* A wrong broker address or an invalid topic is a clear error at start, never a hang;
  a live sensor whose broker is unreachable starts, spools and says so in its stats.
"""

import collections
import json
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

import kafkalib

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "kcat"], capture_output=True).returncode != 0,
    reason="kcat is not installed (make deps installs it)")

SUMMARY = re.compile(
    r"kafka: (\d+) events produced, (\d+) delivered, (\d+) spooled \((\d+) pending in [^)]*\), "
    r"(\d+) replayed, (\d+) dropped, (\d+) delivery failures, (\d+) retries, (\d+) queue full")


def summary(stderr):
    m = SUMMARY.search(stderr)
    assert m, "no Kafka summary in the sensor's stderr:\n" + stderr
    keys = ("produced", "delivered", "spooled", "pending", "replayed", "dropped", "failed",
            "retried", "queue_full")
    return dict(zip(keys, map(int, m.groups())))


def sensor(sensor_bin, args, timeout=120):
    p = subprocess.run([sensor_bin] + args, capture_output=True, text=True, timeout=timeout)
    return p


def file_events(path):
    with open(path) as f:
        return [line for line in f.read().splitlines() if line]


@pytest.fixture
def tmp():
    with tempfile.TemporaryDirectory(prefix="fh-kafka-") as d:
        yield d


def _equal_run(sensor_bin, build_dir, tmp, inputs, topic="fenghuo.events"):
    ref = os.path.join(tmp, "ref.json")
    p = sensor(sensor_bin, ["-r"] + inputs + ["-w", ref])
    assert p.returncode == 0, p.stderr
    with kafkalib.broker(build_dir, topics=(topic,)) as (bootstrap, _):
        p = sensor(sensor_bin, ["-r"] + inputs + ["--kafka", bootstrap, "--topic", topic,
                                                  "--set", "spool.dir=" + tmp + "/spool"])
        assert p.returncode == 0, p.stderr
        want = file_events(ref)
        msgs = kafkalib.consume(bootstrap, topic, expect=len(want))
    s = summary(p.stderr)
    assert s["produced"] == len(want) and s["delivered"] == len(want), s
    assert s["dropped"] == 0 and s["pending"] == 0
    got = sorted(kafkalib.canonical(v) for _, v in msgs)
    assert got == sorted(kafkalib.canonical(e) for e in want)
    for key, value in msgs:
        e = json.loads(value)
        if "community_id" in e:  # flow and its dns/http/tls/ssh events
            assert key == e["community_id"], "events of a flow are keyed by its Community ID"
        else:
            assert key == e["sensor"]["id"]
    return len(msgs)


def test_kafka_equals_file_crafted(sensor_bin, build_dir, testdata, tmp):
    n = _equal_run(sensor_bin, build_dir, tmp, [os.path.join(testdata, "pcap")])
    assert n > 50


def test_kafka_equals_file_corpus(sensor_bin, build_dir, tmp):
    shared = os.environ.get("FH_SHARED", "../shared/data")
    if not os.path.isabs(shared):
        shared = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), shared)
    if not os.path.isdir(os.path.join(shared, "pcap")):
        pytest.skip("shared corpus %s absent" % shared)
    pcaps = [os.path.join(shared, "pcap", p) for p in
             ("ndpi", "zeek", "suricata-verify", "chrissanders")]
    n = _equal_run(sensor_bin, build_dir, tmp, pcaps)
    assert n > 1000


def test_topic_per_event_type(sensor_bin, build_dir, testdata, tmp):
    with kafkalib.broker(build_dir, topics=("fh.flow", "fh.stats", "fh.anomaly")) as (b, _):
        p = sensor(sensor_bin, ["-r", os.path.join(testdata, "pcap", "malformed.pcap"),
                                "--kafka", b, "--topic", "fh.{event_type}",
                                "--set", "spool.dir=" + tmp + "/spool"])
        assert p.returncode == 0, p.stderr
        for t in ("flow", "stats", "anomaly"):
            msgs = kafkalib.consume(b, "fh." + t, expect=1)
            assert msgs, "nothing on topic fh." + t
            assert all(json.loads(v)["event_type"] == t for _, v in msgs)


def _paced_outage(sensor_bin, build_dir, testdata, tmp, stop_during_outage=False):
    """Replays the crafted captures slowly; the broker goes down and (maybe) comes back.

    The ~210 crafted packets take 2.6 s at 80 packets/s: the sensor still runs when the
    broker comes back at 2.7 s. A stop during the outage compares with every event of
    the input, so that replay runs at 160 packets/s (~1.3 s) and ends well before the
    stop at 2.7 s even on a loaded machine, while events are still produced in the outage
    (from 0.7 s)."""
    spool = os.path.join(tmp, "spool")
    ref = os.path.join(tmp, "ref.json")
    inputs = [os.path.join(testdata, "pcap")]
    p = sensor(sensor_bin, ["-r"] + inputs + ["-w", ref])
    assert p.returncode == 0
    with kafkalib.broker(build_dir) as (bootstrap, brk):
        proc = subprocess.Popen(
            [sensor_bin, "-r"] + inputs +
            ["--kafka", bootstrap, "--set", "spool.dir=" + spool,
             "--set", "capture.replay_rate=%d" % (160 if stop_during_outage else 80),
             "--set", "kafka.message_timeout=1",
             "--set", "kafka.flush_timeout=2", "-X", "reconnect.backoff.max.ms=200",
             "-X", "retry.backoff.ms=100"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.7)
            brk.send_signal(signal.SIGUSR1)  # all brokers down
            time.sleep(2.0)
            if stop_during_outage:
                proc.send_signal(signal.SIGTERM)
                _, err = proc.communicate(timeout=60)
                return ref, spool, err, proc.returncode, None
            brk.send_signal(signal.SIGUSR2)  # back up
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        want = file_events(ref)
        msgs = kafkalib.consume(bootstrap, "fenghuo.events", expect=len(want), timeout=20)
        return ref, spool, err, proc.returncode, msgs


def test_outage_spools_and_replays(sensor_bin, build_dir, testdata, tmp):
    ref, spool, err, rc, msgs = _paced_outage(sensor_bin, build_dir, testdata, tmp)
    assert rc == 0, err
    s = summary(err)
    want = collections.Counter(kafkalib.canonical(e) for e in file_events(ref)
                               if json.loads(e)["event_type"] != "stats")
    got = collections.Counter(kafkalib.canonical(v) for _, v in msgs
                              if json.loads(v)["event_type"] != "stats")
    missing = want - got
    duplicates = sum((got - want).values())
    print("outage: produced %(produced)d delivered %(delivered)d spooled %(spooled)d "
          "replayed %(replayed)d failed %(failed)d dropped %(dropped)d" % s,
          "duplicates %d" % duplicates)
    assert not missing, "events lost in the outage: %d" % sum(missing.values())
    assert s["spooled"] > 0, "the outage should have sent events through the spool"
    assert s["replayed"] >= s["spooled"]
    assert s["dropped"] == 0 and s["pending"] == 0
    # Every event produced is delivered once (the spool never re-sends an acknowledged
    # record); extra copies on the topic can only come from ambiguous broker writes.
    assert s["produced"] == s["delivered"] + s["pending"] + s["dropped"]
    assert duplicates == sum((got - want).values())


def test_stop_during_outage_then_restart_replays(sensor_bin, build_dir, testdata, tmp):
    ref, spool, err, rc, _ = _paced_outage(sensor_bin, build_dir, testdata, tmp,
                                           stop_during_outage=True)
    assert rc == 0, err
    s = summary(err)
    assert s["pending"] > 0, "events should wait in the spool: " + err
    assert s["produced"] == s["delivered"] + s["pending"] + s["dropped"]
    assert [f for f in os.listdir(spool) if f.endswith(".seg")]
    first_delivered = s["delivered"]
    # A new broker (empty), the same spool: the next run sends the spooled events first.
    empty = os.path.join(tmp, "empty.pcap")
    subprocess.run(["/usr/bin/python3", "-c",
                    "from scapy.all import wrpcap; wrpcap(%r, [])" % empty], check=True)
    with kafkalib.broker(build_dir) as (bootstrap, _):
        p = sensor(sensor_bin, ["-r", empty, "--kafka", bootstrap, "-q",
                                "--set", "spool.dir=" + spool])
        assert p.returncode == 0, p.stderr
        msgs = kafkalib.consume(bootstrap, "fenghuo.events", expect=s["pending"] + 1)
    replayed = [v for _, v in msgs if json.loads(v)["sensor"]["id"] == "fenghuo-sensor"]
    # The restarted run's own stats event is there too, after the replayed ones.
    assert len(replayed) >= s["pending"]
    assert not [f for f in os.listdir(spool) if f.endswith(".seg")], "spool not emptied"
    assert first_delivered + s["pending"] >= len(file_events(ref)) - 1


def test_corrupt_spool_record_is_skipped(sensor_bin, build_dir, testdata, tmp):
    ref, spool, err, rc, _ = _paced_outage(sensor_bin, build_dir, testdata, tmp,
                                           stop_during_outage=True)
    assert rc == 0, err
    pending = summary(err)["pending"]
    assert pending >= 3
    seg = sorted(f for f in os.listdir(spool) if f.endswith(".seg"))[0]
    path = os.path.join(spool, seg)
    data = bytearray(open(path, "rb").read())
    # Damage the payload of the second record: find the second record magic.
    second = data.find(b"FHS1", 4)
    assert second > 0
    data[second + 40] ^= 0xFF
    open(path, "wb").write(bytes(data))
    empty = os.path.join(tmp, "empty.pcap")
    subprocess.run(["/usr/bin/python3", "-c",
                    "from scapy.all import wrpcap; wrpcap(%r, [])" % empty], check=True)
    out = os.path.join(tmp, "after.json")
    with kafkalib.broker(build_dir) as (bootstrap, _):
        p = sensor(sensor_bin, ["-r", empty, "--kafka", bootstrap, "-w", out,
                                "--set", "spool.dir=" + spool])
        assert p.returncode == 0, p.stderr
        msgs = kafkalib.consume(bootstrap, "fenghuo.events", expect=pending)
    assert re.search(r"spool: .*corrupt", p.stderr), p.stderr
    assert len(p.stderr.splitlines()) < 10, "one line per damaged segment, not per record"
    stats = json.loads(file_events(out)[-1])["stats"]["kafka"]
    assert stats["spool"]["corrupt"] == 1
    assert stats["pending_at_start"] >= pending - 1
    # Every spooled record but the damaged one arrives (plus this run's stats event).
    assert len(msgs) >= pending - 1 + 1


def test_wrong_broker_fails_fast(sensor_bin, testdata, tmp):
    t0 = time.time()
    p = sensor(sensor_bin, ["-r", os.path.join(testdata, "pcap", "dns.pcap"),
                            "--kafka", "127.0.0.1:1", "--set", "kafka.startup_timeout=2",
                            "--set", "spool.dir=" + tmp + "/spool"], timeout=30)
    assert p.returncode == 1
    assert time.time() - t0 < 15
    lines = [line for line in p.stderr.splitlines() if "error" in line]
    assert lines and "cannot reach the brokers at '127.0.0.1:1'" in lines[0], p.stderr


def test_invalid_topic_fails(sensor_bin, testdata, tmp):
    p = sensor(sensor_bin, ["-r", os.path.join(testdata, "pcap", "dns.pcap"),
                            "--kafka", "127.0.0.1:1", "--topic", "bad topic!",
                            "--set", "spool.dir=" + tmp + "/spool"], timeout=30)
    assert p.returncode == 1
    assert "invalid topic 'bad topic!'" in p.stderr


def test_bad_property_fails(sensor_bin, testdata, tmp):
    p = sensor(sensor_bin, ["-r", os.path.join(testdata, "pcap", "dns.pcap"),
                            "--kafka", "127.0.0.1:1", "-X", "no.such.property=1",
                            "--set", "spool.dir=" + tmp + "/spool"], timeout=30)
    assert p.returncode == 1
    assert "no.such.property" in p.stderr


def _kafka_stats(path):
    """The kafka counters of the stats events written so far (a partial last line skipped)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event_type") == "stats" and "kafka" in ev.get("stats", {}):
                    out.append(ev["stats"]["kafka"])
    except FileNotFoundError:
        pass
    return out


def _live_unreachable(sensor_bin, tmp, out, until, extra):
    """Captures on lo with an unreachable broker until a stats event's kafka counters
    satisfy `until` (at most 120 s, however slow the machine), stops with SIGTERM;
    returns stderr after checking the exit status."""
    proc = subprocess.Popen(
        [sensor_bin, "-i", "lo", "-f", "udp port 47998", "--kafka", "127.0.0.1:1",
         "-w", out, "--set", "kafka.startup_timeout=1", "--set", "stats.interval=1",
         "--set", "spool.dir=" + tmp + "/spool", "--set", "kafka.flush_timeout=1"] + extra,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not any(until(k) for k in _kafka_stats(out)) and time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        assert any(until(k) for k in _kafka_stats(out)), "no stats event got there in 120 s"
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return err


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")
def test_live_sensor_with_unreachable_broker_spools(sensor_bin, tmp, validator):
    out = os.path.join(tmp, "live.json")
    err = _live_unreachable(sensor_bin, tmp, out, lambda k: k["spooled"] >= 1, [])
    assert "spooling until they answer" in err
    stats = [json.loads(line) for line in file_events(out)]
    validator(stats, "live stats event with Kafka counters")
    last = stats[-1]["stats"]["kafka"]
    assert last["brokers_down"] is True
    assert last["spooled"] >= 1 and last["delivered"] == 0
    s = summary(err)
    assert s["produced"] == s["pending"] + s["dropped"] and s["delivered"] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")
def test_live_full_spool_drops_oldest_and_counts(sensor_bin, tmp):
    """Live capture cannot wait: with the brokers unreachable and a tiny spool, the
    oldest spooled events are dropped, counted, and the counters still add up."""
    out = os.path.join(tmp, "live.json")
    # stats events of ~1.5 KiB each fill a 4 KiB spool within seconds
    err = _live_unreachable(sensor_bin, tmp, out, lambda k: k["dropped"] >= 1,
                            ["--set", "spool.segment_bytes=1k", "--set", "spool.max_bytes=4k"])
    s = summary(err)
    assert s["dropped"] >= 1, err
    assert "events are being dropped (counted)" in err
    assert s["produced"] == s["delivered"] + s["pending"] + s["dropped"]
    size = sum(os.path.getsize(os.path.join(tmp, "spool", f))
               for f in os.listdir(os.path.join(tmp, "spool")) if f.endswith(".seg"))
    assert size <= 4096
