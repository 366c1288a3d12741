#!/usr/bin/env python3
"""Summarize the timings of bench/config/run.sh into a Markdown table.

    summarize.py OUT_DIR

Reads OUT_DIR/times-*.json (hyperfine's --export-json format, or the same shape written by run.sh's fallback
timer: {"results": [{"command": ..., "times": [seconds, ...]}]}) and OUT_DIR/load-*.txt (the `RESULT` line of
orchestrator/benches/load.rs), prints the table and writes it to OUT_DIR/summary.md.

Each times-<label>.json holds the commands timed on one file, in the order run.sh gave them: berth first, then the
peers. The ratio column is the peer's median divided by berth's median on the same file.
"""

import glob
import json
import os
import re
import sys


def stats(times: list[float]) -> tuple[float, float, float]:
    """Median, p90 (nearest rank) and min, in milliseconds."""
    t = sorted(x * 1e3 for x in times)
    n = len(t)
    median = t[n // 2] if n % 2 else (t[n // 2 - 1] + t[n // 2]) / 2
    p90 = t[max(1, -(-9 * n // 10)) - 1]
    return median, p90, t[0]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = sys.argv[1]
    lines = []
    meta = os.path.join(out, "meta.txt")
    if os.path.exists(meta):
        with open(meta, encoding="utf-8") as f:
            lines += ["```", f.read().rstrip(), "```", ""]

    lines += [
        "| file | command | runs | median ms | p90 ms | min ms | median / berth's |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted(glob.glob(os.path.join(out, "times-*.json"))):
        label = os.path.basename(path)[len("times-"):-len(".json")]
        with open(path, encoding="utf-8") as f:
            results = json.load(f)["results"]
        base = None
        for r in results:
            times = r.get("times") or []
            if not times:
                continue
            median, p90, low = stats(times)
            if base is None:
                base = median
            ratio = "1" if median == base else f"{median / base:.0f}x" if median / base >= 10 else f"{median / base:.1f}x"
            cmd = r["command"].replace("|", "\\|")
            lines.append(f"| {label} | `{cmd}` | {len(times)} | {median:.1f} | {p90:.1f} | {low:.1f} | {ratio} |")

    loads = sorted(glob.glob(os.path.join(out, "load-*.txt")))
    if loads:
        lines += [
            "",
            "In-process `loader::load` (parse, interpolate, merge, validate, normalize; no process start, no output):",
            "",
            "| file | services | runs | median ms | p90 ms | min ms | first load in the process, ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for path in loads:
            with open(path, encoding="utf-8") as f:
                m = re.search(r"^RESULT (.*)$", f.read(), re.M)
            if not m:
                lines.append(f"| {os.path.basename(path)} | (no result: see the file) | | | | | |")
                continue
            kv = dict(p.split("=", 1) for p in m.group(1).split())
            lines.append(
                f"| {os.path.basename(kv['file'])} | {kv['services']} | {kv['runs']} | {float(kv['median_ms']):.2f} "
                f"| {float(kv['p90_ms']):.2f} | {float(kv['min_ms']):.2f} | {float(kv.get('first_ms', 'nan')):.2f} |"
            )

    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
