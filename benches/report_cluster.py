"""Writes the "soquete serve --cluster" section of docs/BENCHMARKS.md from benches/cluster.sh."""

import json
import os
import statistics
import sys

from benchmarks_doc import latency_row, write_section

HEADING = "## soquete serve --cluster (rooms across servers)"
LABELS = {
    "soquete": "one server, group mode",
    "cluster": "two servers of one room on Redis, clients split evenly",
}


def fanout_lines(results, env):
    rows, medians, damaged = [], {}, 0
    for server, label in LABELS.items():
        runs = [r for r in results if r["case"] == "fanout" and r["server"] == server]
        good = [r["result"] for r in runs if "lines_per_s" in r["result"]]
        errors = [r["result"].get("error", "")[:200] for r in runs if "lines_per_s" not in r["result"]]
        rates = [float(g["lines_per_s"]) for g in good]
        medians[server] = statistics.median(rates) if rates else 0.0
        delivered = sum(int(g["delivered"]) for g in good)
        expected = sum(int(g["expected"]) for g in good)
        lost = sum(int(g.get("lost", 0)) for g in good)
        corrupted = sum(int(g.get("corrupted", 0)) for g in good)
        damaged += lost + corrupted + len(errors)
        rows.append(
            f"| {label} | {medians[server]:,.0f} | {', '.join(f'{x:,.0f}' for x in rates)} | "
            f"{delivered:,} / {expected:,} | {lost:,} | {corrupted:,} | {len(errors)} |"
        )
        rows += [f"|  | failed run: {e} | | | | | |" for e in errors]
    ratio = medians["cluster"] / medians["soquete"] if medians["soquete"] else float("nan")
    met = "met" if damaged == 0 and ratio >= 0.7 else "not met"
    return [
        "",
        f"### 1. Fan-out: 50 clients × {int(env['FANOUT_LINES']):,} lines each, everyone reading",
        "",
        f"Raw-text clients from the chat load generator ({env['FANOUT_THREADS']} threads); the "
        "cluster's clients dealt out to its two servers in turn (`--also`), so every line crosses "
        f"Redis and half the readers are on the other server. {env['REPEAT']} runs each, "
        "alternating, medians; a fresh room each run. `--rate-limit off`.",
        "",
        "| servers | median lines/s | each run | delivered / expected | lost | corrupted | failed runs |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Two servers on Redis / one server: **{ratio:.2f}×**. Goal (issue 16): ≥ 0.7× with 0 "
        f"lost: {met} in this run.",
    ]


def latency_lines(results, env):
    rows, med = [], {}
    for server, label in LABELS.items():
        good = [r["result"] for r in results if r["case"] == "latency" and r["server"] == server
                and "latency" in r["result"]]
        row, med[server] = latency_row(label, good)
        rows.append(row)
    return [
        "",
        f"### 2. Latency at {int(env['LAT_RATE']):,} msgs/s",
        "",
        f"20 clients sending {int(env['LAT_RATE']):,} lines/s in all for {env['LAT_SECS']} s (after "
        "1 s unsampled), every line timed from send to delivery at each of the 19 others; in the "
        "cluster 10 clients on each server (every line goes through Redis, half are read on the "
        f"other server). {env['LAT_REPEAT']} runs each, medians.",
        "",
        "| servers | p50 ms | p99 ms | each run (p50 / p99) | samples | lost + corrupted |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Cluster / one server: p50 **{med['cluster'][0] / med['soquete'][0]:.2f}×**, p99 "
        f"**{med['cluster'][1] / med['soquete'][1]:.2f}×**.",
    ]


def failover_lines(env):
    f = json.load(open(env["FAILOVER_RESULT"]))
    lines = [
        "",
        f"### 3. Failover and reconnect storm: kill -9 a server holding "
        f"{int(env['FAILOVER_CLIENTS']):,} `soquete chat` clients",
        "",
        "Two servers of one room; every client is a real `soquete chat A B --json` process "
        "(`--reconnect-max 1`) connected to A; a raw client on B numbers its lines at 200/s all "
        "along. Then A gets SIGKILL: every client finds its connection gone, moves to B and "
        "resumes with its token and `last_seq`. `benches/cluster_failover.py` times each "
        "client's second `welcome`, records every command Redis runs from the kill until "
        "every client is back (`redis-cli MONITOR`), and checks each client's numbered lines "
        "from the first it saw to the end: none missing, none twice.",
        "",
    ]
    if "error" in f:
        return lines + [f"The run failed: `{f['error'][-600:]}`"]

    def listed(calls):
        return ", ".join(f"{k.upper()} {v:,}" for k, v in calls.items()) or "none"

    sent, scripted = f["redis_sent"], f["redis_scripted"]
    reads = sum(v for k, v in sent.items() if k in ("xread", "xrange", "xrevrange"))
    every = "-" if f["resume_all_s"] is None else f"{f['resume_all_s']:.2f} s"
    median = "-" if f["resume_p50_s"] is None else f"{f['resume_p50_s']:.2f} s"
    lines += [
        "| clients | resumed on B | all resumed after | median | lines talked | lost | twice |",
        "|---|---|---|---|---|---|---|",
        f"| {f['clients']:,} | {f['resumed']:,} | {every} | {median} | "
        f"{f['talked']:,} | {f['lost']:,} | {f['duplicated']:,} |",
        "",
        f"Redis during the storm (from the kill until every client was back, "
        f"{f['storm_s']:.2f} s; `redis-cli MONITOR`, the talker's lines and the servers' beats "
        f"included): the servers sent **{sum(sent.values()):,} commands** ({listed(sent)}), of "
        f"which **{reads:,} read the stream**; their scripts ran {sum(scripted.values()):,} more "
        f"inside Redis ({listed(scripted)}). Commands sent per resumed client: "
        f"{sum(sent.values()) / max(1, f['resumed']):.3f}.",
    ]
    return lines


def main():
    doc = sys.argv[1]
    env = os.environ
    results = [json.loads(line) for line in open(env["RESULTS"]) if line.strip()]
    lines = [
        HEADING,
        "",
        f"`bash benches/cluster.sh` on {env['DATE']}, commit {env['COMMIT']} "
        f"({env['SOQ_VERSION']}), redis-server {env['REDIS_VERSION']} on 127.0.0.1 without "
        f"persistence; {env['NPROC']} cores ({env['CPU']}), Linux {env['KERNEL']}; load average "
        f"{env['LOAD_START']} at the start, {env['LOAD_END']} at the end (Redis, the servers and "
        "the clients share the cores: ratios within one run mean more than the figures).",
    ]
    lines += fanout_lines(results, env) + latency_lines(results, env) + failover_lines(env)
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(doc, HEADING, section)


if __name__ == "__main__":
    main()
