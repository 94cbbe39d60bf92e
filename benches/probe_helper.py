#!/usr/bin/env python3
"""Helper of benches/probe.sh (the `soquete probe` benchmark). Subcommands:

  free-port                      print a TCP port of 127.0.0.1 that was bound and released
  verdict-times OUT FILE...      medians of targets[0].addresses[0].last_time_ms of `--json` runs
  listen PORTFILE SECONDS        listen on 127.0.0.1 (port 0), write the port to PORTFILE, accept
                                 and close connections until SECONDS pass (or it is killed)
  race OUT SOQUETE NAME PORT LIVE DEAD RUNS TIMEOUT
                                 alternately run `SOQUETE probe NAME:PORT --timeout TIMEOUT` (the
                                 time from its start to the output line reporting LIVE open) and
                                 `nc -z -v -w TIMEOUT NAME PORT` (total time), RUNS times each;
                                 meant to run inside `unshare -m` with a private /etc/hosts
  alternate OUT RUNS LIMIT LABEL_A ARGV_A... -- LABEL_B ARGV_B...
                                 run the two commands alternately RUNS times each (each killed
                                 after LIMIT seconds): whole-process wall time, exit code, output
  report DOC                     print the "## soquete probe" section from $WORK and write it
                                 into DOC, replacing that section only
"""

import json
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmarks_doc import write_section  # noqa: E402

HEADING = "## soquete probe"
REFUSED_GOAL_MS = 5.0
FIRST_OPEN_GOAL_MS = 300.0
FOUR_DEAD_GOAL_MS = 2200.0
STOPPED_GOAL_MS = 3300.0


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    print(port)


def verdict_times(out, files):
    times, verdicts = [], {}
    for path in files:
        with open(path) as f:
            doc = json.load(f)
        a = doc["targets"][0]["addresses"][0]
        times.append(float(a["last_time_ms"]))
        verdicts[a["last_verdict"]] = verdicts.get(a["last_verdict"], 0) + 1
    with open(out, "w") as f:
        json.dump({"times_ms": times, "verdicts": verdicts}, f)


