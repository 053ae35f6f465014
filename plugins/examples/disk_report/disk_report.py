#!/usr/bin/env python3
"""Tend external plugin that reports the free space of the file system holding a path.

Tend writes one JSON request to stdin. This program prints one JSON outcome to stdout and
exits with code 0. Log lines go to stderr. An unexpected exception exits with code 1 and
a traceback on stderr, which Tend reports as a failed run.
"""

import json
import shutil
import sys

PROTOCOL = 1


def outcome(status, summary, output="", data=None):
    """Build an outcome object as Tend expects it."""
    return {"status": status, "summary": summary, "output": output, "data": data}


def human(size):
    """Format a byte count with a binary unit, such as 12.3 GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def free_space(params):
    """Measure the file system that contains params["path"]."""
    path = params["path"]
    min_free_percent = params["min_free_percent"]
    if not 0 <= min_free_percent <= 100:
        return outcome(
            "failed",
            f"min_free_percent is {min_free_percent}. Give a whole number from 0 to 100",
        )

    try:
        usage = shutil.disk_usage(path)
    except OSError as error:
        return outcome("failed", f"Could not measure {path}: {error.strerror}")

    free_percent = usage.free * 100 / usage.total if usage.total else 0.0
    low = free_percent < min_free_percent
    summary = (
        f"{path}: {human(usage.free)} free of {human(usage.total)} "
        f"({free_percent:.1f}%)"
    )
    if low:
        summary += f", below the {min_free_percent}% threshold"
    output = "\n".join(
        [
            f"total: {usage.total} bytes",
            f"used:  {usage.used} bytes",
            f"free:  {usage.free} bytes",
        ]
    )
    data = {
        "path": path,
        "total_bytes": usage.total,
        "used_bytes": usage.used,
        "free_bytes": usage.free,
        "free_percent": round(free_percent, 1),
        "below_threshold": low,
    }
    return outcome("succeeded", summary, output, data)


ACTIONS = {"free_space": free_space}


def main():
    request = json.load(sys.stdin)
    if request.get("protocol") != PROTOCOL:
        result = outcome(
            "failed",
            f"disk_report speaks protocol {PROTOCOL}, got {request.get('protocol')}",
        )
    elif request["action"] not in ACTIONS:
        result = outcome("failed", f"disk_report has no action {request['action']}")
    else:
        print(
            f"run {request['run_id']}: {request['action']} for {request['actor']}",
            file=sys.stderr,
        )
        result = ACTIONS[request["action"]](request["params"])
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
