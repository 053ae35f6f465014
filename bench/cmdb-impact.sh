#!/usr/bin/env bash
# CMDB impact benchmark: times an impact analysis to depth 5 from one CI in a CMDB of
# 100,000 CIs and 500,000 relationships, on SQLite and PostgreSQL. The bench target
# engine/store/benches/cmdb_impact.rs generates the data and prints one JSON line per
# backend with p50 and p95 in milliseconds. Its documentation lists the settings.
#
#   bench/cmdb-impact.sh
#   TEND_BENCH_BACKENDS=sqlite TEND_BENCH_ITERATIONS=1000 bench/cmdb-impact.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export TEND_BENCH_BACKENDS="${TEND_BENCH_BACKENDS:-sqlite,postgres}"
if [[ "$TEND_BENCH_BACKENDS" == *postgres* ]]; then
    scripts/ensure-postgres.sh
fi
cargo bench --locked -p tend-store --bench cmdb_impact
