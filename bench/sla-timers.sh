#!/usr/bin/env bash
# SLA timers benchmark: times firing due timers and the breaching-soon list with 10,000,
# 100,000 and 1,000,000 open records carrying clocks, on SQLite and PostgreSQL. The bench
# target engine/store/benches/sla_timers.rs does the work. This script writes its results
# to bench/sla-timers-results.md and to their section of docs/benchmarks.md, placed before
# the business-time section, which bench/sla.sh rewrites. The notes written by hand in
# bench/sla-timers-analysis.md end the section.
#
#   bench/sla-timers.sh
#   TEND_BENCH_SIZES=10000,100000 TEND_BENCH_BACKENDS=sqlite bench/sla-timers.sh
#
# The databases stay in TEND_BENCH_DIR (default $TMPDIR/tend-bench-sla-timers) and, for
# PostgreSQL, as tend_bench_sla_<N> on the server; a later run reuses them and reports the
# population time measured when they were filled. Delete the directory (and drop those
# databases) to populate again. See the bench target's documentation for the other settings.
set -euo pipefail
cd "$(dirname "$0")/.."

export TEND_BENCH_DIR="${TEND_BENCH_DIR:-${TMPDIR:-/tmp}/tend-bench-sla-timers}"
export TEND_BENCH_BACKENDS="${TEND_BENCH_BACKENDS:-sqlite,postgres}"
mkdir -p "$TEND_BENCH_DIR"
export TEND_BENCH_OUT="$TEND_BENCH_DIR/results.jsonl"

if [[ "$TEND_BENCH_BACKENDS" == *postgres* ]]; then
    scripts/ensure-postgres.sh
fi
cargo bench --locked -p tend-store --bench sla_timers

python3 - "$TEND_BENCH_OUT" <<'PY'
import json, os, platform, re, subprocess, sys, textwrap
from datetime import datetime, timezone

with open(sys.argv[1], encoding="utf-8") as f:
    results = [json.loads(line) for line in f if line.strip()]
if not results:
    sys.exit("the benchmark wrote no results")

def git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

commit = git("rev-parse", "--short", "HEAD")
if git("status", "--porcelain", "--", "engine", "migrations"):
    commit += " with uncommitted changes"
cpu = ""
try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip().split()[0:2]
                cpu = " (" + " ".join(cpu) + ")"
                break
except OSError:
    pass
iterations = sorted({r["iterations"] for r in results})

def ms(value):
    return f"{value:.2f}"

def paragraph(text, indent=""):
    return textwrap.wrap(
        text,
        90,
        initial_indent=indent,
        subsequent_indent=" " * len(indent),
        break_on_hyphens=False,
        break_long_words=False,
    )

