#!/usr/bin/env bash
# bench/bench.sh BUILD_DIR - throughput and memory of fenghuo-sensor against ndpiReader.
#
# Builds (once) a large capture of many distinct flows from the shared benchmark pcaps,
# runs BUILD_DIR/bin/fenghuo-sensor in eight configurations (two with YARA payload scanning,
# one without the application parsers)
# and Debian's ndpiReader (same nDPI 4.2, one thread) on it, FH_BENCH_RUNS times each, and
# prints the median wall time, packets/s, the ratio to ndpiReader and the peak RSS; the
# parsers on/off and YARA on/off ratios and scan counters; memory per active flow (DPI on/off, YARA on) against
# ndpiReader's memory per flow; then the sensor publishing to Kafka,
# and the correlator's level-3 pack from a file and from Kafka (against kcat -C on the same
# topic). The table also goes to build/bench/results.txt. Timings are reported, never
# asserted: the exit status is 1 only when a tool is missing or a run fails (crash, non-zero
# exit). See bench/README.md.
#
# Environment (all optional):
#   FH_BENCH_COPIES  copies of the base capture in the big one (default 5 = 417,855 packets)
#   FH_BENCH_RUNS    timed runs per configuration (default 3; the median is reported)
#   FH_BENCH_DIR     work directory for the capture and results (default <repo>/build/bench)
#   FH_BENCH_PROFILE 1 (default): also profile the sensor with perf if perf works here; 0: skip
#   FH_BENCH_YARA_LARGE 1 (default): also time the large shared rule set (FH_SHARED/yara/
#                    index.yar, about a minute per run); 0: only the shipped rules/yara
#   FH_BENCH_CONSOLE 1 (default): the console API under wrk with a million alerts, on SQLite
#                    and on a throwaway PostgreSQL (bench/console_bench.py, a few minutes)
#   FH_SHARED        shared data directory (default <repo>/../shared/data)
#   FH_GEOIP         directory holding country.mmdb and asn.mmdb (default <repo>/build/geoip)
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
YARA_LARGE=${FH_BENCH_YARA_LARGE:-1}

[[ $COPIES =~ ^[1-9][0-9]{0,2}$ ]] || die "FH_BENCH_COPIES must be 1..999"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "FH_BENCH_RUNS must be a positive integer"
[ -x "$SENSOR" ] || die "$SENSOR not found: build it first (make all)"
for t in tcprewrite editcap mergecap capinfos ndpiReader; do
    command -v "$t" >/dev/null ||
        die "'$t' not found: run 'make deps' (Debian packages tcpreplay, tshark, libndpi-bin)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time not found: run 'make deps' (Debian package time)"

MIX=$SHARED/pcap/bench/ndpi-merged-ethernet-mix.pcap
BROWSING=$SHARED/pcap/bench/pcapplusplus-example-browsing.pcap
for f in "$MIX" "$BROWSING"; do
    [ -f "$f" ] || die "benchmark input missing: $f (set FH_SHARED)"
done

mkdir -p "$BENCH_DIR"
TMP=$(mktemp -d "$BENCH_DIR/.run.XXXXXX")
KBROKER_PID= # the correlator section's broker, stopped on any exit
trap '[ -z "$KBROKER_PID" ] || kill "$KBROKER_PID" 2>/dev/null; rm -rf "$TMP"' EXIT

# ---- 1. the capture ----------------------------------------------------------------------
#
# base   = mergecap of the nDPI mix (78,940 packets) and the browsing capture (4,631), by time,
#          without Ethernet padding (bench/pcap_unpad.py strip: tcprewrite 4.4.3 would count
#          the padding into the IP length, and every padded ACK would carry data).
# copy 0 = base unchanged.
# copy k = base with every IPv4/IPv6 address rewritten by `tcprewrite --seed=k` (a fixed
#          per-address mapping; checksums fixed), so its flows are distinct from every other
#          copy's, the IP length fields tcprewrite "fixed" on packets the capture cut short
#          put back (pcap_unpad.py restore, which also checks the copy frame by frame), then
#          its timestamps shifted by k ms with `editcap -t`: the copies run side by side in
#          time (K sites seen at once), not one history replayed K times, which would send
#          the clock backwards K times and keep every copy's flows until the end.
# big    = mergecap of all copies by time.

BIG=$BENCH_DIR/bench-x$COPIES.pcap
# The way the capture is built; a capture built another way (BIG.recipe differs) is built again.
RECIPE="3: padding stripped (not from frames whose IPv4 length is 0), IP lengths restored"
if [ ! -s "$BIG" ] || [ "$(cat "$BIG.recipe" 2>/dev/null)" != "$RECIPE" ]; then
    echo "bench: building $BIG ($COPIES copies; done once, kept for later runs)"
    W=$TMP/gen
    mkdir -p "$W"
    mergecap -F pcap -w "$W/merged.pcap" "$MIX" "$BROWSING"
    /usr/bin/python3 "$ROOT/bench/pcap_unpad.py" strip "$W/merged.pcap" "$W/base.pcap" ||
        die "cannot strip the Ethernet padding of $W/merged.pcap"
    rm -f "$W/merged.pcap"
    parts=("$W/base.pcap")
    for ((k = 1; k < COPIES; k++)); do
        tcprewrite --seed="$k" -i "$W/base.pcap" -o "$W/seed$k.pcap" >>"$W/tcprewrite.log" 2>&1 ||
            { tail -5 "$W/tcprewrite.log" >&2; die "tcprewrite --seed=$k failed"; }
        /usr/bin/python3 "$ROOT/bench/pcap_unpad.py" restore "$W/base.pcap" "$W/seed$k.pcap" "$W/fixed$k.pcap" ||
            die "copy $k is not the base capture with other addresses"
        editcap -F pcap -t "$(awk -v k="$k" 'BEGIN {printf "%.3f", k / 1000}')" \
            "$W/fixed$k.pcap" "$W/copy$k.pcap"
        rm -f "$W/seed$k.pcap" "$W/fixed$k.pcap"
        parts+=("$W/copy$k.pcap")
    done
    mergecap -F pcap -w "$BIG.tmp" "${parts[@]}"
    mv "$BIG.tmp" "$BIG"
    echo "$RECIPE" >"$BIG.recipe"
    rm -rf "$W"
fi
PKTS=$(capinfos -M -c "$BIG" | awk -F': *' '/Number of packets/ {print $2}')
[[ $PKTS =~ ^[0-9]+$ ]] || die "cannot count the packets of $BIG"
BYTES=$(stat -c %s "$BIG")

# ---- GeoIP -------------------------------------------------------------------------------

if [ -s "$GEOIP_DIR/country.mmdb" ] && [ -s "$GEOIP_DIR/asn.mmdb" ]; then
    GEO_COUNTRY=$GEOIP_DIR/country.mmdb
    GEO_ASN=$GEOIP_DIR/asn.mmdb
    GEO_NOTE="$GEOIP_DIR/{country,asn}.mmdb (the sensor's default data)"
else
    GEO_COUNTRY=$SHARED/mmdb/GeoLite2-Country-Test.mmdb
    GEO_ASN=$SHARED/mmdb/GeoLite2-ASN-Test.mmdb
    if [ ! -s "$GEO_COUNTRY" ] || [ ! -s "$GEO_ASN" ]; then
        die "no GeoIP data: neither $GEOIP_DIR/{country,asn}.mmdb nor the MaxMind test DBs"
    fi
    GEO_NOTE="FALLBACK $SHARED/mmdb/GeoLite2-{Country,ASN}-Test.mmdb ($GEOIP_DIR has no data; run 'make geoip-data'); these tiny test DBs match few addresses, so lookups are cheaper than with real data"
