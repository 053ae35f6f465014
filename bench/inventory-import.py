#!/usr/bin/env python3
"""Inventory import benchmark: documents per minute through `POST /api/v1/inventory` of a
running `tend serve`, on SQLite and, with --postgres, on PostgreSQL.

Before the runs, the CMDB is filled to --background-cis CIs (90 % workstations with a
serial number key, 10 % software packages) and --background-relationships
`installed_on` relationships between them, written with SQL straight into the tables
that `tend serve` created, so that every key lookup of the import searches a CMDB of
that size. Then three passes post --documents documents each, --concurrency at a time:

1. first import: every document describes a new computer (creates the CI, links its
   software, creating the packages that are new);
2. unchanged: the same documents again (matches, compares, writes no CI version);
3. changed: each machine reports a new OS version and five upgraded packages.

The documents are built from scratch in the GLPI agent JSON format, and one in ten is
FusionInventory XML, zlib-compressed as the agent posts it. Each computer has 2 network
interfaces and --packages installed packages drawn from a pool of 3,000.

Usage (release build):

    bench/inventory-import.py --tend target/release/tend [--documents 1000]
        [--concurrency 4] [--postgres postgres://postgres@127.0.0.1:5432]
        [--write bench/inventory-results.md]

Everything runs on 127.0.0.1; the server it starts is stopped at the end.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POOL = 3000


def package_pool(seed):
    rng = random.Random(seed)
    stems = ("lib", "python3-", "gnome-", "x11-", "fonts-", "perl-", "node-", "golang-", "")
    return [(f"{rng.choice(stems)}pkg{index}", f"{rng.randint(0, 9)}.{rng.randint(0, 40)}-{rng.randint(1, 9)}")
            for index in range(POOL)]


def machine(index, run, rng, pool, packages, changed):
    """Returns the facts of machine `index`: the same ones on every pass, except that
    `changed` moves the OS version and upgrades five packages."""
    chosen = rng.sample(range(POOL), packages)
    software = [list(pool[i]) for i in chosen]
    if changed:
        for entry in software[:5]:
            entry[1] += "+deb12u1"
    return {
        "name": f"ws-{run}-{index:05d}",
        "serial": f"SN{run}{index:07d}",
        "uuid": f"{index:08X}-{run:04X}-4000-8000-{index:012X}",
        "macs": [f"52:54:{run % 256:02x}:{(index >> 16) & 255:02x}:{(index >> 8) & 255:02x}:{index & 255:02x}",
                 f"02:42:{run % 256:02x}:{(index >> 16) & 255:02x}:{(index >> 8) & 255:02x}:{index & 255:02x}"],
        "os_version": "12.9" if changed else "12.8",
        "software": software,
    }


def glpi_json(facts, index):
    return json.dumps({
        "deviceid": f"{facts['name']}-2026-12-05-08-00-00",
        "action": "inventory",
        "itemtype": "Computer",
        "content": {
            "hardware": {"name": facts["name"], "uuid": facts["uuid"], "memory": 16000,
                         "chassis_type": "Desktop"},
            "bios": {"ssn": facts["serial"], "smanufacturer": "Contoso", "smodel": "Desk 7"},
            "operatingsystem": {"full_name": "Debian GNU/Linux 12 (bookworm)",
                                "version": facts["os_version"]},
            "cpus": [{"name": "Intel(R) Core(TM) i5-8500", "core": 6}],
            "networks": [{"description": f"eth{n}", "mac": mac, "ipaddress": f"10.{n}.{index >> 8 & 255}.{index & 255}",
                          "virtualdev": False} for n, mac in enumerate(facts["macs"])],
            "softwares": [{"name": name, "version": version, "publisher": "Debian"}
                          for name, version in facts["software"]],
            "versionclient": "GLPI-Agent_v1.7",
        },
    }).encode()


def fusion_xml(facts, index):
    networks = "".join(
        f"<NETWORKS><DESCRIPTION>eth{n}</DESCRIPTION><MACADDR>{mac}</MACADDR>"
        f"<IPADDRESS>10.{n}.{index >> 8 & 255}.{index & 255}</IPADDRESS><VIRTUALDEV>0</VIRTUALDEV></NETWORKS>"
        for n, mac in enumerate(facts["macs"]))
    software = "".join(
        f"<SOFTWARES><NAME>{name}</NAME><VERSION>{version}</VERSION><PUBLISHER>Debian</PUBLISHER></SOFTWARES>"
        for name, version in facts["software"])
    xml = (f'<?xml version="1.0" encoding="UTF-8" ?><REQUEST><DEVICEID>{facts["name"]}-2026-12-05-08-00-00</DEVICEID>'
           "<QUERY>INVENTORY</QUERY><CONTENT>"
           f"<BIOS><SSN>{facts['serial']}</SSN><SMANUFACTURER>Contoso</SMANUFACTURER><SMODEL>Desk 7</SMODEL></BIOS>"
           f"<HARDWARE><NAME>{facts['name']}</NAME><UUID>{facts['uuid']}</UUID><MEMORY>16000</MEMORY>"
           f"<OSNAME>Debian GNU/Linux 12 (bookworm)</OSNAME><OSVERSION>{facts['os_version']}</OSVERSION></HARDWARE>"
           f"<OPERATINGSYSTEM><FULL_NAME>Debian GNU/Linux 12 (bookworm)</FULL_NAME><VERSION>{facts['os_version']}</VERSION></OPERATINGSYSTEM>"
           f"<CPUS><NAME>Intel(R) Core(TM) i5-8500</NAME><CORE>6</CORE></CPUS>{networks}{software}"
           "</CONTENT></REQUEST>")
    return zlib.compress(xml.encode())


def documents(count, run, packages, changed):
    pool = package_pool(7)
    docs = []
    for index in range(count):
        rng = random.Random(index * 7919 + run)
        facts = machine(index, run, rng, pool, packages, changed)
        docs.append(fusion_xml(facts, index) if index % 10 == 9 else glpi_json(facts, index))
    return docs


def wait_for_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_all(port, token, docs, concurrency, expected):
    def post(body):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        compressed = body[:1] == b"\x78"
        connection.request("POST", "/api/v1/inventory", body=body, headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-compress-zlib" if compressed else "application/json"})
        response = connection.getresponse()
        text = response.read()
        connection.close()
        if compressed:
            return response.status, None
        return response.status, json.loads(text)["items"][0]["action"] if response.status < 300 else text

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(post, docs))
    elapsed = time.perf_counter() - start
    failed = [r for r in results if r[0] >= 300 or (r[1] is not None and r[1] != expected)]
    if failed:
        print(f"{len(failed)} documents did not give `{expected}`, first: {failed[0]}", file=sys.stderr)
    return elapsed, len(failed)


def now_text():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())


def fill_sqlite(path, cis, relationships):
    db = sqlite3.connect(path, timeout=60)
    at = now_text()
    packages = cis // 10
    with db:
        base = db.execute("SELECT COALESCE(MAX(id), 0) FROM cis").fetchone()[0]
        rows = []
        for i in range(cis):
            if i < packages:
                rows.append(("software_package", f"filler-pkg{i} 1.0", f"filler-pkg{i} 1.0",
                             json.dumps({"package_name": f"filler-pkg{i}", "version": "1.0"})))
            else:
                rows.append(("workstation", f"filler-{i}", f"filler-{i}",
                             json.dumps({"serial_number": f"FILLER{i}"})))
        db.executemany("INSERT INTO cis (class, name, name_key, status, attributes, version, created_at, updated_at)"
                       f" VALUES (?, ?, ?, 'active', ?, 1, '{at}', '{at}')", rows)
        keys = []
        for i in range(cis):
            if i < packages:
                keys.append((base + i + 1, "package_name", f"filler-pkg{i}", "software_package", 0))
                keys.append((base + i + 1, "version", "1.0", "software_package", 0))
            else:
                keys.append((base + i + 1, "serial_number", f"filler{i}", "computer", 1))
        db.executemany("INSERT INTO ci_keys (ci_id, attribute, value, scope, is_unique) VALUES (?, ?, ?, ?, ?)", keys)
        rng = random.Random(3)
        pairs = set()
        while len(pairs) < relationships:
            pairs.add((base + rng.randint(1, packages), base + rng.randint(packages + 1, cis)))
        db.executemany("INSERT INTO ci_relationships (kind, source_id, target_id, created_by, created_via, created_at)"
                       f" VALUES ('installed_on', ?, ?, 'bench', 'import', '{at}')", list(pairs))
    db.close()


def fill_postgres(url, cis, relationships):
    packages = cis // 10
    sql = f"""
