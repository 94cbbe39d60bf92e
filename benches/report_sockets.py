#!/usr/bin/env python3
"""Turns the raw results of benches/sockets.sh into the "soquete sockets" sections of
docs/BENCHMARKS.md: prints each section it has results for and writes it into the file given as
argument, replacing the previous section of that heading (up to the next "## " heading) and
keeping the others.

Reads from $WORK: owners.json, plain.json (hyperfine --export-json at N), scale-<n>.json,
counts.txt, rss.txt (/usr/bin/time %M, KiB) and strace-*.txt (strace -c -f) for the two-process
shape; one.json, one-counts.txt and one-rss.txt for the one-process shape. Run by sockets.sh.
"""

import json
import os
import re
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_doc import write_section  # noqa: E402

HEADING = "## soquete sockets"
ONE_HEADING = "## soquete sockets: one process holding every connection"
ONE_GOALS = {  # ratio of medians, at most (issue 15)
    ("soquete sockets -tanp", "ss -tanp"): 0.3,
    ("soquete sockets -tanp", "netstat -tanp"): 0.25,
    ("soquete sockets -tan", "ss -tan"): 0.6,
    ("soquete sockets -tani", "ss -tani"): 1.0,
}
GOALS = {  # ratio of medians, at most
    ("soquete sockets -tanp", "ss -tanp"): 0.5,
    ("soquete sockets -tanp", "netstat -tanp"): 0.2,
    ("soquete sockets -tan", "ss -tan"): 0.6,
}
RSS_GOAL_MIB = 50
PROFILE_SYSCALLS = [
    "readlink", "readlinkat", "getxattr", "lgetxattr", "fgetxattr", "openat", "open", "getdents64", "newfstatat", "statx", "fstat",
    "read", "close", "recvmsg", "recvfrom", "sendmsg", "sendto", "socket", "mmap", "munmap",
    "brk", "mremap", "lseek", "write",
]


def env(name):
    return os.environ[name]


def load(path):
    with open(path) as f:
        return {r["command"]: r for r in json.load(f)["results"]}


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def yes(ok):
    return "**yes**" if ok else "**no**"


def strace_counts(path):
    counts = {}
    if not os.path.exists(path):
        return None
    with open(path) as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 5 and re.fullmatch(r"[\d.]+", fields[0]) and fields[3].isdigit():
                counts[fields[-1]] = int(fields[3])
    return counts


def fit(points):
    """Least squares t = a + b*n; returns (a, b, r2)."""
    k = len(points)
    mx = sum(n for n, _ in points) / k
    my = sum(t for _, t in points) / k
    sxx = sum((n - mx) ** 2 for n, _ in points)
    sxy = sum((n - mx) * (t - my) for n, t in points)
    b = sxy / sxx
    a = my - b * mx
    ss_res = sum((t - a - b * n) ** 2 for n, t in points)
    ss_tot = sum((t - my) ** 2 for _, t in points)
    return a, b, (1 - ss_res / ss_tot) if ss_tot else 1.0


def times_table(results):
    """Rows of the times table: median, mean ± σ, min, max and mean CPU time of each command."""
    out = ["| command | median | mean ± σ | min | max | CPU (user + system) |",
           "|---|---|---|---|---|---|"]
    for name, r in results.items():
        out.append(
            f"| `{name}` | {ms(r['median'])} | {ms(r['mean'])} ± {r['stddev'] * 1000:.1f} | "
            f"{ms(r['min'])} | {ms(r['max'])} | {ms(r['user'] + r['system'])} |"
        )
    return out


def goals_table(results, goals, rss_kib, rss_what):
    """The goals: each ratio of medians, then peak RSS."""
    med = {name: r["median"] for name, r in results.items()}
    out = ["| measure | value | goal | met |", "|---|---|---|---|"]
    for (mine, theirs), goal in goals.items():
        ratio = med[mine] / med[theirs]
        out.append(
            f"| median `{mine}` / `{theirs}` | {ratio:.2f}× | ≤ {goal}× | {yes(ratio <= goal)} |"
        )
    rss_mib = max(rss_kib) / 1024
    out.append(
        f"| peak RSS of {rss_what} (max of {len(rss_kib)} runs) | {rss_mib:.1f} MiB | "
        f"< {RSS_GOAL_MIB} MiB | {yes(rss_mib < RSS_GOAL_MIB)} |"
    )
    return out


def one_process_section(work):
    n = int(env("ONE_N"))
    results = load(f"{work}/one.json")
    out = [ONE_HEADING, ""]
    out.append(
        f"Measured {env('DATE')} on {env('NPROC')} cores ({env('CPU')}), Linux {env('KERNEL')}, "
        f"by `{env('CMDLINE')}`: {n:,} established TCP connections on 127.0.0.1 with both ends "
        f"held by ONE python process ({2 * n:,} sockets in one fd table; 10,000 would need more "
        f"descriptors than this machine's hard limit of 20,000 allows one process), soquete at "
        f"{env('REV')}. hyperfine -N, {env('WARMUP')} warmup runs, {env('RUNS')} runs per "
        f"command, output to /dev/null. {env('VERSIONS')}. Load average (1 min) at the start "
        f"{env('LOAD_START')}, at the end {env('LOAD_END')}: other work on the machine shows "
        f"up as noise."
    )
    out += ["", f"### Times with {2 * n:,} sockets in one process", ""]
    out += times_table(results)
    rss_kib = [int(x) for x in open(f"{work}/one-rss.txt").read().split()]
    out += ["", "### Goals", ""]
    out += goals_table(results, ONE_GOALS, rss_kib, "`soquete sockets -tanp` and `-tani`")
    counts = dict(line.split() for line in open(f"{work}/one-counts.txt") if line.strip())
    out += ["", f"Sanity: rows on the benchmark port, `-tan`: ss {counts['ss_port_rows']}, "
            f"soquete {counts['soquete_port_rows']}; owned by the holder in `-tanp`: "
            f"{counts['soquete_tanp_owned_rows']}; with `tcp_info` in `-tani --json`: "
            f"{counts['soquete_tani_info_rows']} (of {2 * n:,})."]
    return "\n".join(out) + "\n"