fi
GEO_ARGS=(--geoip-country "$GEO_COUNTRY" --geoip-asn "$GEO_ASN")
echo "bench: GeoIP data: $GEO_NOTE"

# ---- YARA rule sets -------------------------------------------------------------------------
#
# The shipped rules (a handful) and, when the shared data has it, its index.yar (all 20
# files, ~170 rules): the cost of scanning grows with the rules, so one set alone would
# say little about a real deployment's rule load.

YARA_SHIPPED=$ROOT/rules/yara
[ -d "$YARA_SHIPPED" ] || die "shipped YARA rules missing: $YARA_SHIPPED"
YARA_SHARED=$SHARED/yara/index.yar
YARA_SHARED_NOTE=
if [ "$YARA_LARGE" != 1 ]; then
    YARA_SHARED_NOTE="not timed (FH_BENCH_YARA_LARGE=$YARA_LARGE)"
elif [ ! -s "$YARA_SHARED" ]; then
    YARA_SHARED_NOTE="not timed ($YARA_SHARED missing)"
fi

# ---- 2. runs -------------------------------------------------------------------------------

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
cat "$BIG" >/dev/null # page cache: every run reads the file from memory

# The configurations: NAME, row label, command. Runs are interleaved (round r runs every
# configuration once), so a change in background load hits all rows alike.
# The YARA rows are "DPI + GeoIP" plus the rules, so that row is their "off" peer.
# Every fenghuo row runs with --threads 1 (ndpiReader reads a file on one thread), except
# "2 threads", the same configuration as "DPI + GeoIP" with two worker threads.
NAMES=(ndpi full full2 yara)
[ -n "$YARA_SHARED_NOTE" ] || NAMES+=(yarabig yarabignc yarabignp)
NAMES+=(noapp nogeo nodpi bare)
declare -A LABEL=(
    [ndpi]="ndpiReader -q (1 thread)"
    [full]="fenghuo DPI + GeoIP"
    [full2]="fenghuo DPI + GeoIP, 2 threads"
    [yara]="fenghuo DPI + GeoIP + YARA rules/yara"
    [yarabig]="fenghuo DPI + GeoIP + YARA index.yar"
    [yarabignc]="fenghuo ... YARA index.yar, no clean cache"
    [yarabignp]="fenghuo ... index.yar, no cache, no prefilter"
    [noapp]="fenghuo DPI + GeoIP, no parsers"
    [nogeo]="fenghuo DPI, no GeoIP"
    [nodpi]="fenghuo GeoIP, no DPI"
    [bare]="fenghuo no DPI, no GeoIP"
)
LW=0 # width of the label column: the longest label of the rows run
for n in "${NAMES[@]}"; do ((${#LABEL[$n]} <= LW)) || LW=${#LABEL[$n]}; done
# cmd NAME: sets CMD to the command line of configuration NAME.
cmd() {
    case $1 in
    ndpi) CMD=(ndpiReader -q -i "$BIG") ;;
    full) CMD=("$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}") ;;
    full2) CMD=("$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}" --threads 2) ;;
    yara) CMD=("$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}" --yara-rules "$YARA_SHIPPED") ;;
    yarabig) CMD=("$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}" --yara-rules "$YARA_SHARED") ;;
    yarabignc) CMD=("$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}" --yara-rules "$YARA_SHARED"
        --set yara.clean_cache=0) ;;
    yarabignp) CMD=("$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}" --yara-rules "$YARA_SHARED"
        --set yara.clean_cache=0 --set yara.prefilter=false) ;;
    noapp) CMD=("$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}" --set http.enabled=false
        --set tls.enabled=false --set smb.enabled=false --set dns.enabled=false
        --set ftp.enabled=false --set krb5.enabled=false --set smtp.enabled=false
        --set files.raw_tcp=false) ;;
    nogeo) CMD=("$SENSOR" -r "$BIG" -w /dev/null) ;;
    nodpi) CMD=("$SENSOR" -r "$BIG" -w /dev/null "${GEO_ARGS[@]}" --set dpi.enabled=false) ;;
    bare) CMD=("$SENSOR" -r "$BIG" -w /dev/null --set dpi.enabled=false) ;;
    esac
    case $1 in
    ndpi | full2) ;;
    *) CMD+=(--threads 1) ;;
    esac
}

# run_once NAME: one timed run; appends "wall_us maxrss_kib user_s sys_s" to $TMP/NAME.runs.
# On failure records the reason in $TMP/NAME.fail and prints the tool's last stderr lines.
# Output stays in $TMP/NAME.{out,err,time}.
run_once() {
    local name=$1 t0 t1 st=0 why
    cmd "$name"
    t0=$(date +%s%N)
    /usr/bin/time -f '%M %U %S' -o "$TMP/$name.time" "${CMD[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err" || st=$?
    t1=$(date +%s%N)
    if [ "$st" -ne 0 ]; then
        if grep -q 'terminated by signal' "$TMP/$name.time" 2>/dev/null; then
            why="killed by signal $(grep -o 'signal [0-9]*' "$TMP/$name.time" | head -n 1 | cut -d' ' -f2)"
        else
            why="exit status $st"
        fi
        echo "$why" >"$TMP/$name.fail"
        {
            echo "bench: FAILED ($why): ${CMD[*]}"
            tail -n 5 "$TMP/$name.err" | sed 's/^/  | /'
        } >&2
        return 0
    fi
    echo "$(((t1 - t0) / 1000)) $(tail -n 1 "$TMP/$name.time")" >>"$TMP/$name.runs"
}

echo "bench: $PKTS packets in $BIG; $RUNS interleaved rounds of ${#NAMES[@]} configurations"
for n in "${NAMES[@]}"; do : >"$TMP/$n.runs"; done
for ((r = 1; r <= RUNS; r++)); do
    for n in "${NAMES[@]}"; do
        [ -e "$TMP/$n.fail" ] || run_once "$n"
    done
done

# -q prints nothing: ndpiReader's flow count comes from one more, untimed, run without it.
NDPI_FLOWS='?'
if [ ! -e "$TMP/ndpi.fail" ]; then
    ndpiReader -i "$BIG" >"$TMP/ndpi.full" 2>&1 || true
    NDPI_FLOWS=$(awk '/Unique flows:/ && !n++ {print $3}' "$TMP/ndpi.full")
fi

# stats_get FILE PATH...: the values at the dotted PATHs (e.g. yara.scans) of the last stats
# event in the NDJSON FILE, one line, space-separated; '?' for a missing one. python3 is
# already a dependency (tests); jq is not.
stats_get() {
    local f=$1
    shift
    grep -F '"event_type":"stats"' "$f" 2>/dev/null | tail -n 1 | python3 -c '
import json, sys
line = sys.stdin.readline()
st = json.loads(line)["stats"] if line.strip() else {}
out = []
for path in sys.argv[1:]:
    v = st
    for k in path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    out.append("?" if v is None else str(v))
print(" ".join(out))' "$@"
}