BEGIN;
CREATE TEMP TABLE base AS SELECT COALESCE(MAX(id), 0) AS id FROM cis;
INSERT INTO cis (class, name, name_key, status, attributes, version, created_at, updated_at)
SELECT CASE WHEN i < {packages} THEN 'software_package' ELSE 'workstation' END,
       CASE WHEN i < {packages} THEN 'filler-pkg' || i || ' 1.0' ELSE 'filler-' || i END,
       CASE WHEN i < {packages} THEN 'filler-pkg' || i || ' 1.0' ELSE 'filler-' || i END,
       'active',
       CASE WHEN i < {packages} THEN '{{"package_name":"filler-pkg' || i || '","version":"1.0"}}'
            ELSE '{{"serial_number":"FILLER' || i || '"}}' END,
       1, now(), now()
FROM generate_series(0, {cis - 1}) AS i;
INSERT INTO ci_keys (ci_id, attribute, value, scope, is_unique)
SELECT (SELECT id FROM base) + i + 1, 'serial_number', 'filler' || i, 'computer', true
FROM generate_series({packages}, {cis - 1}) AS i;
INSERT INTO ci_keys (ci_id, attribute, value, scope, is_unique)
SELECT (SELECT id FROM base) + i + 1, 'package_name', 'filler-pkg' || i, 'software_package', false
FROM generate_series(0, {packages - 1}) AS i;
INSERT INTO ci_relationships (kind, source_id, target_id, created_by, created_via, created_at)
SELECT DISTINCT ON (s, t) 'installed_on', s, t, 'bench', 'import', now() FROM (
  SELECT (SELECT id FROM base) + 1 + (random() * {packages - 1})::bigint AS s,
         (SELECT id FROM base) + {packages} + 1 + (random() * {cis - packages - 1})::bigint AS t
  FROM generate_series(1, {relationships})) AS pairs;
