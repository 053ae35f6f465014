#!/usr/bin/env bash
# Makes sure Prometheus Alertmanager is installed at /usr/bin/prometheus-alertmanager, as
# the integration test `alerts::real_alertmanager` expects: it starts its own Alertmanager
# on 127.0.0.1 whose webhook posts to the test's Tend server. Installs Debian's package
# when the program is missing. Prints nothing when it is there. When the install fails it
# prints apt's output and exits with 0, so the test run goes on and that test prints that
# it is skipped.
set -euo pipefail

if [ -x /usr/bin/prometheus-alertmanager ]; then
    exit 0
fi

echo "installing Debian's package prometheus-alertmanager for the alert tests" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Another apt run may hold the lock for a while, so wait for it rather than fail. The
# package's service is not wanted: the test starts its own Alertmanager.
if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends prometheus-alertmanager; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "could not install prometheus-alertmanager: the test with a real Alertmanager will be skipped" >&2
fi