runs = " or ".join(str(i) for i in iterations)
lines = ["## SLA timers and the breaching-soon list", ""]
lines += paragraph(
    "`bench/sla-timers.sh` runs `engine/store/benches/sla_timers.rs`. It fills a database "
    "(schema from the migrations) with N open incidents. Each has a stopped response clock "
    "and a resolution clock; one in ten is pending with its resolution clock paused, and "
    "every other one has a running clock and an SLA timer at its due time. 100 timers are "
    "due now; the other due times are spread evenly over the next 225 hours, so 0.4 % of "
    "the records fall due within the next hour. Multi-row inserts of 10,000 records per "
    "transaction fill the tables, and on PostgreSQL `ANALYZE` follows. Population is timed "
    "once and the databases are reused by later runs. Then the benchmark times these calls "
    f"{runs} times each on every database, after 20 untimed calls. The timed calls run in "
    "10 rounds, each of which visits every database in turn, so a slower spell of the "
    "machine does not fall on one database alone:"
)
lines.append("")
lines += paragraph(
    "firing: `due_timers(now, 100)` and one write that deletes those 100 timers with "
    "`consume_timer`. This is the store's part of firing, without rules or journal "
    "entries; the timers are put back after each call, untimed. The read and write "
    "columns split the median into `due_timers` and the write.",
    "- ",
)
lines += paragraph(
    "breaching list: `clocks_due_between(now, now + 1 h, 500)`, the running clocks due "
    "within the next hour, with the numbers and titles of their records. The number of "
    "rows grows with N up to the limit of 500.",
    "- ",
)
lines += paragraph("first 25: the same list with a limit of 25, so 25 rows at every N.", "- ")
lines += [
    "",
    f"Machine: {platform.machine()}, {os.cpu_count()} cores{cpu}. Commit {commit}, "
    f"{datetime.now(timezone.utc).strftime('%Y-%m-%d')}.",
    "",
    "| records | store | firing p50 ms | firing mean ms | read p50 ms | write p50 ms "
    "| list rows | list p50 ms | list mean ms | first 25 p50 ms | population s |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
order = {"sqlite": 0, "postgres": 1}
results.sort(key=lambda r: (order.get(r["backend"], 2), r["records"]))
for r in results:
    lines.append(
        f"| {r['records']:,} | {r['backend']} | {ms(r['firing']['p50_ms'])} "
        f"| {ms(r['firing']['mean_ms'])} | {ms(r['firing_read']['p50_ms'])} "
        f"| {ms(r['firing_write']['p50_ms'])} | {r['list_rows']} | {ms(r['list']['p50_ms'])} "
        f"| {ms(r['list']['mean_ms'])} | {ms(r['short_list']['p50_ms'])} "
        f"| {r['populate_seconds']:.0f} |"
    )
lines.append("")
lines += paragraph(
    "Query plans (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN` without its cost "
    "estimates), of the queries as the store builds them:"
)
lines.append("")
names = {
    "due_timers": "due timers",
    "clocks_due": "clocks due within the hour",
    "record_lookup": "numbers and titles of the listed records",
}

def shorten(line):
    # The shape of a plan matters, not its estimates nor the 500 ids of the lookup.
    line = re.sub(r"  \(cost=[^)]*\)", "", line)
    line = line.replace("::timestamp with time zone", "")
    return re.sub(r"'\{([0-9]+),([0-9]+),[0-9,]*?([0-9]+)\}'", r"'{\1,\2,...,\3}'", line)

for backend in ["sqlite", "postgres"]:
    rows = [r for r in results if r["backend"] == backend]
    if not rows:
        continue
    for query, label in names.items():
        groups = {}
        for r in rows:
            plan = "\n".join(shorten(line) for line in r["plans"][query])
            groups.setdefault(plan, []).append(f"{r['records']:,}")
        for plan, sizes in groups.items():
            lines.append(f"{backend}, {label}, at {', '.join(sizes)} records:")
            lines.append("")
            lines.append("```")
            lines.append(plan)
            lines.append("```")
            lines.append("")
notes = "bench/sla-timers-analysis.md"
if os.path.exists(notes):
    with open(notes, encoding="utf-8") as f:
        lines.append(f.read().rstrip("\n"))
        lines.append("")
section = "\n".join(lines).rstrip("\n") + "\n"
with open("bench/sla-timers-results.md", "w", encoding="utf-8") as f:
    f.write(section)

page = "docs/benchmarks.md"
text = open(page, encoding="utf-8").read() if os.path.exists(page) else "# Benchmarks\n"
marker = "## SLA timers and the breaching-soon list"
if marker in text:
    start = text.index(marker)
    following = text.find("\n## ", start + len(marker))
    text = text[:start] + (text[following + 1 :] if following >= 0 else "")
arithmetic = "## Business-time arithmetic"
if arithmetic in text:
    at = text.index(arithmetic)
    text = text[:at] + section + "\n" + text[at:]
else:
    text = text.rstrip("\n") + "\n\n" + section
with open(page, "w", encoding="utf-8") as f:
    f.write(text)
print(section)
PY
