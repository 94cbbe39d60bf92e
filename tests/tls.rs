//! `soquete chat --tls` against real TLS servers (`openssl s_server`, `ncat --ssl`) with
//! certificates the test makes: lines both ways with UTF-8 intact; a CA-signed certificate
//! through `--tls-ca`; refusals (wrong name, expired, unknown, changed) each in one clear line
//! with exit 1; a self-signed one trusted on first use and remembered.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::support::fake_server::FakeServer;
use crate::support::ports::listening_port;
use crate::support::process::{Running, soquete, wait_line};
use crate::support::serve::start_server;
use crate::support::tls::{
    Certs, Pair, TlsServer, Validity, chat_as_ana, dripping_server, openssl_with_signed,
};
use crate::support::tmux::{Tmux, in_shell};
use crate::support::{LIMIT, require, tool};

/// The fingerprint as `openssl x509 -fingerprint -sha256` prints it, with soquete's prefix.
pub fn openssl_fingerprint(cert: &Path) -> String {
    let output = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(cert)
        .output()
        .expect("openssl runs");
    let text = String::from_utf8(output.stdout).unwrap();
    let hex = text.trim().rsplit('=').next().unwrap().to_string();
    format!("SHA256:{hex}")
}

/// `soquete chat --raw --tls ARGS… ADDRESS` with the state directory of `certs`.
fn tls_client(certs: &Certs, server: &TlsServer, args: &[&str]) -> Running {
    let state = certs.state_dir();
    let address = server.addr.to_string();
    let mut argv = vec!["chat", "--raw", "--tls", "--state-dir"];
    argv.push(state.to_str().unwrap());
    argv.extend_from_slice(args);
    argv.push(&address);
    Running::start_with_stdin(&argv)
}

/// A line from the client to the server and one back, accents and symbols intact.
fn lines_both_ways(client: &mut Running, server: &mut TlsServer) {
    let stdin = client.child.stdin.as_mut().unwrap();
    stdin.write_all("olá do cliente ✓\n".as_bytes()).unwrap();
    stdin.flush().unwrap();
    server
        .running
        .wait_for(LIMIT, |line| line == "olá do cliente ✓")
        .expect("the server got the client's line");
    let stdin = server.running.child.stdin.as_mut().unwrap();
    stdin.write_all("bom dia, ação ✓\n".as_bytes()).unwrap();
    stdin.flush().unwrap();
    client
        .wait_for(LIMIT, |line| line == "bom dia, ação ✓")
        .expect("the client got the server's line");
}

/// Runs `soquete chat --raw --tls ARGS ADDRESS` from a pipe and returns (exit code, stderr).
fn refused(certs: &Certs, server: &TlsServer, args: &[&str]) -> (i32, String) {
    refused_at(certs, &server.addr.to_string(), args)
}

/// As [`refused`], to `address` as typed.
fn refused_at(certs: &Certs, address: &str, args: &[&str]) -> (i32, String) {
    let state = certs.state_dir();
    let output = soquete()
        .args(["chat", "--raw", "--tls", "--state-dir"])
        .arg(&state)
        .args(args)
        .arg(address)
        .write_stdin("never sent\n")
        .timeout(LIMIT)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    (output.status.code().unwrap_or(-1), stderr)
}

fn ca_signed(certs: &Certs) -> Pair {
    certs.signed("server", &["localhost", "127.0.0.1"], Validity::Current)
}

#[test]
fn raw_tls_client_and_openssl_s_server_talk_both_ways_with_a_private_ca() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let mut server = TlsServer::openssl(&ca_signed(&certs));
    verified_both_ways(&certs, &mut server, &certs.ca());
}

/// `chat --raw --tls --tls-ca CA` to `server`: lines both ways, and the certificate verified.
fn verified_both_ways(certs: &Certs, server: &mut TlsServer, ca: &Path) {
    let mut client = tls_client(certs, server, &["--tls-ca", ca.to_str().unwrap()]);
    let stderr = client.stderr_lines();
    lines_both_ways(&mut client, server);
    let note = wait_line(&stderr, LIMIT, |line| line.contains("TLSv1.")).expect("TLS noted");
    assert!(note.contains("certificate verified"), "{note}");
}

#[test]
fn raw_tls_client_and_ncat_ssl_talk_both_ways() {
    if !require(tool("ncat"), "ncat") {
        return;
    }
    let certs = Certs::new();
    let mut server = TlsServer::ncat(&ca_signed(&certs));
    let ca = certs.ca();
    let mut client = tls_client(&certs, &server, &["--tls-ca", ca.to_str().unwrap()]);
    lines_both_ways(&mut client, &mut server);
}

