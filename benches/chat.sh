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
# Environment: REPEAT (default 5), REPEAT_BIG (default 3), STALL_SECS (default 15),
# LAT_SECS (default 10), IDLE_CLIENTS (default 10000), SOQUETE_BIN=path measures that binary
# instead of building one.
set -euo pipefail

REPEAT=${REPEAT:-5}
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

# --- tools -------------------------------------------------------------------------------------
missing=()
command -v ncat >/dev/null || missing+=(ncat)
command -v ss >/dev/null || missing+=(iproute2)
command -v python3 >/dev/null || missing+=(python3)
install_missing "${missing[@]}"
command -v cargo >/dev/null || { echo "cargo not found" >&2; exit 1; }

# --- build, then copy the binaries away (others may rebuild target/ meanwhile) -----------------
WORK=$(mktemp -d /tmp/soquete-chat-bench.XXXXXX)
SERVERS=()
cleanup() {
    local pid
    for pid in "${SERVERS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

private_soquete "$WORK"
log "building the load generator (benches/chat.rs)"
GEN_PATH=$(cargo bench --bench chat --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "chat" and m.get("executable"):
        print(m["executable"])')
[[ -x $GEN_PATH ]] || { echo "could not build benches/chat.rs" >&2; exit 1; }
cp "$GEN_PATH" "$WORK/chat-gen"
SOQ="$WORK/soquete"
GEN="$WORK/chat-gen"

SERVE_FLAGS=()
SERVE_HELP=$("$SOQ" serve --help)
if grep -q -- '--rate-limit' <<<"$SERVE_HELP"; then
    SERVE_FLAGS+=(--rate-limit off)
fi
MAX_CLIENTS_DEFAULT=$(python3 -c '
import re, sys
t = sys.stdin.read()
m = re.search(r"--max-clients.*?\[default: ([^\]]+)\]", t, re.S)
print(m.group(1) if m else "-")' <<<"$SERVE_HELP")

COMMIT=$(git rev-parse --short HEAD)
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then
    COMMIT="$COMMIT + uncommitted changes"
fi
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_listening() { # port pid
    local i
    for ((i = 0; i < 100; i++)); do
        if ss -Hltn "sport = :$1" | grep -q .; then
            return 0
        fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# start_server KIND NAME [extra ncat flags]: sets PORT, PID, SLOG. KIND: soquete (group mode),
# broker (soquete serve --mode broker) or ncat (ncat --broker).
start_server() {
    local kind=$1 name=$2
    shift 2
    PORT=$(free_port)
    SLOG="$WORK/$kind-$name.log"
    if [[ $kind == soquete ]]; then
        "$SOQ" serve --port "$PORT" "${SERVE_FLAGS[@]}" </dev/null >"$SLOG" 2>&1 &
    elif [[ $kind == broker ]]; then
        "$SOQ" serve --mode broker --port "$PORT" "${SERVE_FLAGS[@]}" </dev/null >"$SLOG" 2>&1 &
    else
        ncat --broker --listen 127.0.0.1 "$PORT" "$@" </dev/null >/dev/null 2>"$SLOG" &
    fi
    PID=$!
    SERVERS+=("$PID")
    if ! wait_listening "$PORT" "$PID"; then
        echo "$kind did not start listening on $PORT:" >&2
        cat "$SLOG" >&2
        exit 1
    fi
}

# run_case CASE KIND NAME [ncat flags --] GENERATOR ARGS...: one fresh server, one generator run,
# one line in $RESULTS with what the server did (alive afterwards, log lines of interest).
run_case() {
    local case=$1 kind=$2 name=$3
    shift 3
    local ncat_flags=()
    if [[ ${1:-} == --ncat ]]; then
        ncat_flags=("$2" "$3")
        shift 3
    fi
    local out rc alive status attempt retried=""
    for attempt in 1 2; do
        start_server "$kind" "$name" "${ncat_flags[@]}"
        log "$case: $kind ($*)"
        rc=0
        out=$("$GEN" "$@" --addr "127.0.0.1:$PORT" --kind "$kind" --server-pid "$PID" 2>"$WORK/gen.err") || rc=$?
        if ((rc != 0)) || [[ -z $out ]]; then
            out=$(python3 -c 'import json, sys; print(json.dumps({"error": sys.stdin.read().strip()}))' <"$WORK/gen.err")
        fi
        # The clients are gone now: is the server still up a second later? Then stop it (soquete
        # with Ctrl-C, which it handles; ncat with SIGTERM, as it ignores SIGINT without a tty).
        sleep 1
        alive=false
        kill -0 "$PID" 2>/dev/null && alive=true
        if [[ $alive == true ]]; then
            if [[ $kind != ncat ]]; then kill -INT "$PID"; else kill -TERM "$PID"; fi 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$PID" 2>/dev/null || true
        fi
        status=0
        wait "$PID" 2>/dev/null || status=$?
        # A setup that failed (a connection reset before the clock started) is tried once more.
        if [[ $attempt == 1 ]] && grep -q 'during setup' "$WORK/gen.err" && ((rc != 0)); then
            retried=$(head -c 300 "$WORK/gen.err")
            log "retrying after: $retried"
            continue
        fi
        break
    done
    export RETRIED="$retried" STATUS="$status"
    python3 - "$case" "$kind" "$alive" "$SLOG" "$out" >>"$RESULTS" <<'EOF'
import json, os, re, sys
case, kind, alive, slog, out = sys.argv[1:]
text = open(slog, errors="replace").read()
crash = [l for l in text.splitlines() if re.search(r"panicked|overflowed|fatal|FD_SET|abort", l)]
reasons = {}
for m in re.finditer(r"^disconnected .*?\((?:[^:]*): (.*)\)$", text, re.M):
    r = re.sub(r"\d+", "N", m.group(1))
    reasons[r] = reasons.get(r, 0) + 1
print(json.dumps({"case": case, "server": kind, "alive_after": alive == "true",
                  "exit_status": int(os.environ["STATUS"]), "retried": os.environ["RETRIED"],
                  "crash": crash[:3], "disconnects": reasons, "result": json.loads(out)}))
EOF
}

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
run_case idle ncat idle --ncat --max-conns "$IDLE_CLIENTS" idle --clients "$IDLE_CLIENTS" \
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
