#!/bin/bash
# tests/tools/pg.sh - a throwaway PostgreSQL server for the tests (Debian's postgresql):
# initdb in a temporary directory, pg_ctl on a free local port, trust authentication,
# fsync off. As root, the server runs as the `postgres` user (initdb refuses root).
#
#   tests/tools/pg.sh start DIR     start a server in DIR (created); prints its URI
#   tests/tools/pg.sh stop DIR      stop it
#   tests/tools/pg.sh run CMD...    start one in a temporary directory, run CMD with
#                                   FH_TEST_PG=URI, stop it, remove the directory
#
# Without the server binaries, `run` says so and runs CMD without FH_TEST_PG (the
# PostgreSQL halves of the tests then skip with that message).
set -eu

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir=$1 port
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if ! as_pg "$bindir/initdb" -D "$dir/data" -U fenghuo -A trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        return 1
    fi
    if ! as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=100" \
        start >/dev/null; then
        cat "$dir/server.log" >&2
        return 1
    fi
    echo "postgresql://fenghuo@127.0.0.1:$port/postgres"
}

stop() {
    as_pg "$bindir/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

case "${1:-}" in
start) start "$2" ;;
stop) stop "$2" ;;
run)
    shift
    if [ -z "$bindir" ] || [ -n "${FH_TEST_PG:-}" ]; then
        [ -z "$bindir" ] && echo "pg.sh: no PostgreSQL server binaries (apt-get install postgresql): PostgreSQL tests skip" >&2
        exec "$@"
    fi
    dir=$(mktemp -d /tmp/fh-pg.XXXXXX)
    trap 'stop "$dir"; rm -rf "$dir"' EXIT
    uri=$(start "$dir")
    FH_TEST_PG=$uri "$@"
    ;;
*)
    echo "usage: $0 start DIR | stop DIR | run CMD..." >&2
    exit 2
    ;;
esac