/// The one-line refusal of a server with the certificate `make` gives, when the test's CA is
/// the one trusted (`--tls-ca`); None when openssl is missing (the test is skipped).
fn refusal_with_private_ca(make: impl FnOnce(&Certs) -> Pair) -> Option<String> {
    if !require(tool("openssl"), "openssl") {
        return None;
    }
    let certs = Certs::new();
    let server = TlsServer::openssl(&make(&certs));
    let ca = certs.ca();
    let (code, stderr) = refused(&certs, &server, &["--tls-ca", ca.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    Some(stderr)
}

#[test]
fn a_certificate_for_another_name_is_refused_and_dns_is_suspected() {
    let Some((certs, server)) = openssl_with_signed(&["other.example"]) else {
        return;
    };
    let ca = certs.ca();
    let target = format!("localhost:{}", server.addr.port());
    let (code, stderr) = refused_at(&certs, &target, &["--tls-ca", ca.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("it is for other.example, not localhost") && stderr.contains("DNS"),
        "{stderr}"
    );
}

#[test]
fn a_certificate_that_does_not_name_the_address_typed_says_its_names_not_dns() {
    // An address typed involves no DNS; and a name's escape is shown, never dropped.
    let make = |certs: &Certs| {
        certs.signed(
            "other",
            &["evil\u{1b}[31m.example", "b.example"],
            Validity::Current,
        )
    };
    let Some(stderr) = refusal_with_private_ca(make) else {
        return;
    };
    assert!(
        stderr.contains(
            r"it does not name the address 127.0.0.1: it is for evil\x1b[31m.example, b.example (connect by one of them)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("DNS"), "{stderr}");
}

#[test]
fn an_expired_certificate_is_refused() {
    let make = |certs: &Certs| certs.signed("old", &["127.0.0.1"], Validity::Expired);
    let Some(stderr) = refusal_with_private_ca(make) else {
        return;
    };
    assert!(stderr.contains("expired on "), "{stderr}");
}

#[test]
fn a_certificate_the_private_ca_did_not_sign_is_refused() {
    let make = |certs: &Certs| certs.self_signed("self", &["127.0.0.1"]);
    let Some(stderr) = refusal_with_private_ca(make) else {
        return;
    };
    assert!(stderr.contains("not issued by the CA"), "{stderr}");
}

#[test]
fn a_self_signed_server_is_trusted_on_first_use_remembered_and_refused_when_it_changes() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let first = certs.self_signed("first", &["127.0.0.1"]);
    let print = openssl_fingerprint(&first.cert);
    let mut server = TlsServer::openssl(&first);

    // Not on a terminal and no fingerprint: refused, saying how to pass it.
    let (code, stderr) = refused(&certs, &server, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("--tls-fingerprint {print}")),
        "{stderr}"
    );

    // A wrong fingerprint: refused.
    let other = openssl_fingerprint(&certs.ca());
    let (code, stderr) = refused(&certs, &server, &["--tls-fingerprint", &other]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&print) && stderr.contains(&other),
        "{stderr}"
    );

    // The right one: accepted and remembered.
    let mut client = tls_client(&certs, &server, &["--tls-fingerprint", &print]);
    lines_both_ways(&mut client, &mut server);
    let known = std::fs::read_to_string(certs.state_dir().join("known_hosts")).unwrap();
    assert_eq!(known, format!("{} {print}\n", server.addr));
    drop(client);
    drop(server);

    // The same host and port with another certificate: a new server stands in for it.
    let second = certs.self_signed("second", &["127.0.0.1"]);
    let new_print = openssl_fingerprint(&second.cert);
    let mut server = TlsServer::openssl(&second);
    std::fs::write(
        certs.state_dir().join("known_hosts"),
        format!("{} {print}\n", server.addr),
    )
    .unwrap();
    let (code, stderr) = refused(&certs, &server, &["--tls-fingerprint", &new_print]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("HAS CHANGED")
            && stderr.contains(&format!("remembered {print}"))
            && stderr.contains(&format!("presented {new_print}"))
            && stderr.contains("remove line 1 of "),
        "{stderr}"
    );

    // Remembered as it is: accepted without a fingerprint.
    std::fs::write(
        certs.state_dir().join("known_hosts"),
        format!("{} {new_print}\n", server.addr),
    )
    .unwrap();
    let mut again = tls_client(&certs, &server, &[]);
    lines_both_ways(&mut again, &mut server);
}

#[test]
fn on_a_terminal_the_first_connection_shows_the_fingerprint_and_asks() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let pair = certs.self_signed("self", &["127.0.0.1"]);
    let print = openssl_fingerprint(&pair.cert);
    let server = TlsServer::openssl(&pair);
    let state = certs.state_dir();
    let address = server.addr.to_string();
    let args = [
        "--raw",
        "--tls",
        "--state-dir",
        state.to_str().unwrap(),
        &address,
    ];

    // No: nothing remembered, exit 1.
    let Some(tmux) = Tmux::start("tls-no", &in_shell(&args)) else {
        return;
    };
    let screen = tmux.wait_screen("the question", |s| s.concat().contains("(y/N)?"));
    assert!(screen.concat().contains(&print), "{screen:#?}");
    tmux.type_text("n");
    tmux.press(&["Enter"]);
    tmux.wait_screen("the refusal", |s| s.concat().contains("exit status 1"));
    assert!(!state.join("known_hosts").exists());
    drop(tmux);

    // Yes: remembered, connected, and what is typed reaches the server.
    let Some(tmux) = Tmux::start("tls-yes", &in_shell(&args)) else {
        return;
    };
    tmux.wait_screen("the question", |s| s.concat().contains("(y/N)?"));
    tmux.type_text("y");
    tmux.press(&["Enter"]);
    tmux.wait_screen("the connection", |s| s.concat().contains("* connected"));
    tmux.type_text("olá ✓");
    tmux.press(&["Enter"]);
    server
        .running
        .wait_for(LIMIT, |line| line == "olá ✓")
        .expect("the server got the typed line");
    let known = std::fs::read_to_string(state.join("known_hosts")).unwrap();
    assert_eq!(known, format!("{address} {print}\n"));
}

#[test]
fn a_reconnection_verifies_again_and_a_changed_certificate_ends_the_session() {
    if !require(tool("socat"), "socat") {
        return;
    }
    let certs = Certs::new();
    let first = certs.self_signed("first", &["127.0.0.1"]);
    let second = certs.self_signed("second", &["127.0.0.1"]);
    let chat = FakeServer::start();
    // TLS in front of the test's soquete server: socat, one connection, then it is done.
    let front = |pair: &Pair, port: u16| {
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,verify=0,cert={},key={}",
            pair.cert.display(),
            pair.key.display()
        );
        Running::program("socat", &[&listen, &format!("TCP:{}", chat.addr)])
    };
    let tls_front = front(&first, 0);
    let port = listening_port(tls_front.child.id());
    let print = openssl_fingerprint(&first.cert);
    let args = chat_as_ana(&certs, &print, &format!("127.0.0.1:{port}"), &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut client = Running::start_with_stdin(&args);
    let stderr = client.stderr_lines();
    let mut peer = chat.next_peer();
    assert_eq!(peer.handshake(), "ana");
    // The same address now presents another certificate; the server goes away.
    let _changed = front(&second, port);
    drop(peer);
    let refusal = wait_line(&stderr, LIMIT, |line| line.contains("HAS CHANGED"))
        .expect("the reconnection is refused");
    assert!(refusal.contains(&print), "{refusal}");
    let status = client.wait_exit(LIMIT).expect("the client exits");
    assert_eq!(status.code(), Some(1));
    drop(tls_front);
}

#[test]
fn a_plain_server_is_refused_never_spoken_to_in_clear() {
    let (_server, addr) = start_server(&[]);
    let output = soquete()
        .args(["chat", "--tls", &addr.to_string()])
        .write_stdin("secret\n")
        .timeout(LIMIT)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the server answered in plain text, not TLS"),
        "{stderr}"
    );
}