def listen(port_file, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    with open(port_file + ".tmp", "w") as f:
        f.write(f"{s.getsockname()[1]}\n")
    os.rename(port_file + ".tmp", port_file)
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            conn, _ = s.accept()
            conn.close()


def run_soquete(soquete, name, port, live, timeout):
    """One soquete run: times (ms from spawn) of every output line; the first open LIVE line."""
    live_prefix = f"{live}:{port}" if ":" not in live else f"[{live}]:{port}"
    start = time.monotonic()
    p = subprocess.Popen(
        [soquete, "probe", f"{name}:{port}", "--timeout", str(timeout)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0,
    )
    lines, first_open, live_line = [], None, None
    fd = p.stdout.fileno()
    buf = b""
    hard = start + timeout + 10
    while True:
        left = hard - time.monotonic()
        if left <= 0:
            p.kill()
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        now = (time.monotonic() - start) * 1000
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode(errors="replace")
            lines.append((round(now, 3), line))
            fields = line.split()
            if first_open is None and len(fields) >= 2 and fields[0] == live_prefix and fields[1] == "open":
                first_open = now
                live_line = line
    try:
        rc = p.wait(timeout=max(1.0, hard - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait(timeout=5)
    total = (time.monotonic() - start) * 1000
    verdicts = {}
    for _, line in lines:
        m = re.match(r"^(\S+:\d+)\s+(open|closed|filtered|unreachable|error)\s+([\d.]+) ms", line)
        if m:
            verdicts[m.group(1)] = {"verdict": m.group(2), "own_ms": float(m.group(3))}
    return {
        "first_open_ms": first_open, "total_ms": total, "rc": rc, "verdicts": verdicts,
        "live_line": live_line, "lines": lines,
    }


def run_nc(name, port, timeout):
    start = time.monotonic()
    try:
        p = subprocess.run(
            ["nc", "-z", "-v", "-w", str(timeout), name, str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=4 * timeout + 10,
        )
        rc, out = p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        rc, out = "killed", (e.output or b"").decode(errors="replace")
    return {"total_ms": (time.monotonic() - start) * 1000, "rc": rc, "output": out.strip()}


def race(out, soquete, name, port, live, dead, runs, timeout):
    port, runs, timeout = int(port), int(runs), int(timeout)
    results = {"soquete": [], "nc": [], "live": live, "dead": dead}
    for i in range(runs):
        r = run_soquete(soquete, name, port, live, timeout)
        results["soquete"].append(r)
        n = run_nc(name, port, timeout)
        results["nc"].append(n)
        first = "none" if r["first_open_ms"] is None else f"{r['first_open_ms']:.1f} ms"
        print(
            f"   run {i + 1}/{runs}: soquete first open {first}, exit {r['rc']} after "
            f"{r['total_ms']:.0f} ms; nc exit {n['rc']} after {n['total_ms']:.0f} ms",
            file=sys.stderr,
        )
    with open(out, "w") as f:
        json.dump(results, f, indent=1)


def alternate(out, runs, limit, *commands):
    """Two commands run in turn: each run's wall time from spawn to exit, its code and output."""
    cut = commands.index("--")
    pair = [(commands[0], list(commands[1:cut])), (commands[cut + 1], list(commands[cut + 2:]))]
    results = {label: [] for label, _ in pair}
    for i in range(int(runs)):
        for label, argv in pair:
            start = time.monotonic()
            try:
                p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=float(limit))
                rc, output = p.returncode, p.stdout
            except subprocess.TimeoutExpired as e:
                rc, output = "killed", e.output or b""
            took = (time.monotonic() - start) * 1000
            text = output.decode(errors="replace").strip()[-2000:]
            results[label].append({"total_ms": took, "rc": rc, "output": text})
            print(f"   run {i + 1}/{runs}: {label}: exit {rc} after {took:.0f} ms", file=sys.stderr)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)


# --- report --------------------------------------------------------------------------------------

def env(name):
    return os.environ[name]


def yes(ok):
    return "**yes**" if ok else "**no**"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def report(doc):
    work = env("WORK")
    port = env("PORT1")
    with open(f"{work}/verdict-times.json") as f:
        vt = json.load(f)
    with open(f"{work}/refused.json") as f:
        hf = {r["command"]: r for r in json.load(f)["results"]}
    with open(f"{work}/race.json") as f:
        race_r = json.load(f)

    out = [HEADING, ""]
    out.append(
        f"Measured {env('DATE')} on {env('NPROC')} cores ({env('CPU')}), Linux {env('KERNEL')}, "
        f"by `{env('CMDLINE')}`, soquete at {env('REV')}. {env('VERSIONS')}. Load average "
        f"(1 min) at the start {env('LOAD_START')}, at the end {env('LOAD_END')}."
    )

    # 1. refused loopback port
    times = vt["times_ms"]
    m = med(times)
    verdicts = ", ".join(f"{k} {v}" for k, v in sorted(vt["verdicts"].items()))
    out += ["", "### Refused loopback port", ""]
    out.append(
        f"127.0.0.1:{port}, a port bound with port 0 and released. Time to verdict inside the "
        f"process: `targets[0].addresses[0].last_time_ms` of `soquete probe 127.0.0.1:PORT "
        f"--json`, {len(times)} runs (verdicts: {verdicts}). Whole-process wall time: hyperfine -N "
        f"-i (both exit non-zero on a closed port: soquete 2, nc 1), {env('WARMUP')} warmup runs, "
        f"{env('RUNS')} runs per command, in one run."
    )
    out += ["", "| command | median | mean ± σ | min | max |", "|---|---|---|---|---|"]
    out.append(
        f"| time to verdict inside `soquete probe` | {m:.3f} ms | "
        f"{statistics.mean(times):.3f} ms ± {statistics.pstdev(times):.3f} | {min(times):.3f} ms | "
        f"{max(times):.3f} ms |"
    )
    for name, r in hf.items():
        out.append(
            f"| `{name}` (wall) | {r['median'] * 1000:.2f} ms | {r['mean'] * 1000:.2f} ms ± "
            f"{r['stddev'] * 1000:.2f} | {r['min'] * 1000:.2f} ms | {r['max'] * 1000:.2f} ms |"
        )
    soq_name = next(n for n in hf if n.startswith("soquete"))
    nc_name = next(n for n in hf if n.startswith("nc"))
    wall_ratio = hf[soq_name]["median"] / hf[nc_name]["median"]

    # 2. dead address first, live address second
    live, dead = race_r["live"], race_r["dead"]
    soq = race_r["soquete"]
    ncs = race_r["nc"]
    firsts = [r["first_open_ms"] for r in soq if r["first_open_ms"] is not None]
    missing = len(soq) - len(firsts)
    own_live = [r["verdicts"].get(f"{live}:{env('PORT2')}", {}).get("own_ms") for r in soq]
    own_live = [x for x in own_live if x is not None]
    dead_key = f"[{dead}]:{env('PORT2')}" if ":" in dead else f"{dead}:{env('PORT2')}"
    dead_verdicts, live_verdicts = {}, {}
    for r in soq:
        dv = r["verdicts"].get(dead_key, {}).get("verdict", "none")
        lv = r["verdicts"].get(f"{live}:{env('PORT2')}", {}).get("verdict", "none")
        dead_verdicts[dv] = dead_verdicts.get(dv, 0) + 1
        live_verdicts[lv] = live_verdicts.get(lv, 0) + 1
    soq_total = [r["total_ms"] for r in soq]
    soq_rc = sorted({str(r["rc"]) for r in soq})
    nc_total = [r["total_ms"] for r in ncs]
    nc_rc = sorted({str(r["rc"]) for r in ncs})
    nc_after_timeout = sum(1 for r in ncs if "timed out" in r["output"] and "succeeded" in r["output"])
    first_med = med(firsts)
    race_ratio = first_med / med(nc_total)
    out += ["", f"### {env('ARRANGEMENT_TITLE')}", ""]
    out.append(
        f"{env('ARRANGEMENT')} `getent ahosts {env('NAME')}` in that mount namespace lists "
        f"{env('GETENT_ORDER')}, in that order, so the dead address comes first. "
        f"{len(soq)} runs of each, alternating, with `--timeout 3` / `-w 3`: soquete's time is "
        f"from its spawn to the output line reporting {live}:PORT open (text mode prints each "
        f"verdict when known), nc's is its whole run."
    )
    out += ["", "| measure | median | min | max |", "|---|---|---|---|"]

    def row(label, xs, digits=1):
        if not xs:
            out.append(f"| {label} | - | - | - |")
        else:
            out.append(
                f"| {label} | {med(xs):.{digits}f} ms | {min(xs):.{digits}f} ms | "
                f"{max(xs):.{digits}f} ms |"
            )

    row(f"`soquete probe {env('NAME')}:PORT --timeout 3`: first open line ({live})", firsts)
    row("the same, soquete's own time for that connect", own_live, 3)
    row("the same, whole process (waits for the dead address's timeout)", soq_total, 0)
    row(f"`nc -z -w 3 {env('NAME')} PORT`: whole process", nc_total, 0)
    out.append("")
    out.append(
        f"soquete verdicts: {dead} "
        + ", ".join(f"{k} {v}×" for k, v in sorted(dead_verdicts.items()))
        + f"; {live} "
        + ", ".join(f"{k} {v}×" for k, v in sorted(live_verdicts.items()))
        + f"; exit codes {', '.join(soq_rc)}"
        + (f"; {missing} runs without an open line" if missing else "")
        + f". nc exit codes {', '.join(nc_rc)}; in {nc_after_timeout} of {len(ncs)} runs it "
        f"reported the dead address timed out before the live one succeeded."
    )

    # 3. four dead addresses; 4. resolver stopped
    with open(f"{work}/dead4.json") as f:
        dead4 = json.load(f)
    with open(f"{work}/stopped.json") as f:
        stopped = json.load(f)
    dead_s, dead_nc = dead4["soquete"], dead4["nc"]
    with open(f"{work}/silent.json") as f:
        silent = json.load(f)

    def codes(runs):
        return ", ".join(sorted({str(r["rc"]) for r in runs}))

    def totals(runs):
        return [r["total_ms"] for r in runs]

    filtered = [sum(1 for line in r["output"].splitlines() if re.search(r"\sfiltered\s", line))
                for r in dead_s]
    out += ["", "### Four dead addresses", ""]
    out.append(
        f"The name `{env('NAME4')}` has two AAAA and two A records, {env('DEAD4_ORDER')} (in "
        f"getent's order), all on the far end of the veth pair of the part above (host side "
        f"{env('V6_NEAR')}/64 and {env('V4_NEAR')}/24; nft drops TCP to the port), in a hosts "
        f"file bind-mounted over /etc/hosts inside `unshare -m`. {len(dead_s)} runs of each, "
        f"alternating, whole process from spawn to exit, with `-w {env('DEAD_TIMEOUT')}`."
    )
    out += ["", "| measure | median | min | max |", "|---|---|---|---|"]
    row(f"`soquete probe {env('NAME4')}:PORT -w {env('DEAD_TIMEOUT')}`: whole process",
        totals(dead_s), 0)
    row(f"`nc -z -w {env('DEAD_TIMEOUT')} {env('NAME4')} PORT`: whole process", totals(dead_nc), 0)
    out.append("")
    out.append(
        f"soquete exit codes {codes(dead_s)}, addresses reported filtered per run: "
        f"{', '.join(map(str, filtered))}. nc exit codes {codes(dead_nc)}."
    )
    out += ["", "### Resolver stopped", ""]
    out.append(
        f"A network namespace with only `lo`, whose resolv.conf (bind-mounted inside `unshare -m`) "
        f"names 127.0.0.1; its hosts file knows only localhost. Refused: nothing listens on port "
        f"53 (the kernel answers port unreachable at once). Silent: nft drops port 53 (a stopped "
        f"resolver whose host does not refuse). {len(stopped['soquete'])} runs of each, "
        f"alternating, whole process from spawn to exit, with `-w {env('STOPPED_TIMEOUT')}`."
    )
    out += ["", "| measure | median | min | max |", "|---|---|---|---|"]
    for label, runs in (("refused", stopped), ("silent", silent)):
        row(f"{label}: `soquete probe {env('STOPPED_NAME')}:80 -w {env('STOPPED_TIMEOUT')}`: "
            f"whole process", totals(runs["soquete"]), 0)
        row(f"{label}: `nc -z -w {env('STOPPED_TIMEOUT')} {env('STOPPED_NAME')} 80`: whole "
            f"process", totals(runs["nc"]), 0)
    for label, runs in (("refused", stopped), ("silent", silent)):
        note = next((r["output"].splitlines()[-1] for r in runs["soquete"] if r["output"]), "-")
        out.append("")
        out.append(
            f"{label.capitalize()}: soquete exit codes {codes(runs['soquete'])}, its last line: "
            f"`{note}`. nc exit codes {codes(runs['nc'])}."
        )
    dead_med = med(totals(dead_s))
    dead_ratio = dead_med / med(totals(dead_nc))

    out += ["", "### Goals", "", "| measure | value | goal | met |", "|---|---|---|---|"]
    out.append(
        f"| time to verdict on a refused loopback port, inside the process (median) | "
        f"{m:.3f} ms | < {REFUSED_GOAL_MS:g} ms | {yes(m < REFUSED_GOAL_MS)} |"
    )
    out.append(
        f"| time to the first open result, dead address first (median) | {first_med:.1f} ms | "
        f"≤ {FIRST_OPEN_GOAL_MS:g} ms | {yes(first_med <= FIRST_OPEN_GOAL_MS and not missing)} |"
    )
    out.append(
        f"| whole run, four dead addresses, `-w {env('DEAD_TIMEOUT')}` (median; max "
        f"{max(totals(dead_s)):.0f} ms) | {dead_med:.0f} ms | ≤ {FOUR_DEAD_GOAL_MS:g} ms | "
        f"{yes(dead_med <= FOUR_DEAD_GOAL_MS)} |"
    )
    for label, runs in (("refused", stopped), ("silent", silent)):
        xs = totals(runs["soquete"])
        out.append(
            f"| whole run, resolver stopped ({label}), `-w {env('STOPPED_TIMEOUT')}` (median; max "
            f"{max(xs):.0f} ms) | {med(xs):.0f} ms | ≤ {STOPPED_GOAL_MS:g} ms | "
            f"{yes(med(xs) <= STOPPED_GOAL_MS)} |"
        )
    out += ["", "### Ratios against nc (medians)", "", "| measure | soquete / nc |", "|---|---|"]
    out.append(f"| wall time, refused loopback port | {wall_ratio:.2f}× |")
    out.append(
        f"| first open result (soquete) / whole run (nc), dead address first | {race_ratio:.4f}× "
        f"(nc {1 / race_ratio:,.0f}× slower) |"
    )

    out.append(f"| whole run, four dead addresses | {dead_ratio:.2f}× |")

    section = "\n".join(out) + "\n"
    print(section)
    write_section(doc, HEADING, section)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "free-port":
        free_port()
    elif cmd == "verdict-times":
        verdict_times(args[0], args[1:])
    elif cmd == "listen":
        listen(*args)
    elif cmd == "race":
        race(*args)
    elif cmd == "alternate":
        alternate(*args)
    elif cmd == "report":
        report(*args)
    else:
        sys.exit(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main()
