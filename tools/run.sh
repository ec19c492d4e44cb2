#!/bin/bash
# tools/run.sh BUILD - `make run`: the platform on one machine, on the bundled test traffic.
#
#   1. fenghuo-broker: the embedded Kafka-protocol broker (librdkafka's mock cluster)
#   2. fenghuo-correlator: consumes fenghuo.events with the level-3 rule pack and the
#      example asset inventory, stores alerts in build/run/alerts.db, publishes them to
#      fenghuo.alerts
#   3. fenghuo-sensor: the crafted test captures (paced, so events flow for a while)
#      published to topic fenghuo.events, also written to build/run/events.json;
#      then the level-3 scenario events (tests/rules) so that every rule has traffic
#   4. kcat: prints the alerts as they are raised, a line each (tools/alert-lines.py)
#   5. fenghuo-console serve: the HTTP API on 127.0.0.1:8080 (RUN_CONSOLE=ADDR:PORT to
#      change it), with the first administrator's one-time password printed; after the
#      replay, the timely rectification rate per department of the replayed period and the
#      same report as a PDF (build/run/rectification-report.pdf); when run from a terminal
#      the console stays up until Ctrl-C
#
# Set RUN_IFACE=eth0 to also capture live on an interface (needs root).
# Ctrl-C stops everything cleanly; so does the end of the captures + 3 s.
set -u
build=${1:-build}
bin=$build/bin
run=build/run
pcaps=build/testdata/pcap
geo=build/geoip
mkdir -p "$run"
rm -f "$run/bootstrap"

pids=()
cleanup() {
    trap - INT TERM EXIT
    # Newest first: sensors flush into Kafka and kcat stops before the broker goes.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null
        wait "${pids[i]}" 2>/dev/null
    done
    echo "== stopped"
}
trap cleanup INT TERM EXIT

"$bin/fenghuo-broker" --partitions 3 --topic fenghuo.events \
    --bootstrap-file "$run/bootstrap" >"$run/broker.out" 2>"$run/broker.log" &
pids+=($!)
for _ in $(seq 50); do [ -s "$run/bootstrap" ] && break; sleep 0.1; done
brokers=$(cat "$run/bootstrap" 2>/dev/null) || { echo "broker did not start"; exit 1; }
echo "== embedded broker at $brokers (log: $run/broker.log)"

rm -rf "$run"/alerts.db* "$run"/console.out "$run/archive"
"$bin/fenghuo-correlator" --kafka "$brokers" --topic fenghuo.events --group fenghuo-run \
    --alerts-topic fenghuo.alerts --rules rules/level3 --assets rules/assets.example.yaml \
    --db "$run/alerts.db" --archive "$run/archive" --metrics-listen 127.0.0.1:0 \
    -X session.timeout.ms=6000 2>"$run/correlator.log" &
pids+=($!)
echo "== correlator: rules/level3, store $run/alerts.db (log: $run/correlator.log)"
# the console: the HTTP API and the dashboard's files on the same store
for _ in $(seq 50); do [ -s "$run/alerts.db" ] && break; sleep 0.1; done
"$bin/fenghuo-console" serve --listen "${RUN_CONSOLE:-127.0.0.1:8080}" --db "$run/alerts.db" \
    --rules rules/level3 --assets rules/assets.example.yaml --archive "$run/archive" \
    >"$run/console.out" 2>"$run/console.log" &
console=$!
pids+=("$console")
for _ in $(seq 50); do grep -q "listening on" "$run/console.out" 2>/dev/null && break; sleep 0.1; done
echo "== console (dashboard and API): $(grep -o 'listening on [^ ]*' "$run/console.out") (log: $run/console.log)"
grep -o 'one-time password: [^ ]*' "$run/console.out" | sed 's/^/== first administrator admin, /' \
    || echo "== console users exist already in $run/alerts.db"
# one readable line per alert (time, level, title, source -> target, department)
# ($! must be kcat's pid: the cleanup stops it; the formatter ends at its end of input)
kcat -C -b "$brokers" -t fenghuo.alerts -o beginning -u -q -f '%s\n' \
    > >(/usr/bin/python3 tools/alert-lines.py) &
pids+=($!)

geoargs=()
[ -f "$geo/country.mmdb" ] && geoargs+=(--geoip-country "$geo/country.mmdb")
[ -f "$geo/asn.mmdb" ] && geoargs+=(--geoip-asn "$geo/asn.mmdb")
# the crafted captures and their payload/ and login/ folders, with the shipped YARA rules
set -- -r "$pcaps" "$pcaps"/*/ --kafka "$brokers" --topic fenghuo.events -w "$run/events.json" \
    --sensor-id demo-sensor --segment demo --set spool.dir="$run/spool" \
    --set capture.replay_rate=100 --yara-rules rules/yara "${geoargs[@]}"
echo "== fenghuo-sensor $*"
"$bin/fenghuo-sensor" "$@" &
sensor=$!
pids+=("$sensor")
if [ -n "${RUN_IFACE:-}" ]; then
    "$bin/fenghuo-sensor" -i "$RUN_IFACE" --kafka "$brokers" --topic fenghuo.events \
        --sensor-id "live-$RUN_IFACE" --segment live --set spool.dir="$run/spool-live" &
    pids+=($!)
    echo "== live sensor on $RUN_IFACE (Ctrl-C to stop)"
    wait "$sensor"
    wait
else
    wait "$sensor"
    echo "== publishing the level-3 scenario events (tests/rules/*/events.ndjson)"
    cat tests/rules/L3-*/events.ndjson | kcat -P -b "$brokers" -t fenghuo.events -z lz4
    sleep 8 # let the correlator catch up and kcat print the last alerts
fi
if [ -s "$run/alerts.db" ] && command -v sqlite3 >/dev/null; then
    echo "== alerts by level (sqlite3 $run/alerts.db):"
    sqlite3 "$run/alerts.db" "select level, count(*), sum(count) from alerts group by level
                               order by max(severity) desc;"
fi
echo "== $(grep -c '"event_type":"flow"' "$run/events.json") flow events written to Kafka and $run/events.json"
if [ -s "$run/alerts.db" ]; then
    # Rectification: stamp deadlines (the console does on opening the store), then the
    # rate per department for the replayed period: from the first alert's day to the
    # last deadline's, in Asia/Shanghai.
    "$bin/fenghuo-console" sweep --db "$run/alerts.db" >/dev/null
    span=$(sqlite3 "$run/alerts.db" "select date(min(first_seen)/1000, 'unixepoch', '+8 hours'),
        date((max(deadline_at)-1)/1000, 'unixepoch', '+8 hours') from alerts" 2>/dev/null)
    from=${span%%|*}
    to=${span##*|}
    if [ -n "$from" ] && [ -n "$to" ]; then
        echo "== rectification (整改): fenghuo-console report --from $from --to $to --db $run/alerts.db"
        "$bin/fenghuo-console" report --db "$run/alerts.db" --from "$from" --to "$to" \
            --format text
        "$bin/fenghuo-console" report --db "$run/alerts.db" --from "$from" --to "$to" \
            --format pdf --output "$run/rectification-report.pdf" &&
            echo "== PDF report: $run/rectification-report.pdf"
    fi
fi
if [ -t 0 ] && kill -0 "$console" 2>/dev/null; then
    echo "== the console stays up ($(grep -o 'http[^ ]*' "$run/console.out")): Ctrl-C stops everything"
    wait "$console"
fi
