#!/usr/bin/env bash
# Benchmark rooms across servers (`soquete serve --cluster redis://… --room`) against one
# server in group mode, in one run, and write the figures into docs/BENCHMARKS.md (section
# "soquete serve --cluster"), printing the section too.
#
#   bash benches/cluster.sh            # run from anywhere; about 4 minutes
#
# Scenarios (only 127.0.0.1; a private redis-server, emptied between runs; every phase bounded):
#   1. fan-out: 50 clients x 1000 lines, everyone reading: one server in group mode, then two
#      servers of one room with 25 clients on each (the chat load generator's --also), REPEAT
#      runs each, alternating, medians
#   2. latency send -> delivery at 1,000 msgs/s over 20 clients: one server, then two (10 on
#      each), LAT_REPEAT runs each
#   3. failover and reconnect storm: FAILOVER_CLIENTS real `soquete chat A B --json` processes
#      on server A while a raw talker on B numbers its lines at 200/s; kill -9 A; the time until
#      every client has resumed on B, the Redis commands issued meanwhile (redis-cli MONITOR),
#      and every client's lines checked: none missing, none twice (benches/cluster_failover.py)
# Needs: cargo, python3, redis-server, redis-cli, ss. Environment: REPEAT (default 5),
# LAT_REPEAT (2), LAT_SECS (10), FAILOVER_CLIENTS (1000), SOQUETE_BIN=path measures that binary
# instead of building one.
set -euo pipefail

REPEAT=${REPEAT:-5}
LAT_REPEAT=${LAT_REPEAT:-2}
LAT_SECS=${LAT_SECS:-10}
LAT_RATE=1000
FAILOVER_CLIENTS=${FAILOVER_CLIENTS:-1000}
FANOUT_LINES=1000
FANOUT_THREADS=2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '== %s\n' "$*" >&2; }
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
command -v redis-server >/dev/null || install_missing redis-server

prepare_chat_run cluster
SERVE_FLAGS=(--rate-limit off)

# A private Redis for the run (no persistence), stopped by the cleanup with the servers.
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK" >"$WORK/redis.log" 2>&1 &
SERVERS+=("$!")
disown "$!" # killed by the cleanup, without bash's "Killed" line
for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" PING 2>/dev/null | grep -q PONG && break
    sleep 0.05
done
REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
REDIS_VERSION=$(redis-server --version | grep -o 'v=[^ ]*' | cut -c3-)

# run_cluster_case CASE NAME GENERATOR ARGS...: two fresh soquete servers of one fresh room,
# one generator run with its clients dealt out to both, one line in $RESULTS.
run_cluster_case() {
    local case=$1 name=$2
    shift 2
    redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
    local room="bench-$name" ports=() pids=() out rc alive=true status=0
    for side in a b; do
        start_server soquete "$name-$side" --cluster "$REDIS_URL" --room "$room"
        ports+=("$PORT")
        pids+=("$PID")
    done
    log "$case: two servers of room $room ($*)"
    rc=0
    out=$("$GEN" "$@" --addr "127.0.0.1:${ports[0]}" --also "127.0.0.1:${ports[1]}" \
        --kind soquete --server-pid "${pids[0]}" 2>"$WORK/gen.err") || rc=$?
    if ((rc != 0)) || [[ -z $out ]]; then
        out=$(python3 -c 'import json, sys; print(json.dumps({"error": sys.stdin.read().strip()}))' <"$WORK/gen.err")
    fi
    sleep 1
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || alive=false
        kill -INT "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || status=$?
    done
    python3 - "$case" "$alive" "$status" "$out" >>"$RESULTS" <<'PY'
import json, sys
case, alive, status, out = sys.argv[1:]
print(json.dumps({"case": case, "server": "cluster", "flags": "", "alive_after": alive == "true",
                  "exit_status": int(status), "retried": "", "crash": [], "disconnects": {},
                  "result": json.loads(out)}))
PY
}

# --- 1. fan-out ------------------------------------------------------------------------------
FANOUT=(fanout --clients 50 --lines "$FANOUT_LINES" --size 64 --threads "$FANOUT_THREADS")
for ((r = 1; r <= REPEAT; r++)); do
    run_case fanout soquete "fanout$r" "${FANOUT[@]}"
    run_cluster_case fanout "fanout$r" "${FANOUT[@]}"
done

# --- 2. latency at 1,000 msgs/s -----------------------------------------------------------------
LATENCY=(paced --clients 20 --rate "$LAT_RATE" --duration "$((LAT_SECS + 1))" --warmup 1 --latency
    --size 64)
for ((r = 1; r <= LAT_REPEAT; r++)); do
    run_case latency soquete "latency$r" "${LATENCY[@]}"
    run_cluster_case latency "latency$r" "${LATENCY[@]}"
done

# --- 3. failover and reconnect storm ------------------------------------------------------------
redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
log "failover: $FAILOVER_CLIENTS soquete chat clients, kill -9 their server"
FAILOVER_RESULT="$WORK/failover.json"
python3 "$ROOT/benches/cluster_failover.py" "$SOQ" "$REDIS_PORT" "$REDIS_URL" \
    "$FAILOVER_CLIENTS" "$WORK" >"$FAILOVER_RESULT" 2>"$WORK/failover.err" ||
    python3 -c 'import json, sys; print(json.dumps({"error": sys.stdin.read().strip()[-2000:]}))' \
        <"$WORK/failover.err" >"$FAILOVER_RESULT"

# --- report ------------------------------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
export RESULTS FAILOVER_RESULT COMMIT LOAD_START LOAD_END REPEAT FANOUT_LINES FANOUT_THREADS
export LAT_REPEAT LAT_SECS LAT_RATE FAILOVER_CLIENTS REDIS_VERSION
export DATE=$(date -u +%F) NPROC=$(nproc) KERNEL=$(uname -r)
export CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
export SOQ_VERSION=$("$SOQ" --version)
python3 "$ROOT/benches/report_cluster.py" "$ROOT/docs/BENCHMARKS.md"
