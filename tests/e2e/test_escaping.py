"""Attacker-controlled strings: the escaping case's output must be valid JSON on every line,
carry no raw control characters, and decode to the packet bytes with each invalid UTF-8 byte
replaced by U+FFFD."""

import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "traffic"))
import gen_pcaps  # noqa: E402


def expected(b):
    """Decoding the docs ask for: valid UTF-8 passes, each invalid byte -> U+FFFD.
    (Python's 'replace' does the same for these bytes: ff -> FFFD, c3 28 -> FFFD '('.)"""
    out, i = [], 0
    while i < len(b):
        for n in (4, 3, 2, 1):
            try:
                out.append(b[i:i + n].decode("utf-8"))
                i += n
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


@pytest.fixture(scope="module")
def run(sensor_run, testdata):
    r = sensor_run(["-r", os.path.join(testdata, "pcap", "escaping.pcap"),
                    "--sensor-id", "esc", "--segment", "s"])
    assert r.returncode == 0, r.stderr
    return r


def test_expected_helper():
    assert expected(b"a\xff\xc3(\xe6\x94\xbf") == "a\ufffd\ufffd(\u653f"
    assert expected(gen_pcaps.ESC_HOST) == gen_pcaps.ESC_HOST.decode("utf-8", "replace")


def test_every_line_is_json(run):
    assert run.lines
    for i, line in enumerate(run.lines, 1):
        try:
            line.decode("utf-8")            # strict: the output itself is valid UTF-8
            json.loads(line)
        except ValueError as e:
            pytest.fail("line %d: %s: %r" % (i, e, line[:400]))


def test_no_raw_control_bytes(run):
    body = run.raw[:-1] if run.raw.endswith(b"\n") else run.raw
    for line in body.split(b"\n"):
        bad = sorted({c for c in line if c < 0x20 or c == 0x7F})
        assert not bad, "raw control bytes %s in %r" % ([hex(c) for c in bad], line[:300])
    assert b"\xff" not in run.raw


def test_decoded_strings(run):
    flows = [e for e in run.events() if e["event_type"] == "flow"]
    assert len(flows) == 1
    f = flows[0]
    http = f.get("http", {})
    assert http.get("hostname") == expected(gen_pcaps.ESC_HOST)
    assert http.get("url") == expected(gen_pcaps.ESC_URL)
    assert http.get("http_user_agent") == expected(gen_pcaps.ESC_UA)
    assert f.get("ndpi", {}).get("hostname") == expected(gen_pcaps.ESC_HOST)
    assert "政务云" in http["hostname"]


def test_http_event_strings(run):
    """The separate http event carries the same attacker-controlled strings, escaped alike."""
    evs = [e for e in run.events() if e["event_type"] == "http"]
    assert len(evs) == 1
    http = evs[0]["http"]
    assert http.get("hostname") == expected(gen_pcaps.ESC_HOST)
    assert http.get("url") == expected(gen_pcaps.ESC_URL)
    assert http.get("http_user_agent") == expected(gen_pcaps.ESC_UA)
    assert http.get("http_method") == "GET" and http.get("status") == 200
    line = [l for l in run.lines if b'"event_type":"http"' in l.replace(b" ", b"")][0]
    assert b'/a\\"b\\\\c\\u0001d\\u001be\\rf' in line.lower()


def test_escapes_are_json_standard(run):
    """Quotes/backslashes are escaped; control characters appear as \\u00XX or \\r."""
    line = [l for l in run.lines if b'"event_type":"flow"' in l.replace(b" ", b"")][0]
    assert b'evil\\"q\\\\b' in line
    assert b"\\u0001" in line.lower()
    assert b"\\u001b" in line.lower()
    assert b"\\r" in line
    assert "政务云".encode() in line or b"\\u653f" in line.lower()
