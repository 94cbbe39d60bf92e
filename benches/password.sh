#!/usr/bin/env bash
# Guessing a room's password (issue 12): 1,000 wrong tries from one address take at least the
# documented minimum time, and the room's other clients' message latency (p99) stays within 2x
# of the same load without the attack. Writes the section "soquete serve: guessing the
# password" of docs/BENCHMARKS.md (benches/password.py says how it measures).
#
#   bash benches/password.sh                    # about 70 s after the build
#   TRIES=100 BENCH_DOC=/tmp/b.md bash benches/password.sh   # a quick look
#
# Only 127.0.0.1 and 127.0.0.2 (loopback); a fresh server for each run; every socket step
# bounded in time. The server's pauses are scaled down (SOQUETE_PASSWORD_DELAY_MS=DELAY_MS):
# the rule is the same, and the report gives the time with the real pauses too.
# Environment: REPEAT (3 rounds, the attacked server alternating), TRIES (1000), WORKERS (8: the tries one address may have waiting), DELAY_MS (1),
# LISTENERS (20), RATE (100 messages/s), SOQUETE_BIN=path measures that binary instead of
# building one, BENCH_DOC=path writes the section there instead of docs/BENCHMARKS.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_DOC=${BENCH_DOC:-$ROOT/docs/BENCHMARKS.md}
log() { printf '== %s\n' "$*" >&2; }
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

command -v python3 >/dev/null || install_missing python3
WORK=$(mktemp -d "/tmp/soquete-password-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
private_soquete "$WORK"

python3 benches/password.py "$WORK/soquete" --doc "$BENCH_DOC" --rev "$REV" \
    --tries "${TRIES:-1000}" --workers "${WORKERS:-8}" --delay-ms "${DELAY_MS:-1}" \
    --listeners "${LISTENERS:-20}" --rate "${RATE:-100}" --repeat "${REPEAT:-3}" \
    --command "bash benches/password.sh"
