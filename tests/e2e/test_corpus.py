"""The sensor on the whole shared corpus ($FH_SHARED/pcap, ~155 real captures).

* test_corpus_pcap[...]   one item per capture: exit status 0, no crash, no sanitizer report,
                          every line JSON that validates against sensor/schema, stats last.
* test_ndpi_agreement     the application protocol (`ndpi.protocol`) flow by flow against
                          Debian's ndpiReader (same nDPI 4.2) run live on the same captures;
                          prints per-capture and overall agreement and every difference with
                          its class; asserts >= 99 % agreement (tests/e2e/ndpi_compare.py,
                          tests/e2e/CORPUS-NOTES.md explain the matching and every class).
* test_splits_justified   every flow the sensor split (same key, several flow events) was split
                          for a documented reason: idle timeout of its class, or FIN/RST.
* test_deterministic      one mid-size capture, run again twice: identical output bytes.

Every capture is run once (thread pool of 2, sensor and ndpiReader side by side) and the
results are shared by the tests. The bench/ captures are included (25 MB + 3.8 MB).

Environment: FH_BUILD (default build; FH_BUILD=build/asan for the ASan+UBSan build, whose
ASAN_OPTIONS the Makefile sets), FH_SHARED (default ../shared/data, relative to the repo root).
The module is skipped when $FH_SHARED/pcap does not exist.
"""

import os
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import fhlib
import ndpi_compare as nc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _env_path(name, default):
    p = os.environ.get(name) or default
    return p if os.path.isabs(p) else os.path.join(REPO, p)


SHARED = _env_path("FH_SHARED", os.path.join("..", "shared", "data"))
PCAP_ROOT = os.path.join(SHARED, "pcap")

if not os.path.isdir(PCAP_ROOT):
    pytest.skip("shared corpus not found: %s does not exist (set FH_SHARED to the shared data "
                "directory, default ../shared/data from the repository root)" % PCAP_ROOT,
                allow_module_level=True)

PCAPS = nc.find_pcaps(SHARED)
NAMES = [os.path.relpath(p, PCAP_ROOT) for p in PCAPS]
DETERMINISM_PCAP = "bench/pcapplusplus-example-browsing.pcap"  # 3.8 MB, 4631 packets
AGREEMENT_MIN = 99.0
RUN_TIMEOUT = 900  # seconds per run (the 25 MB capture under ASan takes ~10 s)
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:")