# ---- 2a. threads: how the 2-thread run shared the packets (one more, untimed, run) --------
THREAD_SPLIT=
if [ ! -e "$TMP/full2.fail" ] &&
    "$SENSOR" -q -r "$BIG" -w "$TMP/full2.ndjson" "${GEO_ARGS[@]}" --threads 2 2>/dev/null; then
    THREAD_SPLIT=$(grep -F '"event_type":"stats"' "$TMP/full2.ndjson" | tail -n 1 | python3 -c '
import json, sys
w = json.loads(sys.stdin.readline())["stats"]["workers"]["per_thread"]
print(", ".join("%d (queue full %d times)" % (t["packets"], t["queue_full"]) for t in w))')
fi
rm -f "$TMP/full2.ndjson"

# ---- 2b. YARA: what the timed runs scanned ------------------------------------------------
#
# The timed YARA runs write to /dev/null like the other rows, so their stats event is lost.
# One more, untimed, run with the shipped rules writes its events to a file for the yara
# and reassembly counters. What is scanned does not depend on the rules (a direction's
# buffer is scanned once when full, at FIN/RST or at the flow's end; every UDP payload),
# so scans and bytes are the same with index.yar; only the matches can differ.
FAILED=0 # 1: a run failed or a check did not hold; the exit status
YARA_STATS=
YARA_CHECK=
if [ ! -e "$TMP/yara.fail" ]; then
    if "$SENSOR" -q -r "$BIG" -w "$TMP/yara.ndjson" "${GEO_ARGS[@]}" --threads 1 \
        --yara-rules "$YARA_SHIPPED" 2>"$TMP/yara-stats.err"; then
        YARA_STATS=$(stats_get "$TMP/yara.ndjson" yara.rules yara.scans yara.tcp_scans \
            yara.udp_scans yara.scanned_bytes yara.matches yara.scans_with_gaps yara.timeouts \
            yara.errors yara.drops.memcap reassembly.segments reassembly.delivered_bytes \
            reassembly.gaps reassembly.after_depth_bytes reassembly.memory_peak \
            yara.buffer_memory_peak yara.cache_hits)
        read -r y_rules y_scans _ _ y_bytes _ <<<"$YARA_STATS"
        # A YARA row that scanned nothing measured nothing: fail the benchmark, loudly.
        if ! [[ $y_scans =~ ^[0-9]+$ && $y_bytes =~ ^[0-9]+$ ]] || [ "$y_scans" -eq 0 ] ||
            [ "$y_bytes" -eq 0 ]; then
            YARA_CHECK="NOT SCANNED: the YARA run reports scans=$y_scans, scanned_bytes=$y_bytes (rules=$y_rules)"
        fi
    else
        YARA_CHECK="FAILED: the untimed YARA run exited non-zero: $(tail -n 1 "$TMP/yara-stats.err")"
    fi
    rm -f "$TMP/yara.ndjson"
    # what the prefilter answers with the shared rules, on the big capture and on one copy
    YARA_PF=
    YARA_PF1=
    if [ -z "$YARA_SHARED_NOTE" ]; then
        if "$SENSOR" -q -r "$BIG" -w "$TMP/pf.ndjson" "${GEO_ARGS[@]}" --threads 1 \
            --yara-rules "$YARA_SHARED" --set yara.clean_cache=0 2>/dev/null; then
            YARA_PF=$(stats_get "$TMP/pf.ndjson" yara.scans yara.prefiltered yara.scanned_bytes)
        fi
        if "$SENSOR" -q -r "$MIX" -r "$BROWSING" -w "$TMP/pf.ndjson" "${GEO_ARGS[@]}" --threads 1 \
            --yara-rules "$YARA_SHARED" --set yara.clean_cache=0 2>/dev/null; then
            YARA_PF1=$(stats_get "$TMP/pf.ndjson" yara.scans yara.prefiltered yara.scanned_bytes)
        fi
        rm -f "$TMP/pf.ndjson"
    fi
    if [ -n "$YARA_CHECK" ]; then
        echo "bench: YARA $YARA_CHECK" >&2
        FAILED=1
    fi
fi

# ---- 2b'. YARA start-up -----------------------------------------------------------------
#
# The YARA rows' wall time includes compiling the rules at start (index.yar: its whole set
# and the set without file-format modules, yara_source.c), which a running sensor does once
# (and again in the background on SIGHUP). Measured here on the capture's first 100
# packets: the median of 3 runs with index.yar minus the median of 3 without.
YARA_STARTUP=
if [ -z "$YARA_SHARED_NOTE" ]; then
    editcap -F pcap -r "$BIG" "$TMP/start.pcap" 1-100
    startup_median() {
        local t0 t1 i
        for i in 1 2 3; do
            t0=$(date +%s%N)
            "$SENSOR" -q -r "$TMP/start.pcap" -w /dev/null "${GEO_ARGS[@]}" --threads 1 "$@" \
                2>/dev/null || return 1
            t1=$(date +%s%N)
            echo $(((t1 - t0) / 1000))
        done | sort -n | sed -n 2p
    }
    if s_off=$(startup_median) && s_on=$(startup_median --yara-rules "$YARA_SHARED"); then
        YARA_STARTUP=$(awk -v a="$s_on" -v b="$s_off" 'BEGIN {printf "%.3f", (a - b) / 1e6}')
    fi
fi

# ---- 2c. memory per active flow ----------------------------------------------------------
#
# Flow timeouts of 4e9 s (the most the options take; the capture's packet times span 54
# years, so 1e9 s would still expire some) keep every flow alive until the end of the
# capture: the flows alive at the peak are then the stats event's flow.max_active, all the
# flows of the run. Bytes per active flow = (peak RSS on the big capture - peak RSS of the
# same configuration on its first 100 packets) / max_active: the baseline takes out the
# libraries, nDPI's tables and the compiled rules, which do not grow with flows. No GeoIP:
# the .mmdb pages a run touches are in its RSS and grow with the addresses seen, not with
# the flows held. One run each: peak RSS hardly varies between runs, unlike time.
# The peer is ndpiReader: it keeps every flow's record to the end for its report (its
# "Actual Memory" equals its "Peak Memory" at the end), so its flows held at the peak are
# its "Unique flows".
LONG=()
for c in tcp_new tcp_established tcp_closed udp icmp other; do
    LONG+=(--set "flow.timeouts.$c=4000000000")
done
# no update events: every flow now lives for the whole capture (54 years of packet time)
LONG+=(--set flow.update_interval=0)
TINY=$TMP/tiny.pcap
editcap -F pcap -r "$BIG" "$TINY" 1-100
MEM_NAMES=(mdpi mnodpi myara ndpi)
declare -A MEM_LABEL=(
    [mdpi]="fenghuo DPI"
    [mnodpi]="fenghuo no DPI"
    [myara]="fenghuo DPI + YARA rules/yara"
    [ndpi]="ndpiReader -q"
)
# mem_cmd NAME INPUT: sets CMD to memory configuration NAME on INPUT, events to $TMP/m.ndjson.
mem_cmd() {
    case $1 in
    mdpi) CMD=("$SENSOR" -r "$2" -w "$TMP/m.ndjson" "${LONG[@]}" --threads 1) ;;
    mnodpi) CMD=("$SENSOR" -r "$2" -w "$TMP/m.ndjson" "${LONG[@]}" --threads 1 --set dpi.enabled=false) ;;
    myara) CMD=("$SENSOR" -r "$2" -w "$TMP/m.ndjson" "${LONG[@]}" --threads 1 --yara-rules "$YARA_SHIPPED") ;;
    ndpi) CMD=(ndpiReader -q -i "$2") ;;
    esac
}
# Rows: "name|peak KiB|baseline KiB|flows|flow.memory|reassembly peak|scan buffer peak" or
# "name|FAILED reason".
MEM_ROWS=()
for n in "${MEM_NAMES[@]}"; do
    peak= base= why=
    for input in "$TINY" "$BIG"; do
        mem_cmd "$n" "$input"
        rm -f "$TMP/m.ndjson"
        if ! /usr/bin/time -f '%M' -o "$TMP/m.time" "${CMD[@]}" >/dev/null 2>"$TMP/m.err"; then
            why="$(grep -m 1 -E 'exited|terminated' "$TMP/m.time" || echo 'failed') on $(basename "$input")"
            {
                echo "bench: FAILED (memory run): ${CMD[*]}"
                tail -n 5 "$TMP/m.err" | sed 's/^/  | /'
            } >&2
            break
        fi
        if [ "$input" = "$TINY" ]; then base=$(tail -n 1 "$TMP/m.time"); else peak=$(tail -n 1 "$TMP/m.time"); fi
    done
    if [ -n "$why" ]; then
        MEM_ROWS+=("$n|FAILED ($why)")
        FAILED=1
        continue
    fi
    if [ "$n" = ndpi ]; then
        MEM_ROWS+=("$n|$peak|$base|${NDPI_FLOWS:-?}|-|-|-")
    else
        read -r flows fmem rpeak ypeak <<<"$(stats_get "$TMP/m.ndjson" flow.max_active flow.memory_peak \
            reassembly.memory_peak yara.buffer_memory_peak)"
        MEM_ROWS+=("$n|$peak|$base|$flows|$fmem|$rpeak|$ypeak")
    fi
