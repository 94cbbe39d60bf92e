#!/usr/bin/env python3
"""Turns the results of benches/limits.sh ($RESULTS, one JSON line per run) into the section
"soquete serve: talking at once, bounded resources" of docs/BENCHMARKS.md: prints it and writes
it into the file given as argument, keeping the other sections. Run by limits.sh, which exports
the environment read here.
"""

import json
import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report_chat import (  # noqa: E402
    env, fanout_ratio, fanout_table, finish_section, mib, num, runs, what_server_did)

HEADING = "## soquete serve: talking at once, bounded resources"
# The goals: threads at most the steady count + 16, RSS at most 64 MiB above idle.
THREADS_ABOVE_STEADY = 16
RSS_ABOVE_IDLE_KIB = 64 * 1024
# The sizes; a run below them says so.
FULL_SIZE = {"REPEAT": 3, "AT_ONCE_LINES": 1000, "BURST_CONNECTS": 5000, "BURST_HOLD": 3,
             "QUEUE_CLIENTS": 50, "QUEUE_SECS": 60, "LISTENERS": 100, "LISTEN_SECS": 30}


def number(name):
    return float(env(name, "0"))


def reduced():
    """The sizes of this run below the issue's, as `NAME=value`."""
    return [f"{k}={env(k)}" for k, full in FULL_SIZE.items() if number(k) < full]


def usage(res):
    """The figures of a `resources` report: idle, steady, peak and end readings."""
    def get(state, key):
        return (res.get(state) or {}).get(key)
    idle_rss = get("idle", "rss_kib")
    peak = res["peak"]
    return {
        "idle_rss": idle_rss, "idle_threads": get("idle", "threads"),
        "steady_rss": get("steady", "rss_kib"), "steady_threads": get("steady", "threads"),
        "steady_fds": res.get("steady_fds"),
        "peak_rss": peak["rss_kib"], "peak_threads": peak["threads"], "peak_fds": peak["fds"],
        "end_rss": get("end", "rss_kib"), "end_threads": get("end", "threads"),
        "growth": peak["rss_kib"] - idle_rss if idle_rss is not None and peak["samples"] else None,
    }


def burst_clients(r):
    told = f"{r['told']:,} told something" if r["told"] else "none told anything"
    kinds = "; ".join(f"{n:,} × `{k[:90]}`" for k, n in r["notice_kinds"].items())
    closed = ", ".join(f"{n:,} × {k}" for k, n in r["closed_reasons"].items())
    text = (f"{r['connected']:,} of {r['clients']:,} connected in {r['burst_s']:.2f} s, {told}, "
            f"{r['still_open']:,} not closed by the server after {r['hold_s']} s; holders "
            f"still in: {r['holders_open']} of {r['holders']}")
    if closed:
        text += f"; ended: {closed}"
    if r["connect_errors"]:
        text += f"; {r['connect_errors']:,} connect errors ({r['first_connect_error']})"
    return text + (f"; {kinds}" if kinds else "")


def queue_clients(r):
    kinds = "; ".join(f"{n:,} × `{k[:90]}`" for k, n in r["notice_kinds"].items()
                      if "welcome" not in k and "queued at position" not in k
                      and "talking with" not in k)
    text = (f"their sockets took {r['lines_sent']:,} lines ({num(r['lines_per_s'])}/s); "
            f"{r['queued_closed']} of {r['clients']} closed by the server")
    if r["closed_reasons"]:
        text += " (" + ", ".join(f"{n} × {k}" for k, n in r["closed_reasons"].items()) + ")"
    if r["errors"]:
        text += f"; {r['errors']:,} error lines"
    return text + (f"; {kinds}" if kinds else "")


def listener_clients(r):
    return (f"talkers: {r['delivered']:,} of {r['expected']:,} lines, {r['lost']:,} lost, "
            f"{r['corrupted']:,} corrupted; listeners: {r['listener_delivered']:,} of "
            f"{r['listener_expected']:,}, **{r['listener_lost']:,} missed**, "
            f"{r['listeners_closed']} closed by the server")


