"""Helpers for the Kafka tests: the embedded broker as a context manager, kcat."""

import contextlib
import json
import os
import signal
import subprocess
import time


@contextlib.contextmanager
def broker(build_dir, partitions=3, topics=("fenghuo.events",)):
    """Starts fenghuo-broker; yields (bootstrap address, Popen)."""
    args = [os.path.join(build_dir, "bin", "fenghuo-broker"), "--partitions", str(partitions)]
    for t in topics:
        args += ["--topic", t]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line, "fenghuo-broker printed no bootstrap address: %s" % proc.stderr.read()
        yield line, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def consume(bootstrap, topic, expect=None, timeout=30):
    """All messages of a topic as (key, value) pairs, read with kcat from the beginning.

    With `expect`, retries until at least that many messages are there (deliveries may
    still be landing) or the timeout passes.
    """
    deadline = time.time() + timeout
    while True:
        out = subprocess.run(
            ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
             "-m", "5", "-f", "%k\t%s\n"],
            capture_output=True, text=True, timeout=60)
        msgs = []
        for line in out.stdout.splitlines():
            if not line:
                continue
            key, _, value = line.partition("\t")
            msgs.append((key, value))
        if expect is None or len(msgs) >= expect or time.time() > deadline:
            return msgs
        time.sleep(0.5)


def canonical(event):
    """An event as comparable text; stats lose the per-output counters."""
    e = json.loads(event) if isinstance(event, str) else event
    if e.get("event_type") == "stats":
        e = json.loads(json.dumps(e))
        e["stats"].pop("kafka", None)
        e["stats"].pop("output", None)
    return json.dumps(e, sort_keys=True, ensure_ascii=False)
