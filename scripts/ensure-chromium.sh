#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver server are installed, as the web console's
# browser tests expect: /usr/bin/chromium and /usr/bin/chromedriver. Installs Debian's
# chromium and chromium-driver packages when one is missing, then prints both versions.
# When the install fails it prints apt's output and exits with 0, so the test run goes on
# and the browser tests print that they are skipped, or fail under TEND_REQUIRE_BROWSER=1.
set -euo pipefail

packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)

if [ "${#packages[@]}" -ne 0 ]; then
    echo "installing Debian's packages for the browser tests: ${packages[*]}" >&2
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    # Another apt run, such as an unattended upgrade, may hold the lock for a
    # while, so wait for it rather than fail.
    if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "could not install ${packages[*]}: the browser tests will be skipped" >&2
        exit 0
    fi
fi

# Both programs must start, not only exist: a broken shared library shows up here.
for program in /usr/bin/chromium /usr/bin/chromedriver; do
    if ! version="$("$program" --version 2>&1)"; then
        echo "$program --version failed: $version" >&2
        echo "the browser tests will be skipped" >&2
        exit 0
    fi
    echo "$version" >&2
done
