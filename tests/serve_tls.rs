//! `soquete serve` over TLS, with the real TLS peers a class has at hand (`ncat --ssl`,
//! `openssl s_client`, `socat`, python's `ssl`), certificates the tests make themselves; plain
//! clients on a TLS port; certificates renewed while the server runs; the self-signed one kept.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use crate::support::process::Running;
use crate::support::serve::{Serve, console_line, type_at_console};
use crate::support::tls::{Certs, Pair, chat_as_ana, fingerprint_of};
use crate::support::tls_client::{self, type_line};
use crate::support::{LIMIT, poll, require, tool};

/// A server started with `--tls-cert` and `--tls-key` for these files, and `extra` flags.
pub(crate) fn tls_server(cert: &Path, key: &Path, extra: &[&str]) -> Serve {
    let files = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    Serve::new(&[&files[..], extra].concat())
}

/// The fingerprint a TLS server printed at start.
fn printed_fingerprint(server: &Running) -> String {
    printed_fingerprint_in(&console_line(server, |line| {
        line.starts_with("tls: certificate ")
    }))
}

/// The fingerprint in a TLS server's start-up line.
fn printed_fingerprint_in(line: &str) -> String {
    line["tls: certificate ".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The IP and port of `addr`, as command-line arguments.
fn ip_port(addr: SocketAddr) -> (String, String) {
    (addr.ip().to_string(), addr.port().to_string())
}

#[test]
fn ncat_openssl_socat_and_python_share_a_tls_room() {
    if !require(
        ["ncat", "openssl", "socat", "python3"]
            .into_iter()
            .all(tool),
        "ncat, openssl, socat and python3",
    ) {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost", "127.0.0.1"]);
    let (server, addr) = tls_server(&cert, &key, &[]).start();
    let (ip, port) = ip_port(addr);
    let connect = format!("{ip}:{port}");
    let socat_address = format!("OPENSSL:{connect},verify=0");
    let mut peers = vec![
        ("ncat", Running::program("ncat", &["--ssl", &ip, &port])),
        (
            "openssl",
            Running::program("openssl", &["s_client", "-quiet", "-connect", &connect]),
        ),
        ("socat", Running::program("socat", &["-", &socat_address])),
        ("python", tls_client::connect(addr).0),
    ];
    // Each is a raw client, in the room once it has been silent for the join grace.
    for _ in &peers {
        console_line(&server, |line| line.starts_with("connected "));
    }
    for (name, peer) in &mut peers {
        type_line(peer, &format!("olá de {name} ✓"));
    }
    let names: Vec<&str> = peers.iter().map(|(name, _)| *name).collect();
    for (name, peer) in &peers {
        let mut unheard: Vec<&str> = names
            .iter()
            .copied()
            .filter(|other| other != name)
            .collect();
        while !unheard.is_empty() {
            let heard = peer
                .wait_for(LIMIT, |line| line.contains(" olá de "))
                .unwrap_or_else(|| panic!("{name} hears {unheard:?}"));
            assert!(
                heard.contains("] <guest-"),
                "stamped with its author: {heard}"
            );
            unheard.retain(|other| !heard.ends_with(&format!("> olá de {other} ✓")));
        }
    }
}

#[test]
fn a_plain_client_on_a_tls_port_reads_one_line_and_the_end() {
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    let (server, addr) = tls_server(&cert, &key, &[]).start();
    // One that speaks first (the course's client, a person at telnet).
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(LIMIT)).unwrap();
    plain.write_all(b"Hello Server\n").unwrap();
    let mut heard = Vec::new();
    plain
        .read_to_end(&mut heard)
        .expect("the end of the stream");
    let heard = String::from_utf8(heard).expect("text");
    assert!(heard.is_ascii(), "no binary: {heard:?}");
    assert_eq!(heard.lines().count(), 1, "{heard:?}");
    let port = addr.port();
    for way in [
        format!("soquete chat --tls 127.0.0.1:{port}"),
        format!("ncat --ssl 127.0.0.1 {port}"),
        format!("openssl s_client -quiet -connect 127.0.0.1:{port}"),
    ] {
        assert!(heard.contains(&way), "{heard:?} names {way}");
    }
    console_line(&server, |line| {
        line.contains("spoke plain text to a TLS port")
    });
    // One that waits to be spoken to (nc watching): told as well once the greeting grace is over.
    if !require(tool("nc"), "nc") {
        return;
    }
    let (ip, port) = ip_port(addr);
    // -d: nc sends nothing, and ends when the server's end of the stream comes.
    let mut nc = Running::program("nc", &["-d", &ip, &port]);
    let line = nc
        .wait_for(LIMIT, |line| !line.is_empty())
        .expect("nc reads a line");
    assert!(line.starts_with("* this server needs TLS"), "{line}");
    assert!(
        nc.wait_exit(LIMIT).is_some(),
        "nc sees the end of the stream"
    );
    console_line(&server, |line| line.contains("said nothing"));
}

#[test]
fn tls_optional_serves_plain_and_tls_clients_on_one_port() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    let (server, addr) = tls_server(&cert, &key, &["--tls-optional"]).start();
    let mut plain = crate::support::peer::Peer::connect(addr);
    plain.send("a plain one");
    console_line(&server, |line| line.ends_with("> a plain one"));
    let (mut secure, _) = tls_client::connect(addr);
    type_line(&mut secure, "um seguro ✓");
    plain.line_where(|line| line.ends_with("> um seguro ✓"));
    plain.send("de novo");
    secure
        .wait_for(LIMIT, |line| line.ends_with("> de novo"))
        .expect("the TLS client hears the plain one");
}

#[test]
fn renewed_certificate_files_are_served_to_new_connections_and_old_ones_keep_talking() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    let first = fingerprint_of(&cert);
    let (server, addr) = tls_server(&cert, &key, &[])
        .env("SOQUETE_TLS_RELOAD_MS", "50")
        .start();
    assert_eq!(printed_fingerprint(&server), first);
    let (mut old, shown) = tls_client::connect(addr);
    assert_eq!(shown, first);
    type_line(&mut old, "antes");
    console_line(&server, |line| line.ends_with("> antes"));

    certs.self_signed("server", &["localhost"]);
    let second = fingerprint_of(&cert);
    assert_ne!(second, first);
    console_line(&server, |line| {
        line.starts_with("tls: new certificate") && line.contains(&second)
    });
    let (mut new, shown) = tls_client::connect(addr);
    assert_eq!(shown, second, "a new connection gets the new certificate");
    type_line(&mut new, "depois ✓");
    old.wait_for(LIMIT, |line| line.ends_with("> depois ✓"))
        .expect("the old connection keeps its session");
    type_line(&mut old, "ainda aqui");
    new.wait_for(LIMIT, |line| line.ends_with("> ainda aqui"))
        .expect("and keeps talking");
}