#[test]
fn a_handshake_that_drips_byte_by_byte_ends_at_the_deadline() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let (server, addr) = dripping_server();
    let started = std::time::Instant::now();
    let output = soquete()
        .args(["chat", "--raw", "--tls", &addr.to_string()])
        .env("SOQUETE_TLS_HANDSHAKE_TIMEOUT_MS", "1000")
        .write_stdin("never sent\n")
        .timeout(LIMIT)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(server.wait_for(LIMIT, |l| l == "client hello").is_some());
    assert!(stderr.contains("not finished within 1 s"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(started.elapsed() < LIMIT / 2, "{:?}", started.elapsed());
}

#[test]
fn the_servers_own_self_signed_certificate_given_as_tls_ca_is_trusted_for_its_name() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let pair = certs.openssl_self_signed("own", "IP:127.0.0.1");
    let mut server = TlsServer::openssl(&pair);
    verified_both_ways(&certs, &mut server, &pair.cert);

    // The same certificate for a name it does not list: refused for that name.
    let address = format!("localhost:{}", server.addr.port());
    let (code, stderr) = refused_at(&certs, &address, &["--tls-ca", pair.cert.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not localhost"), "{stderr}");
}

#[test]
fn a_fingerprint_given_must_match_even_a_certificate_a_ca_vouches_for() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let pair = ca_signed(&certs);
    let mut server = TlsServer::openssl(&pair);
    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let (print, other) = (
        openssl_fingerprint(&pair.cert),
        openssl_fingerprint(&certs.ca()),
    );
    let (code, stderr) = refused(
        &certs,
        &server,
        &["--tls-ca", ca, "--tls-fingerprint", &other],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!(
            "presents certificate {print}, not the {other} given"
        )) && stderr.contains("a CA vouches for it"),
        "{stderr}"
    );
    // The right one: accepted, as the CA's.
    let mut client = tls_client(
        &certs,
        &server,
        &["--tls-ca", ca, "--tls-fingerprint", &print],
    );
    lines_both_ways(&mut client, &mut server);
}
