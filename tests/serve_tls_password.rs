//! A room with a password served over TLS (`serve --tls-cert … --password-file …`): the
//! handshake comes first and the password is asked for, given and refused inside TLS, counted
//! per address as over TCP; a plain client is told to use TLS and never asked; the start-up
//! warning that the password crosses readable is given only when it does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use crate::password::{PASSWORD, locked, password_file};
use crate::support::process::{Running, lines_until};
use crate::support::serve::console_line;
use crate::support::tls::{Certs, Pair, chat_as_ana, fingerprint_of};
use crate::support::{LIMIT, require, tool};

/// `--tls-cert CERT --tls-key KEY`, then `extra`.
fn tls_args<'a>(cert: &'a Path, key: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let files = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    [&files[..], extra].concat()
}

/// `openssl s_client -quiet` to `addr`, a raw client inside TLS.
fn openssl_client(addr: std::net::SocketAddr) -> Running {
    let connect = addr.to_string();
    Running::program("openssl", &["s_client", "-quiet", "-connect", &connect])
}

/// The stderr lines of a server that has been stopped.
fn warnings(server: &mut Running, errors: std::sync::mpsc::Receiver<String>) -> Vec<String> {
    server.interrupt(LIMIT).expect("the server stops");
    errors
        .iter()
        .filter(|line| line.contains("warning"))
        .collect()
}

#[test]
fn a_tls_room_asks_for_its_password_inside_tls() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["127.0.0.1"]);
    let (mut server, addr) = locked("tls", &tls_args(&cert, &key, &[])).start();
    let errors = server.stderr_lines();

    // openssl s_client answers the prompt, inside TLS, and is in the room.
    let mut openssl = openssl_client(addr);
    openssl
        .wait_for(LIMIT, |line| line == "* password:")
        .expect("openssl reads the prompt inside TLS");
    let mut typed = openssl.child.stdin.take().unwrap();
    typed.write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    openssl
        .wait_for(LIMIT, |line| line.starts_with("* welcome to soquete"))
        .expect("openssl is welcomed");

    // A wrong password over TLS: the error inside TLS, and the address's count goes up.
    for tries in ["1 failed try", "2 failed tries"] {
        let mut wrong = openssl_client(addr);
        let mut guess = wrong.child.stdin.take().unwrap();
        guess.write_all(b"not it\n").unwrap();
        let seen = lines_until(&wrong.lines, |line| line.starts_with("! "));
        assert_eq!(seen, ["* password:", "! wrong password"]);
        wrong
            .wait_exit(LIMIT)
            .expect("openssl ends: the server closed");
        drop(guess);
        console_line(&server, |line| {
            line.contains("denied") && line.contains(&format!("wrong password ({tries} from"))
        });
    }

    // A plain client is told to use TLS, and never asked for the password.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(LIMIT)).unwrap();
    plain.write_all(b"hello\n").unwrap();
    let mut told = String::new();
    plain.read_to_string(&mut told).unwrap();
    assert!(told.starts_with("* this server needs TLS"), "{told}");
    assert!(!told.contains("password"), "{told}");
    // Nor one that only closed its sending side (its first byte: the end of the stream).
    let mut closed = TcpStream::connect(addr).unwrap();
    closed.set_read_timeout(Some(LIMIT)).unwrap();
    closed.shutdown(std::net::Shutdown::Write).unwrap();
    let mut heard = String::new();
    closed.read_to_string(&mut heard).unwrap();
    assert!(!heard.contains("password"), "{heard}");

    // soquete chat over TLS, its password from a file, gets in and is heard.
    let file = password_file("tls-chat", PASSWORD);
    let print = fingerprint_of(&cert);
    let chat = chat_as_ana(
        &certs,
        &print,
        &addr.to_string(),
        &["--password-file", file.to_str().unwrap()],
    );
    let chat: Vec<&str> = chat.iter().map(String::as_str).collect();
    let mut chat = Running::start_with_stdin(&chat);
    openssl
        .wait_for(LIMIT, |line| line.contains("ana joined"))
        .expect("ana joins");
    let mut said = chat.child.stdin.take().unwrap();
    said.write_all("olá por TLS\n".as_bytes()).unwrap();
    openssl
        .wait_for(LIMIT, |line| line.ends_with("<ana> olá por TLS"))
        .expect("openssl hears ana");
    drop(said);
    drop(typed);

    // Every connection is encrypted: no warning that the password crosses readable.
    let warned = warnings(&mut server, errors);
    assert!(warned.is_empty(), "{warned:?}");
}

#[test]
fn with_tls_optional_the_warning_names_the_plain_clients() {
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["127.0.0.1"]);
    let optional = tls_args(&cert, &key, &["--tls-optional"]);
    let (mut server, _addr) = locked("tls-optional", &optional).start();
    let errors = server.stderr_lines();
    let warned = warnings(&mut server, errors);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("plain clients are served too") && warned[0].contains("readable"),
        "{warned:?}"
    );
}
