"""Runs the sensor on every tests/cases/<case>/case.yaml and evaluates its checks.

case.yaml (the layout of suricata-verify's test.yaml):

    pcap: http.pcap              # in $FH_TESTDATA/pcap (made by tests/traffic/gen_pcaps.py);
                                 # a path with a {placeholder} or an absolute path is used as is
    args: [--geoip-country, "{testdata}/geoip/test-country.mmdb"]   # extra sensor arguments
    config: |                    # optional sensor configuration (YAML text or a mapping),
      flow:                      # written to a temp file and passed with -c
        update_interval: 300
    checks:
      - filter:                  # the number of events matching every key of `match`
          count: 1
          match:
            event_type: flow
            app_proto: http
            flow.pkts_toserver: 6                 # dotted paths into the event
            stats.decoder.errors.ipv4.truncated: 1  # keys may contain dots
            vlan: [200, 300]                      # lists/objects compare exactly
      - same:                    # all events matching `match` have one value of `field`
          match: {event_type: flow}
          field: flow_id
      - distinct:                # ... pairwise different values of `field`
          match: {event_type: flow}
          field: flow_id

Placeholders in pcap/args/config: {testdata} {pcapdir} {geoip} {shared} {repo}.

Match values are compared exactly (true is not 1, 1 is not "1"), or with operators given as
a mapping whose keys all start with "__" (several operators = all must hold):

    {__exists: true|false}   present / absent          {__contains: x}  substring / list item
    {__len: n}               length of str/list/dict   {__in: [a, b]}   one of the values
    {__ge: n} {__gt: n} {__le: n} {__lt: n}            {__ne: x}        absent or not x
    {__re: "regex"}          re.search on a string
    {__community_id: true}   equals the Community ID v1 computed in Python (tests/e2e/fhlib.py)
                             from the event's own src/dest/proto/ports/icmp fields

Checks every case gets without writing them:
  * exit status 0, every line is JSON and validates against sensor/schema (all events);
  * sensor.id / sensor.segment are the ones passed on the command line;
  * exactly one `stats` event, and it is the last line;
  * every flow event's community_id equals the Python Community ID (seed from the config's
    community_id.seed, default 0), flow.start <= flow.end, timestamp == flow.end,
    and age is the whole seconds between start and end.
"""

import datetime
import glob
import json
import math
import os

import pytest
import yaml

import fhlib

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(os.path.dirname(HERE), "cases")
SENSOR_ID = "fh-test-01"
SEGMENT = "e2e-segment"


def case_files():
    return sorted(glob.glob(os.path.join(CASES_DIR, "*", "case.yaml")))


def load_case(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def expand(value, ph):
    if isinstance(value, str):
        for k, v in ph.items():
            value = value.replace("{%s}" % k, v)
        return value
    if isinstance(value, list):
        return [expand(v, ph) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, ph) for k, v in value.items()}
    return value


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def describe(ev, match, ctx):
    """One event as seen by a match: which keys hold, which do not (and their values)."""
    good, bad = [], []
    for k, want in match.items():
        got = fhlib.get_path(ev, k)
        if fhlib.match_value(got, want, ev, ctx):
            good.append(k)
        else:
            bad.append("      %s: expected %s, got %s" % (
                k, json.dumps(want, ensure_ascii=False),
                "<absent>" if got is fhlib.MISSING else json.dumps(got, ensure_ascii=False)))
    return good, bad


def closest(events, match, ctx, n=3):
    scored = []
    pool = list(enumerate(events))
    if "event_type" in match:  # show events of the wanted type when there are any
        same = [(i, ev) for i, ev in pool if fhlib.match_value(ev.get("event_type", fhlib.MISSING),
                                                               match["event_type"], ev, ctx)]
        pool = same or pool
    for i, ev in pool:
        good, bad = describe(ev, match, ctx)
        scored.append((len(good), -i, ev, bad))
    scored.sort(key=lambda x: (-x[0], -x[1]))
    out = []
    for nmatch, negi, ev, bad in scored[:n]:
        out.append("  event #%d (%d/%d keys match)%s\n%s\n      event: %s" % (
            -negi + 1, nmatch, len(match), "" if bad else " [all match]", "\n".join(bad[:15] + (["      ... %d more" % (len(bad) - 15)] if len(bad) > 15 else [])),
            json.dumps(ev, ensure_ascii=False)[:1500]))
    return "\n".join(out)


def selected(events, match, ctx):
    return [ev for ev in events
            if all(fhlib.match_value(fhlib.get_path(ev, k), v, ev, ctx) for k, v in match.items())]


def run_case(path, sensor_run, validator, placeholders):
    name = os.path.basename(os.path.dirname(path))
    case = load_case(path)
    ph = dict(placeholders)
    pcap = expand(case["pcap"], ph)
    if not os.path.isabs(pcap):
        pcap = os.path.join(ph["pcapdir"], pcap)
    if not os.path.exists(pcap):
        pytest.fail("case %s: pcap %s does not exist (make testdata)" % (name, pcap))
    args = [str(a) for a in expand(case.get("args", []), ph)]
    for a in args:
        if a.endswith(".mmdb") and not os.path.exists(a):
            pytest.skip("case %s: test database %s missing (make testdata)" % (name, a))
    config = case.get("config")
    seed = 0
    if config is not None:
        if not isinstance(config, str):
            config = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
        config = expand(config, ph)
        seed = ((yaml.safe_load(config) or {}).get("community_id") or {}).get("seed", 0)
    argv = ["-r", pcap, "--sensor-id", SENSOR_ID, "--segment", SEGMENT] + args
    r = sensor_run(argv, config=config)
    assert r.returncode == 0, "case %s: sensor exited %d\n  argv: %s\n  stderr: %s" % (
        name, r.returncode, " ".join(r.argv), r.stderr.strip())
    events = r.events()
    schema_problems = validator.problems(events, what="event", show_event=False)
    return name, case, events, {"seed": seed, "schema": schema_problems}


