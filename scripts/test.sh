#!/usr/bin/env bash
# Runs the whole test suite: every crate's unit tests, the rule test cases beside each
# script, and the integration tests against SQLite and PostgreSQL. Sets up what the tests
# need on a fresh machine first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
# restic and ansible-core, which the recovery and deployment plugins run in their tests.
scripts/ensure-plugin-tools.sh
# The FusionInventory agent and lshw, whose output of this machine the CMDB import tests
# import.
scripts/ensure-inventory-tools.sh
# Prometheus Alertmanager, which the alert intake tests start on 127.0.0.1.
scripts/ensure-alertmanager.sh
# Headless Chromium and chromedriver, which the web console's browser tests drive.
scripts/ensure-chromium.sh
# Postfix and Dovecot on 127.0.0.1, which the mail server tests deliver to and poll. The
# script prints the ports, the test password and the CA file as NAME=VALUE lines.
while IFS= read -r line; do
    export "${line?}"
done < <(scripts/ensure-mailserver.sh)
# The tests that need these programs fail, rather than skip, when one is missing.
export TEND_REQUIRE_PLUGIN_TOOLS=1
export TEND_REQUIRE_INVENTORY_TOOLS=1
export TEND_REQUIRE_MAIL_SERVERS=1
export TEND_REQUIRE_BROWSER=1

export TEND_TEST_POSTGRES_URL="${TEND_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

cargo build --workspace --all-targets --locked
# The integration tests start this binary instead of building their own copy.
export TEND_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/tend"
"$TEND_BIN" validate .
cargo test --workspace --locked --no-fail-fast