done
rm -f "$TMP/m.ndjson"
# ndpiReader's own accounting (its malloc wrapper), from the untimed run without -q
NDPI_PEAKMEM=$(awk '/Peak Memory:/ {v = $3; u = $4
    f = u == "KB" ? 1024 : u == "MB" ? 1048576 : u == "GB" ? 1073741824 : 1
    printf "%.0f", v * f; exit}' "$TMP/ndpi.full" 2>/dev/null) || NDPI_PEAKMEM=

# Rows: "ok|label|median|min|max|user|sys|rss|flows|events" or "fail|label|reason".
ROWS=()
RAW=()
NDPI_WALL=
FULL_WALL=
declare -A WALL=() # median wall time by configuration, for the YARA on/off ratios
for n in "${NAMES[@]}"; do
    if [ -e "$TMP/$n.fail" ]; then
        ROWS+=("fail|${LABEL[$n]}|$(cat "$TMP/$n.fail")")
        FAILED=1
        continue
    fi
    # median run (by wall time); its user/sys CPU; the largest RSS of all runs
    read -r wall _ usr sys <<<"$(sort -n "$TMP/$n.runs" | sed -n "$(((RUNS + 1) / 2))p")"
    wall=$(awk -v u="$wall" 'BEGIN {printf "%.3f", u / 1e6}')
    mn=$(sort -n "$TMP/$n.runs" | awk 'NR == 1 {printf "%.3f", $1 / 1e6}')
    mx=$(sort -n "$TMP/$n.runs" | awk 'END {printf "%.3f", $1 / 1e6}')
    rss=$(awk 'BEGIN {m = 0} $2 > m {m = $2} END {print m}' "$TMP/$n.runs")
    flows='?' events='-'
    if [ "$n" = ndpi ]; then
        NDPI_WALL=$wall
        flows=${NDPI_FLOWS:-?}
    else
        # "N packets, F flows, E events written (...)", logged at the end of every run
        s=$(grep -Eo '[0-9]+ packets, [0-9]+ flows, [0-9]+ events written' "$TMP/$n.err" | tail -n 1) || s=
        if [ -n "$s" ]; then
            flows=$(awk '{print $3}' <<<"$s")
            events=$(awk '{print $5}' <<<"$s")
        else
            events='?'
        fi
    fi
    WALL[$n]=$wall
    ROWS+=("ok|${LABEL[$n]}|$wall|$mn|$mx|$usr|$sys|$rss|$flows|$events")
    RAW+=("$(printf '  %-*s %s' "$LW" "${LABEL[$n]}" "$(awk '{printf "%.3f ", $1 / 1e6}' "$TMP/$n.runs")")")
done

# ---- 3. table ------------------------------------------------------------------------------

# threads_report: 2 worker threads against 1 (the capture thread decodes and dispatches; see
# sensor/README.md), and what each worker got.
threads_report() {
    echo
    if [ -z "${WALL[full2]:-}" ] || [ -z "${WALL[full]:-}" ]; then
        echo "Threads: ? (a run failed)"
        return
    fi
    awk -v one="${WALL[full]}" -v two="${WALL[full2]}" -v p="$PKTS" -v c="$(nproc)" 'BEGIN {
        printf "Threads: 2 workers vs 1: %.2fx  (%.0f vs %.0f packets/s; %d CPUs: the capture thread\n",
            one / two, p / two, p / one, c
        printf "  and both workers share them, so 2x is out of reach here)\n" }'
    if [ -n "$THREAD_SPLIT" ]; then
        echo "  packets per worker in the 2-thread run: $THREAD_SPLIT"
    fi
}

# parsers_report: the cost of the application parsers (HTTP with libhtp, files with
# libmagic and SHA-256, the TLS record layer, SMB/DCE-RPC, DNS, FTP, Kerberos, SMTP with GMime, files in raw
# streams), all on in "DPI + GeoIP" and in the YARA rows.
parsers_report() {
    echo
    if [ -z "${WALL[full]:-}" ] || [ -z "${WALL[noapp]:-}" ]; then
        printf '  %-38s ? (a run failed)\n' "Parsers on vs off:"
        return
    fi
    awk -v on="${WALL[full]}" -v off="${WALL[noapp]}" -v p="$PKTS" 'BEGIN {
        printf "Application parsers (HTTP, files, TLS records, SMB/DCE-RPC, DNS, FTP, Kerberos, SMTP, raw-stream files;\n  on in every row but \"no parsers\"):\n"
        printf "  %-38s %.2fx  (%.0f vs %.0f packets/s; below 1: the parsers cost)\n",
            "parsers on vs off:", off / on, p / on, p / off }'
}

# yara_report: the YARA on/off ratios (YARA row against "DPI + GeoIP", its configuration
# without the rules) and the counters of the untimed YARA run.
yara_report() {
    local n
    echo
    echo "YARA: the YARA rows are 'fenghuo DPI + GeoIP' plus --yara-rules: rules/yara = the shipped"
    echo "rules (${YARA_SHIPPED#"$ROOT"/}), index.yar = all the shared rule files (${YARA_SHARED#"$ROOT"/})."
    local -A short=([yara]="rules/yara" [yarabig]="index.yar" [yarabignc]="index.yar, no cache"
        [yarabignp]="index.yar, no cache, no prefilter")
    for n in yara yarabig yarabignc yarabignp; do
        if [ "$n" != yara ] && [ -n "$YARA_SHARED_NOTE" ]; then
            printf '  %-38s %s\n' "YARA on vs off, ${short[$n]}:" "$YARA_SHARED_NOTE"
            continue
        fi
        if [ -z "${WALL[$n]:-}" ] || [ -z "${WALL[full]:-}" ]; then
            printf '  %-38s ? (a run failed)\n' "YARA on vs off, ${short[$n]}:"
            continue
        fi
        awk -v l="YARA on vs off, ${short[$n]}:" -v on="${WALL[$n]}" -v off="${WALL[full]}" \
            -v p="$PKTS" 'BEGIN {
            printf "  %-38s %.2fx  (%.0f vs %.0f packets/s)\n", l, off / on, p / on, p / off }'
    done
    echo "  (on/off = packets/s with the rules divided by packets/s without; below 1: YARA costs)"
    if [ -n "$YARA_STARTUP" ] && [ -n "${WALL[yarabignc]:-}" ] && [ -n "${WALL[full]:-}" ]; then
        echo "  start-up with index.yar (compiling its rules, once per start or reload): $YARA_STARTUP s"
        echo "  of each index.yar row's wall time; without it the packet path alone runs at"
        awk -v on="${WALL[yarabig]}" -v nc="${WALL[yarabignc]}" -v off="${WALL[full]}" \
            -v s="$YARA_STARTUP" 'BEGIN {
            printf "  %.2fx (clean cache) and %.2fx (no cache) of YARA off\n", off / (on - s), off / (nc - s) }'
        if [ -n "${WALL[yarabignp]:-}" ]; then
            awk -v np="${WALL[yarabignp]}" -v off="${WALL[full]}" -v s="$YARA_STARTUP" 'BEGIN {
                printf "  and %.2fx with neither the cache nor the prefilter\n", off / (np - s) }'
        fi
    fi
    if [ -n "$YARA_PF" ]; then
        read -r pscans pfilt pbytes <<<"$YARA_PF"
        echo "  prefilter (yara.prefilter) with index.yar and no cache: $pfilt of the $pscans scans"
        echo "          answered without libyara's full set (the literals found satisfy no rule)"
        [ -z "$YARA_PF1" ] || {
            read -r pscans pfilt pbytes <<<"$YARA_PF1"
            echo "          on the base capture alone (one copy, nothing repeated): $pfilt of $pscans"
        }
    fi
    if [ -n "$YARA_STATS" ]; then
        read -r rules scans tscans uscans bytes matches wgaps tmo errs ydrop segs deliv gaps \
            after rpeak ypeak hits <<<"$YARA_STATS"
        echo "  counters of one more run with rules/yara (its final stats event):"
        echo "    yara: $rules rules, $scans scans ($tscans TCP directions, $uscans UDP payloads),"
        echo "          $bytes bytes scanned, $matches matches, $wgaps scans with gaps,"
        echo "          $tmo timeouts, $errs errors, $ydrop deliveries not buffered (yara.memcap)"
        echo "    reassembly: $segs segments, $deliv bytes delivered in order, $gaps gaps,"
        echo "          $after bytes past yara.max_bytes (not kept)"
        echo "    peak memory: scan buffers $ypeak bytes, out-of-order segments $rpeak bytes"
        echo "    clean cache (yara.clean_cache): $hits of the $scans scans answered from it. The"
        echo "          capture is $COPIES copies of one mix with other addresses, so the copies after"
        echo "          the first repeat its payloads and hit: the 'no cache' row is the cost of"
        echo "          traffic that never repeats"
    fi
    if [ -n "$YARA_CHECK" ]; then
        echo "  CHECK FAILED: $YARA_CHECK"
    elif [ -n "$YARA_STATS" ]; then
        echo "  check: the YARA run scanned (scans > 0, bytes scanned > 0)"
    fi
}

