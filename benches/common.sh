# Shared by the benchmark scripts (source it after defining log()).

# install_missing PACKAGE...: installs Debian packages with apt-get when root; otherwise says
# what to install and exits.
install_missing() {
    (($#)) || return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing missing packages: $*"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "missing tools; install them with: sudo apt-get install -y $*" >&2
        exit 1
    fi
}

# private_soquete DIR: puts a soquete binary in DIR/soquete (the one in $SOQUETE_BIN, or a fresh
# release build) and sets REV to what it is. A private copy: a rebuild by someone else during the
# run cannot change what is measured.
private_soquete() {
    local dir=$1
    if [[ -n ${SOQUETE_BIN:-} ]]; then
        log "using the given binary $SOQUETE_BIN (no build)"
        cp "$SOQUETE_BIN" "$dir/soquete"
        REV="the binary $SOQUETE_BIN"
    else
        log "building the release binary"
        cargo build --release --quiet --bin soquete
        cp target/release/soquete "$dir/soquete"
        REV="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        if [[ -n $(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
            REV="$REV + uncommitted changes"
        fi
    fi
}

# --- servers and the load generator (chat.sh, limits.sh) ----------------------------------------
# These read: WORK (the run's private directory), SOQ (the soquete binary), GEN (the load
# generator), RESULTS (the file of JSON lines), SERVERS (the pids of the servers started, for
# the cleanup) and SERVE_FLAGS (flags of every soquete server, possibly none).

# prepare_chat_run NAME: what chat.sh and limits.sh need before their runs: ncat, ss and python3
# (installed when missing), a private directory WORK (/tmp/soquete-NAME-bench.*) removed at the
# end with every server in SERVERS killed, private copies of soquete (SOQ) and of the load
# generator (GEN) (others may rebuild target/ meanwhile), the empty RESULTS file, and COMMIT and
# LOAD_START for the report.
prepare_chat_run() {
    local missing=()
    command -v ncat >/dev/null || missing+=(ncat)
    command -v ss >/dev/null || missing+=(iproute2)
    command -v python3 >/dev/null || missing+=(python3)
    install_missing "${missing[@]}"
    command -v cargo >/dev/null || { echo "cargo not found" >&2; exit 1; }
    WORK=$(mktemp -d "/tmp/soquete-$1-bench.XXXXXX")
    SERVERS=()
    trap cleanup_chat_run EXIT
    private_soquete "$WORK"
    build_generator "$WORK"
    SOQ="$WORK/soquete"
    GEN="$WORK/chat-gen"
    COMMIT=$(git rev-parse --short HEAD)
    if [[ -n $(git status --porcelain --untracked-files=no -- src benches Cargo.toml Cargo.lock) ]]; then
        COMMIT="$COMMIT + uncommitted changes"
    fi
    RESULTS="$WORK/results.jsonl"
    : >"$RESULTS"
    LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
}

cleanup_chat_run() {
    local pid
    for pid in "${SERVERS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}

# build_generator DIR: builds the load generator (benches/chat.rs) and copies it to DIR/chat-gen.
build_generator() {
    local path
    log "building the load generator (benches/chat.rs)"
    path=$(cargo bench --bench chat --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "chat" and m.get("executable"):
        print(m["executable"])')
    [[ -x $path ]] || { echo "could not build benches/chat.rs" >&2; exit 1; }
    cp "$path" "$1/chat-gen"
}

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

# start_server KIND NAME [FLAG...]: a fresh server on a free port of 127.0.0.1; sets PORT, PID,
# SLOG. KIND: soquete (soquete serve: group mode unless the flags say otherwise), broker
# (soquete serve --mode broker) or ncat (ncat --broker); the flags go to that server.
start_server() {
    local kind=$1 name=$2
    shift 2
    PORT=$(free_port)
    SLOG="$WORK/$kind-$name.log"
    if [[ $kind == soquete ]]; then
        "$SOQ" serve --port "$PORT" "${SERVE_FLAGS[@]}" "$@" </dev/null >"$SLOG" 2>&1 &
    elif [[ $kind == broker ]]; then
        "$SOQ" serve --mode broker --port "$PORT" "${SERVE_FLAGS[@]}" "$@" </dev/null >"$SLOG" 2>&1 &
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

# run_case CASE KIND NAME [--flags FLAG... --] GENERATOR ARGS...: one fresh server (given the
# flags), one generator run, one line in $RESULTS with what the server did (alive afterwards,
# log lines of interest).
run_case() {
    local case=$1 kind=$2 name=$3
    shift 3
    local server_flags=()
    if [[ ${1:-} == --flags ]]; then
        shift
        while [[ $1 != -- ]]; do
            server_flags+=("$1")
            shift
        done
        shift
    fi
    local out rc alive status attempt retried=""
    for attempt in 1 2; do
        start_server "$kind" "$name" "${server_flags[@]}"
        log "$case: $kind ${server_flags[*]} ($*)"
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
    python3 - "$case" "$kind" "$alive" "$SLOG" "$out" "${server_flags[*]}" >>"$RESULTS" <<'PY'
import json, os, re, sys
case, kind, alive, slog, out, flags = sys.argv[1:]
# The console may print long chat lines (single mode's kept lines): only their starts matter.
text = "\n".join(line[:300].rstrip("\n") for line in open(slog, errors="replace"))
crash = [l for l in text.splitlines() if re.search(r"panicked|overflowed|fatal|FD_SET|abort", l)]
reasons = {}
for m in re.finditer(r"^disconnected .*?\((?:[^:]*): (.*)\)$", text, re.M):
    r = re.sub(r"\d+", "N", m.group(1))
    reasons[r] = reasons.get(r, 0) + 1
print(json.dumps({"case": case, "server": kind, "flags": flags, "alive_after": alive == "true",
                  "exit_status": int(os.environ["STATUS"]), "retried": os.environ["RETRIED"],
                  "crash": crash[:3], "disconnects": reasons, "result": json.loads(out)}))
PY
    rm -f "$SLOG"
}
