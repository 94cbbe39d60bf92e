#!/usr/bin/env bash
# Benchmark `soquete probe` against `nc -z` (netcat-openbsd) and write the figures into
# docs/BENCHMARKS.md (section "soquete probe"; the other sections are kept).
#
#   bash benches/probe.sh          # as root (network namespace, nft, mount namespace); from anywhere
#
# 1. Refused loopback port: a 127.0.0.1 port bound with port 0 and released. Median time to verdict
#    inside the process (`--json`, targets[0].addresses[0].last_time_ms; goal < 5 ms) and
#    whole-process wall time of `soquete probe 127.0.0.1:PORT` and `nc -z 127.0.0.1 PORT`
#    (hyperfine -N -i: both exit non-zero on a closed port).
# 2. Dead address first, live address second: a network namespace behind a veth pair whose end
#    drops all TCP to the port (nft), its address fd5e:50c:e7e::2 published as the name's AAAA and
#    127.0.0.1 (a python listener) as its A, in a hosts file bind-mounted over /etc/hosts inside
#    `unshare -m` (the machine's /etc/hosts is never touched). Time from the start of
#    `soquete probe NAME:PORT --timeout 3` to its line reporting 127.0.0.1 open (goal <= 300 ms)
#    against the whole run of `nc -z -w 3 NAME PORT`, which tries the addresses in turn.
#    If the system resolver does not put the AAAA first, two IPv4 addresses are used instead
#    (198.51.100.2, dead, then 127.0.0.1); the section says which arrangement was measured.
# 3. Four dead addresses: the name fourdead.soquete.test with two AAAA and two A records, all on
#    the far end of the same veth pair (nft drops TCP to the port), in a hosts file as in 2.
#    Whole-process wall time of `soquete probe NAME:PORT -w 2` (goal <= 2.2 s: every address at
#    once) against `nc -z -w 2 NAME PORT` (one address after the other), alternately.
# 4. Resolver stopped: a network namespace with only lo, whose resolv.conf (bind-mounted inside
#    `unshare -m`) names 127.0.0.1, where nothing listens (refused at once); then the same with
#    nft dropping port 53 (silent, as a stopped resolver behind a firewall). Whole-process wall
#    time of `soquete probe stopped.soquete.test:80 -w 3` (goal <= 3.3 s), with `nc -z -w 3`.
#
# Addresses used: 127.0.0.1 and, on the veth pair only, fd5e:50c:e7e::1/::2/::12/::13 and
# 198.51.100.1/.12/.13 (and 198.51.100.2 for the fallback). Everything is torn down on exit.
# Environment: PROBES (default 50) runs for the in-process time, RUNS (default 100) hyperfine runs,
# RACE_RUNS (default 10) runs of each command in part 2, DEAD_RUNS (default 5) in part 3,
# STOPPED_RUNS (default 5) in part 4; SOQUETE_BIN=path measures that binary
# instead of building target/release/soquete.
set -euo pipefail

PROBES=${PROBES:-50}
RUNS=${RUNS:-100}
RACE_RUNS=${RACE_RUNS:-10}
DEAD_RUNS=${DEAD_RUNS:-5}
STOPPED_RUNS=${STOPPED_RUNS:-5}
DEAD_TIMEOUT=2
STOPPED_TIMEOUT=3
NAME4=fourdead.soquete.test
DEAD4=(fd5e:50c:e7e::12 fd5e:50c:e7e::13 198.51.100.12 198.51.100.13)
STOPPED_NAME=stopped.soquete.test
WARMUP=5
TIMEOUT=3
NAME=deadlive.soquete.test
V6_NEAR=fd5e:50c:e7e::1
V6_FAR=fd5e:50c:e7e::2
V4_NEAR=198.51.100.1
V4_FAR=198.51.100.2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
HELPER="$ROOT/benches/probe_helper.py"
log() { printf '== %s\n' "$*" >&2; }
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

if [[ $(id -u) != 0 ]]; then
    echo "benches/probe.sh needs root (network namespace, nft, unshare -m): run it with sudo" >&2
    exit 1
fi

# --- tools -------------------------------------------------------------------------------------
missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
{ command -v nc >/dev/null && nc -h 2>&1 | grep -q OpenBSD; } || missing+=(netcat-openbsd)
command -v nft >/dev/null || missing+=(nftables)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
install_missing "${missing[@]}"
for tool in hyperfine nc nft ip unshare getent timeout python3 cargo; do
    command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done
