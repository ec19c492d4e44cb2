#!/usr/bin/env bash
# bench/bench.sh BUILD_DIR - throughput and memory of fenghuo-sensor against ndpiReader.
#
# Builds (once) a large capture of many distinct flows from the shared benchmark pcaps,
# runs BUILD_DIR/bin/fenghuo-sensor in four configurations and Debian's ndpiReader (same
# nDPI 4.2, one thread) on it, FH_BENCH_RUNS times each, and prints the median wall time,
# packets/s, the ratio to ndpiReader and the peak RSS. The table also goes to
# build/bench/results.txt. Timings are reported, never asserted: the script fails only when
# a tool is missing or a run fails. See bench/README.md.
#
# Environment (all optional):
#   FH_BENCH_COPIES  copies of the base capture in the big one (default 5, ~418k packets)
#   FH_BENCH_RUNS    runs per configuration (default 3; the median is reported)
#   FH_BENCH_DIR     work directory (default <repo>/build/bench)
#   FH_BENCH_PROFILE 1 (default) = also perf stat / perf record the sensor if perf works; 0 = skip
#   FH_SHARED        shared data directory (default <repo>/../shared/data)
#   FH_GEOIP         GeoIP directory with country.mmdb and asn.mmdb (default <repo>/build/geoip)
set -euo pipefail

usage() {
    echo "usage: $0 BUILD_DIR   (the sensor is BUILD_DIR/bin/fenghuo-sensor)" >&2
    exit 2
}
[ $# -eq 1 ] || usage
case "$1" in -h | --help) usage ;; esac

die() {
    echo "bench: $*" >&2
    exit 1
}

BUILD_DIR=$(cd "$1" 2>/dev/null && pwd) || die "no such build directory: $1"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SENSOR=$BUILD_DIR/bin/fenghuo-sensor
SHARED=${FH_SHARED:-$ROOT/../shared/data}
BENCH_DIR=${FH_BENCH_DIR:-$ROOT/build/bench}
GEOIP_DIR=${FH_GEOIP:-$ROOT/build/geoip}
COPIES=${FH_BENCH_COPIES:-5}
RUNS=${FH_BENCH_RUNS:-3}
PROFILE=${FH_BENCH_PROFILE:-1}

[[ $COPIES =~ ^[1-9][0-9]*$ ]] || die "FH_BENCH_COPIES must be a positive integer"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "FH_BENCH_RUNS must be a positive integer"
[ -x "$SENSOR" ] || die "$SENSOR not found: build it first (make all BUILD=...)"
for t in tcprewrite editcap mergecap capinfos ndpiReader; do
    command -v "$t" >/dev/null || die "'$t' not found: run 'make deps' (packages tcpreplay, tshark, libndpi-bin)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found: run 'make deps' (package time)"

MIX=$SHARED/pcap/bench/ndpi-merged-ethernet-mix.pcap
BROWSING=$SHARED/pcap/bench/pcapplusplus-example-browsing.pcap
for f in "$MIX" "$BROWSING"; do
    [ -f "$f" ] || die "benchmark input missing: $f (set FH_SHARED)"
done

