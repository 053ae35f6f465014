#!/usr/bin/env bash
# Builds Tend and starts it on the embedded SQLite database in ./tend-data with the
# workflows and rules of this checkout. On the first start it prints the admin password.
# Extra arguments go to `tend serve` (for example --listen 127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked --bin tend -- serve --definitions . "$@"