def _sensor_job(sensor, pcap):
    with tempfile.TemporaryDirectory(prefix="fh-corpus-") as tmp:
        try:
            return nc.run_sensor(sensor, pcap, tmp, timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode("utf-8", "replace") if e.stderr else ""
            return {"rc": None, "stderr": err, "raw": b"", "seconds": float(RUN_TIMEOUT)}


def _ndpi_job(pcap):
    with tempfile.TemporaryDirectory(prefix="fh-ndpi-") as tmp:
        try:
            flows, secs = nc.run_ndpireader(pcap, tmp, timeout=RUN_TIMEOUT)
            return {"flows": flows, "seconds": secs, "error": None}
        except Exception as e:  # reported by the agreement test
            return {"flows": None, "seconds": 0.0, "error": "%s: %s" % (type(e).__name__, e)}


@pytest.fixture(scope="module")
def corpus(sensor_bin):
    """Runs the sensor (and ndpiReader when installed) once on every capture, 2 at a time.
    Returns {name: {"sensor": run_sensor() dict, "ndpi": {...} or None}, "_seconds": wall}."""
    have_ndpi = nc.ndpireader_available()
    t0 = time.monotonic()
    # Largest first: the 25 MB capture should not be the last job of the pool.
    order = sorted(range(len(PCAPS)), key=lambda i: -os.path.getsize(PCAPS[i]))
    out = {}
    with ThreadPoolExecutor(2) as ex:
        jobs = []
        for i in order:
            jobs.append((NAMES[i], "sensor", ex.submit(_sensor_job, sensor_bin, PCAPS[i])))
            if have_ndpi:
                jobs.append((NAMES[i], "ndpi", ex.submit(_ndpi_job, PCAPS[i])))
        for name, kind, fut in jobs:
            out.setdefault(name, {"sensor": None, "ndpi": None})[kind] = fut.result()
    out["_seconds"] = time.monotonic() - t0
    out["_have_ndpi"] = have_ndpi
    return out


def _crash_text(rc):
    if rc is None:
        return "no exit within %d s (killed)" % RUN_TIMEOUT
    if rc < 0:
        try:
            return "killed by %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit status %d" % rc


@pytest.mark.parametrize("name", NAMES)
def test_corpus_pcap(corpus, name, validator):
    r = corpus[name]["sensor"]
    assert r["rc"] == 0, "fenghuo-sensor -r %s: %s\nstderr:\n%s" % (
        name, _crash_text(r["rc"]), r["stderr"][-4000:])
    for mark in SANITIZER_MARKS:
        assert mark not in r["stderr"], "sanitizer report on %s:\n%s" % (name, r["stderr"][-6000:])
    try:
        events = nc.parse_events(r["raw"])
    except ValueError as e:
        pytest.fail("%s: output is not NDJSON: %s" % (name, e))
    assert events, "%s: no output at all" % name
    validator(events, what="%s event" % name)
    types = [e["event_type"] for e in events]
    assert types.count("stats") == 1 and types[-1] == "stats", \
        "%s: expected exactly one stats event, as the last line" % name


@pytest.fixture(scope="module")
def comparison(corpus):
    """[(name, PcapResult)] for every capture the sensor and ndpiReader both ran on."""
    if not corpus["_have_ndpi"]:
        pytest.skip("ndpiReader not installed (Debian package libndpi-bin; `make deps`)")
    errors = ["%s: %s" % (n, corpus[n]["ndpi"]["error"]) for n in NAMES
              if corpus[n]["ndpi"]["error"]]
    assert not errors, "ndpiReader failed:\n" + "\n".join(errors)
    results = []
    for name, pcap in zip(NAMES, PCAPS):
        r = corpus[name]["sensor"]
        if r["rc"] != 0:
            continue  # test_corpus_pcap reports it
        ours = nc.sensor_flows(nc.parse_events(r["raw"]))
        results.append((name, nc.compare_pcap(name, ours, corpus[name]["ndpi"]["flows"], pcap)))
    return results


def test_ndpi_agreement(corpus, comparison, capsys):
    text, tot = nc.format_report(comparison)
    crashed = [n for n in NAMES if corpus[n]["sensor"]["rc"] != 0]
    slow = sorted(((corpus[n]["sensor"]["seconds"], n) for n in NAMES), reverse=True)[:3]
    text += "\n\nRuns: %d captures, sensor + ndpiReader, wall %.1f s; slowest sensor runs: %s" % (
        len(NAMES), corpus["_seconds"], ", ".join("%s %.1f s" % (n, s) for s, n in slow))
    if crashed:
        text += "\nNOT COMPARED (the sensor failed): " + ", ".join(crashed)
    with capsys.disabled():
        print("\n" + text)
    agree, den, pct = nc.agreement(tot)
    assert den > 0, "no flow reported by both tools"
    assert pct >= AGREEMENT_MIN, (
        "application protocol agrees with ndpiReader on %d of %d flows (%.2f%% < %.0f%%); "
        "the report above lists every disagreement" % (agree, den, pct, AGREEMENT_MIN))


def test_splits_justified(comparison):
    bad = [(name, d) for name, res in comparison for d in res.splits if d[3] == "UNEXPLAINED"]
    assert not bad, (
        "the sensor split these flows without an idle timeout or FIN/RST between the parts "
        "(flow table: same key, several flow events):\n" + "\n".join(
            "  %s: %s" % (name, nc.describe("SPLIT", d)) for name, d in bad))


def test_deterministic(corpus, sensor_bin):
    pcap = os.path.join(PCAP_ROOT, DETERMINISM_PCAP)
    if not os.path.exists(pcap):
        pytest.skip("%s not in the corpus" % DETERMINISM_PCAP)
    with ThreadPoolExecutor(2) as ex:
        runs = list(ex.map(lambda _: _sensor_job(sensor_bin, pcap), range(2)))
    runs.insert(0, corpus[DETERMINISM_PCAP]["sensor"])
    for i, r in enumerate(runs):
        assert r["rc"] == 0, "run %d on %s: %s\n%s" % (i, DETERMINISM_PCAP, _crash_text(r["rc"]),
                                                      r["stderr"][-2000:])
    first = runs[0]["raw"]
    assert len(first.splitlines()) > 100, "too little output to say anything"
    # With worker threads, events of different flows may come in another order; the
    # events themselves, and each flow's order, may not change.
    for i, r in enumerate(runs[1:], 1):
        diffs = fhlib.compare_runs(nc.parse_events(first), nc.parse_events(r["raw"]))
        if diffs:
            pytest.fail("run %d of %s differs from run 0:\n  %s" % (
                i, DETERMINISM_PCAP, "\n  ".join(diffs)))


def _corpus_run(sensor_bin, threads, tmp):
    """One sensor process over every corpus capture (-r a b c ...), with --threads N."""
    out = os.path.join(tmp, "t%d.ndjson" % threads)
    p = subprocess.run([sensor_bin, "-q", "--threads", str(threads), "-w", out, "-r"] + PCAPS,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=RUN_TIMEOUT)
    assert p.returncode == 0, "--threads %d: exit %d\n%s" % (threads, p.returncode,
                                                            p.stderr.decode()[-2000:])
    with open(out, "rb") as f:
        return nc.parse_events(f.read())


# nDPI keeps caches in each detection module and classifies some flows from what it saw on
# earlier flows (STUN endpoints, Ookla servers, ...). The sensor sends all flows between two
# hosts to the same worker, which keeps those caches equal for almost all traffic, but a
# cache keyed by one endpoint (STUN) or one whose slots collide can still see a different
# history. Only the classification of such flows (and the stats event's counts of
# classifications) may differ; nothing else may.
NDPI_CLASSIFICATION = (("ndpi",), ("app_proto",), ("stats", "app_proto"), ("stats", "dpi"))


def test_threads_same_events(sensor_bin):
    """1 worker and 3 worker threads (more than the 2 cores CI has, so queues fill and
    threads wait) give the same events on the real corpus, each flow's in the same order."""
    if not PCAPS:
        pytest.skip("no corpus under %s" % PCAP_ROOT)
    with tempfile.TemporaryDirectory(prefix="fh-threads-") as tmp:
        one = _corpus_run(sensor_bin, 1, tmp)
        three = _corpus_run(sensor_bin, 3, tmp)
    assert len(one) > 10000, "too little output to say anything: %d events" % len(one)
    last = [e for e in three if e["event_type"] == "stats"][-1]["stats"]["workers"]
    assert last["threads"] == 3 and len(last["per_thread"]) == 3, last
    assert all(w["packets"] > 0 for w in last["per_thread"]), "a worker got nothing: %s" % last
    assert [e for e in one if e["event_type"] == "stats"][-1]["stats"]["workers"] == {"threads": 0}
    # Everything but the nDPI classification: identical, each flow's events in order.
    diffs = fhlib.compare_runs(one, three, drop=NDPI_CLASSIFICATION)
    assert not diffs, "1 vs 3 threads:\n  " + "\n  ".join(diffs)
    # The classification: the same for all but a handful of flows nDPI classifies from its
    # caches; each such flow is listed.
    flows = lambda evs: {e["flow_id"]: (e.get("app_proto"), e.get("ndpi", {}).get("app_protocol"))
                         for e in evs if e["event_type"] == "flow"}
    fa, fb = flows(one), flows(three)
    assert fa.keys() == fb.keys()
    differ = sorted(k for k in fa if fa[k] != fb[k])
    assert len(differ) <= len(fa) // 1000, (
        "%d of %d flows classified differently with 1 and 3 threads (at most 0.1%% expected):"
        "\n  %s" % (len(differ), len(fa), "\n  ".join("%s: %s vs %s" % (k, fa[k], fb[k])
                                                      for k in differ[:20])))
