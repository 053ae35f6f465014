#!/usr/bin/env bash
# Business-time arithmetic benchmark: runs the criterion benchmark of the tend-sla crate
# and writes its results to bench/sla-results.md and to the matching section of
# docs/benchmarks.md (bench/report.py keeps that section when it rewrites the page).
#
#   bench/sla.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo bench --locked -p tend-sla --bench arithmetic -- --warm-up-time 1 --measurement-time 3 >/dev/null
python3 - "$target/criterion" <<'PY'
import json, os, platform, subprocess, sys
from datetime import datetime, timezone

root = sys.argv[1]
rows = []
for name in sorted(os.listdir(root)):
    estimates = os.path.join(root, name, "new", "estimates.json")
    if not os.path.exists(estimates) or not (name.startswith("add") or name.startswith("elapsed")):
        continue
    with open(estimates, encoding="utf-8") as f:
        mean = json.load(f)["mean"]["point_estimate"]
    rows.append((name, mean))
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
lines = [
    "## Business-time arithmetic",
    "",
    "`bench/sla.sh` runs the criterion benchmark `engine/sla/benches/arithmetic.rs`. It times one call of",
    "`add` (a target of 1, 4 or 40 business hours from a Friday afternoon) or `elapsed` on an",
    "office calendar (Monday to Friday 09:00-17:00 Europe/Berlin with yearly holidays), a night",
    "shift across midnight (America/New_York) and 24x7. The target is under 5 µs per call.",
    "",
    f"Machine: {platform.machine()}, {os.cpu_count()} cores. Commit {commit}, "
    f"{datetime.now(timezone.utc).strftime('%Y-%m-%d')}.",
    "",
    "| call | mean |",
    "|---|---:|",
]
for name, mean in rows:
    label = name.replace("_", " ")
    lines.append(f"| {label} | {mean / 1000:.2f} µs |")
section = "\n".join(lines) + "\n"
with open("bench/sla-results.md", "w", encoding="utf-8") as f:
    f.write(section)
page = "docs/benchmarks.md"
text = open(page, encoding="utf-8").read() if os.path.exists(page) else "# Benchmarks\n"
marker = "## Business-time arithmetic"
if marker in text:
    text = text[: text.index(marker)]
text = text.rstrip("\n") + "\n\n" + section
with open(page, "w", encoding="utf-8") as f:
    f.write(text)
print(section)
PY