#[test]
fn reload_at_the_console_keeps_the_old_certificate_when_the_new_pair_is_bad() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    let first = fingerprint_of(&cert);
    // The files are looked at once an hour: only /reload reads them here.
    let (mut server, addr) = tls_server(&cert, &key, &[])
        .env("SOQUETE_TLS_RELOAD_MS", "3600000")
        .console()
        .start();
    assert_eq!(printed_fingerprint(&server), first);
    let other_key = certs.self_signed("other", &["localhost"]).key;
    std::fs::copy(other_key, &key).unwrap();
    type_at_console(&mut server, "/reload");
    let said = console_line(&server, |line| line.starts_with("tls: "));
    assert!(
        said.contains("old certificate is still served") && said.contains("does not belong"),
        "{said}"
    );
    assert_eq!(tls_client::connect(addr).1, first);

    certs.self_signed("server", &["localhost"]);
    let second = fingerprint_of(&cert);
    type_at_console(&mut server, "/reload");
    let said = console_line(&server, |line| line.starts_with("tls: "));
    assert!(said.contains(&second), "{said}");
    assert_eq!(tls_client::connect(addr).1, second);
}

#[test]
fn the_self_signed_certificate_is_made_once_and_reused_with_its_fingerprint() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let args = [
        "--tls",
        "--tls-name",
        "chat.example.org",
        "--state-dir",
        dir,
    ];
    let (mut server, addr) = Serve::new(&args).start();
    let made = printed_fingerprint(&server);
    assert!(
        made.starts_with("SHA256:") && made.len() == 7 + 95,
        "{made}"
    );
    assert_eq!(tls_client::connect(addr).1, made);
    assert!(
        server
            .interrupt(LIMIT)
            .is_some_and(|status| status.success())
    );

    let (server, addr) = Serve::new(&args).start();
    assert_eq!(printed_fingerprint(&server), made, "the same certificate");
    assert_eq!(tls_client::connect(addr).1, made);
    let key = state.path().join("tls/server-key.pem");
    let mode = std::os::unix::fs::PermissionsExt::mode(&key.metadata().unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the key is its owner's alone: {mode:o}");
}

