"""SIGHUP reloads the rules: a broken new rule set is reported and the running one stays
in force; a good one replaces it, and the window state of unchanged correlation rules
survives (a brute force whose sessions straddle the reload still raises its alert)."""

import json
import os
import shutil
import signal
import subprocess
import time


HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))



def wait_for(pred, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_sighup_reload(correlator, tmp_path):
    rules = tmp_path / "rules" / "level3"
    shutil.copytree(os.path.join(REPO, "rules", "level3"), rules)
    shutil.copytree(os.path.join(REPO, "rules", "lists"), tmp_path / "rules" / "lists")
    events = [line for line in open(os.path.join(REPO, "tests", "rules", "L3-09",
                                                 "events.ndjson")) if line.strip()]
    # the ten sessions of the positive case: 45.155.205.233 -> 10.10.1.10
    attack = [e for e in events if '"src_ip":"45.155.205.233"' in e]
    assert len(attack) == 10
    out = tmp_path / "alerts.json"
    log = open(tmp_path / "stderr.log", "w")
    proc = subprocess.Popen(
        [correlator, "--rules", str(rules), "--assets",
         os.path.join(REPO, "rules", "assets.example.yaml"), "--input", "-",
         "--alerts-out", str(out), "--batch", "1"],
        stdin=subprocess.PIPE, stderr=log, text=True)
    stderr = lambda: open(tmp_path / "stderr.log").read()  # noqa: E731
    try:
        for e in attack[:6]:
            proc.stdin.write(e)
        proc.stdin.flush()
        time.sleep(0.5)
        # 1. a broken rule set: refused, the running one stays
        (rules / "zz_broken.yml").write_text(
            "title: broken\nlogsource: {product: fenghuo, category: flow}\n"
            "detection:\n  sel: {dest_port: 22}\n  condition: sel and nothing\n")
        proc.send_signal(signal.SIGHUP)
        proc.stdin.write(attack[6])  # the reload happens before the next event
        proc.stdin.flush()
        assert wait_for(lambda: "the running rule set stays in force" in stderr()), stderr()
        assert "zz_broken.yml:5: rule 'broken': condition: unknown selection 'nothing'" \
            in stderr()
        # 2. a good rule set with one more rule: accepted, window state kept
        (rules / "zz_broken.yml").unlink()
        (rules / "zz_extra.yml").write_text(
            "title: Extra rule\nname: zz_extra\nlogsource: {product: fenghuo, category: flow}\n"
            "detection:\n  sel: {dest_port: 2222}\n  condition: sel\nlevel: low\n")
        proc.send_signal(signal.SIGHUP)
        proc.stdin.write(attack[7])
        proc.stdin.flush()
        assert wait_for(lambda: "rules reloaded" in stderr()), stderr()
        assert "window state of 0 groups kept" not in stderr(), stderr()
        for e in attack[8:]:
            proc.stdin.write(e)
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, stderr()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    brute = [a for a in alerts if a["rule"].get("name") == "l3_09_bruteforce"]
    assert brute, "the brute force straddling both reloads must still be detected: %s" % (
        sorted({a["rule"].get("name") for a in alerts}),)
    assert "src_ip=45.155.205.233" in brute[-1]["group_key"]
