"""Failover and reconnect storm for benches/cluster.sh: CLIENTS real `soquete chat` processes on
server A (each given A and B: `chat A B`), a raw talker on B numbering its lines, then kill -9 A.
Measures how long until every client has resumed on B (its second `welcome`), counts the Redis
commands issued meanwhile (redis-cli MONITOR: those the servers sent, and those their scripts
ran), then checks that every client
printed every numbered line once, none missing, none twice. Prints one JSON object.

    python3 cluster_failover.py SOQUETE REDIS_PORT CLUSTER_URL CLIENTS WORKDIR

Every wait is bounded; the servers and clients it started are killed at the end.
"""

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

TALK_RATE = 200  # numbered lines per second from the talker on B
SETTLE_S = 1.0  # talking before the kill, and after every client is back
START_LIMIT_S = 180.0
RESUME_LIMIT_S = 120.0
END_LIMIT_S = 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, limit=20.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} did not listen within {limit} s")


def start_monitor(port, path):
    """redis-cli MONITOR into `path`: every command Redis runs, those of scripts marked `lua`."""
    out = open(path, "wb")
    proc = subprocess.Popen(["redis-cli", "-p", str(port), "MONITOR"], stdout=out)
    # MONITOR answers OK once it is on: wait for it, bounded.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.getsize(path) == 0:
        time.sleep(0.01)
    return proc


def monitor_counts(proc, path):
    """(commands sent by the servers, by name; commands their scripts ran, by name)."""
    proc.terminate()
    proc.wait(10)
    sent, scripted = {}, {}
    for line in open(path, errors="replace"):
        head, _, rest = line.partition("] ")
        if not rest.startswith('"'):
            continue
        name = rest[1:].split('"', 1)[0].lower()
        table = scripted if head.endswith(" lua") else sent
        table[name] = table.get(name, 0) + 1
    return dict(sorted(sent.items())), dict(sorted(scripted.items()))


class Client:
    def __init__(self, index, soquete, a, b, workdir):
        self.name = f"c{index}"
        self.proc = subprocess.Popen(
            [soquete, "chat", a, b, "--name", self.name, "--json", "--reconnect-max", "1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(os.path.join(workdir, f"{self.name}.err"), "wb"),
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.partial = b""
        self.welcomes = 0
        self.seen = []  # the talker's numbers, in the order printed
        self.resumed_at = None

    def feed(self, data, now):
        self.partial += data
        *lines, self.partial = self.partial.split(b"\n")
        for line in lines:
            try:
                frame = json.loads(line)
            except ValueError:
                continue
            kind = frame.get("type")
            if kind == "welcome":
                self.welcomes += 1
                if self.welcomes == 2:
                    self.resumed_at = now
            elif kind == "msg":
                text = frame.get("text", "")
                if text.startswith("m-"):
                    self.seen.append(int(text[2:]))
                elif text == "end":
                    self.seen.append(-1)


def main():
    soquete, redis_port, url, count, workdir = sys.argv[1:6]
    count = int(count)
    servers, clients = [], []
    try:
        ports = []
        for name in ("a", "b"):
            port = free_port()
            log = open(os.path.join(workdir, f"server-{name}.log"), "wb")
            proc = subprocess.Popen(
                [soquete, "serve", "--port", str(port), "--rate-limit", "off",
                 "--max-clients", str(count + 100), "--history", "100000",
                 "--cluster", url, "--room", "failover"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
            servers.append(proc)
            wait_listening(port, proc)
            ports.append(port)
        a, b = (f"127.0.0.1:{p}" for p in ports)
        sel = selectors.DefaultSelector()
        started = time.monotonic()
        for i in range(count):
            client = Client(i, soquete, a, b, workdir)
            clients.append(client)
            sel.register(client.proc.stdout, selectors.EVENT_READ, client)

        def pump(timeout):
            now = time.monotonic()
            for key, _ in sel.select(timeout):
                client = key.data
                try:
                    data = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if data:
                    client.feed(data, now)
                else:
                    sel.unregister(key.fileobj)

        while any(c.welcomes < 1 for c in clients):
            if time.monotonic() - started > START_LIMIT_S:
                raise SystemExit(
                    f"{sum(c.welcomes < 1 for c in clients)} clients had no welcome after "
                    f"{START_LIMIT_S} s")
            pump(0.1)
        joined_s = time.monotonic() - started

        talker = socket.create_connection(("127.0.0.1", ports[1]), timeout=10)
        talker.setblocking(False)
        sent = 0
        next_at = time.monotonic()

        def talk():
            nonlocal sent, next_at
            while time.monotonic() >= next_at:
                sent += 1
                talker.sendall(f"m-{sent}\n".encode())
                next_at += 1.0 / TALK_RATE

        def talk_for(seconds):
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                talk()
                pump(0.005)

        talk_for(SETTLE_S)
        monitor_path = os.path.join(workdir, "monitor.txt")
        monitor = start_monitor(redis_port, monitor_path)
        killed_at = time.monotonic()
        servers[0].send_signal(signal.SIGKILL)
        servers[0].wait(10)
        while any(c.resumed_at is None for c in clients):
            if time.monotonic() - killed_at > RESUME_LIMIT_S:
                break
            talk()
            pump(0.005)
        sent_calls, scripted_calls = monitor_counts(monitor, monitor_path)
        resumed = [c.resumed_at - killed_at for c in clients if c.resumed_at is not None]
        talk_for(SETTLE_S)
        talker.sendall(b"end\n")
        end_by = time.monotonic() + END_LIMIT_S
        while any(-1 not in c.seen for c in clients) and time.monotonic() < end_by:
            pump(0.05)
        talker.close()

        lost = duplicated = incomplete = 0
        for c in clients:
            numbers = [n for n in c.seen if n > 0]
            if -1 not in c.seen:
                incomplete += 1
            if not numbers:
                lost += sent
                continue
            first = numbers[0]
            expected = set(range(first, sent + 1))
            lost += len(expected - set(numbers))
            duplicated += len(numbers) - len(set(numbers))
        resumed.sort()
        print(json.dumps({
            "clients": count,
            "joined_s": joined_s,
            "resumed": len(resumed),
            "resume_all_s": resumed[-1] if len(resumed) == count else None,
            "resume_p50_s": resumed[len(resumed) // 2] if resumed else None,
            "talked": sent,
            "lost": lost,
            "duplicated": duplicated,
            "without_end": incomplete,
            "storm_s": (max(resumed) if resumed else RESUME_LIMIT_S),
            "redis_sent": sent_calls,
            "redis_scripted": scripted_calls,
        }))
    finally:
        for c in clients:
            if c.proc.poll() is None:
                c.proc.kill()
        for proc in servers:
            if proc.poll() is None:
                proc.kill()
        for proc in [c.proc for c in clients] + servers:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


if __name__ == "__main__":
    main()