#[test]
fn the_self_signed_certificate_is_never_replaced_quietly_only_by_tls_renew() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let (mut server, _) = Serve::new(&["--tls", "--state-dir", dir]).start();
    let made = printed_fingerprint(&server);
    assert!(server.interrupt(LIMIT).is_some());
    // A wildcard bind is no new name: the same certificate.
    let (mut server, _) = Serve::new(&["-b", "0.0.0.0", "--tls", "--state-dir", dir]).start();
    assert_eq!(
        printed_fingerprint(&server),
        made,
        "kept for a wildcard bind"
    );
    assert!(server.interrupt(LIMIT).is_some());
    // A name it lacks: the server refuses to start, and says which and how to renew.
    let new_name = [
        "--tls",
        "--tls-name",
        "chat.example.org",
        "--state-dir",
        dir,
    ];
    let mut refused = Running::start(&[&["serve", "--port", "0"][..], &new_name].concat());
    let errors = refused.stderr_lines();
    let status = refused.wait_exit(LIMIT).expect("it does not start");
    assert!(!status.success());
    let said: Vec<String> = errors.iter().collect();
    assert!(
        said.iter()
            .any(|line| line.contains("does not name chat.example.org")
                && line.contains("--tls-renew")),
        "{said:?}"
    );
    // --tls-renew: a new one, and the start-up line names the old.
    let renew = [&new_name[..], &["--tls-renew"]].concat();
    let (mut server, _) = Serve::new(&renew).start();
    let line = console_line(&server, |line| line.starts_with("tls: certificate "));
    let renewed = printed_fingerprint_in(&line);
    assert_ne!(renewed, made);
    assert!(line.contains(&format!("replacing {made}")), "{line}");
    assert!(server.interrupt(LIMIT).is_some());
    let (server, _) = Serve::new(&new_name).start();
    assert_eq!(printed_fingerprint(&server), renewed, "kept after renewal");
}

#[test]
fn soquete_chat_trusts_the_self_signed_certificate_by_its_fingerprint() {
    let certs = Certs::new();
    let state = certs.dir.path().join("server-state");
    let (server, addr) = Serve::new(&["--tls", "--state-dir", state.to_str().unwrap()]).start();
    let print = printed_fingerprint(&server);
    // The certificate is `CN=localhost` on loopback; a root of the same name that did not sign
    // it (Debian's snakeoil) must not make it look like a CA's bad signature.
    let decoy = certs.decoy_root("localhost");
    let empty = certs.dir.path().join("no-roots");
    std::fs::create_dir_all(&empty).unwrap();
    let chat = chat_as_ana(&certs, &print, &addr.to_string(), &[]);
    let chat: Vec<&str> = chat.iter().map(String::as_str).collect();
    let roots = [
        ("SSL_CERT_FILE", decoy.to_str().unwrap()),
        ("SSL_CERT_DIR", empty.to_str().unwrap()),
    ];
    let mut client = Running::start_with_stdin_env(&chat, &roots);
    let errors = client.stderr_lines();
    console_line(&server, |line| {
        line.starts_with("connected ") && line.contains("(ana,")
    });
    drop(client.child.stdin.take());
    client
        .wait_exit(LIMIT)
        .expect("the client ends with its input");
    let said: Vec<String> = errors.iter().collect();
    assert!(
        said[0].contains("certificate as --tls-fingerprint gave, now remembered"),
        "{said:?}"
    );
}

