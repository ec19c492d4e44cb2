"""Failed logins beyond the per-pcap cases in tests/cases/*-login-failed:

  * sensor -> correlator: ten POP3 sessions from one outside address, each a USER/PASS
    refused with -ERR (login/pop3-bruteforce.pcap), raise one L3-09 brute-force alert,
    and every flow event the correlator reads carries login.failed.
"""

import json
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


@pytest.fixture(scope="module")
def correlator(build_dir):
    path = os.path.join(build_dir, "bin", "fenghuo-correlator")
    if not os.access(path, os.X_OK):
        pytest.skip("fenghuo-correlator not built")
    return path


def test_pop3_bruteforce_raises_l3_09(sensor_bin, correlator, testdata, tmp_path, validator):
    events = tmp_path / "events.ndjson"
    s = subprocess.run([sensor_bin, "-q", "-r",
                        os.path.join(testdata, "pcap", "login", "pop3-bruteforce.pcap"),
                        "-w", str(events)], capture_output=True, text=True, timeout=120)
    assert s.returncode == 0, s.stderr
    evs = [json.loads(l) for l in events.read_text().splitlines() if l.strip()]
    validator(evs)
    flows = [e for e in evs if e["event_type"] == "flow"]
    assert len(flows) == 10
    assert all(f["app_proto"] == "pop3" and f["login"] == {"failed": True} for f in flows), flows
    out = tmp_path / "alerts.json"
    c = subprocess.run(
        [correlator, "--rules", os.path.join(REPO, "rules", "level3"),
         "--assets", os.path.join(REPO, "rules", "assets.example.yaml"),
         "--input", str(events), "--alerts-out", str(out), "--db", str(tmp_path / "a.db")],
        capture_output=True, text=True, timeout=300)
    assert c.returncode == 0, c.stderr
    alerts = {}
    for line in out.read_text().splitlines():
        a = json.loads(line)
        alerts[a["id"]] = a
    brute = [a for a in alerts.values() if a["rule"]["name"] == "l3_09_bruteforce"]
    assert len(brute) == 1, [a["rule"]["name"] for a in alerts.values()]
    assert brute[0]["src"]["ip"] == "45.155.205.233" and brute[0]["dest"]["ip"] == "10.1.1.110"
