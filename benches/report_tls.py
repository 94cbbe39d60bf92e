"""Writes the "soquete serve over TLS" section of docs/BENCHMARKS.md from benches/tls.sh's runs."""

import json
import os
import statistics
import sys

from benchmarks_doc import latency_row, write_section

HEADING = "## soquete serve over TLS"
LABELS = {
    ("tls_fanout", "soquete"): "soquete --tls-cert (group mode)",
    ("tls_fanout", "broker"): "soquete --tls-cert --mode broker",
    ("tls_fanout", "ncat"): "ncat --ssl --broker",
    ("plain_fanout", "broker"): "soquete --mode broker, plain TCP (same run)",
}


def fanout_rows(results):
    rows, medians, damaged = [], {}, 0
    for (case, server), label in LABELS.items():
        runs = [r for r in results if r["case"] == case and r["server"] == server]
        good = [r["result"] for r in runs if "lines_per_s" in r["result"]]
        errors = [r["result"].get("error", "") for r in runs if "lines_per_s" not in r["result"]]
        rates = [float(g["lines_per_s"]) for g in good]
        median = statistics.median(rates) if rates else 0.0
        medians[(case, server)] = median
        delivered = sum(int(g["delivered"]) for g in good)
        expected = sum(int(g["expected"]) for g in good)
        lost = sum(int(g.get("lost", 0)) for g in good)
        corrupted = sum(int(g.get("corrupted", 0)) for g in good)
        if case == "tls_fanout" and server != "ncat":
            damaged += lost + corrupted + len(errors)
        cpu = [float(g["server_cpu_s"]) for g in good if g.get("server_cpu_s") is not None]
        gen_cpu = [float(g["generator_cpu_s"]) for g in good]
        # What one delivered line costs the readers in bytes: the line, soquete's label, and
        # (in the wire figure) TLS's record headers and tags.
        received = sum(int(g["bytes_in"]) for g in good)
        wire = sum(int(g.get("wire_bytes_in", g["bytes_in"])) for g in good)
        per_line = f"{received / delivered:.1f} / {wire / delivered:.1f}" if delivered else "-"
        rows.append(
            f"| {label} | {median:,.0f} | {', '.join(f'{x:,.0f}' for x in rates)} | "
            f"{delivered:,} / {expected:,} | {lost:,} | {corrupted:,} | "
            f"{statistics.median(cpu) if cpu else '-'} | "
            f"{statistics.median(gen_cpu) if gen_cpu else '-'} | {per_line} | {len(errors)} |"
        )
    return rows, medians, damaged


def latency_lines(results, env):
    """Section 3: p50 and p99 over TLS against plain TCP, medians of the runs."""
    med = {}
    rows = []
    for case, label in (("tls_latency", "soquete --tls-cert"), ("plain_latency", "soquete, plain TCP")):
        good = [r["result"] for r in results if r["case"] == case and "latency" in r["result"]]
        row, med[case] = latency_row(label, good)
        rows.append(row)
    r50 = med["tls_latency"][0] / med["plain_latency"][0]
    r99 = med["tls_latency"][1] / med["plain_latency"][1]
    met = "met" if max(r50, r99) <= 1.2 else "not met"
    return [
        "",
        f"### 3. Latency at {int(env['LAT_RATE']):,} msgs/s over TLS",
        "",
        f"20 clients sending {int(env['LAT_RATE']):,} lines/s in all for {env['LAT_SECS']} s "
        "(after 1 s unsampled), every line timed from send to delivery at each of the 19 others; "
        f"TLS and plain TCP alternating, {env['LAT_REPEAT']} runs each, medians.",
        "",
        "| server | p50 ms | p99 ms | each run (p50 / p99) | samples | lost + corrupted |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"TLS / plain TCP: p50 **{r50:.2f}×**, p99 **{r99:.2f}×**. Goal (issue 13): ≤ 1.2× "
        f"both: {met} in this run.",
    ]


def idle_lines(results, env):
    """Section 4: the server's memory with many idle TLS clients, plain TCP beside it."""
    rows = []
    tls_mib = None
    for case, label in (("tls_idle", "soquete --tls-cert"), ("plain_idle", "soquete, plain TCP")):
        runs = [r["result"] for r in results if r["case"] == case]
        if not runs or "peak_rss_kib" not in runs[0]:
            err = runs[0].get("error", "no result")[:200] if runs else "no result"
            rows.append(f"| {label} | - | - | - | - | - | {err} |")
            continue
        g = runs[0]
        before = (g.get("server_before") or {}).get("rss_kib", 0)
        steady = g.get("server_steady") or {}
        mib = g["peak_rss_kib"] / 1024
        if case == "tls_idle":
            tls_mib = mib
        per = (g["peak_rss_kib"] - before) / max(1, g["open_connected"])
        rows.append(
            f"| {label} | {g['open_connected']:,} / {g['clients']:,} | {mib:,.1f} | "
            f"{steady.get('rss_kib', 0) / 1024:,.1f} | {per:.1f} | {g['peak_threads']:,} | "
            f"{g['connect_errors']} |"
        )
    asked, held = int(env["IDLE_ASKED"]), int(env["IDLE_CLIENTS"])
    note = (
        ""
        if asked == held
        else f" {asked:,} were asked for, but serve's 2 threads per client would not fit in "
        f"kernel.pid_max with what was running: {held:,} were held."
    )
    met = "met" if tls_mib is not None and tls_mib <= 1024 else "not met"
    return [
        "",
        f"### 4. {held:,} idle TLS clients",
        "",
        f"One generator process opens the connections at {int(env['IDLE_RATE']):,} per second "
        "(each completes its TLS handshake and reads its greeting), holds them idle 5 s once the "
        "server's traffic has settled, and the server's /proc/PID/status is read every 10 ms; "
        f"then the same with plain TCP.{note}",
        "",
        "| server | open / asked | peak RSS MiB | steady RSS MiB | KiB per client | peak threads "
        "| connect errors |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Goal (issue 13): server RSS ≤ 1 GiB with {held:,} idle TLS clients: {met} in this run.",
    ]