#[test]
fn status_shows_each_connections_tls_version_and_the_fingerprint() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    let (mut server, addr) = tls_server(&cert, &key, &[]).console().start();
    let (mut client, _) = tls_client::connect(addr);
    type_line(&mut client, "oi");
    console_line(&server, |line| line.ends_with("> oi"));
    type_at_console(&mut server, "/status");
    let row = console_line(&server, |line| line.contains("guest-1"));
    assert!(row.contains("TLSv1.3"), "{row}");
    let print = console_line(&server, |line| line.starts_with("tls certificate "));
    assert!(print.contains(&fingerprint_of(&cert)), "{print}");
}

#[test]
fn a_structured_client_over_tls_is_welcomed_and_its_lines_are_logged() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    let log = certs.dir.path().join("room.log");
    let (server, addr) = tls_server(&cert, &key, &["--log", log.to_str().unwrap()]).start();
    let (mut ana, _) = tls_client::connect(addr);
    type_line(&mut ana, r#"{"type":"hello","version":1,"name":"ana"}"#);
    ana.wait_for(LIMIT, |line| line.contains(r#""type":"welcome""#))
        .expect("welcomed");
    type_line(&mut ana, r#"{"type":"msg","text":"olá ✓"}"#);
    console_line(&server, |line| line.ends_with("<ana> olá ✓"));
    let logged = poll(LIMIT, || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|text| text.contains("olá ✓"))
    });
    assert!(logged.is_some(), "the message is in the log");
}

#[test]
fn a_tls_client_beyond_max_clients_is_told_the_server_is_full_over_tls() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    let (server, addr) = tls_server(&cert, &key, &["--max-clients", "1"]).start();
    let (mut first, _) = tls_client::connect(addr);
    type_line(&mut first, "oi");
    console_line(&server, |line| line.ends_with("> oi"));
    let (refused, print) = tls_client::connect(addr);
    assert_eq!(print, fingerprint_of(&cert));
    let line = refused
        .wait_for(LIMIT, |line| line.starts_with("* "))
        .expect("the refused client reads why");
    assert!(line.starts_with("* server full"), "{line}");
    refused
        .wait_for(LIMIT, |line| line == "EOF")
        .expect("then the end of the stream");
}

/// Runs `openssl ARGS` in `dir`; panics if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_chain_and_keys_as_cas_issue_them_are_served_as_they_are() {
    if !require(tool("openssl") && tool("python3"), "openssl and python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    // A CA, and a (version 3) leaf it signs with an RSA key in PKCS#1 ("BEGIN RSA PRIVATE KEY").
    openssl(
        at,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Test CA",
        ],
    );
    openssl(
        at,
        &["genrsa", "-traditional", "-out", "rsa-key.pem", "2048"],
    );
    openssl(
        at,
        &[
            "req",
            "-new",
            "-key",
            "rsa-key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(at.join("leaf.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        at,
        &[
            "x509",
            "-req",
            "-extfile",
            "leaf.ext",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "30",
        ],
    );
    let leaf = std::fs::read_to_string(at.join("leaf.pem")).unwrap();
    let ca = std::fs::read_to_string(at.join("ca.pem")).unwrap();
    std::fs::write(at.join("fullchain.pem"), format!("{leaf}{ca}")).unwrap();
    // An EC key in SEC1 ("BEGIN EC PRIVATE KEY"), self-signed.
    openssl(
        at,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec-key.pem",
        ],
    );
    openssl(
        at,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ec-key.pem",
            "-out",
            "ec.pem",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
        ],
    );
    for (cert, key, header) in [
        ("fullchain.pem", "rsa-key.pem", "BEGIN RSA PRIVATE KEY"),
        ("ec.pem", "ec-key.pem", "BEGIN EC PRIVATE KEY"),
    ] {
        let (cert, key) = (at.join(cert), at.join(key));
        assert!(std::fs::read_to_string(&key).unwrap().contains(header));
        let (server, addr) = tls_server(&cert, &key, &[]).start();
        let leaf_print = fingerprint_of(&cert);
        assert_eq!(printed_fingerprint(&server), leaf_print);
        let (mut client, shown) = tls_client::connect(addr);
        assert_eq!(shown, leaf_print, "the leaf is served first");
        type_line(&mut client, "oi");
        console_line(&server, |line| line.ends_with("> oi"));
    }
}
