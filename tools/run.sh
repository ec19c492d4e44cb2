#!/bin/bash
# tools/run.sh BUILD - `make run`: the platform on one machine, on the bundled test traffic.
#
#   1. fenghuo-broker: the embedded Kafka-protocol broker (librdkafka's mock cluster)
#   2. fenghuo-sensor: the crafted test captures (paced, so events flow for a while)
#      published to topic fenghuo.events, also written to build/run/events.json
#   3. kcat: consumes the topic and prints the events as they arrive in Kafka
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

kcat -C -b "$brokers" -t fenghuo.events -o beginning -u -q -f 'kafka p%p key=%k  %s\n' &
pids+=($!)

geoargs=()
[ -f "$geo/country.mmdb" ] && geoargs+=(--geoip-country "$geo/country.mmdb")
[ -f "$geo/asn.mmdb" ] && geoargs+=(--geoip-asn "$geo/asn.mmdb")
set -- -r "$pcaps" --kafka "$brokers" --topic fenghuo.events -w "$run/events.json" \
    --sensor-id demo-sensor --segment demo --set spool.dir="$run/spool" \
    --set capture.replay_rate=100 "${geoargs[@]}"
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
    sleep 3 # let kcat print the last events
fi
echo "== $(grep -c '"event_type":"flow"' "$run/events.json") flow events written to Kafka and $run/events.json"
