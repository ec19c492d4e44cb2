"""Failed logins beyond the per-pcap cases in tests/cases/*-login-failed:

  * sensor -> correlator: ten POP3 sessions from one outside address, each a USER/PASS
    refused with -ERR (login/pop3-bruteforce.pcap), raise one L3-09 brute-force alert,
    and every flow event the correlator reads carries login.failed.
"""

import json
import os
import subprocess

import fhlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))



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
    alerts, _ = fhlib.run_level3(correlator, events, tmp_path)
    brute = [a for a in alerts if a["rule"]["name"] == "l3_09_bruteforce"]
    assert len(brute) == 1, [a["rule"]["name"] for a in alerts]
    assert brute[0]["src"]["ip"] == "45.155.205.233" and brute[0]["dest"]["ip"] == "10.1.1.110"