def main():
    doc = sys.argv[1]
    work = env("WORK")
    if os.path.exists(f"{work}/one.json"):
        section = one_process_section(work)
        print(section)
        write_section(doc, ONE_HEADING, section)
    if os.path.exists(f"{work}/owners.json"):
        two_process_section(doc, work)


def two_process_section(doc, work):
    n = int(env("N"))
    results = {**load(f"{work}/owners.json"), **load(f"{work}/plain.json")}

    out = [HEADING, ""]
    out.append(
        f"Measured {env('DATE')} on {env('NPROC')} cores ({env('CPU')}), Linux {env('KERNEL')}, "
        f"by `{env('CMDLINE')}`: {n:,} established TCP "
        f"connections on 127.0.0.1 ({2 * n:,} sockets, both ends held by two python processes), "
        f"soquete at {env('REV')}. hyperfine -N, {env('WARMUP')} warmup runs, {env('RUNS')} runs "
        f"per command, output to /dev/null. {env('VERSIONS')}. Load average (1 min) at the start "
        f"{env('LOAD_START')}, at the end {env('LOAD_END')}: other work on the machine shows "
        f"up as noise."
    )
    out += ["", f"### Times with {2 * n:,} sockets", ""]
    out += times_table(results)

    rss_kib = [int(x) for x in open(f"{work}/rss.txt").read().split()]
    out += ["", "### Goals", ""]
    out += goals_table(results, GOALS, rss_kib, "`soquete sockets -tanp`")

    # Growth with N: median wall time, and mean CPU time (user + system), which other work on
    # the machine disturbs less.
    scales = sorted({int(s) for s in env("SCALE_LIST").split() if int(s) <= n} | {n})
    table = {}
    for s in scales:
        runs = results if s == n else load(f"{work}/scale-{s}.json")
        table[s] = {k: (r["median"], r["user"] + r["system"]) for k, r in runs.items()}
    cols = ["soquete sockets -tan", "soquete sockets -tanp", "ss -tan", "ss -tanp"]
    out += ["", f"### Growth with the number of connections ({env('SCALE_RUNS')} runs below N, "
            f"{env('RUNS')} at N)", "",
            "Each cell: median wall time (mean CPU time, user + system).", ""]
    out.append("| connections | sockets | " + " | ".join(f"`{c}`" for c in cols) + " |")
    out.append("|---" * (2 + len(cols)) + "|")
    for s in scales:
        cells = [f"{ms(table[s][c][0])} ({table[s][c][1] * 1000:.1f})" for c in cols]
        out.append(f"| {s:,} | {2 * s:,} | " + " | ".join(cells) + " |")
    if len(scales) >= 3:
        out.append("")
        for c in cols:
            verdicts = []
            for what, i in (("wall", 0), ("CPU", 1)):
                pts = [(2 * s, table[s][c][i]) for s in scales]
                a, b, r2 = fit(pts)
                last = (pts[-1][1] - pts[-2][1]) / (pts[-1][0] - pts[-2][0])
                # Superlinear growth shows as a last interval steeper than the fitted line.
                linear = last <= 1.5 * b
                verdicts.append(
                    f"{what} {b * 1e6:.2f} µs per socket {a * 1000:+.1f} ms (R² = {r2:.3f}), "
                    f"last interval {last * 1e6:.2f} µs per socket: "
                    f"{'linear' if linear else '**not linear**'}"
                )
            out.append(f"- `{c}`: " + "; ".join(verdicts) + ".")

    counts = dict(line.split() for line in open(f"{work}/counts.txt") if line.strip())
    out += ["", f"### Row counts (sanity; the benchmark port should show {2 * n:,} rows)", ""]
    out += ["| what | ss | netstat | soquete |", "|---|---|---|---|"]
    out.append(
        f"| all rows of `-tan` | {counts['ss_tan_rows']} | {counts['netstat_tan_rows']} | "
        f"{counts['soquete_tan_rows']} |"
    )
    out.append(
        f"| rows on the benchmark port, `-tan` | {counts['ss_port_rows']} | "
        f"{counts['netstat_port_rows']} | {counts['soquete_port_rows']} "
        f"(`--json --port`: {counts['soquete_json_port_rows']}) |"
    )
    out.append(
        f"| rows on the port owned by the holders, `-tanp` | {counts['ss_tanp_owned_rows']} | - | "
        f"{counts['soquete_tanp_owned_rows']} |"
    )

    profiles = {t: strace_counts(f"{work}/strace-{t}.txt") for t in ("soquete", "ss", "netstat")}
    if all(profiles.values()):
        out += ["", "### Syscalls of one `-tanp` run (`strace -c -f`, calls)", ""]
        out += ["| syscall | soquete | ss | netstat |", "|---|---|---|---|"]
        shown = [s for s in PROFILE_SYSCALLS if any(p.get(s) for p in profiles.values())]
        for s in shown + ["total"]:
            out.append(
                f"| {s} | " + " | ".join(str(profiles[t].get(s, 0)) for t in profiles) + " |"
            )

    section = "\n".join(out) + "\n"
    print(section)

    write_section(doc, HEADING, section)


if __name__ == "__main__":
    main()
