"""Shared by the benchmark reports: put one "## ..." section into docs/BENCHMARKS.md."""

import os
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