# memory_report: the memory-per-active-flow table (section 2c) and its differences.
memory_report() {
    local r n peak base flows fmem rpeak ypeak
    declare -A per=()
    echo
    echo "Memory per active flow (one run each, no GeoIP; flow timeouts 4e9 s keep every flow"
    echo "alive to the end; baseline = the same configuration on the capture's first 100 packets):"
    printf '  %-30s %12s %12s %11s %10s\n' configuration "peak RSS MiB" "baseline MiB" "flows alive" "bytes/flow"
    for r in "${MEM_ROWS[@]}"; do
        IFS='|' read -r n peak base flows fmem rpeak ypeak <<<"$r"
        if [[ $peak == FAILED* ]]; then
            printf '  %-30s %s\n' "${MEM_LABEL[$n]}" "$peak"
            continue
        fi
        if ! [[ $flows =~ ^[1-9][0-9]*$ ]]; then
            printf '  %-30s %12.1f %12.1f %11s %10s\n' "${MEM_LABEL[$n]}" \
                "$(awk -v k="$peak" 'BEGIN {print k / 1024}')" "$(awk -v k="$base" 'BEGIN {print k / 1024}')" "$flows" "?"
            continue
        fi
        per[$n]=$(awk -v p="$peak" -v b="$base" -v f="$flows" 'BEGIN {printf "%.0f", (p - b) * 1024 / f}')
        awk -v l="${MEM_LABEL[$n]}" -v p="$peak" -v b="$base" -v f="$flows" -v x="${per[$n]}" 'BEGIN {
            printf "  %-30s %12.1f %12.1f %11d %10d\n", l, p / 1024, b / 1024, f, x }'
        [ "$n" = mdpi ] && MEM_FMEM=$fmem && MEM_FLOWS=$flows
        [ "$n" = myara ] && MEM_PEAKS="scan buffers $ypeak bytes, out-of-order segments $rpeak bytes"
    done
    if [ -n "${per[mdpi]:-}" ] && [ -n "${per[mnodpi]:-}" ]; then
        printf '  %-46s %6d bytes\n' "DPI state per flow (DPI minus no DPI):" "$((per[mdpi] - per[mnodpi]))"
    fi
    if [ -n "${per[myara]:-}" ] && [ -n "${per[mdpi]:-}" ]; then
        printf '  %-46s %6d bytes  (peaks: %s)\n' "YARA per flow (DPI + YARA minus DPI):" \
            "$((per[myara] - per[mdpi]))" "${MEM_PEAKS:-?}"
    fi
    if [ -n "${per[mdpi]:-}" ] && [ -n "${per[ndpi]:-}" ] && [ "${per[ndpi]}" -gt 0 ]; then
        awk -v s="${per[mdpi]}" -v n="${per[ndpi]}" 'BEGIN {
            printf "  %-46s %.2fx  (below 1: the sensor holds less per flow)\n",
                "fenghuo DPI vs ndpiReader, bytes per flow:", s / n }'
    fi
    if [[ ${MEM_FMEM:-} =~ ^[0-9]+$ ]] && [[ ${MEM_FLOWS:-} =~ ^[1-9][0-9]*$ ]]; then
        awk -v m="$MEM_FMEM" -v f="$MEM_FLOWS" 'BEGIN {
            printf "  the sensor'"'"'s own accounting (DPI): flow.memory_peak %.1f MiB / %d flows = %.0f bytes per flow\n",
                m / 1048576, f, m / f }'
        echo "    (flow records, nDPI flow state and metadata as the sensor counts them against"
        echo "    flow.memcap; RSS also holds the allocator's overhead, the nDPI engine and the GeoIP pages)"
    fi
    if [[ ${NDPI_PEAKMEM:-} =~ ^[0-9]+$ ]] && [[ ${NDPI_FLOWS:-} =~ ^[1-9][0-9]*$ ]]; then
        awk -v m="$NDPI_PEAKMEM" -v f="$NDPI_FLOWS" 'BEGIN {
            printf "  ndpiReader'"'"'s own accounting: Peak Memory %.1f MiB / %d flows = %.0f bytes per flow\n",
                m / 1048576, f, m / f }'
    fi
}


SENSOR_VERSION=$("$SENSOR" --version 2>/dev/null | head -n 1) || SENSOR_VERSION=unknown
NDPI_VERSION=$(dpkg-query -W -f '${Version}' libndpi-bin 2>/dev/null) || NDPI_VERSION=unknown
{
    echo "Fenghuo benchmark  $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
    echo "host:    $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r)"
    echo "sensor:  $SENSOR ($SENSOR_VERSION)"
    echo "nDPI:    ndpiReader, libndpi-bin $NDPI_VERSION, one thread (-n is ignored with pcap files)"
    echo "capture: $BIG"
    echo "         $PKTS packets, $((BYTES / 1000000)) MB, K = $COPIES copies of the base capture (see bench/README.md)"
    echo "GeoIP:   $GEO_NOTE"
    echo "timing:  wall clock, median of $RUNS interleaved runs (min-max); user/sys CPU of the median"
    echo "         run; load average before the runs: $LOADAVG"
    echo "         RSS = peak resident set, largest of the runs; sensor output -w /dev/null"
    echo
    printf '%-*s %7s %15s %10s %8s %6s %6s %8s %7s %7s\n' "$LW" \
        configuration "wall s" "(min-max)" "packets/s" "vs nDPI" "user s" "sys s" "RSS MiB" flows events
    for r in "${ROWS[@]}"; do
        IFS='|' read -r status label wall mn mx usr sys rss flows events <<<"$r"
        if [ "$status" = fail ]; then
            printf '%-*s FAILED (%s)\n' "$LW" "$label" "$wall"
            continue
        fi
        awk -v lw="$LW" -v l="$label" -v w="$wall" -v mn="$mn" -v mx="$mx" -v u="$usr" -v s="$sys" \
            -v rss="$rss" -v f="$flows" -v e="$events" -v p="$PKTS" -v nw="$NDPI_WALL" 'BEGIN {
                ratio = nw == "" ? "-" : sprintf("%.2fx", nw / w)
                printf "%-*s %7.3f %15s %10.0f %8s %6.2f %6.2f %8.1f %7s %7s\n",
                    lw, l, w, "(" mn "-" mx ")", p / w, ratio, u, s, rss / 1024, f, e }'
    done
    echo
    echo "vs nDPI = sensor packets/s divided by ndpiReader packets/s (above 1: the sensor is faster)."
    echo "Flows are each tool's own count (e.g. the sensor keeps all ICMP between two hosts in one"
    echo "flow and splits a reused TCP port into a new flow); events = NDJSON lines written."
    threads_report
    parsers_report
    yara_report
    memory_report
    echo
    echo "Wall time of every run, s (in round order):"
    printf '%s\n' "${RAW[@]}"
} >"$TMP/table"

