#!/usr/bin/env bash
# Start (or find running) a throwaway PostgreSQL server for the tests and print its URL.
#
#   export MIMI_TEST_PG_URL="$(bash .ci/postgres.sh)"     # start, or reuse if running
#   bash .ci/postgres.sh stop                              # stop it and delete its data
#
# Idempotent: installs Debian's postgresql package when initdb is missing, keeps the cluster
# in $MIMI_PG_DIR (default /tmp/mimi-ci-pg) on 127.0.0.1:$MIMI_PG_PORT (default 55432), with
# fsync=on.  PostgreSQL refuses to run as root, so as root it runs as the postgres user.
# Only the URL goes to stdout; progress and errors go to stderr.
set -euo pipefail

PG_DIR="${MIMI_PG_DIR:-/tmp/mimi-ci-pg}"
PG_PORT="${MIMI_PG_PORT:-55432}"
URL="postgresql://postgres@127.0.0.1:${PG_PORT}/postgres"

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; fi
}

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ]; then
    if [ "$(id -u)" -ne 0 ]; then log "PostgreSQL is not installed and we are not root"; exit 1; fi
    log "installing postgresql (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends postgresql >&2
    BINDIR="$(find_bindir)"
    [ -n "$BINDIR" ] || { log "initdb still not found after installing"; exit 1; }
fi

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-start}" = "stop" ]; then
    if [ -d "$PG_DIR/data" ]; then
        as_pg "$BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >&2 || true
    fi
    rm -rf "$PG_DIR"
    exit 0
fi

if [ -d "$PG_DIR/data" ] && as_pg "$BINDIR/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
    log "already running in $PG_DIR"
else
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
        rm -rf "$PG_DIR"
        mkdir -p "$PG_DIR"
        if [ "$(id -u)" -eq 0 ]; then chown postgres: "$PG_DIR"; fi
        # --no-sync only skips initdb's final flush; the server runs with fsync=on.
        as_pg "$BINDIR/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >&2
    fi
    as_pg "$BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DIR -c fsync=on -c max_connections=100" \
        start >&2 || { log "server did not start; log follows"; tail -n 50 "$PG_DIR/log" >&2; exit 1; }
fi

# Ready to take connections on TCP (not only started).
for _ in $(seq 1 60); do
    if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then echo "$URL"; exit 0; fi
    sleep 0.5
done
log "server not accepting connections on 127.0.0.1:$PG_PORT"
exit 1