nc -h 2>&1 | grep -q OpenBSD || { echo "nc is not netcat-openbsd" >&2; exit 1; }

# --- workspace and cleanup ---------------------------------------------------------------------
WORK=$(mktemp -d /tmp/soquete-probe-bench.XXXXXX)
chmod 755 "$WORK"
NS="soqbench-probe-$$"
NS_DNS="soqbench-dns-$$"
VETH="soqbp$(($$ % 100000))"
PEER="soqbq$(($$ % 100000))"
LISTEN_PID=""
cleanup() {
    if [[ -n $LISTEN_PID ]]; then
        kill "$LISTEN_PID" 2>/dev/null || true
        wait "$LISTEN_PID" 2>/dev/null || true
    fi
    ip netns del "$NS" 2>/dev/null || true
    ip netns del "$NS_DNS" 2>/dev/null || true
    ip link del "$VETH" 2>/dev/null || true # gone with the namespace already, normally
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build ---------------------------------------------------------------------------------------
private_soquete "$WORK"
SOQ="$WORK/soquete"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

# --- 1. refused loopback port ------------------------------------------------------------------
PORT1=$(python3 "$HELPER" free-port)
log "refused port 127.0.0.1:$PORT1: $PROBES runs of soquete probe --json"
rc=0
timeout 10 "$SOQ" probe "127.0.0.1:$PORT1" >&2 || rc=$?
if [[ $rc != 2 ]]; then
    echo "soquete probe 127.0.0.1:$PORT1 exited $rc, not 2 (closed): is the port in use now?" >&2
    exit 1
fi
files=()
for ((i = 1; i <= PROBES; i++)); do
    timeout 10 "$SOQ" probe "127.0.0.1:$PORT1" --json >"$WORK/refused-$i.json" || true
    files+=("$WORK/refused-$i.json")
done
python3 "$HELPER" verdict-times "$WORK/verdict-times.json" "${files[@]}"

log "refused port: hyperfine -N -i, soquete probe vs nc -z"
hyperfine -N -i --output=null --warmup "$WARMUP" --runs "$RUNS" --style basic \
    --export-json "$WORK/refused.json" \
    -n "soquete probe 127.0.0.1:PORT" "$SOQ probe 127.0.0.1:$PORT1" \
    -n "nc -z 127.0.0.1 PORT" "nc -z 127.0.0.1 $PORT1" >&2

# --- 2. dead address first, live address second --------------------------------------------------
log "starting the listener on 127.0.0.1"
python3 "$HELPER" listen "$WORK/port" 1200 </dev/null &
LISTEN_PID=$!
for _ in $(seq 100); do
    [[ -s $WORK/port ]] && break
    sleep 0.1
done
[[ -s $WORK/port ]] || { echo "the listener did not start within 10 s" >&2; exit 1; }
PORT2=$(<"$WORK/port")
log "listener on 127.0.0.1:$PORT2 (pid $LISTEN_PID)"

log "network namespace $NS, veth $VETH <-> $PEER, nft drop of TCP port $PORT2 inside"
ip netns add "$NS"
ip link add "$VETH" type veth peer name "$PEER"
ip link set "$PEER" netns "$NS"
ip addr add "$V6_NEAR/64" dev "$VETH" nodad
ip link set "$VETH" up
ip -n "$NS" addr add "$V6_FAR/64" dev "$PEER" nodad
ip -n "$NS" link set lo up
ip -n "$NS" link set "$PEER" up
ip netns exec "$NS" nft -f - <<EOF
table inet soquete_bench {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport $PORT2 drop
    }
}
EOF

resolve_order() { # resolve_order HOSTSFILE [NAME]: the addresses getent lists for NAME, in order
    # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
    timeout 10 unshare -m sh -c 'mount --bind "$1" /etc/hosts && getent ahosts "$2"' sh "$1" "${2:-$NAME}" |
        awk '$2 == "STREAM" { print $1 }'
}

