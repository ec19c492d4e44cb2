#!/bin/sh
# tools/run.sh BUILD - `make run`: the sensor on the bundled test traffic.
#
# Runs fenghuo-sensor over every crafted capture in build/testdata/pcap with
# the embedded GeoIP data, writes the events to build/run/events.json and
# prints them. Later issues add the broker, correlator and dashboard here.
set -eu
build=${1:-build}
bin=$build/bin/fenghuo-sensor
pcaps=build/testdata/pcap
out=build/run
geo=build/geoip
mkdir -p "$out"
set -- -r "$pcaps" --sensor-id demo-sensor --segment demo -w "$out/events.json"
[ -f "$geo/country.mmdb" ] && set -- "$@" --geoip-country "$geo/country.mmdb"
[ -f "$geo/asn.mmdb" ] && set -- "$@" --geoip-asn "$geo/asn.mmdb"
echo "== fenghuo-sensor $*"
"$bin" "$@"
echo "== events ($out/events.json):"
cat "$out/events.json"
echo
echo "== $(grep -c '"event_type":"flow"' "$out/events.json") flow events, \
$(grep -c '"event_type":"anomaly"' "$out/events.json") anomaly events, \
$(grep -c '"event_type":"stats"' "$out/events.json") stats events from $(ls "$pcaps" | wc -l) captures"