SCENARIOS = [
    ("burst", "a", burst_clients),
    ("queue", "b", queue_clients),
    ("listeners", "c", listener_clients),
]


def main():
    doc = sys.argv[1]
    results = [json.loads(line) for line in open(env("RESULTS")) if line.strip()]
    out = [HEADING, ""]
    out.append(
        f"Measured {env('DATE')} on {env('NPROC')} cores ({env('CPU')}), Linux {env('KERNEL')}, "
        f"by `bash benches/limits.sh`, soquete at commit {env('COMMIT')} ({env('SOQ_VERSION')}, "
        f"release build), ncat {env('NCAT_VERSION')}: a fresh server for each run, the load "
        f"generator of benches/chat.rs (mio/epoll loops, raw text lines) on 127.0.0.1. Load "
        f"average (1 min) at the start {env('LOAD_START')}, at the end {env('LOAD_END')}."
    )
    small = reduced()
    if small:
        out += ["", f"**A reduced run** ({', '.join(small)}): not the sizes of the goals."]
    goals = []

    # --- 1. fan-out at once ---------------------------------------------------------------------
    n, lines = int(number("AT_ONCE_CLIENTS")), int(number("AT_ONCE_LINES"))
    servers = [s for s in ("soquete", "broker", "ncat") if runs(results, "fanout_at_once", s)]
    out += ["", f"### 1. Fan-out, every client talking at once: {n} clients × {lines:,} lines", ""]
    out.append(
        f"chat.sh's fan-out (`chat fanout --clients {n} --lines {lines} --size 64 --threads "
        f"{env('AT_ONCE_THREADS')} --at-once`), but nobody says anything before the clock "
        f"starts: once every client is accepted (soquete in group mode: each has its greeting; "
        f"broker mode and ncat, which say nothing: each is connected, and 0.5 s more), every "
        f"client writes its {lines:,} lines at once, so each one's first lines reach clients "
        f"that have not written yet. Expected: {n} × {n - 1} × {lines:,} = "
        f"{n * (n - 1) * lines:,} lines per run, {env('REPEAT')} run(s) per server; servers "
        f"`soquete serve --rate-limit off` (group mode), `--mode broker --rate-limit off`, "
        f"`ncat --broker`. Columns as in chat.sh's fan-out."
    )
    med, fan = fanout_table(out, results, "fanout_at_once", servers)
    fanout_ratio(out, med, fan)
    for s, what in (("soquete", "group mode"), ("broker", "broker mode")):
        if s in fan:
            f = fan[s]
            goals.append((f"fan-out at once, lost / corrupted lines (soquete {what}, all runs)",
                          f"{f['lost']:,} / {f['corrupted']:,}", "0 / 0",
                          f["expected"] > 0 and f["lost"] == 0 and f["corrupted"] == 0
                          and f["delivered"] == f["expected"]))

    # --- 2. resources ---------------------------------------------------------------------------
    out += ["", "### 2. The server's memory and threads under load", ""]
    out.append(
        "The generator reads the server's /proc/PID/status every 10 ms (its fds every 100 ms) "
        "from before the first connection to the end of the load: idle is the server before "
        "any connection, steady is the server with the run's clients connected and settled "
        "(no byte for 1 s), before the load; the peaks are the highest readings of the whole "
        "run. Goals: peak threads ≤ steady + "
        f"{THREADS_ABOVE_STEADY}, peak RSS ≤ idle + {RSS_ABOVE_IDLE_KIB // 1024} MiB."
    )
    burst, hold = int(number("BURST_CONNECTS")), env("BURST_HOLD")
    qn, qs, qsize = int(number("QUEUE_CLIENTS")), env("QUEUE_SECS"), int(number("QUEUE_SIZE"))
    ln, lt, lr, ls = (int(number("LISTENERS")), int(number("LISTEN_TALKERS")),
                      int(number("LISTEN_RATE")), env("LISTEN_SECS"))
    described = {
        "a": (f"a. {burst:,} connections at once against `soquete serve --max-clients "
              f"{env('BURST_MAX')}` (`ncat --broker --max-conns {env('BURST_MAX')}`), its "
              f"{env('BURST_MAX')} places held by clients that read and stay; each connection "
              f"of the burst reads what it is told and stays open, as an attacker's would, "
              f"until {hold} s after the last was opened (`chat burst --holders "
              f"{env('BURST_MAX')} --clients {burst} --hold {hold}`)."),
        "b": (f"b. `soquete serve --mode single` (default flood control): a first client is "
              f"served and only reads, {qn} more wait in the queue and send {qsize:,}-byte "
              f"lines as fast as their sockets take them for {qs} s (`chat queue --clients {qn} "
              f"--size {qsize} --duration {qs}`)."),
        "c": (f"c. {ln} raw listeners that read and never write, in a room where {lt} talkers "
              f"send {lr:,} lines/s in total for {ls} s (`chat paced --clients {lt} "
              f"--listeners {ln} --rate {lr} --duration {ls} --size 64 --resources`), against "
              f"`soquete serve --rate-limit off` and `ncat --broker`. The listeners connect "
              f"after the talkers and before the talkers' hello exchange; a missed line is "
              f"one a listener never got."),
    }
    out += [""] + [f"- {described[letter]}" for _, letter, _ in SCENARIOS]
    out += [
        "",
        "| run | server | idle RSS | steady threads | peak threads | steady RSS | peak RSS | "
        "peak − idle RSS | steady / peak fds | at the end: threads, RSS | the clients |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for case, letter, clients in SCENARIOS:
        peaks = {}
        for s in ("soquete", "ncat"):
            for run in runs(results, case, s):
                r = run["result"]
                name = (f"`soquete serve {run['flags']}`" if s == "soquete"
                        else f"`ncat --broker {run['flags']}`")
                if "error" in r:
                    out.append(f"| {letter} | {name} | failed: {r['error'][:200]} "
                               f"| | | | | | | | |")
                    if s == "soquete":
                        goals.append((f"{letter}: the run", "failed", "completes", False))
                    continue
                u = usage(r["resources"])
                peaks[s] = u["peak_rss"] if r["resources"]["peak"]["samples"] else None
                out.append(
                    f"| {letter} | {name} | {mib(u['idle_rss'])} | {num(u['steady_threads'])} | "
                    f"{num(u['peak_threads'])} | {mib(u['steady_rss'])} | {mib(u['peak_rss'])} | "
                    f"{mib(u['growth'])} | {num(u['steady_fds'])} / {num(u['peak_fds'])} | "
                    f"{num(u['end_threads'])}, {mib(u['end_rss'])} | {clients(r)} |"
                )
                note = what_server_did(run)
                if note:
                    notes.append(f"- {letter}, {name}: {note}")
                if s != "soquete":
                    continue
                steady, peak = u["steady_threads"], u["peak_threads"]
                goals.append((f"{letter}: server threads, peak (steady count)",
                              f"{num(peak)} ({num(steady)})",
                              f"≤ steady + {THREADS_ABOVE_STEADY}",
                              steady is not None and peak <= steady + THREADS_ABOVE_STEADY
                              and run["alive_after"]))
                goals.append((f"{letter}: server RSS, peak above the idle server",
                              f"{mib(u['growth'])} ({mib(u['peak_rss'])} − "
                              f"{mib(u['idle_rss'])})",
                              f"≤ {RSS_ABOVE_IDLE_KIB // 1024} MiB",
                              u["growth"] is not None and u["growth"] <= RSS_ABOVE_IDLE_KIB
                              and run["alive_after"]))
                if case == "listeners":
                    goals.append(("c: lines the listeners missed",
                                  f"{r['listener_lost']:,} of {r['listener_expected']:,}", "0",
                                  r["listener_expected"] > 0 and r["listener_lost"] == 0))
        if peaks.get("soquete") and peaks.get("ncat"):
            notes.append(f"- {letter}: peak RSS, soquete / ncat --broker: "
                         f"**{peaks['soquete'] / peaks['ncat']:.1f}×** "
                         f"({mib(peaks['soquete'])} against {mib(peaks['ncat'])})")
    out += [""] + notes if notes else []

    finish_section(doc, HEADING, out, goals)


if __name__ == "__main__":
    main()
