"""Command-line behaviour: help/version, clear one-line errors naming the file, determinism."""

import os

import pytest

import fhlib


def _pcap(testdata, name="http.pcap"):
    return os.path.join(testdata, "pcap", name)


def _one_line_error(r, *must_contain):
    """Non-zero exit, a single non-empty stderr line that names what was wrong."""
    assert r.returncode != 0, "expected a failure, exit 0\n  argv: %s" % " ".join(r.argv)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line on stderr, got %d:\n%s" % (len(lines), r.stderr)
    for s in must_contain:
        assert s in lines[0], "stderr %r does not mention %r" % (lines[0], s)
    assert r.raw.strip() == b"" or r.returncode != 0
    return lines[0]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(sensor_run, flag):
    r = sensor_run([flag], output=False)
    assert r.returncode == 0, r.stderr
    text = r.raw.decode("utf-8", "replace") + r.stderr
    for opt in ("-r", "-w", "-c", "--geoip-country", "--sensor-id", "--segment"):
        assert opt in text, "%s missing from --help" % opt


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(sensor_run, flag, repo_root):
    r = sensor_run([flag], output=False)
    assert r.returncode == 0, r.stderr
    version = open(os.path.join(repo_root, "VERSION")).read().strip()
    assert version in r.raw.decode() + r.stderr


def test_missing_pcap(sensor_run, tmp_path):
    missing = str(tmp_path / "no-such-file.pcap")
    _one_line_error(sensor_run(["-r", missing]), missing)


def test_unreadable_pcap(sensor_run, tmp_path):
    txt = tmp_path / "notes.pcap"
    txt.write_text("this is not a capture file\n")
    _one_line_error(sensor_run(["-r", str(txt)]), str(txt))


def test_bad_bpf(sensor_run, testdata):
    line = _one_line_error(sensor_run(["-r", _pcap(testdata), "-f", "port foo"]))
    assert "port foo" in line or "filter" in line.lower() or "bpf" in line.lower(), line


@pytest.mark.parametrize("flag", ["--geoip-country", "--geoip-asn", "--geoip-city"])
def test_missing_geoip_db(sensor_run, testdata, tmp_path, flag):
    missing = str(tmp_path / "missing.mmdb")
    _one_line_error(sensor_run(["-r", _pcap(testdata), flag, missing]), missing)


def test_geoip_db_not_mmdb(sensor_run, testdata, tmp_path):
    bogus = tmp_path / "bogus.mmdb"
    bogus.write_bytes(b"not a maxmind database\n" * 10)
    _one_line_error(sensor_run(["-r", _pcap(testdata), "--geoip-country", str(bogus)]),
                    str(bogus))


def test_missing_config(sensor_run, testdata, tmp_path):
    missing = str(tmp_path / "missing.yaml")
    _one_line_error(sensor_run(["-r", _pcap(testdata), "-c", missing]), missing)


def test_bad_yaml_config(sensor_run, testdata):
    # line 3 has an unclosed flow sequence
    r = sensor_run(["-r", _pcap(testdata)], config="flow:\n  update_interval: 300\n  x: [1, 2\n")
    cfg = [a for a in r.argv if a.endswith("sensor.yaml")][0]
    line = _one_line_error(r, cfg)
    import re
    assert re.search(r"(line |:)[34]\b", line), "no line number in %r" % line


def test_unknown_config_key(sensor_run, testdata):
    r = sensor_run(["-r", _pcap(testdata)], config="flow:\n  update_intervall: 300\n")
    _one_line_error(r, "update_intervall")


def test_unknown_option(sensor_run, testdata):
    r = sensor_run(["-r", _pcap(testdata), "--no-such-option"])
    assert r.returncode != 0
    assert "--no-such-option" in r.stderr


def test_deterministic_output(sensor_run, testdata):
    """Two runs on the same input give the same events (packet time only): byte-identical
    output with one thread; with worker threads the same events, each flow's in order."""
    pcaps = [_pcap(testdata, n) for n in ("http.pcap", "tls-sni.pcap", "malformed.pcap",
                                          "long-flow.pcap", "fragments.pcap")]
    args = ["--sensor-id", "det", "--segment", "s"]
    runs = {}
    for threads in (1, 1, 2, 2):
        r = sensor_run([a for p in pcaps for a in ("-r", p)] + args + ["--threads", str(threads)])
        assert r.returncode == 0, r.stderr
        runs.setdefault(threads, []).append(r)
    assert runs[1][0].raw, "no output"
    assert runs[1][0].raw == runs[1][1].raw
    for r in runs[2] + [runs[1][0]]:
        assert not fhlib.compare_runs(runs[2][0].events(), r.events())


def test_several_inputs_after_one_r(sensor_run, testdata):
    """The documented form `-r PCAP [PCAP|DIR ...]` equals repeating -r."""
    a, b = _pcap(testdata, "http.pcap"), _pcap(testdata, "dns.pcap")
    args = ["--sensor-id", "x", "--segment", "s"]
    one = sensor_run(["-r", a, b] + args)
    assert one.returncode == 0, one.stderr
    two = sensor_run(["-r", a, "-r", b] + args)
    assert two.returncode == 0, two.stderr
    assert not fhlib.compare_runs(one.events(), two.events())
    assert sum(1 for e in one.events() if e["event_type"] == "flow") == 3


def test_directory_input_and_stdout(sensor_run, testdata):
    """-r DIR reads every pcap in it; -w - writes to stdout; every case pcap is accepted."""
    r = sensor_run(["-r", os.path.join(testdata, "pcap"), "-w", "-", "--sensor-id", "d",
                    "--segment", "s"], output=False)
    assert r.returncode == 0, r.stderr
    evs = r.events()
    assert sum(1 for e in evs if e["event_type"] == "flow") >= 30
    assert evs[-1]["event_type"] == "stats"


def test_geoip_cache_consistent(run_sensor, shared, placeholders, validator):
    """The per-worker GeoIP cache (output_eve.c geo_side): on real browsing traffic, where
    the same servers come back in flow after flow, most lookups are answered from it, and
    every event gives an address the same geo object as its first, uncached, lookup did;
    with two workers too."""
    cap = os.path.join(shared, "pcap", "bench", "pcapplusplus-example-browsing.pcap")
    geodir = placeholders["geoip"]  # the sensor's default data (make geoip-data)
    country, asn = os.path.join(geodir, "country.mmdb"), os.path.join(geodir, "asn.mmdb")
    for p in (cap, country, asn):
        if not os.path.exists(p):
            pytest.skip("%s absent" % p)
    for threads in ("1", "2"):
        events, err, rc = run_sensor(["-r", cap, "--geoip-country", country, "--geoip-asn", asn,
                                      "--threads", threads])
        assert rc == 0, err
        validator(events[-1:], "stats event")
        geo = events[-1]["stats"]["geoip"]
        assert geo["errors"] == 0 and geo["lookups"] > 50, geo
        assert geo["cached"] > geo["lookups"] // 2, geo
        seen, repeats = {}, 0
        for e in events:
            for side, ip in (("src", e.get("src_ip")), ("dest", e.get("dest_ip"))):
                g = e.get("geo", {}).get(side)
                if g is None:
                    continue
                if ip in seen:
                    repeats += 1
                    assert seen[ip] == g, (ip, seen[ip], g)
                else:
                    seen[ip] = g
        assert repeats > 20 and len(seen) > 5, (repeats, len(seen))
