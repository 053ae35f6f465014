#!/usr/bin/env bash
# Makes sure the programs that the recovery and deployment plugins run are installed, as
# their tests expect: restic at /usr/bin/restic and ansible-playbook at
# /usr/bin/ansible-playbook. Installs Debian's packages for the missing ones. ansible-core
# is enough, because the plugins and their tests use only its built-in modules. Prints
# nothing when both programs are there. When the install fails it prints apt's output and
# exits with 0, so the test run goes on and the tests that need a missing program print
# that they are skipped.
set -euo pipefail

packages=()
[ -x /usr/bin/restic ] || packages+=(restic)
[ -x /usr/bin/ansible-playbook ] || packages+=(ansible-core)

if [ "${#packages[@]}" -eq 0 ]; then
    exit 0
fi

echo "installing Debian's packages for the plugin tests: ${packages[*]}" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Another apt run, such as an unattended upgrade, may hold the lock for a
# while, so wait for it rather than fail.
if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "could not install ${packages[*]}: the plugin tests that need them will be skipped" >&2
fi
