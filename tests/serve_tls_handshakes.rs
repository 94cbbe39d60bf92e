//! `soquete serve --tls`: connections whose TLS handshake has not finished take no seat of
//! `--max-clients`, and one address holds at most eight of them at once (closed at once beyond,
//! and said on the console); a class behind one address still all gets in at once; with
//! `--tls-optional`, a TLS client whose ClientHello comes after the wait is closed, never relayed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::support::process::Running;
use crate::support::serve::{Serve, console_line};
use crate::support::tls::{Certs, Pair};
use crate::support::tls_client::{self, type_line};
use crate::support::{LIMIT, require, tool};

/// A TLS server with a self-signed certificate of the tests' own, and `extra` flags.
fn tls_server(certs: &Certs, extra: &[&str]) -> (Running, SocketAddr) {
    let Pair { cert, key } = certs.self_signed("server", &["localhost", "127.0.0.1"]);
    let files = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    Serve::new(&[&files[..], extra].concat()).start()
}

/// A connection that sends the first byte of a TLS handshake record and nothing more.
fn stall(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect_timeout(&addr, LIMIT).expect("connects");
    stream.write_all(&[0x16]).unwrap();
    stream
}

/// Connections from one address that wait their turn for a TLS handshake, beyond the eight.
const WAITING: usize = 56;

#[test]
fn unfinished_handshakes_take_no_seat_and_one_address_holds_at_most_eight() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let certs = Certs::new();
    let (server, addr) = tls_server(&certs, &["--max-clients", "3"]);
    // More unfinished handshakes than seats, from one address (accepted in order, before the
    // clients that follow).
    let mut stalled: Vec<TcpStream> = (0..6).map(|_| stall(addr)).collect();
    let (mut honest, _) = tls_client::connect(addr);
    type_line(&mut honest, "oi de dentro");
    console_line(&server, |line| line.ends_with("> oi de dentro"));

    // Eight at once from one address, and 56 more waiting their turn: the next is closed at
    // once, and the console says so.
    stalled.extend((0..2 + WAITING).map(|_| stall(addr)));
    let mut beyond = stall(addr);
    let port = beyond.local_addr().unwrap().port();
    let denied = console_line(&server, |line| line.starts_with("denied "));
    assert!(
        denied.starts_with(&format!("denied 127.0.0.1:{port} → ")),
        "{denied}"
    );
    assert!(
        denied.contains("too many connections from 127.0.0.1 in their TLS handshake"),
        "{denied}"
    );
    beyond.set_read_timeout(Some(LIMIT)).unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(beyond.read(&mut byte), Ok(0) | Err(_)),
        "closed, nothing said"
    );

    // Another address is not held up by this one's.
    let (mut other, _) = tls_client::connect_from(addr, Some("127.0.0.2"));
    type_line(&mut other, "oi de outro endereço");
    console_line(&server, |line| line.ends_with("> oi de outro endereço"));
    drop(stalled);
}

/// Forty TLS clients started together (a barrier), each saying one line, then holding on until
/// stdin closes; each prints `in N` once its line is sent, or `failed N: …`.
const CLASS: &str = r#"
import socket, ssl, sys, threading
port, count = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
barrier = threading.Barrier(count)
held, lock = [], threading.Lock()
def student(n):
    barrier.wait(timeout=10)
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock = ctx.wrap_socket(raw)
        sock.sendall(("aluno %d\n" % n).encode())
        with lock:
            held.append(sock)
            print("in %d" % n, flush=True)
    except Exception as e:
        print("failed %d: %r" % (n, e), flush=True)
threads = [threading.Thread(target=student, args=(n,)) for n in range(count)]
for t in threads: t.start()
for t in threads: t.join(timeout=20)
print("done", flush=True)
sys.stdin.read()
"#;

#[test]
fn forty_tls_clients_behind_one_address_all_join_at_once() {
    if !require(tool("python3"), "python3") {
        return;
    }
    const STUDENTS: usize = 40;
    let certs = Certs::new();
    let (server, addr) = tls_server(&certs, &[]);
    let port = addr.port().to_string();
    let class = Running::program("python3", &["-c", CLASS, &port, &STUDENTS.to_string()]);
    let mut joined = std::collections::HashSet::new();
    while joined.len() < STUDENTS {
        let line = console_line(&server, |line| line.contains("> aluno "));
        joined.insert(line.rsplit(' ').next().unwrap().to_string());
    }
    let done = class
        .wait_for(LIMIT, |line| line == "done" || line.starts_with("failed "))
        .expect("the class reports");
    assert_eq!(done, "done");
}

/// A TLS client that connects, prints its local port, and sends its ClientHello only once told
/// to (a line on stdin); then prints `ok` or `failed`.
const SLOW_TLS: &str = r#"
import socket, ssl, sys
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
print("port %d" % raw.getsockname()[1], flush=True)
sys.stdin.readline()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    ctx.wrap_socket(raw)
    print("ok", flush=True)
except Exception as e:
    print("failed %r" % e, flush=True)
"#;

#[test]
fn tls_optional_closes_a_tls_client_whose_hello_comes_after_the_wait_never_relaying_it() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let certs = Certs::new();
    let (server, addr) = tls_server(&certs, &["--tls-optional"]);
    let mut listener = crate::support::peer::Peer::connect(addr);
    listener.send("ouvinte");
    console_line(&server, |line| line.ends_with("> ouvinte"));

    let mut slow = Running::program("python3", &["-c", SLOW_TLS, &addr.port().to_string()]);
    let port = slow
        .wait_for(LIMIT, |line| line.starts_with("port "))
        .expect("the slow client connects")["port ".len()..]
        .to_string();
    // Silent for the wait: taken as plain, in the room.
    let peer = format!("127.0.0.1:{port} ");
    let joined = console_line(&server, |line| {
        line.starts_with(&format!("connected {peer}"))
    });
    let name = joined
        .rsplit_once(" (")
        .unwrap()
        .1
        .split(',')
        .next()
        .unwrap();
    type_line(&mut slow, "hello now");
    let mut said = Vec::new();
    let gone = console_line(&server, |line| {
        said.push(line.to_string());
        line.starts_with(&format!("disconnected {peer}"))
    });
    assert!(gone.contains("a TLS handshake"), "{gone}");
    assert!(
        !said.iter().any(|line| line.contains(&format!("<{name}>"))),
        "nothing it sent is logged: {said:?}"
    );

    // Nothing it sent reached the room before what another client says next.
    let mut other = crate::support::peer::Peer::connect(addr);
    other.send("marca");
    let mut heard = Vec::new();
    listener.line_where(|line| {
        heard.push(line.to_string());
        line.ends_with("> marca")
    });
    assert!(
        !heard.iter().any(|line| line.contains(&format!("<{name}>"))),
        "nothing it sent is relayed: {heard:?}"
    );
}
