#!/usr/bin/env bash
# What issue 11 asks of `soquete serve`, measured: nothing said is lost when everyone talks at
# once, and what clients can make the server spend is bounded. Writes the figures into
# docs/BENCHMARKS.md (section "soquete serve: talking at once, bounded resources"), printing the
# section too. Same load generator as chat.sh (benches/chat.rs: epoll loops, raw text lines).
#
#   bash benches/limits.sh                       # run from anywhere; about 4 minutes
#   QUEUE_SECS=10 LISTEN_SECS=5 BURST_CONNECTS=1000 REPEAT=1 BENCH_DOC=/tmp/b.md \
#       bash benches/limits.sh                   # a quick look, docs/BENCHMARKS.md untouched
#
# Scenarios (only 127.0.0.1; every phase bounded in count and time; a fresh server for each run):
#   1. chat.sh's fan-out (50 clients x 1000 lines, everyone reading, two generator threads) with
#      every client starting to talk at once: once each is accepted (soquete: greeted), no hello
#      exchange, so each client's first line goes out while the others have not written yet;
#      soquete in group mode and in broker mode, ncat --broker beside them (REPEAT runs each)
#   2. the server's memory, threads and descriptors, /proc/PID/status read every 10 ms by the
#      generator, under
#      a. a burst of 5,000 connections against `serve --max-clients 4` whose 4 places are held,
#         each kept open until 3 s after the last (ncat --broker --max-conns 4 beside it)
#      b. 50 queued `--mode single` clients sending 8,000-byte lines as fast as the server
#         (its default --rate-limit) allows, for 60 s
#      c. 100 raw listeners that never write in a room where 10 talkers send 1,000 lines/s in
#         total, for 30 s (soquete with --rate-limit off, ncat --broker beside it)
# Goals: 0 lost and 0 corrupted in the fan-out; in a, b and c peak threads <= steady count + 16
# and peak RSS <= 64 MiB above the idle server.
# Needs: cargo, python3, ncat, ss (installed with apt-get when missing and running as root).
# Environment (defaults: the issue's sizes): REPEAT (3), AT_ONCE_LINES (1000), BURST_CONNECTS
# (5000), BURST_HOLD (3), QUEUE_CLIENTS (50), QUEUE_SECS (60), LISTENERS (100), LISTEN_SECS (30),
# SOQUETE_BIN=path measures that binary instead of building one, BENCH_DOC=path writes the
# section there instead of docs/BENCHMARKS.md.
set -euo pipefail

REPEAT=${REPEAT:-3}
AT_ONCE_CLIENTS=50
AT_ONCE_LINES=${AT_ONCE_LINES:-1000}
AT_ONCE_THREADS=2
BURST_CONNECTS=${BURST_CONNECTS:-5000}
BURST_MAX=4
BURST_HOLD=${BURST_HOLD:-3}
QUEUE_CLIENTS=${QUEUE_CLIENTS:-50}
QUEUE_SIZE=8000
QUEUE_SECS=${QUEUE_SECS:-60}
LISTENERS=${LISTENERS:-100}
LISTEN_TALKERS=10
LISTEN_RATE=1000
LISTEN_SECS=${LISTEN_SECS:-30}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_DOC=${BENCH_DOC:-$ROOT/docs/BENCHMARKS.md}
log() { printf '== %s\n' "$*" >&2; }
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

# Tools, a private directory (removed at the end, with every server stopped), the binaries.
prepare_chat_run limits
# Each case names its server's flags; the fan-out and the listeners need the flood control off
# (1,000 lines/s from 10 talkers is 100 lines/s each), where the build has it.
SERVE_FLAGS=()
RATE_OFF=()
if "$SOQ" serve --help | grep -q -- '--rate-limit'; then
    RATE_OFF=(--rate-limit off)
fi

# --- 1. fan-out, everyone talking at once --------------------------------------------------------
for ((r = 1; r <= REPEAT; r++)); do
    for kind in soquete broker ncat; do
        flags=()
        [[ $kind == ncat ]] || flags=("${RATE_OFF[@]}")
        run_case fanout_at_once "$kind" "at_once$r" --flags "${flags[@]}" -- \
            fanout --clients "$AT_ONCE_CLIENTS" --lines "$AT_ONCE_LINES" --size 64 \
            --threads "$AT_ONCE_THREADS" --at-once
    done
done
# --- 2a. a burst of connections against a full server ------------------------------------------
run_case burst soquete burst --flags --max-clients "$BURST_MAX" -- \
    burst --holders "$BURST_MAX" --clients "$BURST_CONNECTS" --hold "$BURST_HOLD"
run_case burst ncat burst --flags --max-conns "$BURST_MAX" -- \
    burst --holders "$BURST_MAX" --clients "$BURST_CONNECTS" --hold "$BURST_HOLD"
# --- 2b. single mode's queue --------------------------------------------------------------------
run_case queue soquete queue --flags --mode single -- \
    queue --clients "$QUEUE_CLIENTS" --size "$QUEUE_SIZE" --duration "$QUEUE_SECS"
# --- 2c. raw listeners that never write ---------------------------------------------------------
run_case listeners soquete listeners --flags "${RATE_OFF[@]}" -- \
    paced --clients "$LISTEN_TALKERS" --listeners "$LISTENERS" --rate "$LISTEN_RATE" \
    --duration "$LISTEN_SECS" --size 64 --resources
# ncat --broker takes 100 connections unless told otherwise.
run_case listeners ncat listeners --flags --max-conns "$((LISTENERS + LISTEN_TALKERS + 10))" -- \
    paced --clients "$LISTEN_TALKERS" --listeners "$LISTENERS" --rate "$LISTEN_RATE" \
    --duration "$LISTEN_SECS" --size 64 --resources

# --- report ------------------------------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
export RESULTS COMMIT LOAD_START LOAD_END REPEAT AT_ONCE_CLIENTS AT_ONCE_LINES AT_ONCE_THREADS \
    BURST_CONNECTS BURST_MAX BURST_HOLD QUEUE_CLIENTS QUEUE_SIZE QUEUE_SECS LISTENERS \
    LISTEN_TALKERS LISTEN_RATE LISTEN_SECS
export DATE=$(date -u +%F) NPROC=$(nproc) KERNEL=$(uname -r)
export CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
export NCAT_VERSION=$(ncat --version 2>&1 | grep -o 'Version [^ ]*' | head -1)
export SOQ_VERSION=$("$SOQ" --version)
python3 "$ROOT/benches/report_limits.py" "$BENCH_DOC"
