"""Turns the tab-separated results of bench/load.sh into docs/benchmarks.md."""

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone


def main() -> None:
    results_path, duration = sys.argv[1], sys.argv[2]
    rows = []
    with open(results_path, encoding="utf-8") as results:
        for line in results:
            backend, concurrency, result, rss_kib = line.rstrip("\n").split("\t")
            values = dict(item.split("=") for item in result.split()[1:])
            seconds = float(values["seconds"])
            requests = int(values["requests"])
            failed = int(values["errors_status"]) + int(values["errors_other"])
            rows.append(
                (
                    backend,
                    int(concurrency),
                    (requests - failed) / seconds,
                    float(values["p50_ms"]),
                    float(values["p99_ms"]),
                    failed,
                    int(rss_kib) / 1024,
                )
            )
    cpu = subprocess.run(
        ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print("# Benchmarks\n")
    print("## Creating incidents through the REST API\n")
    print(
        "`bench/load.sh` starts a release build of `tend serve` with the shipped workflows and "
        "rules, creates an API token, and lets wrk send `POST /api/v1/records/incident` "
        f"requests for {duration} s per row on 127.0.0.1. Every create runs the five on_create "
        "rules of the incident definition (categorise, prioritise, assign, recommend, major "
        "incident) and checks its trends, and writes the record and its journal entries. The "
        "requests set neither a configuration item nor a P1 priority, so no trend or major "
        "incident opens another record. Failed counts responses other than 2xx and socket errors. Peak memory is the "
        "server's VmHWM after the row's run (it only grows across the rows of one backend).\n"
    )
    print(
        f"Machine: {platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores "
        f"({cpu}); load generator and server share the cores. Commit {commit}, "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d')}.\n"
    )
    print("| store | concurrency | incidents/s | p50 ms | p99 ms | failed | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, concurrency, rate, p50, p99, failed, rss in rows:
        print(
            f"| {backend} | {concurrency} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {failed} | {rss:.0f} |"
        )
    print()
    # The analysis of the last measured run is written by hand and kept beside the script.
    analysis = os.path.join(os.path.dirname(__file__), "analysis.md")
    if os.path.exists(analysis):
        with open(analysis, encoding="utf-8") as notes:
            print(notes.read(), end="")
    # The SLA sections come from bench/sla-timers.sh and bench/sla.sh, the mail section
    # from bench/mail-ingest.py and the inventory section from bench/inventory-import.py,
    # and are kept as they last measured.
    for name in ("sla-timers-results.md", "sla-results.md", "mail-results.md",
                 "inventory-results.md"):
        section = os.path.join(os.path.dirname(__file__), name)
        if os.path.exists(section):
            with open(section, encoding="utf-8") as results:
                print()
                print(results.read(), end="")


if __name__ == "__main__":
    main()