mkdir -p "$BENCH_DIR"
TMP=$(mktemp -d "$BENCH_DIR/.run.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---- 1. the capture ------------------------------------------------------------------
#
# base = the merged nDPI mix + the browsing capture, merged by time. Copy 0 is base as is;
# copy k (k >= 1) has every IPv4/IPv6 address rewritten by `tcprewrite --seed=k` (a
# deterministic per-address mapping, checksums fixed) so its flows are distinct from every
# other copy's, and its timestamps shifted by k ms so the copies run side by side in time
# (like K sites seen at once) instead of replaying the same history one after another.
# mergecap then merges the copies by timestamp.

BIG=$BENCH_DIR/bench-x$COPIES.pcap
if [ ! -s "$BIG" ]; then
    echo "bench: building $BIG ($COPIES copies; once, kept for later runs)"
    W=$TMP/gen
    mkdir -p "$W"
    mergecap -F pcap -w "$W/base.pcap" "$MIX" "$BROWSING"
    parts=("$W/base.pcap")
    for ((k = 1; k < COPIES; k++)); do
        tcprewrite --seed="$k" -i "$W/base.pcap" -o "$W/seed$k.pcap" >>"$W/tcprewrite.log" 2>&1 ||
            { tail -5 "$W/tcprewrite.log" >&2; die "tcprewrite failed"; }
        editcap -F pcap -t "$(printf '0.%03d' "$k")" "$W/seed$k.pcap" "$W/copy$k.pcap"
        rm -f "$W/seed$k.pcap"
        parts+=("$W/copy$k.pcap")
    done
    mergecap -F pcap -w "$BIG.tmp" "${parts[@]}"
    mv "$BIG.tmp" "$BIG"
    rm -rf "$W"
fi
PKTS=$(capinfos -M -c "$BIG" | awk -F': *' '/Number of packets/ {print $2}')
BYTES=$(stat -c %s "$BIG")
[[ $PKTS =~ ^[0-9]+$ ]] || die "cannot count the packets of $BIG"

# ---- GeoIP ---------------------------------------------------------------------------

if [ -s "$GEOIP_DIR/country.mmdb" ] && [ -s "$GEOIP_DIR/asn.mmdb" ]; then
    GEO_COUNTRY=$GEOIP_DIR/country.mmdb
    GEO_ASN=$GEOIP_DIR/asn.mmdb
    GEO_NOTE="$GEOIP_DIR/{country,asn}.mmdb (the embedded default data)"
else
    GEO_COUNTRY=$SHARED/mmdb/GeoLite2-Country-Test.mmdb
    GEO_ASN=$SHARED/mmdb/GeoLite2-ASN-Test.mmdb
    [ -s "$GEO_COUNTRY" ] && [ -s "$GEO_ASN" ] || die "no GeoIP data: neither $GEOIP_DIR nor $SHARED/mmdb"
    GEO_NOTE="MaxMind test DBs $SHARED/mmdb/GeoLite2-{Country,ASN}-Test.mmdb (FALLBACK: $GEOIP_DIR missing; few addresses match)"
fi
GEO_ARGS=(--geoip-country "$GEO_COUNTRY" --geoip-asn "$GEO_ASN")

# ---- 2. runs -------------------------------------------------------------------------

cat "$BIG" >/dev/null # page cache: every run reads the file from memory

# run NAME CMD... : RUNS timed runs; sets R_WALL (median s), R_MIN, R_MAX, R_RSS (max KiB),
# R_USER, R_SYS (of the median run); the last run's stderr stays in $TMP/NAME.err.
run() {
    local name=$1 i t0 t1 walls=() line
    shift
    : >"$TMP/$name.runs"
    for ((i = 0; i < RUNS; i++)); do
        t0=$(date +%s%N)
        if ! /usr/bin/time -f '%M %U %S' -o "$TMP/$name.time" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"; then
            echo "bench: run '$name' failed: $*" >&2
            tail -5 "$TMP/$name.err" "$TMP/$name.time" >&2 || true
            exit 1
        fi
        t1=$(date +%s%N)
        echo "$(((t1 - t0) / 1000)) $(tail -1 "$TMP/$name.time")" >>"$TMP/$name.runs"
    done
    line=$(sort -n "$TMP/$name.runs" | sed -n "$(((RUNS + 1) / 2))p")
    read -r R_WALL _ R_USER R_SYS <<<"$line"
    R_WALL=$(awk -v u="$R_WALL" 'BEGIN {printf "%.3f", u / 1e6}')
    R_MIN=$(sort -n "$TMP/$name.runs" | awk 'NR == 1 {printf "%.3f", $1 / 1e6}')
    R_MAX=$(sort -n "$TMP/$name.runs" | awk 'END {printf "%.3f", $1 / 1e6}')
    R_RSS=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$TMP/$name.runs")
}

# sensor_counts NAME: flows and events from the sensor's summary line.
sensor_counts() {
    local s
    s=$(grep -Eo '[0-9]+ packets, [0-9]+ flows, [0-9]+ events written' "$TMP/$1.err" | tail -1) ||
        die "no summary line from the sensor in run '$1'"
    C_FLOWS=$(awk '{print $3}' <<<"$s")
    C_EVENTS=$(awk '{print $5}' <<<"$s")
}

ROWS=()
# row LABEL FLOWS EVENTS
row() {
    ROWS+=("$1|$R_WALL|$R_MIN|$R_MAX|$R_USER|$R_SYS|$R_RSS|$2|$3")
}

echo "bench: $PKTS packets in $BIG; $RUNS runs per configuration"

run ndpi ndpiReader -q -i "$BIG"
# -q prints nothing: count the flows in one more, untimed, run.
ndpiReader -i "$BIG" >"$TMP/ndpi.full" 2>&1 || die "ndpiReader failed"
NDPI_FLOWS=$(awk '/Unique flows:/ {print $3; exit}' "$TMP/ndpi.full")
NDPI_WALL=$R_WALL
row "ndpiReader -q (1 thread)" "${NDPI_FLOWS:-?}" "-"

# sensor_row NAME LABEL [OPTIONS...]: times the sensor with OPTIONS and adds a row.
sensor_row() {
    local name=$1 label=$2
    shift 2
    run "$name" "$SENSOR" -r "$BIG" -w /dev/null "$@"
    sensor_counts "$name"
    row "$label" "$C_FLOWS" "$C_EVENTS"
}
sensor_row full "fenghuo DPI + GeoIP" "${GEO_ARGS[@]}"
sensor_row nogeo "fenghuo DPI, no GeoIP"
sensor_row nodpi "fenghuo GeoIP, no DPI" "${GEO_ARGS[@]}" --set dpi.enabled=false
sensor_row bare "fenghuo no DPI, no GeoIP" --set dpi.enabled=false

# ---- 3. table ------------------------------------------------------------------------

SENSOR_VERSION=$("$SENSOR" --version 2>/dev/null | head -1 || echo unknown)
NDPI_VERSION=$(dpkg-query -W -f '${Version}' libndpi-bin 2>/dev/null || echo unknown)
{
    echo "Fenghuo benchmark  $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    echo "host:    $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
    echo "sensor:  $SENSOR ($SENSOR_VERSION)"
    echo "nDPI:    ndpiReader from libndpi-bin $NDPI_VERSION, one thread (-n is ignored for pcap files)"
    echo "capture: $BIG"
    echo "         $PKTS packets, $((BYTES / 1000000)) MB, $COPIES copies (see bench/README.md)"
    echo "GeoIP:   $GEO_NOTE"
    echo "timing:  wall clock, median of $RUNS runs (min-max); user/sys CPU of the median run;"
    echo "         RSS = peak resident memory, largest of the runs; output -w /dev/null"
    echo
    printf '%-26s %8s %17s %11s %9s %7s %7s %9s %8s %8s\n' \
        configuration "wall s" "(min-max)" "packets/s" "vs nDPI" "user s" "sys s" "RSS MiB" flows events
    for r in "${ROWS[@]}"; do
        IFS='|' read -r label wall mn mx usr sys rss flows events <<<"$r"
        awk -v l="$label" -v w="$wall" -v mn="$mn" -v mx="$mx" -v u="$usr" -v s="$sys" \
            -v rss="$rss" -v f="$flows" -v e="$events" -v p="$PKTS" -v nw="$NDPI_WALL" 'BEGIN {
                printf "%-26s %8.3f %17s %11.0f %8.2fx %7.2f %7.2f %9.1f %8s %8s\n",
                    l, w, "(" mn "-" mx ")", p / w, nw / w, u, s, rss / 1024, f, e }'
    done
    echo
    echo "vs nDPI = fenghuo packets/s / ndpiReader packets/s (above 1: the sensor is faster)."
    echo "Flows are each tool's own count (the sensor keeps ICMP per host pair, splits reused"
    echo "TCP ports, etc.); events = NDJSON lines written (flow events + one stats event)."
} >"$TMP/table"