def main():
    doc = sys.argv[1]
    env = os.environ
    results = [json.loads(line) for line in open(env["RESULTS"]) if line.strip()]
    shakes = [json.loads(line) for line in open(env["HANDSHAKE_RESULTS"]) if line.strip()]
    rows, medians, damaged = fanout_rows(results)
    ncat = medians[("tls_fanout", "ncat")] or float("nan")
    plain = medians[("plain_fanout", "broker")] or float("nan")
    per = {}
    for server in ("soquete", "ncat"):
        runs = [s for s in shakes if s["server"] == server]
        per[server] = (
            statistics.median(1000 * s["elapsed_s"] / s["count"] for s in runs) if runs else 0.0,
            sum(s["failed"] for s in runs),
            sorted({v for s in runs for v in s["versions"]}),
            [1000 * s["elapsed_s"] / s["count"] for s in runs],
        )
    lines = [
        HEADING,
        "",
        f"`bash benches/tls.sh` on {env['DATE']}, commit {env['COMMIT']} ({env['SOQ_VERSION']}), "
        f"{env['NCAT_VERSION'].replace('Version', 'ncat')}, {env['OPENSSL_VERSION']}; "
        f"{env['NPROC']} cores ({env['CPU']}), Linux {env['KERNEL']}; load average "
        f"{env['LOAD_START']} at the start, {env['LOAD_END']} at the end (the machine was shared: "
        "ratios within one run mean more than the figures).",
        "",
        "### 1. TLS fan-out: 50 clients × 1,000 lines each, everyone reading",
        "",
        f"The chat generator's clients speak TLS 1.3 (rustls, `--tls`), one ECDSA P-256 certificate "
        f"for both servers; {env['FANOUT_THREADS']} generator threads, {env['FANOUT_REPEAT']} runs per "
        "server, alternating; 50 × 49 × 1,000 = 2,450,000 lines expected per run. `--rate-limit off`. "
        "A run lasts about 0.2 s and the generator shares the 2 cores with the server, so single "
        "runs spread widely: hence the number of runs. The generator's CPU is part of every run: "
        "group mode's lines carry the time and the author (`[HH:MM:SS] <guest-N> `), which the "
        "readers decrypt and parse too.",
        "",
        "| server | median lines/s | each run | delivered / expected | lost | corrupted "
        "| server CPU s (median) | generator CPU s (median) | bytes per line read / on the wire "
        "| failed runs |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Ratio to ncat --ssl --broker (medians): group mode "
        f"**{medians[('tls_fanout', 'soquete')] / ncat:.2f}×**, broker mode "
        f"**{medians[('tls_fanout', 'broker')] / ncat:.2f}×**. TLS against plain TCP, soquete "
        f"broker mode in the same run: **{medians[('tls_fanout', 'broker')] / plain:.2f}×**.",
        "",
        f"Goal (issue 13): ≥ 1.0× ncat --ssl --broker with 0 lost and 0 corrupted: "
        f"{'met' if damaged == 0 and min(medians[('tls_fanout', 'soquete')], medians[('tls_fanout', 'broker')]) >= ncat else 'not met'} "
        "in this run.",
        "",
        f"### 2. Handshakes: {int(env['HANDSHAKES']):,} sequential TLS connects",
        "",
        "python3's `ssl` (no verification) connects, completes the handshake and closes, one "
        "connection after another; time per connection, median of the runs.",
        "",
        "| server | ms per handshake (median) | each run | failed | versions |",
        "|---|---|---|---|---|",
    ]
    for server, label in (("soquete", "soquete serve --tls-cert"), ("ncat", "ncat --ssl --broker")):
        median, failed, versions, each = per[server]
        lines.append(
            f"| {label} | {median:.3f} | {', '.join(f'{x:.3f}' for x in each)} | {failed} | "
            f"{', '.join(versions)} |"
        )
    if per["ncat"][0]:
        lines += ["", f"soquete / ncat time per handshake: **{per['soquete'][0] / per['ncat'][0]:.2f}×**."]
    lines += latency_lines(results, env) + idle_lines(results, env)
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(doc, HEADING, section)


if __name__ == "__main__":
    main()