HOSTS="$WORK/hosts"
printf '127.0.0.1 localhost\n%s %s\n127.0.0.1 %s\n' "$V6_FAR" "$NAME" "$NAME" >"$HOSTS"
chmod 644 "$HOSTS"
ORDER=$(resolve_order "$HOSTS" | paste -sd' ')
log "getent ahosts $NAME (AAAA dead, A live): $ORDER"
DEAD=$V6_FAR
ARRANGEMENT_TITLE="Dead AAAA, live A"
ARRANGEMENT="The name \`$NAME\` has a dead AAAA, $V6_FAR (a network namespace behind a veth pair, \
host side $V6_NEAR/64, whose nft input chain drops all TCP to the port), and a live A, 127.0.0.1 \
(a python listener), in a hosts file bind-mounted over /etc/hosts inside \`unshare -m\`."
if [[ ${ORDER%% *} != "$V6_FAR" ]]; then
    log "the resolver does not put the AAAA first: falling back to two IPv4 addresses"
    ip addr add "$V4_NEAR/24" dev "$VETH"
    ip -n "$NS" addr add "$V4_FAR/24" dev "$PEER"
    printf '127.0.0.1 localhost\n%s %s\n127.0.0.1 %s\n' "$V4_FAR" "$NAME" "$NAME" >"$HOSTS"
    ORDER=$(resolve_order "$HOSTS" | paste -sd' ')
    log "getent ahosts $NAME (two A, first dead): $ORDER"
    DEAD=$V4_FAR
    ARRANGEMENT_TITLE="Dead A first, live A second"
    ARRANGEMENT="The name \`$NAME\` has two A records (the resolver did not put a dead AAAA first): \
$V4_FAR, dead (a network namespace behind a veth pair, host side $V4_NEAR/24, whose nft input \
chain drops all TCP to the port), and 127.0.0.1, live (a python listener), in a hosts file \
bind-mounted over /etc/hosts inside \`unshare -m\`."
    if [[ ${ORDER%% *} != "$V4_FAR" ]]; then
        echo "the resolver does not list the dead address first ($ORDER): cannot measure" >&2
        exit 1
    fi
fi
GETENT_ORDER=${ORDER// /, }

log "dead address first: $RACE_RUNS runs each of soquete probe and nc -z -w $TIMEOUT (about $((RACE_RUNS * 2 * TIMEOUT)) s)"
# shellcheck disable=SC2016 # $1 and $@ are the inner shell's arguments
timeout $((RACE_RUNS * 4 * (TIMEOUT + 12) + 30)) unshare -m sh -c \
    'mount --bind "$1" /etc/hosts && shift && exec python3 "$@"' sh "$HOSTS" \
    "$HELPER" race "$WORK/race.json" "$SOQ" "$NAME" "$PORT2" 127.0.0.1 "$DEAD" "$RACE_RUNS" "$TIMEOUT"
log "one soquete run, as printed (ms from spawn):"
python3 -c 'import json,sys; [print(f"   {t:9.1f}  {l}", file=sys.stderr) for t, l in json.load(open(sys.argv[1]))["soquete"][0]["lines"]]' "$WORK/race.json"
log "one nc run: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nc"][0]["output"].replace("\n", " | "))' "$WORK/race.json")"

# --- 3. four dead addresses -----------------------------------------------------------------------
log "four dead addresses on the veth pair: ${DEAD4[*]}"
ip addr replace "$V4_NEAR/24" dev "$VETH"
HOSTS4="$WORK/hosts4"
printf '127.0.0.1 localhost\n' >"$HOSTS4"
for address in "${DEAD4[@]}"; do
    if [[ $address == *:* ]]; then
        ip -n "$NS" addr add "$address/64" dev "$PEER" nodad
    else
        ip -n "$NS" addr add "$address/24" dev "$PEER"
    fi
    printf '%s %s\n' "$address" "$NAME4" >>"$HOSTS4"
done
chmod 644 "$HOSTS4"
DEAD4_ORDER=$(resolve_order "$HOSTS4" "$NAME4" | paste -sd' ')
log "getent ahosts $NAME4: $DEAD4_ORDER"
[[ $(wc -w <<<"$DEAD4_ORDER") == 4 ]] || { echo "$NAME4 does not resolve to four addresses" >&2; exit 1; }
log "four dead addresses: $DEAD_RUNS runs each of soquete probe -w $DEAD_TIMEOUT and nc -z -w $DEAD_TIMEOUT (about $((DEAD_RUNS * 5 * DEAD_TIMEOUT)) s)"
# shellcheck disable=SC2016 # $1 and $@ are the inner shell's arguments
timeout $((DEAD_RUNS * 2 * 30 + 30)) unshare -m sh -c \
    'mount --bind "$1" /etc/hosts && shift && exec python3 "$@"' sh "$HOSTS4" \
    "$HELPER" alternate "$WORK/dead4.json" "$DEAD_RUNS" 30 \
    soquete "$SOQ" probe "$NAME4:$PORT2" -w "$DEAD_TIMEOUT" -- \
    nc nc -z -v -w "$DEAD_TIMEOUT" "$NAME4" "$PORT2"

