#!/usr/bin/env python3
"""Hold N established TCP connections on 127.0.0.1 for benches/sockets.sh.

    python3 benches/hold_connections.py N [--timeout SECS] [--one-process]

The driver (this mode) starts two children of this same script: `serve` listens on 127.0.0.1:0
and accepts and holds the N server ends; `connect PORT N` opens and holds the N client ends. Two
processes, because one process may hold at most RLIMIT_NOFILE (hard limit 20,000 here) files.
With --one-process, one child (`both N`) holds both ends of every connection: 2N descriptors in
one fd table, the shape of a busy server; it needs 2N + 4 descriptors (stdio and the listener
too) and raises its hard RLIMIT_NOFILE when it has to, which needs CAP_SYS_RESOURCE (under a hard
limit of 20,000 without it, N is at most 9,998). Its READY line then names the same PID twice.

Protocol on stdout (one line each, flushed):
    READY <n> <port> <server_pid> <client_pid>   all 2N sockets are established
    FAIL <reason>                                 something went wrong (the driver then exits 1)
Then the driver waits for EOF on its stdin (the caller closing the pipe) or SIGTERM/SIGINT, and
tears everything down: the client ends are closed with SO_LINGER 0 (an RST), so no TIME_WAIT
socket is left behind to skew the next measurement. Every wait is bounded by --timeout.
"""

import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import time

LINGER_ABORT = struct.pack("ii", 1, 0)


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and needed > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return
        except (ValueError, OSError):
            say(f"FAIL need {needed} open files, hard RLIMIT_NOFILE is {hard} (raising it needs root)")
            sys.exit(1)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for_eof(deadline):
    """Blocks until stdin reaches EOF (the parent is done with us or gone), bounded by deadline."""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sys.stdin], [], [], min(5.0, deadline - time.monotonic()))
        if ready and not os.read(sys.stdin.fileno(), 4096):
            return


def serve(n, timeout):
    raise_nofile(n + 64)
    deadline = time.monotonic() + timeout
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(65535)  # the kernel caps it at net.core.somaxconn
    say(f"PORT {listener.getsockname()[1]}")
    held = []
    while len(held) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            say(f"FAIL accepted only {len(held)} of {n} before the timeout")
            return 1
        listener.settimeout(left)
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        held.append(conn)
    listener.close()  # only the N established server ends stay
    say(f"READY {len(held)}")
    wait_for_eof(time.monotonic() + 24 * 3600)
    return 0


def connect(port, n, timeout):
    raise_nofile(n + 64)
    deadline = time.monotonic() + timeout
    held = []
    for _ in range(n):
        left = deadline - time.monotonic()
        if left <= 0:
            say(f"FAIL connected only {len(held)} of {n} before the timeout")
            return 1
        s = socket.create_connection(("127.0.0.1", port), timeout=left)
        held.append(s)
    say(f"READY {len(held)}")
    wait_for_eof(time.monotonic() + 24 * 3600)
    for s in held:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
        s.close()
    return 0


def both(n, timeout):
    """Holds both ends of n connections in this one process."""
    raise_nofile(2 * n + 4)
    deadline = time.monotonic() + timeout
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    say(f"PORT {port}")
    clients, servers = [], []
    while len(servers) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            say(f"FAIL held only {len(servers)} of {n} before the timeout")
            return 1
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=left))
        listener.settimeout(left)
        servers.append(listener.accept()[0])
    listener.close()
    say(f"READY {n}")
    wait_for_eof(time.monotonic() + 24 * 3600)
    for s in clients:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
        s.close()
    return 0


def read_line(proc, deadline):
    """One line from a child's stdout, or None on EOF or timeout."""
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        if chunk == b"\n":
            return buf.decode()
        buf += chunk
    return None


def drive(n, timeout, one_process):
    me = os.path.abspath(__file__)
    children = []

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, stop)
    deadline = time.monotonic() + timeout
    try:
        common = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        mode = "both" if one_process else "serve"
        server = subprocess.Popen([sys.executable, me, mode, str(n), str(timeout)], **common)
        children.append(server)
        line = read_line(server, deadline)
        if not line or not line.startswith("PORT "):
            say(f"FAIL server said {line!r}")
            return 1
        port = int(line.split()[1])
        client = server
        if not one_process:
            client = subprocess.Popen(
                [sys.executable, me, "connect", str(port), str(n), str(timeout)], **common
            )
            children.append(client)
        for who, proc in {"client": client, "server": server}.items():
            if who == "server" and one_process:
                continue
            line = read_line(proc, deadline)
            if line != f"READY {n}":
                say(f"FAIL {who} said {line!r}")
                return 1
        say(f"READY {n} {port} {server.pid} {client.pid}")
        wait_for_eof(time.monotonic() + 24 * 3600)
        return 0
    finally:
        # Client first: its SO_LINGER-0 close sends RSTs, so neither end lingers in TIME_WAIT.
        for proc in reversed(children):
            try:
                proc.stdin.close()
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()


def main(argv):
    if len(argv) >= 2 and argv[1] == "serve":
        return serve(int(argv[2]), float(argv[3]))
    if len(argv) >= 2 and argv[1] == "connect":
        return connect(int(argv[2]), int(argv[3]), float(argv[4]))
    if len(argv) >= 2 and argv[1] == "both":
        return both(int(argv[2]), float(argv[3]))
    args = argv[1:]
    one_process = "--one-process" in args
    if one_process:
        args.remove("--one-process")
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--timeout"):
        sys.stderr.write(__doc__)
        return 2
    n = int(args[0])
    timeout = float(args[2]) if len(args) == 3 else 120.0
    if n < 1:
        sys.stderr.write("N must be at least 1\n")
        return 2
    return drive(n, timeout, one_process)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