COMMIT;
ANALYZE;
"""
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=sql.encode(), check=True)


def backend(name, tend, store_args, args, work, fill):
    port = free_port()
    log = open(os.path.join(work, f"{name}-serve.log"), "wb")
    server = subprocess.Popen(
        [tend, "serve", "--listen", f"127.0.0.1:{port}", "--definitions", REPO, "--no-imap",
         *store_args], stdout=log, stderr=log)
    rows = []
    try:
        wait_for_port(port)
        started = time.perf_counter()
        fill()
        print(f"{name}: filled the CMDB in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        subprocess.run([tend, "user", "add", "agent", "--role", "inventory_agent", "--password-stdin",
                        *store_args], input=b"bench password\n", check=True, capture_output=True)
        token = subprocess.run([tend, "token", "create", "agent", *store_args], check=True,
                               capture_output=True).stdout.decode().strip()
        run = os.getpid() % 4096
        first = documents(args.documents, run, args.packages, False)
        for label, docs, expected in (
                ("first import (new computers)", first, "create"),
                ("same documents again", first, "unchanged"),
                ("new OS version, 5 upgraded packages", documents(args.documents, run, args.packages, True), "update")):
            seconds, failed = post_all(port, token, docs, args.concurrency, expected)
            rows.append((name, label, args.documents, seconds, failed))
            print(f"measured: {name} | {label} | {args.documents / seconds * 60:.0f}/min | {failed} failed",
                  file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tend", required=True)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--packages", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--background-cis", type=int, default=100_000)
    parser.add_argument("--background-relationships", type=int, default=500_000)
    parser.add_argument("--postgres", help="server URL without a database name")
    parser.add_argument("--write", help="write the results as Markdown to this file")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tend-inventory-bench-")
    rows = []
    try:
        data_dir = os.path.join(work, "sqlite")
        rows += backend("SQLite", args.tend, ["--data-dir", data_dir], args, work,
                        lambda: fill_sqlite(os.path.join(data_dir, "tend.db"), args.background_cis,
                                            args.background_relationships))
        if args.postgres:
            database = f"tend_inventory_bench_{os.getpid()}"
            subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c",
                            f"CREATE DATABASE {database}"], check=True)
            url = f"{args.postgres}/{database}"
            try:
                rows += backend("PostgreSQL", args.tend, ["--database-url", url], args, work,
                                lambda: fill_postgres(url, args.background_cis,
                                                      args.background_relationships))
            finally:
                subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test",
                                "-c", f"DROP DATABASE {database}"], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "## Inventory import",
        "",
        f"`bench/inventory-import.py --documents {args.documents} --concurrency {args.concurrency}`, "
        f"release build, 2 cores, `POST /api/v1/inventory` of one `tend serve`. The CMDB holds "
        f"{args.background_cis:,} CIs and {args.background_relationships:,} relationships before "
        f"the first pass. Each document is one computer with 2 network interfaces and "
        f"{args.packages} installed packages from a pool of {POOL:,}; one in ten is zlib-compressed "
        "FusionInventory XML, the others GLPI agent JSON. The aim is 1,000 documents a minute.",
        "",
        "| Store | Pass | Documents | Seconds | Documents/min | Failed |",
        "|---|---|---|---|---|---|",
    ]
    for store, label, count, seconds, failed in rows:
        lines.append(f"| {store} | {label} | {count} | {seconds:.1f} | {count / seconds * 60:.0f} | {failed} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as out:
            out.write(text)


if __name__ == "__main__":
    main()
