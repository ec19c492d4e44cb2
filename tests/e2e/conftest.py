"""Fixtures for the sensor's end-to-end tests.

Run with Debian's Python (it has scapy, jsonschema, pytest, yaml):

    make test-e2e                       # builds, makes the test data, runs this suite
    /usr/bin/python3 -m pytest -q tests/e2e

Environment (the Makefile sets them; the defaults suit a run from the repository root):
    FH_BUILD     build folder holding bin/fenghuo-sensor      (default: build)
    FH_TESTDATA  generated test data: pcap/, geoip/           (default: build/testdata)
    FH_GEOIP     real GeoIP data from `make geoip-data`       (default: build/geoip)
    FH_SHARED    the shared corpus (../shared/data)           (default: ../shared/data)

Relative paths are taken from the repository root. When $FH_TESTDATA/pcap is missing the
pcaps are generated on the fly (tests/traffic/gen_pcaps.py), and the GeoIP test databases
likewise (tests/tools/build-test-mmdb.pl), so a plain pytest run works after `make`.
"""

import glob
import json
import os
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import fhlib  # noqa: E402

SCHEMA_PATH = os.path.join(REPO, "sensor", "schema", "fenghuo-event.schema.json")
SENSOR_TIMEOUT = 120


def _env_path(name, default):
    p = os.environ.get(name) or default
    return p if os.path.isabs(p) else os.path.join(REPO, p)


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def build_dir():
    return _env_path("FH_BUILD", "build")


@pytest.fixture(scope="session")
def shared():
    """$FH_SHARED: the shared corpus (tests that need it skip when it is absent)."""
    return _env_path("FH_SHARED", os.path.join("..", "shared", "data"))


@pytest.fixture(scope="session")
def sensor_bin(build_dir):
    path = os.path.join(build_dir, "bin", "fenghuo-sensor")
    if not os.access(path, os.X_OK):
        pytest.skip("sensor binary %s not built (run `make`)" % path)
    return path


@pytest.fixture(scope="session")
def correlator(build_dir):
    path = os.path.join(build_dir, "bin", "fenghuo-correlator")
    if not os.access(path, os.X_OK):
        pytest.skip("fenghuo-correlator not built")
    return path


@pytest.fixture(scope="session")
def console(build_dir):
    path = os.path.join(build_dir, "bin", "fenghuo-console")
    if not os.access(path, os.X_OK):
        pytest.skip("fenghuo-console not built")
    return path


@pytest.fixture(scope="session")
def testdata():
    """$FH_TESTDATA, with pcap/ (and geoip/ when the builder exists) generated if missing."""
    root = _env_path("FH_TESTDATA", os.path.join("build", "testdata"))
    pcapdir = os.path.join(root, "pcap")
    if not os.path.isdir(pcapdir) or not os.listdir(pcapdir):
        os.makedirs(pcapdir, exist_ok=True)
        subprocess.run([sys.executable, os.path.join(REPO, "tests", "traffic", "gen_pcaps.py"),
                        pcapdir], check=True)
    geodir = os.path.join(root, "geoip")
    builder = os.path.join(REPO, "tests", "tools", "build-test-mmdb.pl")
    if not os.path.exists(os.path.join(geodir, "expected.json")) and os.path.exists(builder):
        os.makedirs(geodir, exist_ok=True)
        subprocess.run(["perl", builder, geodir], check=True)
    return root


@pytest.fixture(scope="session")
def placeholders(testdata):
    """Values for {name} placeholders in case.yaml args and config."""
    return {
        "testdata": testdata,
        "pcapdir": os.path.join(testdata, "pcap"),
        "geoip": _env_path("FH_GEOIP", os.path.join("build", "geoip")),
        "shared": _env_path("FH_SHARED", os.path.join("..", "shared", "data")),
        "repo": REPO,
    }


class SensorRun:
    """What one sensor run produced."""

    def __init__(self, argv, raw, stderr, returncode):
        self.argv = argv
        self.raw = raw              # output file bytes
        self.stderr = stderr        # decoded, errors replaced
        self.returncode = returncode
        self.lines = [l for l in raw.split(b"\n") if l.strip()]

    def events(self):
        out = []
        for i, line in enumerate(self.lines, 1):
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise AssertionError("output line %d is not JSON (%s): %r" % (i, e, line[:300]))
        return out


def _run(sensor_bin, args, config=None, output=True, timeout=SENSOR_TIMEOUT):
    with tempfile.TemporaryDirectory(prefix="fh-e2e-") as tmp:
        argv = [sensor_bin]
        if config is not None:
            cfg = os.path.join(tmp, "sensor.yaml")
            with open(cfg, "w", encoding="utf-8") as f:
                f.write(config)
            argv += ["-c", cfg]
        out = os.path.join(tmp, "out.ndjson")
        argv += list(args)
        if output:
            argv += ["-w", out]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, cwd=tmp)
        raw = b""
        if output and os.path.exists(out):
            with open(out, "rb") as f:
                raw = f.read()
        elif not output:
            raw = p.stdout
        return SensorRun(argv, raw, p.stderr.decode("utf-8", "replace"), p.returncode)