# ---- 3b. Kafka: the sensor publishing to the embedded broker -------------------------------
#
# Same capture, same configuration as "fenghuo DPI + GeoIP", but events go to Kafka
# (fenghuo-broker, librdkafka's in-process broker) instead of /dev/null. The peer is
# kcat -P publishing the very same events (the sensor's NDJSON from a file run) to the
# same broker, also lz4-compressed: events/s of each and their ratio; and the sensor's
# packets/s with Kafka against file output, to show whether publishing is a bottleneck.
kafka_bench() {
    local broker_pid bootstrap events kfile r t0 t1 n
    BROKER=$BUILD_DIR/bin/fenghuo-broker
    [ -x "$BROKER" ] || { echo "Kafka: skipped ($BROKER not built)"; return 0; }
    command -v kcat >/dev/null || { echo "Kafka: skipped (kcat missing)"; return 0; }
    kfile=$TMP/events.ndjson
    "$SENSOR" -q -r "$BIG" -w "$kfile" "${GEO_ARGS[@]}"
    events=$(wc -l <"$kfile")
    "$BROKER" --partitions 32 --topic bench.sensor --topic bench.kcat >"$TMP/broker.out" \
        2>"$TMP/broker.err" &
    broker_pid=$!
    for _ in $(seq 50); do [ -s "$TMP/broker.out" ] && break; sleep 0.1; done
    bootstrap=$(head -n 1 "$TMP/broker.out")
    : >"$TMP/kafka.runs"
    : >"$TMP/kcat.runs"
    for ((r = 1; r <= RUNS; r++)); do
        t0=$(date +%s%N)
        "$SENSOR" -q -r "$BIG" --kafka "$bootstrap" --topic bench.sensor "${GEO_ARGS[@]}" \
            --threads 1 --set spool.dir="$TMP/spool" >/dev/null 2>"$TMP/kafka.err" || { echo "Kafka: sensor run failed"; tail -3 "$TMP/kafka.err"; }
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$TMP/kafka.runs"
        t0=$(date +%s%N)
        kcat -P -b "$bootstrap" -t bench.kcat -z lz4 -X linger.ms=5 -l "$kfile" 2>"$TMP/kcat.err" || echo "Kafka: kcat run failed"
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$TMP/kcat.runs"
    done
    n=$(kcat -C -b "$bootstrap" -t bench.sensor -o beginning -e -q -f '.\n' 2>/dev/null | wc -l)
    kill -TERM "$broker_pid" 2>/dev/null
    wait "$broker_pid" 2>/dev/null
    awk -v ev="$events" -v p="$PKTS" -v runs="$RUNS" -v n="$n" -v fw="$FULL_WALL" \
        -v sk="$(sort -n "$TMP/kafka.runs" | sed -n "$(((RUNS + 1) / 2))p")" \
        -v kc="$(sort -n "$TMP/kcat.runs" | sed -n "$(((RUNS + 1) / 2))p")" 'BEGIN {
        sk /= 1e6; kc /= 1e6
        print ""
        print "Kafka (embedded broker, lz4, median of " runs " runs; " ev " events per run):"
        printf "  %-40s %8.3f s %10.0f events/s %10.0f packets/s\n", "fenghuo-sensor -> Kafka (DPI + GeoIP)", sk, ev / sk, p / sk
        printf "  %-40s %8.3f s %10.0f events/s\n", "kcat -P, the same events from a file", kc, ev / kc
        printf "  %-40s %.2fx\n", "sensor events/s vs kcat -P", kc / sk
        if (fw != "") printf "  %-40s %.2fx  (%.0f vs %.0f packets/s)\n", "sensor with Kafka vs file output", fw / sk, p / sk, p / fw
        printf "  %-40s %d of %d\n", "messages on the topic (all runs)", n, ev * runs
    }'
}
for r in "${ROWS[@]}"; do
    IFS='|' read -r status label wall _ <<<"$r"
    [ "$status" = ok ] && [ "$label" = "${LABEL[full]}" ] && FULL_WALL=$wall
done
kafka_bench >>"$TMP/table" 2>&1 || echo "  (Kafka benchmark failed)" >>"$TMP/table"

# ---- 3c. the correlator: the full level-3 pack over the sensor's events ------------------
#
# The sensor's events of the benchmark capture, repeated 16 times (~500k events of
# ~1 KB), through fenghuo-correlator with the whole level-3 pack and the example asset
# inventory, from a file on one thread; alerts to /dev/null (no store), then with the
# SQLite store. The peer is reading the same file (cat): the I/O floor. Then the same
# events from the embedded broker (corr_kafka_bench).
corr_bench() {
    local corr=$BUILD_DIR/bin/fenghuo-correlator events n r t0 t1
    [ -x "$corr" ] || { echo "Correlator: skipped ($corr not built)"; return 0; }
    events=$TMP/corr-events.ndjson
    [ -s "$TMP/events.ndjson" ] || "$SENSOR" -q -r "$BIG" -w "$TMP/events.ndjson" "${GEO_ARGS[@]}"
    for _ in $(seq 16); do cat "$TMP/events.ndjson"; done >"$events"
    n=$(wc -l <"$events")
    : >"$TMP/corr.runs"
    : >"$TMP/corrdb.runs"
    : >"$TMP/cat.runs"
    for ((r = 1; r <= RUNS; r++)); do
        t0=$(date +%s%N)
        "$corr" --rules rules/level3 --assets rules/assets.example.yaml --input "$events" \
            --alerts-out /dev/null 2>"$TMP/corr.err" || echo "Correlator: run failed"
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$TMP/corr.runs"
        rm -f "$TMP/bench.db" "$TMP/bench.db-wal" "$TMP/bench.db-shm"
        t0=$(date +%s%N)
        "$corr" --rules rules/level3 --assets rules/assets.example.yaml --input "$events" \
            --alerts-out /dev/null --db "$TMP/bench.db" 2>/dev/null || echo "Correlator: db run failed"
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$TMP/corrdb.runs"
        t0=$(date +%s%N)
        cat "$events" >/dev/null
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$TMP/cat.runs"
    done
    awk -v n="$n" -v runs="$RUNS" \
        -v c="$(sort -n "$TMP/corr.runs" | sed -n "$(((RUNS + 1) / 2))p")" \
        -v d="$(sort -n "$TMP/corrdb.runs" | sed -n "$(((RUNS + 1) / 2))p")" \
        -v k="$(sort -n "$TMP/cat.runs" | sed -n "$(((RUNS + 1) / 2))p")" \
        -v info="$(tail -n 1 "$TMP/corr.err")" 'BEGIN {
        c /= 1e6; d /= 1e6; k /= 1e6
        print ""
        print "Correlator (level-3 pack, " n " events from a file, one thread, median of " runs " runs):"
        printf "  %-40s %8.3f s %10.0f events/s\n", "fenghuo-correlator, alerts to /dev/null", c, n / c
        printf "  %-40s %8.3f s %10.0f events/s\n", "fenghuo-correlator with the SQLite store", d, n / d
        printf "  %-40s %8.3f s %10.0f events/s\n", "cat of the same file (I/O floor)", k, n / k
        printf "  %-40s %.2f  (target: 1,000,000 events/s per core)\n", "events/s vs the 1 M target", n / c / 1e6
        sub(/^[^:]*: [^:]*: /, "", info)
        print "  last run: " info
    }'
    corr_kafka_bench "$corr" "$events" "$n"
}

