#!/usr/bin/env bash
# Benchmark `soquete sockets` against ss and netstat with N established loopback TCP connections
# (2N sockets), and write the figures into docs/BENCHMARKS.md, in two shapes:
#   - two processes hold the two ends (section "soquete sockets"), with growth over SCALES;
#   - ONE process holds both ends of ONE_N connections, 2×ONE_N descriptors in one fd table, the
#     shape of a busy server (section "soquete sockets: one process holding every connection").
#
#   bash benches/sockets.sh [N]        # N defaults to 10000 (20,000 sockets); run from anywhere
#   SHAPES=one bash benches/sockets.sh # only the one-process shape (SHAPES=two: only the other)
#
# ONE_N defaults to 9998: with stdio and the listener, 10,000 connections would need 20,004
# descriptors, above a hard RLIMIT_NOFILE of 20,000 that only CAP_SYS_RESOURCE may raise (the
# holder raises it when it can: set ONE_N=10000 there).
#
# Needs: cargo, python3, hyperfine, ss (iproute2), netstat (net-tools), /usr/bin/time (time),
# strace (optional, for the syscall profile). Missing Debian packages are installed with apt-get
# when running as root; otherwise the script says what to install and stops.
# Environment: RUNS (default 30) and SCALE_RUNS (default 15) set hyperfine's run counts;
# SOQUETE_BIN=path measures that binary instead of building target/release/soquete.
set -euo pipefail

N=${1:-10000}
RUNS=${RUNS:-30}
SCALE_RUNS=${SCALE_RUNS:-15}
WARMUP=3
SCALES=(1000 2500 5000 10000)
SHAPES=${SHAPES:-two one}
ONE_N=${ONE_N:-9998}

if ! [[ $N =~ ^[0-9]+$ ]] || ((N < 100)); then
    echo "usage: bash benches/sockets.sh [N]   (N >= 100 connections; default 10000)" >&2
    exit 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '== %s\n' "$*" >&2; }
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

# --- tools -------------------------------------------------------------------------------------
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v ss >/dev/null || missing+=(iproute2)
command -v netstat >/dev/null || missing+=(net-tools)
[[ -x /usr/bin/time ]] || missing+=(time)
command -v strace >/dev/null || missing+=(strace)
install_missing "${missing[@]}"
for tool in hyperfine ss netstat python3 cargo; do
    command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done

# --- workspace and cleanup ---------------------------------------------------------------------
WORK=$(mktemp -d /tmp/soquete-bench.XXXXXX)
HOLD_PID=""
HOLD_IN=""
HOLD_OUT=""
release() {
    # Closing the driver's stdin makes it tear both holders down (RST, so no TIME_WAIT is left);
    # its stdout reaches EOF once it and they have exited.
    if [[ -n $HOLD_IN ]]; then
        exec {HOLD_IN}>&-
        HOLD_IN=""
    fi
    if [[ -n $HOLD_OUT ]]; then
        local line
        while read -r -t 60 -u "$HOLD_OUT" line; do :; done || true
        exec {HOLD_OUT}<&-
        HOLD_OUT=""
    fi
    if [[ -n $HOLD_PID ]]; then
        kill -TERM "$HOLD_PID" 2>/dev/null || true # only if still there after 60 s
        wait "$HOLD_PID" 2>/dev/null || true
        HOLD_PID=""
    fi
}
cleanup() {
    release
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# hold N [--one-process]: starts the holders and waits (bounded) for their READY line; sets PORT.
hold() {
    local n=$1 line=""
    local shape=${2:-}
    coproc HOLDER { exec python3 "$ROOT/benches/hold_connections.py" "$n" --timeout 180 $shape; }
    # shellcheck disable=SC2153 # HOLDER_PID is set by coproc
    HOLD_PID=$HOLDER_PID
    # Own copies of the coprocess's pipe ends, and the originals closed, so that closing HOLD_IN
    # really gives the driver EOF.
    exec {HOLD_IN}>&"${HOLDER[1]}" {HOLD_OUT}<&"${HOLDER[0]}"
    eval "exec ${HOLDER[1]}>&- ${HOLDER[0]}<&-"
    read -r -t 200 -u "$HOLD_OUT" line || true
    if [[ $line != READY* ]]; then
        echo "holding $n connections failed: ${line:-no answer within 200 s}" >&2
        exit 1
    fi
    read -r _ _ PORT SERVER_PID CLIENT_PID <<<"$line"
    log "holding $n connections on 127.0.0.1:$PORT (pids $SERVER_PID, $CLIENT_PID)"
}

# --- build ---------------------------------------------------------------------------------------
private_soquete "$WORK"
SOQ="$WORK/soquete"

bench() { # bench JSON RUNS name command [name command ...]
    local json=$1 runs=$2
    shift 2
    local args=()
    while (($#)); do
        args+=(-n "$1" "$2")
        shift 2
    done
    hyperfine -N --output=null --warmup "$WARMUP" --runs "$runs" --style basic \
        --export-json "$json" "${args[@]}" >&2
}

LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

# --- one process holding every connection ----------------------------------------------------------
if [[ " $SHAPES " == *" one "* ]]; then
    hold "$ONE_N" --one-process
    log "one process: counting rows (sanity check)"
    {
        echo "ss_port_rows $(ss -tan | grep -c ":$PORT\b" || true)"
        echo "soquete_port_rows $("$SOQ" sockets -tan | grep -c ":$PORT\b" || true)"
        echo "soquete_tanp_owned_rows $("$SOQ" sockets -tanp | grep ":$PORT\b" |
            grep -cE "\b$SERVER_PID/" || true)"
        echo "soquete_tani_info_rows $("$SOQ" sockets -tani --port "$PORT" --json |
            python3 -c 'import json,sys; print(sum(r["tcp_info"] is not None for r in json.load(sys.stdin)))')"
    } >"$WORK/one-counts.txt"
    cat "$WORK/one-counts.txt" >&2
    log "one process: timing -tanp, -tan, -tani"
    bench "$WORK/one.json" "$RUNS" \
        "soquete sockets -tanp" "$SOQ sockets -tanp" \
        "ss -tanp" "ss -tanp" \
        "netstat -tanp" "netstat -tanp" \
        "soquete sockets -tan" "$SOQ sockets -tan" \
        "ss -tan" "ss -tan" \
        "soquete sockets -tani" "$SOQ sockets -tani" \
        "ss -tani" "ss -tani"
    log "one process: peak RSS of soquete sockets -tanp and -tani (5 runs each)"
    for _ in 1 2 3 4 5; do
        /usr/bin/time -f '%M' -a -o "$WORK/one-rss.txt" "$SOQ" sockets -tanp >/dev/null
        /usr/bin/time -f '%M' -a -o "$WORK/one-rss.txt" "$SOQ" sockets -tani >/dev/null
    done
    release
fi
if [[ " $SHAPES " != *" two "* ]]; then
    SCALES=()
fi

# --- main comparison at N ------------------------------------------------------------------------
if [[ " $SHAPES " == *" two "* ]]; then
hold "$N"

log "counting rows (sanity check)"
{
    echo "ss_tan_rows $(ss -tan | tail -n +2 | wc -l)"
    echo "netstat_tan_rows $(netstat -tan | tail -n +3 | wc -l)"
    echo "soquete_tan_rows $("$SOQ" sockets -tan | tail -n +2 | wc -l)"
    echo "ss_port_rows $(ss -tan | grep -c ":$PORT\b" || true)"
    echo "netstat_port_rows $(netstat -tan | grep -c ":$PORT\b" || true)"
    echo "soquete_port_rows $("$SOQ" sockets -tan | grep -c ":$PORT\b" || true)"
    echo "soquete_json_port_rows $("$SOQ" sockets -tan --port "$PORT" --json |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
    echo "soquete_tanp_owned_rows $("$SOQ" sockets -tanp | grep ":$PORT\b" |
        grep -cE "\b($SERVER_PID|$CLIENT_PID)/" || true)"
    echo "ss_tanp_owned_rows $(ss -tanp | grep ":$PORT\b" |
        grep -cE "pid=($SERVER_PID|$CLIENT_PID)," || true)"
} >"$WORK/counts.txt"
cat "$WORK/counts.txt" >&2