@pytest.fixture(scope="session")
def sensor_run(sensor_bin):
    """sensor_run(args, config=None, output=True) -> SensorRun (raw bytes, stderr, rc).
    With output=True `-w <tmp file>` is appended; otherwise stdout is captured as raw."""
    def run(args, config=None, output=True, timeout=SENSOR_TIMEOUT):
        return _run(sensor_bin, args, config, output, timeout)
    return run


@pytest.fixture(scope="session")
def run_sensor(sensor_bin):
    """run_sensor(args, config=None) -> (events, stderr, returncode).

    config is YAML text (or a dict, dumped to YAML) written to a temp file and passed
    with -c. Output goes to a temp file (-w); events are the parsed lines."""
    import yaml

    def run(args, config=None):
        if isinstance(config, dict):
            config = yaml.safe_dump(config, allow_unicode=True)
        r = _run(sensor_bin, args, config)
        events = r.events() if r.returncode == 0 else []
        return events, r.stderr, r.returncode
    return run


@pytest.fixture(scope="session")
def schema():
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def validator(schema):
    """validator(events) fails the test at the first event that does not validate,
    showing the event, the JSON path of the error and the schema rule."""
    import jsonschema

    v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

    def path_str(p):
        return "$" + "".join("[%d]" % x if isinstance(x, int) else "." + str(x) for x in p)

    def problems(events, what="event", show_event=True):
        """One message per event that does not validate (empty list: all valid)."""
        out = []
        for i, ev in enumerate(events):
            errors = sorted(v.iter_errors(ev), key=lambda e: (len(e.absolute_path), list(e.path)))
            if errors:
                lines = []
                for e in errors[:8]:
                    best = jsonschema.exceptions.best_match([e])
                    lines.append("  at %s: %s   (schema: %s)" % (
                        path_str(best.absolute_path), best.message[:300],
                        "/".join(str(x) for x in best.absolute_schema_path)))
                msg = "%s #%d (%s) does not match the schema:\n%s" % (
                    what, i + 1, ev.get("event_type"), "\n".join(lines))
                if show_event:
                    msg += "\n  event: " + json.dumps(ev, ensure_ascii=False)[:3000]
                out.append(msg)
        return out

    def validate(events, what="event"):
        msgs = problems(events, what)
        if msgs:
            pytest.fail("\n\n".join(msgs), pytrace=False)
        return True
    validate.raw = v
    validate.problems = problems
    return validate


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A PostgreSQL server for the store tests: $FH_TEST_PG when set, else one started
    here with tests/tools/pg.sh (initdb, pg_ctl on a free local port) and stopped at
    the end of the session. Skips when Debian's postgresql is not installed."""
    if os.environ.get("FH_TEST_PG"):
        yield os.environ["FH_TEST_PG"]
        return
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("no PostgreSQL server binaries (make deps installs postgresql)")
    d = tempfile.mkdtemp(prefix="fh-pg.", dir="/tmp")
    script = os.path.join(REPO, "tests", "tools", "pg.sh")
    p = subprocess.run([script, "start", d], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        pytest.fail("starting PostgreSQL failed: " + p.stderr)
    try:
        yield p.stdout.strip()
    finally:
        subprocess.run([script, "stop", d], capture_output=True, timeout=120)
        subprocess.run(["rm", "-rf", d])


def query(target, sql):
    """Rows of sql on an alert store (an SQLite file or a postgresql:// URI) as tuples of
    Python values (int, str, None): the same shape from both backends."""
    if not target.startswith(("postgresql://", "postgres://")):
        import sqlite3
        con = sqlite3.connect("file:%s?mode=ro" % target, uri=True, timeout=5)
        try:
            return [tuple(row) for row in con.execute(sql).fetchall()]
        finally:
            con.close()
    wrapped = "SELECT COALESCE(json_agg(row_to_json(t)), '[]') FROM (%s) t" % sql
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", target, "-c", wrapped],
                       capture_output=True, text=True, check=True)
    return [tuple(r.values()) for r in json.loads(p.stdout)]


class Store:
    """One alert store for a test: an SQLite file or a fresh PostgreSQL database, with
    `target` (what --db takes) and query()."""

    _n = 0

    def __init__(self, backend, tmp_path, pg_uri=None):
        self.backend = backend
        if backend == "sqlite":
            self.target = str(tmp_path / "alerts.db")
        else:
            Store._n += 1
            name = "fh_e2e_%d_%d" % (os.getpid(), Store._n)
            subprocess.run(["psql", "-q", pg_uri, "-c", "CREATE DATABASE " + name], check=True,
                           capture_output=True)
            self.target = pg_uri.rsplit("/", 1)[0] + "/" + name

    def query(self, sql):
        return query(self.target, sql)

    def execute(self, sql):
        """A statement that changes the store (tests that tamper with it)."""
        if self.backend == "sqlite":
            import sqlite3
            con = sqlite3.connect(self.target, timeout=10)
            try:
                con.execute(sql)
                con.commit()
            finally:
                con.close()
        else:
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.target, "-c", sql],
                           check=True, capture_output=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_db(request, tmp_path):
    """The same test on both backends of the store."""
    if request.param == "sqlite":
        return Store("sqlite", tmp_path)
    return Store("postgresql", tmp_path, request.getfixturevalue("pg_server"))
