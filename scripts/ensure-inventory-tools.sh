#!/usr/bin/env bash
# Makes sure the inventory programs that the CMDB import tests run are installed:
# fusioninventory-inventory (Debian's fusioninventory-agent package) and lshw. Installs
# Debian's packages for the missing ones and prints nothing when both are there. When the
# install fails it prints apt's output and exits with 0, so the test run goes on; the
# tests that need a missing program then fail under TEND_REQUIRE_INVENTORY_TOOLS=1 and
# are skipped with a message without it.
set -euo pipefail

packages=()
[ -x /usr/bin/fusioninventory-inventory ] || packages+=(fusioninventory-agent)
[ -x /usr/bin/lshw ] || packages+=(lshw)

if [ "${#packages[@]}" -eq 0 ]; then
    exit 0
fi

echo "installing Debian's packages for the inventory tests: ${packages[*]}" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Another apt run may hold the lock for a while, so wait for it rather than fail.
if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "could not install ${packages[*]}: the inventory tests that need them will fail or be skipped" >&2
fi
