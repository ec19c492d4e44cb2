"""Live capture on the loopback interface.

The sensor captures on `lo` with a BPF filter that keeps only this test's port, UDP
datagrams are sent to it, and SIGTERM stops the sensor. Expected: periodic stats events
carrying the kernel counters (pcap_stats) and a drop ratio, a flow event for the
traffic (flushed at shutdown), a final stats event, exit status 0, and every event
valid against the schema. Needs root (or CAP_NET_RAW): skipped otherwise.
"""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

PORT = 47999  # only this test's traffic passes the filter


def _can_capture():
    return os.geteuid() == 0


@pytest.mark.skipif(not _can_capture(), reason="live capture needs root or CAP_NET_RAW")
def test_live_loopback(sensor_bin, validator):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "live.json")
        proc = subprocess.Popen(
            [sensor_bin, "-i", "lo", "-f", "udp port %d" % PORT, "-w", out,
             "--set", "stats.interval=1", "--sensor-id", "live-test", "--segment", "lo"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)  # let the capture start
            assert proc.poll() is None, proc.stderr.read().decode()
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for i in range(20):
                sock.sendto(b"fenghuo live test %d" % i, ("127.0.0.1", PORT))
                time.sleep(0.02)
            sock.close()
            time.sleep(2.5)  # at least two stats intervals
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, err.decode()
        with open(out) as f:
            events = [json.loads(line) for line in f if line.strip()]
    validator(events, "live event")
    stats = [e for e in events if e["event_type"] == "stats"]
    flows = [e for e in events if e["event_type"] == "flow"]
    assert len(stats) >= 2, "periodic stats events expected, got %d" % len(stats)
    last = stats[-1]["stats"]
    assert last["capture"]["kernel_packets"] >= 20
    assert last["capture"]["kernel_drops"] == 0
    assert last["capture"]["drop_ratio"] == 0
    assert last["capture"]["packets"] == 20
    assert events[-1]["event_type"] == "stats", "the final stats event closes the output"
    assert len(flows) == 1
    f = flows[0]
    assert f["dest_port"] == PORT and f["proto"] == "UDP"
    assert f["flow"]["pkts_toserver"] == 20 and f["flow"]["pkts_toclient"] == 0
    assert f["flow"]["reason"] == "shutdown"
    assert f["sensor"] == {"id": "live-test", "segment": "lo"}
