"""Shared by the benchmark reports: put one "## ..." section into docs/BENCHMARKS.md."""

import os
import statistics
import sys


def write_section(doc, heading, section):
    """Replaces the section under `heading` in `doc` (or appends it), keeping the others."""
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        rest = "".join(lines[end:])
        text = "".join(lines[:start]) + section + ("\n" + rest if rest else "")
    with open(doc, "w") as f:
        f.write(text)
    print(f"(written to {os.path.relpath(doc)})", file=sys.stderr)


def latency_row(label, good):
    """A latency table row from the runs' results (`good`): their medians of p50 and p99, each
    run's pair, the samples and what was lost or corrupted. Returns (row, (p50, p99))."""
    lost = sum(int(g.get("lost", 0)) + int(g.get("corrupted", 0)) for g in good)
    p50 = [float(g["latency"]["p50_ms"]) for g in good]
    p99 = [float(g["latency"]["p99_ms"]) for g in good]
    med = (
        statistics.median(p50) if p50 else float("nan"),
        statistics.median(p99) if p99 else float("nan"),
    )
    row = (
        f"| {label} | {med[0]:.3f} | {med[1]:.3f} | "
        f"{', '.join(f'{a:.3f} / {b:.3f}' for a, b in zip(p50, p99))} | "
        f"{sum(int(g['latency']['count']) for g in good):,} | {lost} |"
    )
    return row, med