def builtin_checks(name, events, ctx):
    problems = []
    stats = [i for i, ev in enumerate(events) if ev.get("event_type") == "stats"]
    if len(stats) != 1 or stats[0] != len(events) - 1:
        problems.append("expected exactly one stats event as the last line, found them at "
                        "lines %s of %d" % ([i + 1 for i in stats], len(events)))
    for i, ev in enumerate(events, 1):
        s = ev.get("sensor", {})
        if s.get("id") != SENSOR_ID or s.get("segment") != SEGMENT:
            problems.append("event #%d: sensor is %r, expected id %r segment %r"
                            % (i, s, SENSOR_ID, SEGMENT))
        if ev.get("event_type") != "flow":
            continue
        want = fhlib.community_id_of_event(ev, ctx["seed"])
        if ev.get("community_id") != want:
            problems.append("event #%d: community_id %s, Python computes %s for %s %s:%s -> %s:%s"
                            % (i, ev.get("community_id"), want, ev.get("proto"), ev.get("src_ip"),
                               ev.get("src_port"), ev.get("dest_ip"), ev.get("dest_port")))
        fl = ev["flow"]
        start, end = parse_ts(fl["start"]), parse_ts(fl["end"])
        if start > end:
            problems.append("event #%d: flow.start %s after flow.end %s" % (i, fl["start"], fl["end"]))
        if ev["timestamp"] != fl["end"]:
            problems.append("event #%d: timestamp %s is not flow.end %s (time of the last packet)"
                            % (i, ev["timestamp"], fl["end"]))
        ages = {math.floor(end - start + 1e-7), int(end) - int(start)}
        if fl["age"] not in ages:
            problems.append("event #%d: flow.age %s, expected %s (end - start in seconds)"
                            % (i, fl["age"], " or ".join(str(a) for a in sorted(ages))))
    return problems


CASES = case_files()


@pytest.mark.parametrize("case_path", CASES,
                         ids=[os.path.basename(os.path.dirname(p)) for p in CASES])
def test_case(case_path, sensor_run, validator, placeholders):
    name, case, events, ctx = run_case(case_path, sensor_run, validator, placeholders)
    failures = ["schema: " + p for p in ctx["schema"]]
    failures += ["builtin: " + p for p in builtin_checks(name, events, ctx)]
    for n, check in enumerate(case.get("checks", []), 1):
        if "filter" in check:
            f = check["filter"]
            match = f.get("match", {})
            got = selected(events, match, ctx)
            if len(got) != f["count"]:
                failures.append(
                    "check %d (filter): expected %d events matching\n    %s\n  found %d. "
                    "Closest events:\n%s" % (n, f["count"], json.dumps(match, ensure_ascii=False),
                                            len(got), closest(events, match, ctx)))
        elif "same" in check or "distinct" in check:
            kind = "same" if "same" in check else "distinct"
            c = check[kind]
            got = selected(events, c.get("match", {}), ctx)
            vals = [json.dumps(fhlib.get_path(ev, c["field"]) if fhlib.get_path(ev, c["field"])
                               is not fhlib.MISSING else None) for ev in got]
            if len(got) < 2:
                failures.append("check %d (%s): needs at least 2 events matching %s, found %d"
                                % (n, kind, json.dumps(c.get("match", {})), len(got)))
            elif kind == "same" and len(set(vals)) != 1:
                failures.append("check %d (same): %s differs across %d events: %s"
                                % (n, c["field"], len(got), ", ".join(vals)))
            elif kind == "distinct" and len(set(vals)) != len(vals):
                failures.append("check %d (distinct): %s repeats across %d events: %s"
                                % (n, c["field"], len(got), ", ".join(vals)))
        else:
            failures.append("check %d: unknown check type %s" % (n, list(check)))
    if failures:
        pytest.fail("case %s: %d of %d checks failed (%d events)\n\n%s" % (
            name, len(failures), len(case.get("checks", [])), len(events),
            "\n\n".join(failures)), pytrace=False)


def test_every_case_has_a_pcap():
    """Each case names a pcap that gen_pcaps.py makes (or a placeholder path)."""
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "traffic"))
    import gen_pcaps
    made = {p.name + ".pcap" for p in gen_pcaps.build_all().values()}
    assert CASES, "no cases found in %s" % CASES_DIR
    for path in CASES:
        case = load_case(path)
        assert "pcap" in case and "checks" in case, path
        if "{" not in case["pcap"] and not os.path.isabs(case["pcap"]):
            assert case["pcap"] in made, "%s: %s is not made by gen_pcaps.py" % (path, case["pcap"])
        for check in case["checks"]:
            for f in [check.get("filter")] + [check.get(k) for k in ("same", "distinct")]:
                for v in (f or {}).get("match", {}).values():
                    if isinstance(v, dict) and v and all(k.startswith("__") for k in v):
                        unknown = set(v) - set(fhlib.OPERATORS)
                        assert not unknown, "%s: unknown operators %s" % (path, unknown)