# --- 4. resolver stopped -------------------------------------------------------------------------
log "network namespace $NS_DNS: only lo, resolv.conf names 127.0.0.1 where nothing listens"
ip netns add "$NS_DNS"
ip -n "$NS_DNS" link set lo up
printf 'nameserver 127.0.0.1\n' >"$WORK/resolv.conf"
printf '127.0.0.1 localhost\n' >"$WORK/hosts-local"
chmod 644 "$WORK/resolv.conf" "$WORK/hosts-local"
log "resolver stopped: $STOPPED_RUNS runs each of soquete probe -w $STOPPED_TIMEOUT and nc -z -w $STOPPED_TIMEOUT"
stopped_runs() { # stopped_runs OUT: soquete and nc in turn in $NS_DNS, into $WORK/OUT.json
    # shellcheck disable=SC2016 # $1, $2 and $@ are the inner shell's arguments
    timeout $((STOPPED_RUNS * 2 * 30 + 30)) ip netns exec "$NS_DNS" unshare -m sh -c \
        'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 && exec python3 "$@"' \
        sh "$WORK/resolv.conf" "$WORK/hosts-local" \
        "$HELPER" alternate "$WORK/$1.json" "$STOPPED_RUNS" 30 \
        soquete "$SOQ" probe "$STOPPED_NAME:80" -w "$STOPPED_TIMEOUT" -- \
        nc nc -z -v -w "$STOPPED_TIMEOUT" "$STOPPED_NAME" 80
}
stopped_runs stopped
log "the same, silent: nft in $NS_DNS drops port 53 (a stopped resolver whose host does not refuse)"
ip netns exec "$NS_DNS" nft -f - <<EOF
table inet soquete_bench_dns {
    chain input {
        type filter hook input priority 0; policy accept;
        udp dport 53 drop
        tcp dport 53 drop
    }
}
EOF
stopped_runs silent

# --- report --------------------------------------------------------------------------------------
CMDLINE="bash benches/probe.sh"
[[ $RACE_RUNS == 10 ]] || CMDLINE="RACE_RUNS=$RACE_RUNS $CMDLINE"
[[ $DEAD_RUNS == 5 ]] || CMDLINE="DEAD_RUNS=$DEAD_RUNS $CMDLINE"
[[ $STOPPED_RUNS == 5 ]] || CMDLINE="STOPPED_RUNS=$STOPPED_RUNS $CMDLINE"
[[ $RUNS == 100 ]] || CMDLINE="RUNS=$RUNS $CMDLINE"
[[ $PROBES == 50 ]] || CMDLINE="PROBES=$PROBES $CMDLINE"
[[ -z ${SOQUETE_BIN:-} ]] || CMDLINE="SOQUETE_BIN=$SOQUETE_BIN $CMDLINE"
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
DATE=$(date -u +%F)
NPROC=$(nproc)
KERNEL=$(uname -r)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
NC_VERSION=$(dpkg-query -W -f '${Version}' netcat-openbsd 2>/dev/null || echo unknown)
VERSIONS="$("$SOQ" --version), $(hyperfine --version), netcat-openbsd $NC_VERSION"
export WORK PORT1 PORT2 RUNS WARMUP NAME REV CMDLINE LOAD_START LOAD_END DATE NPROC KERNEL CPU
export VERSIONS ARRANGEMENT ARRANGEMENT_TITLE GETENT_ORDER
export NAME4 DEAD_TIMEOUT STOPPED_NAME STOPPED_TIMEOUT V6_NEAR V4_NEAR
DEAD4_ORDER=${DEAD4_ORDER// /, }
export DEAD4_ORDER
python3 "$HELPER" report "$ROOT/docs/BENCHMARKS.md"
