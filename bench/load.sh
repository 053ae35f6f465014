#!/usr/bin/env bash
# Load benchmark: creates incidents through the REST API at concurrency 1, 8 and 32, on
# SQLite and on PostgreSQL, with every shipped rule running, and writes the results to
# docs/benchmarks.md. Uses wrk (Debian package) as the load generator on 127.0.0.1 only.
#
#   bench/load.sh            # both backends, 15 s per run
#   DURATION=30 bench/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15}"
PORT="${PORT:-18080}"
POSTGRES_URL="${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"

if ! command -v wrk >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
scripts/ensure-postgres.sh
cargo build --release --locked --bin tend
TEND="${CARGO_TARGET_DIR:-$PWD/target}/release/tend"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

results="$work/results.tsv"
: > "$results"

# run_backend NAME STORE-OPTION STORE-VALUE
run_backend() {
    local backend="$1" store_option="$2" store_value="$3"
    local log="$work/$backend.log"
    "$TEND" serve --listen "127.0.0.1:$PORT" --definitions . "$store_option" "$store_value" >"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    export TEND_TOKEN
    TEND_TOKEN="$("$TEND" token create admin --label bench "$store_option" "$store_value")"
    for concurrency in 1 8 32; do
        local threads=$(( concurrency < 2 ? 1 : 2 ))
        local out
        out="$(wrk -t"$threads" -c"$concurrency" -d"${DURATION}s" --latency \
            -s bench/create-incident.lua "http://127.0.0.1:$PORT")"
        local line
        line="$(grep '^RESULT' <<<"$out")"
        local rss
        rss="$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")"
        echo -e "$backend\t$concurrency\t$line\t$rss" >> "$results"
        echo "$backend c=$concurrency $line peak_rss_kib=$rss"
    done
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

run_backend sqlite --data-dir "$work/sqlite"
database="tend_bench_$$"
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $database" >/dev/null
run_backend postgres --database-url "$POSTGRES_URL/$database"
psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE $database" >/dev/null

python3 bench/report.py "$results" "$DURATION" > docs/benchmarks.md
echo "wrote docs/benchmarks.md"
