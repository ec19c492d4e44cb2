#!/bin/bash
# tools/geoip/fetch.sh OUTDIR - free GeoIP databases for the sensor.
#
# Installs the @ip-location-db npm packages pinned in package-lock.json (next to
# this script) into OUTDIR/npm with `npm ci` - never into the source tree - and
# leaves in OUTDIR:
#   country.mmdb  copy of geo-whois-asn-country.mmdb (country_code layout, IPv4+IPv6)
#   asn.mmdb      built from asn-ipv4.csv + asn-ipv6.csv by build-asn-mmdb.pl
#                 (GeoLite2-ASN layout)
# Idempotent and silent when everything is up to date: npm runs only when the
# lock file changed or a package file is missing, asn.mmdb is rebuilt only when
# it is older than its inputs (the CSVs, the install stamp, the build script).
# Files are replaced by rename, so a running sensor keeps a valid mapping.
# Used by `make geoip-data` (part of `make deps`). See README.md here.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
npmdir=$out/npm
pkgs=$npmdir/node_modules/@ip-location-db
country_src=$pkgs/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb
asn4=$pkgs/asn/asn-ipv4.csv
asn6=$pkgs/asn/asn-ipv6.csv
stamp=$npmdir/.installed-lock.json

# One run at a time per OUTDIR (flock is in util-linux; skip when absent).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$out/.fetch.lock"
    flock 9
fi

# 1. npm packages, at the versions and hashes of the lock file.
if ! cmp -s "$here/package-lock.json" "$stamp" ||
    [ ! -s "$country_src" ] || [ ! -s "$asn4" ] || [ ! -s "$asn6" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "geoip: npm not found; install Node.js and npm (make deps)" >&2
        exit 1
    fi
    echo "geoip: installing @ip-location-db packages into $npmdir (about 25 MB download)"
    mkdir -p "$npmdir"
    rm -f "$stamp"
    cp "$here/package.json" "$here/package-lock.json" "$npmdir/"
    if ! (cd "$npmdir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >/dev/null; then
        echo "geoip: npm ci failed in $npmdir" >&2
        exit 1
    fi
    for f in "$country_src" "$asn4" "$asn6"; do
        if [ ! -s "$f" ]; then
            echo "geoip: $f missing after npm ci (package layout changed?)" >&2
            exit 1
        fi
    done
    cp "$here/package-lock.json" "$stamp"
fi

# 2. country.mmdb: a copy (not a link) so OUTDIR/npm may be removed.
if [ ! -s "$out/country.mmdb" ] || [ "$country_src" -nt "$out/country.mmdb" ] ||
    [ "$stamp" -nt "$out/country.mmdb" ]; then
    cp "$country_src" "$out/country.mmdb.tmp"
    mv -f "$out/country.mmdb.tmp" "$out/country.mmdb"
    echo "geoip: $out/country.mmdb updated"
fi

# 3. asn.mmdb from the CSVs.
asn=$out/asn.mmdb
if [ ! -s "$asn" ] || [ "$asn4" -nt "$asn" ] || [ "$asn6" -nt "$asn" ] ||
    [ "$stamp" -nt "$asn" ] || [ "$here/build-asn-mmdb.pl" -nt "$asn" ]; then
    if ! perl -MMaxMind::DB::Writer::Tree -e 1 2>/dev/null; then
        echo "geoip: Perl MaxMind::DB::Writer missing; apt-get install libmaxmind-db-writer-perl (make deps)" >&2
        exit 1
    fi
    echo "geoip: building $asn (about 10 s)"
    rm -f "$asn.tmp"
    perl "$here/build-asn-mmdb.pl" "$asn" "$asn4" "$asn6"
fi
