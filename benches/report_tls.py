"""Writes the "soquete serve over TLS" section of docs/BENCHMARKS.md from benches/tls.sh's runs."""

import json
import os
import statistics
import sys

from benchmarks_doc import write_section

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
        rows.append(
            f"| {label} | {median:,.0f} | {', '.join(f'{x:,.0f}' for x in rates)} | "
            f"{delivered:,} / {expected:,} | {lost:,} | {corrupted:,} | "
            f"{statistics.median(cpu) if cpu else '-'} | {len(errors)} |"
        )
    return rows, medians, damaged


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
        f"for both servers; {env['FANOUT_THREADS']} generator threads, {env['REPEAT']} runs per "
        "server, alternating; 50 × 49 × 1,000 = 2,450,000 lines expected per run. `--rate-limit off`.",
        "",
        "| server | median lines/s | each run | delivered / expected | lost | corrupted "
        "| server CPU s (median) | failed runs |",
        "|---|---|---|---|---|---|---|---|",
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
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(doc, HEADING, section)


if __name__ == "__main__":
    main()