# The same events through the correlator's Kafka mode (the level-3 pack, --exit-at-end)
# against a plain consumer of the same topic (kcat -C -e, output to /dev/null), both
# reading from the beginning. Kafka mode needs a store, so every correlator run gets a
# fresh SQLite file (positions are read from the store first) and a fresh group (whose
# start is auto.offset.reset=earliest). The embedded broker keeps ~5 MiB of producer
# batches per partition, so the topic has 64 partitions and kcat compresses with lz4
# (~1.2 MiB per partition for this file); the script counts what the topic holds.
KBENCH_PARTITIONS=64
corr_kafka_bench() {
    local corr=$1 events=$2 n=$3 broker=$BUILD_DIR/bin/fenghuo-broker bootstrap held rss r t0 t1
    local st line got rate incomplete=
    echo
    [ -x "$broker" ] || { echo "Correlator from Kafka: skipped ($broker not built)"; return 0; }
    command -v kcat >/dev/null || { echo "Correlator from Kafka: skipped (kcat missing)"; return 0; }
    "$broker" --partitions "$KBENCH_PARTITIONS" --topic bench.corr >"$TMP/kbroker.out" \
        2>"$TMP/kbroker.err" &
    KBROKER_PID=$!
    for _ in $(seq 50); do [ -s "$TMP/kbroker.out" ] && break; sleep 0.1; done
    bootstrap=$(head -n 1 "$TMP/kbroker.out")
    [ -n "$bootstrap" ] || { echo "Correlator from Kafka: the broker did not start"; return 0; }
    kcat -P -b "$bootstrap" -t bench.corr -z lz4 -X linger.ms=5 -l "$events" 2>"$TMP/kprod.err" ||
        { echo "Correlator from Kafka: producing failed"; tail -n 3 "$TMP/kprod.err"; }
    held=$(kcat -C -b "$bootstrap" -t bench.corr -o beginning -e -q -f '.\n' 2>/dev/null | wc -l)
    rss=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$KBROKER_PID/status" 2>/dev/null) || rss='?'
    : >"$TMP/kcatc.runs"
    : >"$TMP/corrk.runs"
    : >"$TMP/corrk.rates"
    : >"$TMP/corrk.rounds"
    for ((r = 1; r <= RUNS; r++)); do
        t0=$(date +%s%N)
        kcat -C -b "$bootstrap" -t bench.corr -o beginning -e -q >/dev/null 2>"$TMP/kcatc.err" ||
            echo "Correlator from Kafka: kcat -C run $r failed"
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$TMP/kcatc.runs"
        rm -f "$TMP/kbench.db" "$TMP/kbench.db-wal" "$TMP/kbench.db-shm"
        st=0
        t0=$(date +%s%N)
        # a time limit, so a consumer that never sees the end cannot hang the benchmark
        timeout 600 "$corr" --rules rules/level3 --assets rules/assets.example.yaml \
            --kafka "$bootstrap" --topic bench.corr --group "bench-$r" --db "$TMP/kbench.db" \
            --alerts-out /dev/null --exit-at-end 2>"$TMP/corrk.err" || st=$?
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$TMP/corrk.runs"
        if [ "$st" -eq 124 ]; then
            echo "Correlator from Kafka: run $r FAILED (stopped after 600 s: no end of the topic seen)"
        elif [ "$st" -ne 0 ]; then
            echo "Correlator from Kafka: run $r FAILED (exit status $st)"
            tail -n 3 "$TMP/corrk.err"
        fi
        # "N events consumed (M malformed) in B batches, S s from first to last (R events/s), ..."
        line=$(grep -Eo '[0-9]+ events consumed .*' "$TMP/corrk.err" | tail -n 1) || line=
        got=$(sed -nE 's/^([0-9]+) events consumed.*/\1/p' <<<"$line")
        rate=$(sed -nE 's/.*\(([0-9]+) events\/s\).*/\1/p' <<<"$line")
        echo "${rate:-0}" >>"$TMP/corrk.rates"
        [ "${got:-?}" = "$held" ] || incomplete+=" run $r: ${got:-?} of $held;"
        tail -n 1 "$TMP/kcatc.runs" | awk -v r="$r" -v c="$(tail -n 1 "$TMP/corrk.runs")" \
            -v rate="${rate:-0}" -v held="$held" '{
            printf "    round %d: kcat -C %.3f s; correlator %.3f s wall, %.0f events/s first to last (%.2f)\n",
                r, $1 / 1e6, c / 1e6, rate, rate * $1 / 1e6 / held }' >>"$TMP/corrk.rounds"
    done
    kill -TERM "$KBROKER_PID" 2>/dev/null
    wait "$KBROKER_PID" 2>/dev/null
    KBROKER_PID=
    awk -v n="$n" -v held="$held" -v runs="$RUNS" -v parts="$KBENCH_PARTITIONS" -v rss="$rss" \
        -v k="$(sort -n "$TMP/kcatc.runs" | sed -n "$(((RUNS + 1) / 2))p")" \
        -v c="$(sort -n "$TMP/corrk.runs" | sed -n "$(((RUNS + 1) / 2))p")" \
        -v rate="$(sort -n "$TMP/corrk.rates" | sed -n "$(((RUNS + 1) / 2))p")" \
        -v incomplete="$incomplete" -v info="$line" 'BEGIN {
        k /= 1e6; c /= 1e6; rate += 0
        print "Correlator from Kafka (level-3 pack, embedded broker, " parts " partitions, lz4, median of " runs " interleaved runs):"
        printf "  %-40s %d of %d  (broker RSS %s MiB)\n", "messages on the topic (kcat -C -e count)", held, n, rss
        if (held != n) print "  WARNING: the broker holds " held " of the " n " events produced (more partitions needed)"
        printf "  %-40s %8.3f s %10.0f events/s\n", "kcat -C -e, the topic to /dev/null", k, held / k
        printf "  %-40s %8.3f s %10.0f events/s\n", "fenghuo-correlator --kafka, wall clock", c, held / c
        if (rate > 0) {
            printf "  %-40s %8.3f s %10.0f events/s\n", "  first to last message (its own figure)", held / rate, rate
            printf "  %-40s %.2f  (target: at least 0.5)\n", "correlator events/s vs kcat -C", rate * k / held
        } else
            printf "  %-40s ?  (no rate in the correlator log)\n", "correlator events/s vs kcat -C"
        printf "  %-40s %.2f  (start-up and group join included)\n", "  the same by wall clock", k / c
        if (incomplete != "") print "  INCOMPLETE: the correlator did not consume every event:" incomplete
        else printf "  %-40s all %d in every run\n", "events consumed by the correlator", held
        print "  last run: " info
        print "  every round (ratio to kcat -C in brackets):"
    }'
    cat "$TMP/corrk.rounds"
}
corr_bench >>"$TMP/table" 2>&1 || echo "  (correlator benchmark failed)" >>"$TMP/table"

