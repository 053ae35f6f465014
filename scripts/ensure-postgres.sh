#!/usr/bin/env bash
# Makes sure a PostgreSQL server accepts connections on 127.0.0.1:5432 with trust authentication for
# the user `postgres`, as the store tests expect. Installs and starts Debian's package
# when none is running. Prints nothing on success.
set -euo pipefail

ready() {
    command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432
}

if ready; then
    exit 0
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not installed: installing Debian's package" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

version="$(ls /etc/postgresql | sort -V | tail -n 1)"
config="/etc/postgresql/${version}/main"
# Trust local TCP connections on the loopback only; the server listens on 127.0.0.1.
if ! grep -q "^host all all 127.0.0.1/32 trust" "${config}/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust' "${config}/pg_hba.conf"
fi
sed -i "s/^#\?listen_addresses.*/listen_addresses = '127.0.0.1'/" "${config}/postgresql.conf"
pg_ctlcluster --skip-systemctl-redirect "${version}" main start || true

for _ in $(seq 1 30); do
    if ready; then
        exit 0
    fi
    sleep 1
done
echo "PostgreSQL did not start on 127.0.0.1:5432; see /var/log/postgresql" >&2
exit 1
