"""fenghuo-correlator --check-rules: every mistake a rule author can make is reported
with file, line and reason; good rules load; the SigmaHQ network rules in the shared
corpus are each either loaded or refused with a specific reason (counts printed)."""

import collections
import os
import re
import subprocess
import textwrap

import pytest

GOOD = """\
title: Telnet to a server
name: l3_test_telnet
id: 9b0c1f7e-2d0e-4d7b-9d55-4a3f0e6b1a01
status: test
logsource:
  product: fenghuo
  category: flow
detection:
  selection:
    app_proto: telnet
    dest_port|gte: 1
  filter:
    src_ip|cidr: 10.99.0.0/24
  condition: selection and not filter
level: high
tags:
  - gbt22239.8.1.4.1.c
"""

# (file body, expected "line: reason" fragment)
BAD = [
    ("title: x\nlogsource: {product: fenghuo, category: flow}\n"
     "detection:\n  sel:\n    dst_port: 23\n  condition: sel and not flt\n",
     r"6: rule 'x': condition: unknown selection 'flt'"),
    ("title: x\nlogsource: {product: fenghuo, category: flow}\n"
     "detection:\n  sel:\n    Image|endswith: '\\\\cmd.exe'\n  condition: sel\n",
     r"5: rule 'x': field 'Image' is not carried by Fenghuo \(or Suricata EVE\) events"),
    ("title: x\nlogsource: {product: fenghuo, category: flow}\n"
     "detection:\n  sel:\n    dest_ip|base64offset: abc\n  condition: sel\n",
     r"5: rule 'x': unsupported modifier 'base64offset'"),
    ("title: x\nlogsource: {product: fenghuo, category: flow}\n"
     "detection:\n  sel:\n    dest_ip|cidr: 10.0.0/8\n  condition: sel\n",
     r"5: rule 'x': .*10\.0\.0/8"),
    ("title: x\nlogsource: {product: fenghuo, category: flow}\n"
     "detection:\n  sel:\n    http.url|re: 'a(b'\n  condition: sel\n",
     r"5: rule 'x': .*regular expression"),
    ("title: x\nlogsource: {product: fenghuo, category: flow}\n"
     "detection:\n  sel:\n    dest_port: 23\n",
     r"3: rule 'x': detection has no 'condition'"),
    ("title: x\nlogsource: {product: windows, service: security}\n"
     "detection:\n  sel:\n    dest_port: 23\n  condition: sel\n",
     r"2: rule 'x': logsource product 'windows' is not a network sensor"),
    ("logsource: {product: fenghuo}\ndetection:\n  sel: {dest_port: 1}\n  condition: sel\n",
     r"1: missing 'title'"),
    ("title: x\nlogsource: {product: fenghuo, category: flow}\n"
     "detection:\n  sel:\n    dest_port: 23\n  timeframe: 5m\n  condition: sel | count() > 5\n",
     r"6: rule 'x': 'timeframe' in detection is Sigma v1 aggregation"),
    ("title: x\nlogsource: {product: fenghuo, category: flow}\n"
     "detection:\n  sel:\n    dest_port: []\n  condition: sel\n",
     r"5: rule 'x': field 'dest_port' has an empty list of values"),
    ("title: x\nlevel: severe\nlogsource: {product: fenghuo, category: flow}\n"
     "detection:\n  sel: {dest_port: 1}\n  condition: sel\n",
     r"2: rule 'x': unknown level 'severe'"),
    ("title: x\nlogsource: {product: fenghuo, category: flow\n",
     r"\d+: YAML syntax error"),
]



def check(correlator, path):
    return subprocess.run([correlator, "--check-rules", path, "--quiet"], capture_output=True,
                          text=True, timeout=120)


def test_good_rule_loads(correlator, tmp_path):
    (tmp_path / "good.yml").write_text(GOOD)
    p = check(correlator, str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 rules loaded (0 correlation), 0 refused, in 1 files" in p.stdout


@pytest.mark.parametrize("body,expect", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_rule_reported(correlator, tmp_path, body, expect):
    f = tmp_path / "bad.yml"
    f.write_text(body)
    p = check(correlator, str(f))
    assert p.returncode == 1, p.stdout
    first = p.stdout.splitlines()[0]
    assert first.startswith(str(f) + ":"), first
    assert re.search(re.escape(str(f)) + ":" + expect, first), first


def test_one_bad_document_does_not_hide_the_others(correlator, tmp_path):
    (tmp_path / "multi.yml").write_text(GOOD + "---\n" + BAD[0][0] + "---\n" +
                                        GOOD.replace("l3_test_telnet", "other"))
    p = check(correlator, str(tmp_path))
    assert p.returncode == 1
    assert "2 rules loaded (0 correlation), 1 refused, in 1 files" in p.stdout
    # the refused document's line is counted from the start of the file
    assert re.search(r"multi\.yml:%d: rule 'x': condition: unknown selection 'flt'"
                     % (GOOD.count("\n") + 1 + 6), p.stdout), p.stdout


def test_missing_directory(correlator):
    p = check(correlator, "/nonexistent/rules")
    assert p.returncode == 1
    assert "cannot read rules '/nonexistent/rules'" in p.stderr


def test_sigmahq_conformance(correlator, shared):
    """Every SigmaHQ network rule is loaded, or refused with a specific reason."""
    corpus = os.path.join(shared, "sigma")
    if not os.path.isdir(corpus):
        pytest.skip("shared Sigma corpus absent: " + corpus)
    p = check(correlator, corpus)
    assert p.returncode in (0, 1), p.stderr
    lines = p.stdout.splitlines()
    m = re.match(r"(\d+) rules loaded \(\d+ correlation\), (\d+) refused, in (\d+) files",
                 lines[-1])
    assert m, lines[-1]
    loaded, refused, files = map(int, m.groups())
    n_files = sum(1 for root, _, fs in os.walk(corpus) for f in fs
                  if f.endswith((".yml", ".yaml")))
    assert files == n_files
    reasons = collections.Counter()
    for line in lines[:-1]:
        reason = line.split(": ", 2)[-1] if "rule '" not in line else line.split("': ", 1)[1]
        assert reason and "unknown error" not in reason, line
        reasons[re.sub(r"'[^']*'", "'…'", reason)] += 1
    print("\nSigmaHQ network rules: %d files, %d loaded, %d refused" % (files, loaded, refused))
    for r, n in reasons.most_common():
        print("  %4d  %s" % (n, r))
    assert loaded + refused >= files
    assert loaded >= 50, "most DNS, proxy and webserver rules should load"


def test_level3_pack_loads_completely(correlator, repo_root):
    """Every document of the shipped level-3 pack compiles, correlations included."""
    p = check(correlator, os.path.join(repo_root, "rules", "level3"))
    assert p.returncode == 0, p.stdout
    m = re.search(r"(\d+) rules loaded \((\d+) correlation\), 0 refused, in 29 files",
                  p.stdout)
    assert m, p.stdout
    assert int(m.group(2)) >= 10
