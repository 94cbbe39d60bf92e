//! A TLS client played by python3's `ssl` module (no verification: the tests check the
//! fingerprint it prints instead): it prints `fingerprint SHA256:…` and `version TLSv1.x` once
//! connected, then relays stdin to the server and the server's bytes to stdout, and `EOF` at
//! the end of the stream. One thread, `select` over both, so a read never blocks a write. A
//! third argument is the local address it connects from (127.0.0.2, say: another address).

use std::io::Write;
use std::net::SocketAddr;

use super::LIMIT;
use super::process::Running;

/// The script; its arguments are the server's IP and port.
pub const TLS_CLIENT: &str = r#"
import hashlib, os, select, socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
source = (sys.argv[3], 0) if len(sys.argv) > 3 else None
raw = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10, source_address=source)
sock = ctx.wrap_socket(raw)
digest = hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest().upper()
print("fingerprint SHA256:" + ":".join(digest[i:i + 2] for i in range(0, 64, 2)), flush=True)
print("version " + sock.version(), flush=True)
sock.setblocking(False)
watch = [sock, 0]
while True:
    ready, _, _ = select.select(watch, [], [], 10)
    if sock in ready or sock.pending():
        try:
            data = sock.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            data = None
        if data == b"":
            print("EOF", flush=True)
            break
        if data:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
    if 0 in ready:
        line = os.read(0, 65536)
        if not line:
            watch = [sock]
        else:
            sock.setblocking(True)
            sock.sendall(line)
            sock.setblocking(False)
"#;

/// A python TLS client connected to `addr`, and the fingerprint of the certificate it was shown.
pub fn connect(addr: SocketAddr) -> (Running, String) {
    connect_from(addr, None)
}

/// As [`connect`], from the local address `source` when given.
pub fn connect_from(addr: SocketAddr, source: Option<&str>) -> (Running, String) {
    let (ip, port) = (addr.ip().to_string(), addr.port().to_string());
    let mut args = vec!["-c", TLS_CLIENT, &ip, &port];
    args.extend(source);
    let client = Running::program("python3", &args);
    let line = client
        .wait_for(LIMIT, |line| line.starts_with("fingerprint "))
        .expect("the python TLS client connects");
    let print = line["fingerprint ".len()..].trim().to_string();
    (client, print)
}

/// Types `line` into a program started with [`Running::program`] (stdin piped).
pub fn type_line(program: &mut Running, line: &str) {
    let stdin = program.child.stdin.as_mut().expect("stdin is piped");
    stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
}