# ---- 3d. rule loading: an IOC list pasted inline vs the same list as a placeholder --------
#
# Admins paste IOC lists into rules. 200,000 addresses inline in one selection, and the
# same addresses in rules/lists/iocs.txt behind `|expand`, each loaded by --check-rules
# (median of FH_BENCH_RUNS); the ratio should stay near 1 (it was 150 with a quadratic
# duplicate check). Also a condition of 100,000 `or` terms.
rules_bench() {
    local corr=$BUILD_DIR/bin/fenghuo-correlator d=$TMP/rules-bench r t0 t1
    mkdir -p "$d/inline" "$d/list/lists" "$d/chain"
    /usr/bin/python3 - "$d" <<'PYEOF'
import sys
d = sys.argv[1]
ips = ["10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255) for i in range(200000)]
head = "title: iocs\nlogsource: {product: fenghuo}\ndetection:\n  sel:\n"
with open(d + "/inline/iocs.yml", "w") as f:
    f.write(head + "    dest_ip:\n" + "".join("      - '%s'\n" % ip for ip in ips) +
            "  condition: sel\nlevel: high\n")
with open(d + "/list/iocs.yml", "w") as f:
    f.write(head + "    dest_ip|expand: '%iocs%'\n  condition: sel\nlevel: high\n")
with open(d + "/list/lists/iocs.txt", "w") as f:
    f.write("\n".join(ips) + "\n")
with open(d + "/chain/chain.yml", "w") as f:
    f.write(head + "    app_proto: telnet\n  condition: " + " or ".join(["sel"] * 100000) +
            "\nlevel: high\n")
PYEOF
    for kind in inline list chain; do
        : >"$d/$kind.runs"
        for ((r = 0; r < RUNS; r++)); do
            t0=$(date +%s%N)
            if [ "$kind" = list ]; then
                "$corr" --check-rules "$d/list/iocs.yml" --lists "$d/list/lists" -q >/dev/null 2>&1 || return 1
            else
                "$corr" --check-rules "$d/$kind" -q >/dev/null 2>&1 || return 1
            fi
            t1=$(date +%s%N)
            echo $(((t1 - t0) / 1000)) >>"$d/$kind.runs"
        done
    done
    echo
    echo "Rule loading (--check-rules, median of $RUNS):"
    awk -v d="$d" 'function med(f,   n, v, i, j, t) { n = 0; while ((getline t < f) > 0) v[++n] = t
            close(f); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            return v[int((n + 1) / 2)] / 1e6 }
        BEGIN { a = med(d "/inline.runs"); b = med(d "/list.runs"); c = med(d "/chain.runs")
            printf "  %-40s %8.3f s\n", "200,000 IOC addresses inline", a
            printf "  %-40s %8.3f s\n", "the same as a placeholder list", b
            printf "  %-40s %8.2f  (was 150 with the quadratic check)\n", "inline vs list", a / b
            printf "  %-40s %8.3f s\n", "a condition of 100,000 or-terms", c }'
}
rules_bench >>"$TMP/table" 2>&1 || echo "  (rule loading benchmark failed)" >>"$TMP/table"

# ---- 3e. micro-benchmarks: spool, inventory lookup, event decoder (bench/micro.c) --------
if [ -x "$BUILD_DIR/bench/micro" ]; then
    "$BUILD_DIR/bench/micro" "$ROOT" "$TMP" >>"$TMP/table" 2>&1 ||
        echo "  (micro-benchmarks failed)" >>"$TMP/table"
    rm -rf "$TMP/micro-spool"
fi

# ---- 3f. the console API under load (bench/console_bench.py) --------------------------------
#
# A million alerts in the store, fenghuo-console serve, wrk: p50/p99 of the alert list, a
# deep page and the grouped query, as ratios to the server's floor (GET /api/v1/health) in
# the same run; on SQLite and on a throwaway PostgreSQL (tests/tools/pg.sh).
if [ "${FH_BENCH_CONSOLE:-1}" = 1 ]; then
    echo "bench: the console API with a million alerts (a few minutes; FH_BENCH_CONSOLE=0 skips it)"
    "$ROOT/tests/tools/pg.sh" run /usr/bin/python3 "$ROOT/bench/console_bench.py" "$BUILD_DIR" \
        "$TMP/console" >>"$TMP/table" 2>&1 || echo "  (console API benchmark failed)" >>"$TMP/table"
    rm -rf "$TMP/console"
fi

# ---- 3d. live capture on a veth pair (bench/live_rate.py) ---------------------------------
#
# The highest tcpreplay rate into a veth pair at which the live sensor (default
# configuration) loses nothing, and the same for ndpiReader -i; see bench/README.md,
# "Live capture". Needs root and network namespaces (says so and skips otherwise); about
# two minutes. FH_BENCH_LIVE=0 skips it; FH_BENCH_LIVE_* (in the script) tune it.
if [ "${FH_BENCH_LIVE:-1}" = 1 ]; then
    echo "bench: live capture on a veth pair (about two minutes; FH_BENCH_LIVE=0 skips it)"
    /usr/bin/python3 "$ROOT/bench/live_rate.py" "$SENSOR" "$BIG" >>"$TMP/table" ||
        echo "  (live capture benchmark failed)" >>"$TMP/table"
else
    printf '\nLive capture on a veth pair: skipped (FH_BENCH_LIVE=%s)\n' "$FH_BENCH_LIVE" >>"$TMP/table"
fi
# ---- end of 3d ------------------------------------------------------------------------------

# ---- 4. optional profile -----------------------------------------------------------------

profile() {
    local name ipp
    # Hardware counters: instructions per packet is steadier than wall time, when available.
    if perf stat -x, -e instructions -o "$TMP/stat" true >/dev/null 2>&1 &&
        grep -Eq '^[0-9]+,' "$TMP/stat"; then
        echo
        echo "Instructions per packet (perf stat, one run each):"
        for name in ndpi full bare; do
            cmd "$name"
            ipp=$(perf stat -x, -e instructions -o "$TMP/stat" "${CMD[@]}" 2>/dev/null >/dev/null &&
                awk -F, -v p="$PKTS" '$3 ~ /^instructions/ && $1 ~ /^[0-9]+$/ {printf "%.0f", $1 / p}' "$TMP/stat") || ipp=
            printf '  %-26s %s\n' "${LABEL[$name]}" "${ipp:-n/a}"
        done
    else
        echo
        echo "Instructions per packet: not measured (no hardware counters for perf here)."
    fi
    # Sampling profile: works on the cpu-clock software event even inside a VM.
    cmd full
    if [ ! -e "$TMP/full.fail" ] &&
        perf record -q -e cpu-clock -F 10000 -o "$TMP/perf.data" -- "${CMD[@]}" >/dev/null 2>&1; then
        echo
        echo "Hot spots of 'fenghuo DPI + GeoIP' (perf record -e cpu-clock, self time, top 20):"
        perf report -i "$TMP/perf.data" --stdio --no-children --sort dso,sym -q 2>/dev/null |
            awk '/^ +[0-9.]+%/ && ++n <= 20 {sub(/[ \t]+$/, ""); sub(/^ +/, "  "); print}'
    fi
}
if [ "$PROFILE" = 1 ] && command -v perf >/dev/null &&
    perf record -q -e cpu-clock -o "$TMP/probe.data" -- true >/dev/null 2>&1; then
    profile >>"$TMP/table" 2>/dev/null || echo "  (profiling failed; ignored)" >>"$TMP/table"
fi

cat "$TMP/table"
cp "$TMP/table" "$BENCH_DIR/results.txt"
echo
echo "bench: results written to $BENCH_DIR/results.txt"
if [ "$FAILED" -ne 0 ]; then
    echo "bench: some runs FAILED (see above)" >&2
    exit 1
fi
