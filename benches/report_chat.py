#!/usr/bin/env python3
"""Turns the results of benches/chat.sh ($RESULTS, one JSON line per run) into the "soquete serve"
section of docs/BENCHMARKS.md: prints the section and writes it into the file given as argument,
replacing the previous "## soquete serve" section (up to the next "## " heading) and keeping the
others. Run by chat.sh, which exports the environment read here.
"""

import json
import os
import statistics
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_doc import write_section  # noqa: E402

HEADING = "## soquete serve"


def env(name, default="?"):
    return os.environ.get(name, default)


def yes(ok):
    return "**yes**" if ok else "**no**"


def num(x, digits=0):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:,.1f} MiB"


def runs(results, case, server):
    return [r for r in results if r["case"] == case and r["server"] == server]


def ok_runs(rs):
    return [r for r in rs if "error" not in r["result"]]


def errors(rs):
    return [r["result"]["error"] for r in rs if "error" in r["result"]]


def finish_section(doc, heading, out, goals):
    """Ends the section's lines `out` with its table of goals (measure, value, goal, met),
    prints it and writes it into `doc` under `heading`."""
    out += ["", "### Goals", "", "| measure | value | goal | met |", "|---|---|---|---|"]
    for what, value, goal, met in goals:
        out.append(f"| {what} | {value} | {goal} | {yes(met)} |")
    section = "\n".join(out) + "\n"
    print(section)
    write_section(doc, heading, section)


def what_server_did(r):
    """Crashes and the server's own disconnect reasons, in a few words."""
    notes = []
    if r.get("retried"):
        notes.append(f"first attempt failed and was run again ({r['retried'][:100]})")
    status = r.get("exit_status", 0)
    if not r["alive_after"]:
        notes.append(f"server had exited by 1 s after the clients left (status {status})")
    elif status not in (0, 130, 143):
        notes.append(f"exit status {status} when stopped" + (" (abort)" if status == 134 else ""))
    for c in r["crash"]:
        notes.append(f"`{c.strip()[:90]}`")
    for reason, n in sorted(r["disconnects"].items(), key=lambda kv: -kv[1]):
        if "closed by the client" in reason or "connection lost" in reason:
            continue
        notes.append(f"{n} × disconnected ({reason})")
    return "; ".join(notes)


NAMES = {"soquete": "soquete (group mode)", "broker": "soquete --mode broker",
         "ncat": "ncat --broker"}