# ---- 4. optional profile ---------------------------------------------------------------

if [ "$PROFILE" = 1 ] && command -v perf >/dev/null && perf stat -e instructions true >/dev/null 2>&1; then
    {
        echo
        echo "Instructions per packet (perf stat, one run each; steadier than wall time):"
        # ipp LABEL CMD...: instructions per packet of one run.
        ipp() {
            local label=$1
            shift
            if perf stat -x, -e instructions -o "$TMP/stat" "$@" >/dev/null 2>&1; then
                awk -F, -v l="$label" -v p="$PKTS" '$3 ~ /^instructions/ {
                    printf "  %-26s %8.0f\n", l, $1 / p }' "$TMP/stat"
            else
                echo "  $label: perf stat failed"
            fi
        }
        ipp "ndpiReader -q" ndpiReader -q -i "$BIG"
        ipp "fenghuo DPI + GeoIP" "$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}"
        ipp "fenghuo no DPI, no GeoIP" "$SENSOR" -r "$BIG" -w /dev/null --set dpi.enabled=false
        if perf record -e cpu-clock -F 2000 -o "$TMP/perf.data" \
            "$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}" >/dev/null 2>&1; then
            echo
            echo "Hot spots of fenghuo DPI + GeoIP (perf record -e cpu-clock, self time):"
            perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,symbol 2>/dev/null |
                grep -E '^ +[0-9]' | head -25 | sed 's/^/  /'
        fi
    } >>"$TMP/table" || true
fi

cat "$TMP/table"
cp "$TMP/table" "$BENCH_DIR/results.txt"
echo
echo "bench: results written to $BENCH_DIR/results.txt"