log "timing with -p (owners): soquete, ss, netstat"
bench "$WORK/owners.json" "$RUNS" \
    "soquete sockets -tanp" "$SOQ sockets -tanp" \
    "ss -tanp" "ss -tanp" \
    "netstat -tanp" "netstat -tanp"
log "timing without -p: soquete, ss"
bench "$WORK/plain.json" "$RUNS" \
    "soquete sockets -tan" "$SOQ sockets -tan" \
    "ss -tan" "ss -tan"

log "peak RSS of soquete sockets -tanp (5 runs)"
for _ in 1 2 3 4 5; do
    /usr/bin/time -f '%M' -a -o "$WORK/rss.txt" "$SOQ" sockets -tanp >/dev/null
done

if command -v strace >/dev/null; then
    log "syscall counts (strace -c -f)"
    strace -c -f -o "$WORK/strace-soquete.txt" "$SOQ" sockets -tanp >/dev/null
    strace -c -f -o "$WORK/strace-ss.txt" ss -tanp >/dev/null
    strace -c -f -o "$WORK/strace-netstat.txt" netstat -tanp >/dev/null
fi
release
fi

# --- growth with N ---------------------------------------------------------------------------------
for n in "${SCALES[@]}"; do
    ((n <= N)) || continue
    if ((n == N)); then
        continue # measured above
    fi
    hold "$n"
    log "timing at $n connections"
    bench "$WORK/scale-$n.json" "$SCALE_RUNS" \
        "soquete sockets -tan" "$SOQ sockets -tan" \
        "soquete sockets -tanp" "$SOQ sockets -tanp" \
        "ss -tan" "ss -tan" \
        "ss -tanp" "ss -tanp"
    release
done

# --- report --------------------------------------------------------------------------------------
CMDLINE="bash benches/sockets.sh${1:+ $1}"
[[ $SCALE_RUNS == 15 ]] || CMDLINE="SCALE_RUNS=$SCALE_RUNS $CMDLINE"
[[ $RUNS == 30 ]] || CMDLINE="RUNS=$RUNS $CMDLINE"
[[ -z ${SOQUETE_BIN:-} ]] || CMDLINE="SOQUETE_BIN=$SOQUETE_BIN $CMDLINE"
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
[[ $SHAPES == "two one" ]] || CMDLINE="SHAPES=\"$SHAPES\" $CMDLINE"
[[ $ONE_N == 9998 ]] || CMDLINE="ONE_N=$ONE_N $CMDLINE"
export N ONE_N RUNS SCALE_RUNS WARMUP REV WORK CMDLINE LOAD_START LOAD_END
DATE=$(date -u +%F)
NPROC=$(nproc)
KERNEL=$(uname -r)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
VERSIONS="$(hyperfine --version), $(ss -V), $(netstat --version 2>&1 | head -1)"
export DATE NPROC KERNEL CPU VERSIONS
export SCALE_LIST="${SCALES[*]}"
python3 "$ROOT/benches/report_sockets.py" "$ROOT/docs/BENCHMARKS.md"
