#!/usr/bin/env bash
# Benchmark `soquete serve` against `ncat --broker` in one run, with raw-text clients from one
# load generator (benches/chat.rs: epoll loops, never a thread per client), and write the figures
# into docs/BENCHMARKS.md (section "soquete serve"), printing the section too.
#
#   bash benches/chat.sh            # run from anywhere; about 7 minutes
#
# Scenarios (only 127.0.0.1; every phase bounded in count and time; fresh servers for each run):
#   1. fan-out: 50 clients x 1000 lines, everyone reading, the clients dealt out to two generator
#      threads (REPEAT runs per server, medians); then 50 x 4000 lines (REPEAT_BIG runs); then
#      50 x 1000 from one generator thread (REPEAT runs); soquete in group mode (labelled lines)
#      and in broker mode (bare lines, as ncat --broker relays them)
#   2. one stalled reader (connects, never reads) among 50 paced talkers, against the same run
#      without it
#   3. latency send -> delivery at 1,000 and 5,000 msgs/s in total over 20 clients
#   4. 10,000 concurrent idle clients: server RSS and threads from /proc/PID/status
# Needs: cargo, python3, ncat, ss (installed with apt-get when missing and running as root).
# Environment: REPEAT (default 11: a run of 50 x 1000 lasts 0.1-0.2 s and single runs spread
# widely), REPEAT_BIG (default 3), STALL_SECS (default 15),
# LAT_SECS (default 10), IDLE_CLIENTS (default 10000), SOQUETE_BIN=path measures that binary
# instead of building one.
set -euo pipefail

REPEAT=${REPEAT:-11}
REPEAT_BIG=${REPEAT_BIG:-3}
FANOUT_LINES=1000
FANOUT_BIG_LINES=4000
# One generator thread reading 2,450,000 lines was the bottleneck for both servers: two read them.
FANOUT_THREADS=2
STALL_SECS=${STALL_SECS:-15}
STALL_RATE=5000
STALL_RCVBUF=4096
LAT_SECS=${LAT_SECS:-10}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
IDLE_RATE=1000

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '== %s\n' "$*" >&2; }
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

# Tools, a private directory (removed at the end, with every server stopped), the binaries.
prepare_chat_run chat

SERVE_FLAGS=()
SERVE_HELP=$("$SOQ" serve --help)
if grep -q -- '--rate-limit' <<<"$SERVE_HELP"; then
    SERVE_FLAGS+=(--rate-limit off)
fi
MAX_CLIENTS_DEFAULT=$(python3 -c '
import re, sys
t = sys.stdin.read()
# Only the --max-clients entry: up to the next option.
m = re.search(r"--max-clients(?:(?!\n\s*-)[\s\S])*?\[default: ([^\]]+)\]", t)
print(m.group(1) if m else "none")' <<<"$SERVE_HELP")

# --- 1. fan-out ------------------------------------------------------------------------------
for ((r = 1; r <= REPEAT; r++)); do
    for kind in soquete broker ncat; do
        run_case fanout "$kind" "fanout$r" fanout --clients 50 --lines "$FANOUT_LINES" --size 64 \
            --threads "$FANOUT_THREADS"
    done
done
for ((r = 1; r <= REPEAT_BIG; r++)); do
    for kind in soquete broker ncat; do
        run_case fanout_big "$kind" "fanout_big$r" fanout --clients 50 --lines "$FANOUT_BIG_LINES" \
            --size 64 --threads "$FANOUT_THREADS"
    done
done
for ((r = 1; r <= REPEAT; r++)); do
    for kind in soquete broker ncat; do
        run_case fanout_one "$kind" "fanout_one$r" fanout --clients 50 --lines "$FANOUT_LINES" \
            --size 64 --threads 1
    done
done
# --- 2. stalled reader -------------------------------------------------------------------------
for stalled in 0 1; do
    for kind in soquete ncat; do
        run_case "stall$stalled" "$kind" "stall$stalled" paced --clients 50 --stalled "$stalled" \
            --rate "$STALL_RATE" --duration "$STALL_SECS" --stall-rcvbuf "$STALL_RCVBUF" --size 64
    done
done
# --- 3. latency --------------------------------------------------------------------------------
for rate in 1000 5000; do
    for kind in soquete ncat; do
        run_case "latency$rate" "$kind" "latency$rate" paced --clients 20 --rate "$rate" \
            --duration "$((LAT_SECS + 1))" --warmup 1 --latency --size 64
    done
done
# --- 4. idle clients ---------------------------------------------------------------------------
run_case idle soquete idle idle --clients "$IDLE_CLIENTS" --connect-rate "$IDLE_RATE" --hold 5
run_case idle ncat idle --flags --max-conns "$IDLE_CLIENTS" -- idle --clients "$IDLE_CLIENTS" \
    --connect-rate "$IDLE_RATE" --hold 5

# --- report ------------------------------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
export RESULTS COMMIT LOAD_START LOAD_END REPEAT REPEAT_BIG FANOUT_LINES FANOUT_BIG_LINES \
    FANOUT_THREADS \
    STALL_SECS STALL_RATE STALL_RCVBUF LAT_SECS \
    IDLE_CLIENTS IDLE_RATE MAX_CLIENTS_DEFAULT
export SERVE_FLAGS_TEXT="${SERVE_FLAGS[*]}"
export DATE=$(date -u +%F) NPROC=$(nproc) KERNEL=$(uname -r)
export CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
export NCAT_VERSION=$(ncat --version 2>&1 | grep -o 'Version [^ ]*' | head -1)
export SOQ_VERSION=$("$SOQ" --version)
python3 "$ROOT/benches/report_chat.py" "$ROOT/docs/BENCHMARKS.md"
