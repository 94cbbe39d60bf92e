#!/usr/bin/env bash
# Benchmark `soquete serve` over TLS against `ncat --ssl --broker` in one run, with the chat load
# generator's TLS clients (benches/chat.rs --tls: rustls, any certificate accepted), and write
# the figures into docs/BENCHMARKS.md (section "soquete serve over TLS").
#
#   bash benches/tls.sh            # run from anywhere; about 5 minutes
#
# Scenarios (only 127.0.0.1; every phase bounded; a fresh server for each run; one ECDSA P-256
# certificate made by openssl for both servers):
#   1. fan-out: 50 TLS clients x 1000 lines, everyone reading (FANOUT_REPEAT runs per server,
#      alternating, medians): soquete in group and broker mode, ncat --ssl --broker; and soquete
#      broker mode over plain TCP in the same run, for the cost of TLS itself
#   2. handshakes: HANDSHAKES sequential TLS connects (python3's ssl: connect, handshake, close),
#      against soquete serve --tls-cert and ncat --ssl --broker (REPEAT runs each, medians)
#   3. latency send -> delivery at 1,000 msgs/s in total over 20 clients, soquete over TLS and
#      over plain TCP alternating (LAT_REPEAT runs each of LAT_SECS s, medians of p50 and p99)
#   4. IDLE_CLIENTS idle TLS clients held by one generator process (within its 20,000 open
#      files), then plain TCP beside it: server RSS and threads from /proc. serve
#      runs 2 threads per client: IDLE_CLIENTS is lowered (and the report says so) when that
#      many threads would not fit in kernel.pid_max with what already runs
# A fan-out run lasts about 0.2 s on 2 cores shared with the generator, and single runs spread
# by a third either way (ncat most): the fan-out takes more runs than the rest for its medians.
# Needs: cargo, python3, ncat, openssl, ss. Environment: FANOUT_REPEAT (default 11), REPEAT
# (default 5; the handshakes), HANDSHAKES (default 1000), LAT_REPEAT (2), LAT_SECS (10),
# IDLE_CLIENTS (10000), SOQUETE_BIN=path measures that binary instead of building one.
set -euo pipefail

REPEAT=${REPEAT:-5}
FANOUT_REPEAT=${FANOUT_REPEAT:-11}
HANDSHAKES=${HANDSHAKES:-1000}
LAT_REPEAT=${LAT_REPEAT:-2}
LAT_SECS=${LAT_SECS:-10}
LAT_RATE=1000
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}
IDLE_RATE=1000
FANOUT_LINES=1000
FANOUT_THREADS=2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '== %s\n' "$*" >&2; }
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
command -v openssl >/dev/null || install_missing openssl

prepare_chat_run tls
SERVE_FLAGS=(--rate-limit off)
CERT="$WORK/cert.pem"
KEY="$WORK/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$KEY" -out "$CERT" \
    -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
SOQ_TLS=(--tls-cert "$CERT" --tls-key "$KEY")
NCAT_TLS=(--ssl --ssl-cert "$CERT" --ssl-key "$KEY")
FANOUT=(fanout --clients 50 --lines "$FANOUT_LINES" --size 64 --threads "$FANOUT_THREADS")

# --- 1. fan-out ------------------------------------------------------------------------------
for ((r = 1; r <= FANOUT_REPEAT; r++)); do
    run_case tls_fanout soquete "fanout$r" --flags "${SOQ_TLS[@]}" -- "${FANOUT[@]}" --tls
    run_case tls_fanout broker "fanout$r" --flags "${SOQ_TLS[@]}" -- "${FANOUT[@]}" --tls
    run_case tls_fanout ncat "fanout$r" --flags "${NCAT_TLS[@]}" -- "${FANOUT[@]}" --tls
    run_case plain_fanout broker "plain$r" "${FANOUT[@]}"
done

# --- 2. handshakes -----------------------------------------------------------------------------
HANDSHAKE_RESULTS="$WORK/handshakes.jsonl"
: >"$HANDSHAKE_RESULTS"
for ((r = 1; r <= REPEAT; r++)); do
    for kind in soquete ncat; do
        if [[ $kind == soquete ]]; then
            start_server soquete "handshake$r" "${SOQ_TLS[@]}"
        else
            start_server ncat "handshake$r" "${NCAT_TLS[@]}"
        fi
        log "handshakes: $kind x $HANDSHAKES"
        python3 - "$kind" "$PORT" "$HANDSHAKES" >>"$HANDSHAKE_RESULTS" <<'PY'
import json, socket, ssl, sys, time
kind, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
failed = 0
versions = set()
start = time.perf_counter()
for _ in range(count):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as tls:
                versions.add(tls.version())
    except OSError:
        failed += 1
elapsed = time.perf_counter() - start
print(json.dumps({"server": kind, "count": count, "failed": failed, "elapsed_s": elapsed,
                  "versions": sorted(versions)}))
PY
        kill -TERM "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    done
done

# --- 3. latency at 1,000 msgs/s -----------------------------------------------------------------
LATENCY=(paced --clients 20 --rate "$LAT_RATE" --duration "$((LAT_SECS + 1))" --warmup 1 --latency
    --size 64)
for ((r = 1; r <= LAT_REPEAT; r++)); do
    run_case tls_latency soquete "latency$r" --flags "${SOQ_TLS[@]}" -- "${LATENCY[@]}" --tls
    run_case plain_latency soquete "plain_latency$r" "${LATENCY[@]}"
done

# --- 4. idle clients -----------------------------------------------------------------------------
# serve runs 2 threads per client; every thread takes a PID. Keep 2,000 for everything else.
IDLE_ASKED=$IDLE_CLIENTS
PIDS_FREE=$(($(cat /proc/sys/kernel/pid_max) - $(ps -eLo lwp= | wc -l) - 2000))
if ((2 * IDLE_CLIENTS > PIDS_FREE)); then
    IDLE_CLIENTS=$((PIDS_FREE / 2))
    log "idle: $IDLE_ASKED clients need $((2 * IDLE_ASKED)) threads, $PIDS_FREE PIDs free: $IDLE_CLIENTS"
fi
# One generator process holds them all: 20,000 open files at most, 10 kept for itself.
if ((IDLE_CLIENTS > 19990)); then IDLE_CLIENTS=19990; fi
IDLE=(idle --clients "$IDLE_CLIENTS" --connect-rate "$IDLE_RATE" --hold 5)
run_case tls_idle soquete idle --flags "${SOQ_TLS[@]}" -- "${IDLE[@]}" --tls
run_case plain_idle soquete plain_idle "${IDLE[@]}"

# --- report ------------------------------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
export RESULTS HANDSHAKE_RESULTS COMMIT LOAD_START LOAD_END REPEAT FANOUT_REPEAT FANOUT_LINES FANOUT_THREADS
export LAT_REPEAT LAT_SECS LAT_RATE IDLE_ASKED IDLE_CLIENTS IDLE_RATE
export HANDSHAKES DATE=$(date -u +%F) NPROC=$(nproc) KERNEL=$(uname -r)
export CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
export NCAT_VERSION=$(ncat --version 2>&1 | grep -o 'Version [^ ]*' | head -1)
export OPENSSL_VERSION=$(openssl version)
export SOQ_VERSION=$("$SOQ" --version)
python3 "$ROOT/benches/report_tls.py" "$ROOT/docs/BENCHMARKS.md"
