#!/usr/bin/env bash
# Did a change make soquete slower? Measures two builds of soquete side by side in one run, on the
# same machine and the same sockets, and writes the ratios (new / old) into docs/BENCHMARKS.md
# (section "Before and after a change"), printing the section too:
#   - `sockets -tan` and `sockets -tanp` with 10,000 held connections (hyperfine, both builds in
#     one hyperfine call, so they share the machine's noise);
#   - the chat fan-out (50 clients x 1000 lines, two generator threads) in group and broker mode,
#     old and new interleaved run by run, medians of ROUNDS runs each.
#
#   bash benches/compare_builds.sh OLD_REV          # e.g. a commit before a refactor; ~4 minutes
#
# OLD_REV is built in a temporary git worktree; the new build is the working tree's. Only
# 127.0.0.1 is used; every server is stopped before the next starts. Needs what sockets.sh and
# chat.sh need (cargo, python3, hyperfine, ss). Environment: ROUNDS (default 5).
set -euo pipefail

OLD_REV=${1:?usage: bash benches/compare_builds.sh OLD_REV}
ROUNDS=${ROUNDS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d)
SERVER=""
HOLD_PID=""

log() { echo "compare_builds: $*" >&2; }
cleanup() {
    [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null
    [[ -n $HOLD_PID ]] && kill "$HOLD_PID" 2>/dev/null
    git worktree remove --force "$WORK/old-tree" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
missing=()
for tool in hyperfine ss python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
((${#missing[@]} == 0)) || install_missing "${missing[@]/ss/iproute2}"

log "building $OLD_REV and the working tree (release)"
OLD_COMMIT=$(git rev-parse --short "$OLD_REV")
git worktree add -q --detach "$WORK/old-tree" "$OLD_COMMIT"
CARGO_TARGET_DIR="$ROOT/target" cargo build --release --quiet --locked \
    --manifest-path "$WORK/old-tree/Cargo.toml" --bin soquete
cp target/release/soquete "$WORK/old"
cargo build --release --quiet --locked --bin soquete
cp target/release/soquete "$WORK/new"
NEW_REV="commit $(git rev-parse --short HEAD)"
[[ -z $(git status --porcelain -- src Cargo.toml Cargo.lock) ]] || NEW_REV="$NEW_REV + uncommitted changes"
build_generator "$WORK"

# --- sockets ---------------------------------------------------------------------------------------
log "holding 10,000 connections"
coproc HOLDER { exec python3 "$ROOT/benches/hold_connections.py" 10000 --timeout 300; }
HOLD_PID=$HOLDER_PID
read -r -t 200 -u "${HOLDER[0]}" ready || true
[[ ${ready:-} == READY* ]] || { echo "holding connections failed: ${ready:-no answer}" >&2; exit 1; }
for flags in -tan -tanp; do
    hyperfine -N --output=null --warmup 3 --runs 30 --style basic --export-json "$WORK/s$flags.json" \
        -n "old $flags" "$WORK/old sockets $flags" -n "new $flags" "$WORK/new sockets $flags" >&2
done
kill "$HOLD_PID" 2>/dev/null || true
HOLD_PID=""

# --- chat fan-out ----------------------------------------------------------------------------------
# run_fanout BINARY MODE: one fresh server, one fan-out; prints "lines/s lost corrupted".
run_fanout() {
    local bin=$1 mode=$2 port="" out
    "$bin" serve --port 0 --rate-limit off --mode "$mode" </dev/null >"$WORK/serve.out" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$WORK/serve.out" | head -1)
        [[ -n $port ]] && break
        sleep 0.05
    done
    [[ -n $port ]] || { echo "server did not start: $(cat "$WORK/serve.out")" >&2; exit 1; }
    local kind=soquete
    [[ $mode == broker ]] && kind=broker
    out=$("$WORK/chat-gen" fanout --clients 50 --lines 1000 --size 64 --threads 2 \
        --addr "127.0.0.1:$port" --kind "$kind" --server-pid "$SERVER")
    kill -INT "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(r["lines_per_s"], r["lost"], r["corrupted"])' "$out"
}

for mode in group broker; do
    : >"$WORK/fan-$mode-old"
    : >"$WORK/fan-$mode-new"
    for round in $(seq "$ROUNDS"); do
        log "fan-out, $mode mode, round $round of $ROUNDS"
        run_fanout "$WORK/old" "$mode" >>"$WORK/fan-$mode-old"
        run_fanout "$WORK/new" "$mode" >>"$WORK/fan-$mode-new"
    done
done

# --- report ----------------------------------------------------------------------------------------
python3 - "$WORK" "$OLD_COMMIT" "$NEW_REV" "$ROUNDS" "$ROOT" <<'EOF'
import json, statistics, sys, datetime, os
work, old, new, rounds, root = sys.argv[1:6]
sys.path.insert(0, os.path.join(root, "benches"))
from benchmarks_doc import write_section
out = [f"## Before and after a change\n\n"
       f"Measured {datetime.date.today()} by `bash benches/compare_builds.sh {old}`: the build of {old} "
       f"against {new}, on {os.cpu_count()} cores, in one run (load average at the end "
       f"{open('/proc/loadavg').read().split()[0]}). Ratio = new / old: below 1 the new build is faster. "
       "The two `sockets` builds share each hyperfine call; the fan-out runs alternate old and new, a "
       "fresh server each. On this machine run-to-run noise is about ±5 % for `sockets` and ±20 % for "
       "a single fan-out run.\n\n",
       "| measure | old | new | ratio |\n|---|---|---|---|\n"]
for flags in ("-tan", "-tanp"):
    results = json.load(open(f"{work}/s{flags}.json"))["results"]
    o, n = (statistics.median(r["times"]) * 1e3 for r in results)
    out.append(f"| `sockets {flags}`, 20,000 sockets, median of 30 | {o:.1f} ms | {n:.1f} ms | {n / o:.2f}× |\n")
for mode in ("group", "broker"):
    rows = {}
    for build in ("old", "new"):
        runs = [line.split() for line in open(f"{work}/fan-{mode}-{build}") if line.strip()]
        rows[build] = (statistics.median(float(r[0]) for r in runs), sum(int(r[1]) + int(r[2]) for r in runs))
    o, n = rows["old"][0], rows["new"][0]
    out.append(f"| fan-out 50 × 1000, {mode} mode, lines/s, median of {rounds} (lost + corrupted: "
               f"old {rows['old'][1]}, new {rows['new'][1]}) | {o:,.0f} | {n:,.0f} | {n / o:.2f}× |\n")
section = "".join(out)
print(section)
write_section(os.path.join(root, "docs", "BENCHMARKS.md"), "## Before and after a change", section)
EOF