def fanout_table(out, results, case, servers):
    """One fan-out table (one row per server) with its notes; returns the median lines/s and the
    totals per server."""
    out += [
        "",
        "| server | median lines/s | each run | delivered / expected (all runs) | lost | "
        "corrupted | reordered | readers dropped by the server | bytes/line | server CPU s "
        "(median) | generator busy (median) | generator waited / preempted (median) | "
        "cores in use (median) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    med, fan = {}, {}
    for s in servers:
        good = ok_runs(runs(results, case, s))
        rates = [r["result"]["lines_per_s"] for r in good]
        med[s] = statistics.median(rates) if rates else None
        tot = {
            k: sum(r["result"][k] for r in good)
            for k in ("delivered", "expected", "lost", "corrupted", "backwards", "clients_closed")
        }
        cpu = [r["result"]["server_cpu_s"] for r in good if r["result"]["server_cpu_s"] is not None]
        timed = [r["result"] for r in good
                 if r["result"].get("generator_cpu_s") is not None and r["result"]["elapsed_s"] > 0]
        busy = [t["generator_cpu_s"] / (t["elapsed_s"] * t.get("generator_threads", 1))
                for t in timed]
        cores = [(t["generator_cpu_s"] + t["server_cpu_s"]) / t["elapsed_s"] for t in timed
                 if t["server_cpu_s"] is not None]
        tot["busy"] = statistics.median(busy) if busy else None
        tot["cores"] = statistics.median(cores) if cores else None
        tot["gen_cpu"] = statistics.median(t["generator_cpu_s"] for t in timed) if timed else None
        tot["server_cpu"] = statistics.median(cpu) if cpu else None
        switches = [(r["result"]["generator_waits"], r["result"]["generator_preempted"])
                    for r in good if "generator_waits" in r["result"]]
        tot["waits"] = statistics.median(w for w, _ in switches) if switches else None
        tot["preempted"] = statistics.median(p for _, p in switches) if switches else None
        delivered = sum(r["result"]["delivered"] for r in good if "bytes_in" in r["result"])
        received = sum(r["result"]["bytes_in"] for r in good if "bytes_in" in r["result"])
        tot["bytes_per_line"] = received / delivered if delivered else 64
        fan[s] = tot
        busy_text = f"{tot['busy']:.0%}" if busy else "-"
        out.append(
            f"| {NAMES.get(s, s)} | {num(med[s])} | {', '.join(num(x) for x in rates)} | "
            f"{tot['delivered']:,} / {tot['expected']:,} | {tot['lost']:,} | "
            f"{tot['corrupted']:,} | {tot['backwards']:,} | {tot['clients_closed']} | "
            f"{num(tot['bytes_per_line'], 1)} | "
            f"{num(statistics.median(cpu), 2) if cpu else '-'} | "
            f"{busy_text} | {num(tot['waits'])} / {num(tot['preempted'])} | "
            f"{num(tot['cores'], 2)} |"
        )
    notes = []
    for s in servers:
        for r in runs(results, case, s):
            parts = []
            if "error" in r["result"]:
                parts.append(f"generator: {r['result']['error']}")
            elif r["result"]["stop"] != "complete":
                parts.append(f"stopped: {r['result']['stop']}")
            parts.append(what_server_did(r))
            if r["result"].get("samples"):
                parts.append(f"sample: `{r['result']['samples'][0][:80]}`")
            note = "; ".join(p for p in parts if p)
            if note:
                notes.append(f"- {NAMES.get(s, s)}: {note}")
    if notes:
        out += [""] + sorted(set(notes))
    return med, fan


def ratios(med):
    """soquete's modes against ncat --broker, medians: {"soquete": r, "broker": r}."""
    return {s: med[s] / med["ncat"] if med.get(s) and med.get("ncat") else None
            for s in ("soquete", "broker")}


def fanout_ratio(out, med, fan):
    """The ratios of a fan-out table, and any server's losses in it."""
    r = ratios(med)
    out += ["", f"Ratio to ncat --broker (medians): group mode **{num(r['soquete'], 2)}×**, "
                f"broker mode **{num(r['broker'], 2)}×**."]
    for s, f in fan.items():
        if f["lost"] or f["corrupted"]:
            out.append(f"{NAMES.get(s, s)} lost {f['lost']:,} and corrupted {f['corrupted']:,} "
                       f"lines (lines glued together or cut) in these runs.")
    return r


def main():
    doc = sys.argv[1]
    results = [json.loads(line) for line in open(env("RESULTS")) if line.strip()]
    servers = ["soquete", "ncat"]
    out = [HEADING, ""]
    out.append(
        f"Measured {env('DATE')} on {env('NPROC')} cores ({env('CPU')}), Linux {env('KERNEL')}, "
        f"by `bash benches/chat.sh`, soquete at commit {env('COMMIT')} ({env('SOQ_VERSION')}). "
        f"Servers: `soquete serve --port P {env('SERVE_FLAGS_TEXT')}`".rstrip()
        + f" (release build; `--max-clients` default: {env('MAX_CLIENTS_DEFAULT')}; in the "
        f"fan-out also with `--mode broker`) and "
        f"`ncat --broker --listen 127.0.0.1 P` (ncat {env('NCAT_VERSION')}), a fresh server for "
        f"each run, both in the same run of the script. Clients: one load generator "
        f"(benches/chat.rs, mio/epoll loops, never a thread per client, TCP_NODELAY) talking raw "
        f"text "
        f"lines of 64 bytes over 127.0.0.1, each line self-identifying "
        f"(`c0017 0000123 <send time ns> ppp…`); every receiver checks each sender's order and "
        f"counts lost, reordered and corrupted lines (a line that does not parse exactly: glued "
        f"or cut). soquete's `[HH:MM:SS] <guest-N> ` prefix is stripped and its `* ` notices are "
        f"counted apart. Before any clock starts every client is connected (soquete: greeted) "
        f"and every reading client has seen a hello line from every other client. Load average "
        f"(1 min) at the start {env('LOAD_START')}, at the end {env('LOAD_END')}."
    )
    goals = []

    # --- 1. fan-out -----------------------------------------------------------------------------
    lines = int(env("FANOUT_LINES", "1000"))
    big = int(env("FANOUT_BIG_LINES", "4000"))
    threads = int(env("FANOUT_THREADS", "1"))
    fan_servers = [s for s in ("soquete", "broker", "ncat") if runs(results, "fanout", s)]
    out += ["", f"### 1. Fan-out: 50 clients × {lines:,} lines each, everyone reading", ""]
    out.append(
        f"Every client writes its {lines:,} lines as fast as the socket takes them; delivered "
        f"lines/s = lines received by all clients (50 × 49 × {lines:,} = {50 * 49 * lines:,} "
        f"expected) / time from the start to the last delivery. soquete runs twice: in group "
        f"mode, whose lines carry the time and the author (`[HH:MM:SS] <guest-N> `), and in "
        f"broker mode (`--mode broker`), which relays the lines bare as ncat --broker does. The "
        f"generator deals its 50 clients out to {threads} threads (one epoll loop each): with "
        f"one thread (1c below) the generator set the pace. {env('REPEAT')} run(s) per server, "
        f"alternating. Bytes/line: what the readers received per line. Generator busy: its CPU "
        f"time over the phase's time and its threads (near 100 %: the generator, not the "
        f"server, set the pace); waited / preempted: its voluntary context switches in the phase "
        f"(nothing to read, it slept) and involuntary ones (the kernel ran another thread on its "
        f"core); cores in use: generator and server CPU time over the phase's time, out of "
        f"{env('NPROC')}."
    )
    med, fan = fanout_table(out, results, "fanout", fan_servers)
    r = fanout_ratio(out, med, fan)
    if all(fan[s]["cores"] for s in fan_servers) and fan["ncat"]["gen_cpu"]:
        out.append(
            f"In group mode the runs kept {fan['soquete']['cores']:.2f} of the {env('NPROC')} "
            f"cores busy (ncat's {fan['ncat']['cores']:.2f}): the fan-out is bound by the "
            f"machine's CPU, which the server ({fan['soquete']['server_cpu']:.2f} s against "
            f"ncat's {fan['ncat']['server_cpu']:.2f} s: a thread per client, the labels, the JSON "
            f"kept for resuming clients) and the generator share. The labelled lines are "
            f"{fan['soquete']['bytes_per_line'] / 64:.2f}× as long as ncat's, and reading and "
            f"checking them took the generator "
            f"{fan['soquete']['gen_cpu'] / fan['ncat']['gen_cpu']:.2f}× the CPU."
        )
        if "broker" in fan:
            out[-1] += (
                f" Broker mode delivers the same bytes as ncat, and reading them cost the "
                f"generator {fan['broker']['gen_cpu'] / fan['ncat']['gen_cpu']:.2f}× ncat's CPU "
                f"(soquete's writers send what has queued up in one write)."
            )
    for s in ("soquete", "broker"):
        if s in fan and fan[s]["lost"]:
            out.append(
                f"{NAMES[s]}: lines/s counts only the lines delivered, up to the last one, before "
                f"the run stopped: the rest were lost."
            )
    modes = (("soquete", "group mode, labelled lines"), ("broker", "broker mode, bare lines"))
    for s, what in modes:
        if s not in fan:
            continue
        goals.append((f"fan-out delivered lines/s, soquete {what} / ncat --broker",
                      f"{num(r[s], 2)}×", "≥ 1.0×", r[s] is not None and r[s] >= 1.0))
        sq = fan[s]
        goals.append((f"fan-out lost / corrupted lines (soquete {what.split(',')[0]}, all runs)",
                      f"{sq['lost']:,} / {sq['corrupted']:,}", "0 / 0",
                      sq["expected"] > 0 and sq["lost"] == 0 and sq["corrupted"] == 0
                      and sq["delivered"] == sq["expected"]))

    if any(runs(results, "fanout_big", s) for s in fan_servers):
        out += ["", f"#### 1b. The same with {big:,} lines each", ""]
        out.append(
            f"50 × 49 × {big:,} = {50 * 49 * big:,} lines expected per run, "
            f"{env('REPEAT_BIG', '?')} run(s) per server, {threads} generator threads: four times "
            f"the traffic, a longer steady state in which the start of the run counts less."
        )
        fanout_ratio(out, *fanout_table(out, results, "fanout_big", fan_servers))

    if any(runs(results, "fanout_one", s) for s in fan_servers):
        out += ["", "#### 1c. The same with one generator thread", ""]
        out.append(
            f"50 × {lines:,} lines, {env('REPEAT')} run(s) per server, the 50 clients on one "
            f"generator thread, as this benchmark first measured: the generator's one core is "
            f"then the limit (it never waited for data), and what group mode loses is the time "
            f"the server's threads take on that core (preemptions) and the longer lines."
        )
        fanout_ratio(out, *fanout_table(out, results, "fanout_one", fan_servers))

    # --- 2. stalled reader ----------------------------------------------------------------------
    secs = env("STALL_SECS")
    out += ["", "### 2. One stalled reader among 50 paced talkers", ""]
    out.append(
        f"50 talkers send {int(env('STALL_RATE')):,} lines/s in total (100 each, evenly spaced) "
        f"for {secs} s and read everything; in the second run a 51st client connects, says "
        f"hello, and never reads again (its SO_RCVBUF set to {env('STALL_RCVBUF')} bytes so the "
        f"kernel buffers fill within the window). Delivered lines/s = lines the 50 talkers "
        f"received inside the {secs} s window / {secs}. After the window the stalled client "
        f"reads what is left, to see whether the server closed it."
    )
    out += [
        "",
        "| server | no stall: lines/s | with the stalled reader: lines/s | fraction | lost | "
        "corrupted | talkers dropped | longest silence (window) | the stalled client |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    frac = {}
    timeline = []
    for s in servers:
        base = ok_runs(runs(results, "stall0", s))
        st = ok_runs(runs(results, "stall1", s))
        if not base or not st:
            errs = errors(runs(results, "stall0", s) + runs(results, "stall1", s))
            out.append(f"| {s} | failed: {'; '.join(errs)[:200]} | | | | | | | |")
            frac[s] = None
            continue
        b, r = base[0]["result"], st[0]["result"]
        frac[s] = r["window_lines_per_s"] / b["window_lines_per_s"] if b["window_lines_per_s"] else None
        sc = r["stalled_clients"][0] if r["stalled_clients"] else {}
        if sc.get("open_after_drain"):
            fate = "still connected after the window"
        else:
            fate = f"closed by the server ({sc.get('close')})"
            if sc.get("bye"):
                fate += f", got `{sc['bye']}`"
            else:
                fate += ", no `* bye` line"
        slow = r.get("slow_notices") or []
        if slow:
            fate += f"; others told `{slow[0][1]}` at {slow[0][0]:.1f} s"
        silence = (
            f"{r['longest_silence_s']:.1f} s from {r['longest_silence_from_s']:.1f} s"
            if r["longest_silence_s"] > 0
            else "none"
        )
        dropped = r["talkers_closed"]
        out.append(
            f"| {s} | {num(b['window_lines_per_s'])} | {num(r['window_lines_per_s'])} | "
            f"**{num(frac[s] * 100 if frac[s] is not None else None, 1)} %** | "
            f"{b['lost'] + r['lost']:,} | {b['corrupted'] + r['corrupted']:,} | {dropped} | "
            f"{silence} | {fate} |"
        )
        timeline.append(f"- {s}, lines/s delivered to the talkers, second by second with the "
                        f"stalled reader: {', '.join(f'{x:,}' for x in r['per_second'])}")
        for run in base + st:
            note = what_server_did(run)
            if note:
                timeline.append(f"- {s} ({'with' if run['case'] == 'stall1' else 'without'} the "
                                f"stalled reader): {note}")
    out += [""] + timeline
    f = frac.get("soquete")
    goals.append(("others' delivered lines/s with a stalled reader / without (soquete)",
                  f"{num(f * 100 if f is not None else None, 1)} %", "≥ 90 %",
                  f is not None and f >= 0.9))

    # --- 3. latency -----------------------------------------------------------------------------
    out += ["", "### 3. Latency from send to delivery, 20 clients", ""]
    out.append(
        f"20 clients send at a steady total rate (evenly spaced, 1 ms timer resolution) for "
        f"{int(env('LAT_SECS')) + 1} s; each line carries its send time, every receiver records "
        f"receive time − send time (19 samples per line); the first second is warm-up and not "
        f"counted."
    )
    out += [
        "",
        "| msgs/s | server | p50 | p90 | p99 | p99.9 | max | samples | lost | corrupted | "
        "server CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lat = {}
    for rate in (1000, 5000):
        for s in servers:
            rs = runs(results, f"latency{rate}", s)
            good = ok_runs(rs)
            if not good:
                out.append(f"| {rate:,} | {s} | failed: {'; '.join(errors(rs))[:200]} "
                           f"| | | | | | | | |")
                continue
            r = good[0]["result"]
            # A run without samples has null percentiles (JSON has no NaN): shown as nan.
            L = {k: float("nan") if v is None else v for k, v in r["latency"].items()}
            lat[(rate, s)] = L
            out.append(
                f"| {rate:,} | {s} | {L['p50_ms']:.3f} ms | {L['p90_ms']:.3f} ms | "
                f"{L['p99_ms']:.3f} ms | {L['p999_ms']:.3f} ms | {L['max_ms']:.2f} ms | "
                f"{L['count']:,} | {r['lost']:,} | {r['corrupted']:,} | "
                f"{num(r['server_cpu_s'], 2)} |"
            )
    out += ["", "| msgs/s | p50 soquete / ncat | p99 soquete / ncat |", "|---|---|---|"]
    for rate in (1000, 5000):
        a, b = lat.get((rate, "soquete")), lat.get((rate, "ncat"))
        if a and b:
            r50, r99 = a["p50_ms"] / b["p50_ms"], a["p99_ms"] / b["p99_ms"]
            out.append(f"| {rate:,} | {r50:.2f}× | {r99:.2f}× |")
            goals.append((f"latency at {rate:,} msgs/s: p50 / p99, soquete vs ncat",
                           f"{a['p50_ms']:.3f} / {a['p99_ms']:.3f} ms vs "
                           f"{b['p50_ms']:.3f} / {b['p99_ms']:.3f} ms",
                           "no worse than ncat", r50 <= 1.0 and r99 <= 1.0))
        else:
            goals.append((f"latency at {rate:,} msgs/s, soquete vs ncat", "failed",
                          "no worse than ncat", False))
    notes = []
    for rate in (1000, 5000):
        for s in servers:
            for r in runs(results, f"latency{rate}", s):
                note = what_server_did(r)
                if note:
                    notes.append(f"- {s} at {rate:,} msgs/s: {note}")
    out += [""] + notes if notes else []

    # --- 4. idle clients ------------------------------------------------------------------------
    n = int(env("IDLE_CLIENTS"))
    out += ["", f"### 4. {n:,} concurrent idle clients", ""]
    out.append(
        f"The generator (one thread, its soft RLIMIT_NOFILE raised to the hard limit) opens {n:,} "
        f"connections at {int(env('IDLE_RATE')):,} per second; they never write and read (and "
        f"drop) whatever comes. After the server's traffic stops (3 s without a byte, at most "
        f"120 s) and 5 s more, the server's /proc/PID/status is read (VmRSS, VmHWM, Threads); "
        f"peaks are sampled every 10 ms along the way."
    )
    out += [
        "",
        "| server | connected | still open at the end | RSS | VmHWM | threads | fds | "
        "lines the clients received | closed by the server | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    idle_ok = False
    idle_val = "failed"
    for s in servers:
        for run in runs(results, "idle", s):
            r = run["result"]
            if "error" in r:
                out.append(f"| {s} | failed: {r['error'][:200]} | | | | | | | | |")
                continue
            steady = r["server_steady"] or {}
            closed = sum(v for k, v in r["closed_reasons"].items()
                         if not k.startswith("connect"))
            dropped = sum(v for k, v in run["disconnects"].items()
                          if "closed by the client" not in k and "connection lost" not in k)
            closed = max(closed, dropped)
            note = what_server_did(run)
            if r["connect_errors"] or r["closed_reasons"]:
                reasons = ", ".join(f"{v:,} × {k}" for k, v in r["closed_reasons"].items())
                note = "; ".join(x for x in (reasons, note) if x)
            if r["byes"]:
                note += "; " + ", ".join(f"{v:,} × `{k}`" for k, v in r["byes"].items())
            out.append(
                f"| {s} | {r['connected']:,} | {r['open_connected']:,} | "
                f"{mib(steady.get('rss_kib'))} | {mib(steady.get('hwm_kib'))} | "
                f"{num(steady.get('threads'))} (peak {num(r['peak_threads'])}) | "
                f"{num(r['server_fds'])} | {r['lines_in']:,} | {closed:,} | {note or '-'} |"
            )
            if s == "soquete":
                peak = max(steady.get("hwm_kib") or 0, r["peak_rss_kib"])
                idle_val = (f"{mib(peak)} with {r['open_connected']:,} of {n:,} "
                            f"clients connected")
                if dropped:
                    idle_val += f", {dropped:,} dropped by the server"
                if not run["alive_after"] or run.get("exit_status", 0) not in (0, 130, 143):
                    idle_val += ", server crashed"
                idle_ok = (peak <= 1024 * 1024 and r["open_connected"] == n and not dropped
                           and run["alive_after"] and run.get("exit_status", 0) in (0, 130, 143))
    goals.append((f"server peak RSS with {n:,} idle clients, all connected (soquete)",
                  idle_val, "≤ 1 GiB", idle_ok))

    finish_section(doc, HEADING, out, goals)


if __name__ == "__main__":
    main()
