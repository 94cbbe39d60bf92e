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
