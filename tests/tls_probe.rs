//! `soquete probe --tls` against `openssl s_server` with certificates the test makes: the
//! details in text and JSON (NDJSON with --count), and exit code 4 when a client would refuse
//! the certificate (another name, expired, no trusted CA) or no TLS answers.

use std::net::TcpListener;

use serde_json::Value;

use crate::support::process::{Running, soquete};
use crate::support::serve::start_server;
use crate::support::tls::{Certs, TlsServer, Validity, dripping_server, openssl_with_signed};
use crate::support::{LIMIT, require, tool};
use crate::tls::openssl_fingerprint;

/// `soquete probe --tls ARGS`: (exit code, stdout).
fn probe(args: &[&str]) -> (i32, String) {
    let output = soquete()
        .args(["probe", "--tls"])
        .args(args)
        .timeout(LIMIT)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.is_empty(), "{stderr}");
    (output.status.code().unwrap_or(-1), stdout)
}

/// The `tls` object of the first address of a `--json` report.
fn tls_of(doc: &Value) -> &Value {
    &doc["targets"][0]["addresses"][0]["tls"]
}

fn json(args: &[&str]) -> (i32, Value) {
    let (code, stdout) = probe(&[args, &["--json"]].concat());
    (
        code,
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}")),
    )
}

#[test]
fn a_good_certificate_is_described_and_verified() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let pair = certs.signed("good", &["localhost", "127.0.0.1"], Validity::Current);
    let server = TlsServer::openssl(&pair);
    let ca = certs.ca();
    let target = server.addr.to_string();
    let args = ["--tls-ca", ca.to_str().unwrap(), target.as_str()];
    let (code, text) = probe(&args);
    assert_eq!(code, 0, "{text}");
    let print = openssl_fingerprint(&pair.cert);
    for wanted in [
        "tls: TLSv1.3 ",
        "certificate: CN=localhost; names: localhost, 127.0.0.1 (127.0.0.1 among them)",
        "issuer: CN=soquete test CA; valid until ",
        &format!("fingerprint: {print}"),
        &format!("verified: yes, against the CA in {}", ca.display()),
    ] {
        assert!(text.contains(wanted), "{wanted:?} in:\n{text}");
    }
    assert!(!text.contains("! "), "no warning: {text}");

    let (code, doc) = json(&args);
    assert_eq!(code, 0);
    let tls = tls_of(&doc);
    assert_eq!(tls["version"], "TLSv1.3");
    assert!(
        tls["cipher"].as_str().unwrap().starts_with("TLS13_"),
        "{tls}"
    );
    assert!(tls["handshake_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(
        tls["certificate"]["names"],
        serde_json::json!(["localhost", "127.0.0.1"])
    );
    assert_eq!(tls["certificate"]["fingerprint"], print.as_str());
    assert_eq!(tls["certificate"]["self_signed"], false);
    let days = tls["certificate"]["days_left"].as_i64().unwrap();
    assert!((363..=366).contains(&days), "{days}");
    assert_eq!(tls["names_host"], true);
    assert_eq!(tls["chain_verified"], true);
    assert_eq!(tls["problem"], Value::Null);
    assert_eq!(tls["ok"], true);
    assert_eq!(doc["targets"][0]["tls_ok"], true);
    assert_eq!(doc["exit_code"], 0);
}

#[test]
fn a_certificate_for_another_name_exits_4_and_suspects_dns() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let server = TlsServer::openssl(&certs.signed("other", &["old.example"], Validity::Current));
    let ca = certs.ca();
    let target = format!("localhost:{}", server.addr.port());
    let args = ["--tls-ca", ca.to_str().unwrap(), target.as_str()];
    let (code, text) = probe(&args);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("(localhost NOT among them)"), "{text}");
    assert!(
        text.contains("verified: NO") && text.contains("DNS pointing at an old address"),
        "{text}"
    );
    let (code, doc) = json(&args);
    assert_eq!(code, 4);
    let tls = tls_of(&doc);
    assert_eq!(
        (&tls["names_host"], &tls["chain_verified"], &tls["ok"]),
        (&Value::Bool(false), &Value::Bool(true), &Value::Bool(false))
    );
    assert_eq!(doc["targets"][0]["tls_ok"], false);
}

#[test]
fn a_certificate_that_does_not_name_the_address_probed_says_its_names_not_dns() {
    let Some((certs, server)) = openssl_with_signed(&["a.example"]) else {
        return;
    };
    let ca = certs.ca();
    let target = server.addr.to_string();
    let (code, text) = probe(&["--tls-ca", ca.to_str().unwrap(), &target]);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains(
            "verified: NO, against the CA in {}: it does not name the address 127.0.0.1: it is for a.example (connect by one of them)"
                .replace("{}", ca.to_str().unwrap())
                .as_str()
        ),
        "{text}"
    );
    assert!(!text.contains("DNS"), "{text}");
}

#[test]
fn an_expired_certificate_exits_4_and_one_about_to_expire_warns() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let ca = certs.ca();
    let expired = TlsServer::openssl(&certs.signed("old", &["127.0.0.1"], Validity::Expired));
    let target = expired.addr.to_string();
    let (code, doc) = json(&["--tls-ca", ca.to_str().unwrap(), &target]);
    assert_eq!(code, 4);
    let tls = tls_of(&doc);
    assert!(
        tls["certificate"]["days_left"].as_i64().unwrap() < 0,
        "{tls}"
    );
    assert!(
        tls["problem"].as_str().unwrap().contains("expired on "),
        "{tls}"
    );
    assert_eq!(tls["chain_verified"], false);

    let soon = TlsServer::openssl(&certs.signed("soon", &["127.0.0.1"], Validity::Days(5)));
    let target = soon.addr.to_string();
    let (code, text) = probe(&["--tls-ca", ca.to_str().unwrap(), &target]);
    assert_eq!(code, 0, "still valid: {text}");
    assert!(
        text.contains("! the certificate expires in ") && text.contains("days: renew it"),
        "{text}"
    );
}

#[test]
fn a_self_signed_certificate_exits_4_and_ndjson_carries_the_check_each_round() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let server = TlsServer::openssl(&certs.self_signed("self", &["127.0.0.1"]));
    let target = server.addr.to_string();
    let (code, text) = probe(&[&target]);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains("verified: NO, against the system's roots: it is self-signed"),
        "{text}"
    );
    let (code, stdout) = probe(&["--count", "2", "--interval", "0.05", "--json", &target]);
    assert_eq!(code, 4, "{stdout}");
    let attempts: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["type"] == "attempt")
        .collect();
    assert_eq!(attempts.len(), 2, "{stdout}");
    for attempt in attempts {
        assert_eq!(
            attempt["tls"]["certificate"]["self_signed"], true,
            "{attempt}"
        );
        assert_eq!(attempt["tls"]["ok"], false);
    }
}

#[test]
fn a_port_without_tls_exits_4_with_the_handshake_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    // The kernel completes the TCP handshake; nobody ever answers TLS: the timeout speaks.
    let (code, text) = probe(&["--timeout", "0.3", &target]);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains("tls: handshake failed: no TLS answer"),
        "{text}"
    );
}

#[test]
fn with_chat_the_soquete_check_speaks_through_tls() {
    if !require(tool("socat"), "socat") {
        return;
    }
    let certs = Certs::new();
    let pair = certs.signed("front", &["127.0.0.1"], Validity::Current);
    let (_serve, backend) = start_server(&["--name", "lab"]);
    let front = TlsServer::socat_in_front_of(&pair, backend);
    let ca = certs.ca();
    let target = front.addr.to_string();
    let (code, doc) = json(&["--chat", "--tls-ca", ca.to_str().unwrap(), &target]);
    assert_eq!(code, 0, "{doc}");
    let address = &doc["targets"][0]["addresses"][0];
    assert_eq!(address["chat"]["found"], "soquete", "{address}");
    assert_eq!(address["tls"]["ok"], true, "{address}");
}

#[test]
fn a_handshake_that_drips_byte_by_byte_ends_at_the_timeout() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let (_server, addr) = dripping_server();
    let (code, text) = probe(&["--timeout", "1", &addr.to_string()]);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains("tls: handshake failed: not finished within 1 s"),
        "{text}"
    );
}

#[test]
fn the_servers_own_certificate_given_as_tls_ca_verifies() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let pair = certs.openssl_self_signed("own", "IP:127.0.0.1");
    let server = TlsServer::openssl(&pair);
    let target = server.addr.to_string();
    let (code, text) = probe(&["--tls-ca", pair.cert.to_str().unwrap(), &target]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("verified: yes, against the CA in "), "{text}");
    assert!(!text.contains("! "), "no warning: {text}");
}

#[test]
fn chat_without_tls_against_a_tls_only_server_says_to_add_tls() {
    let state = tempfile::tempdir().unwrap();
    let (_serve, addr) = start_server(&["--tls", "--state-dir", state.path().to_str().unwrap()]);
    let target = addr.to_string();
    let output = soquete()
        .args(["probe", "--chat", &target])
        .timeout(LIMIT)
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("a soquete server that needs TLS: add --tls"),
        "{text}"
    );
    assert_eq!(output.status.code(), Some(4), "{text}");
    let output = soquete()
        .args(["probe", "--chat", "--json", &target])
        .timeout(LIMIT)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(4), "{doc}");
    let address = &doc["targets"][0]["addresses"][0];
    assert_eq!(address["chat"]["found"], "needs_tls", "{address}");
}

#[test]
fn chat_without_tls_against_a_tls_only_server_ends_at_once_saying_to_add_tls() {
    let state = tempfile::tempdir().unwrap();
    let (_serve, addr) = start_server(&["--tls", "--state-dir", state.path().to_str().unwrap()]);
    let target = addr.to_string();
    // Input stays open: only the server's line can end the client, and at once (no rounds of
    // reconnection).
    let mut chat = Running::start_with_stdin(&["chat", &target]);
    let stderr = chat.stderr_lines();
    let status = chat.wait_exit(LIMIT).expect("the client ends by itself");
    assert_eq!(status.code(), Some(1));
    said_to_add_tls(&everything(&stderr), &target);
    // --raw shows the server's line itself, then ends as without --raw: exit 1, the same hint.
    let mut raw = Running::start_with_stdin(&["chat", "--raw", &target]);
    raw.wait_for(LIMIT, |line| line.starts_with("* this server needs TLS"))
        .expect("--raw shows the server's line");
    let stderr = raw.stderr_lines();
    let status = raw.wait_exit(LIMIT).expect("--raw ends by itself");
    assert_eq!(status.code(), Some(1));
    said_to_add_tls(&everything(&stderr), &target);
}

/// The client said the server needs TLS, in one line, and never tried again.
fn said_to_add_tls(said: &[String], target: &str) {
    assert!(
        said.iter()
            .any(|line| line == &format!("soquete: the server at {target} needs TLS: add --tls")),
        "{said:?}"
    );
    assert!(
        !said.iter().any(|line| line.contains("reconnecting")),
        "{said:?}"
    );
}

/// Every line of `channel` until its writer ends (bounded by [`LIMIT`] a line).
fn everything(channel: &std::sync::mpsc::Receiver<String>) -> Vec<String> {
    std::iter::from_fn(|| channel.recv_timeout(LIMIT).ok()).collect()
}

/// `soquete probe --tls ARGS` with `SSL_CERT_FILE` as the system's roots: (exit code, stdout).
fn probe_with_roots(roots: &std::path::Path, args: &[&str]) -> (i32, String) {
    let output = soquete()
        .args(["probe", "--tls"])
        .args(args)
        .env("SSL_CERT_FILE", roots)
        .env_remove("SSL_CERT_DIR")
        .timeout(LIMIT)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn a_self_signed_certificate_is_said_so_in_words_even_when_a_root_bears_its_name() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    // As `serve --tls` makes one on loopback (ECDSA, CN=localhost), and Debian's snakeoil root
    // (RSA, CN=localhost) among the system's.
    let server = TlsServer::openssl(&certs.self_signed("self", &["localhost", "127.0.0.1"]));
    let decoy = certs.decoy_rsa_root("localhost");
    let target = server.addr.to_string();
    let (code, text) = probe_with_roots(&decoy, &[&target]);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains(
            "verified: NO, against the system's roots: it is self-signed: no CA vouches for it"
        ),
        "{text}"
    );
    assert!(!text.contains("Context"), "no debug text: {text}");
    let (_, stdout) = probe_with_roots(&decoy, &["--json", &target]);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        tls_of(&doc)["problem"],
        "it is self-signed: no CA vouches for it",
        "{doc}"
    );
}

#[test]
fn a_server_that_sends_no_intermediate_is_told_to_serve_the_full_chain() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let server = TlsServer::openssl(&certs.leaf_without_intermediate("leaf", &["127.0.0.1"]));
    let target = server.addr.to_string();
    let wanted = "the server sent no intermediate certificate (its issuer is CN=soquete test \
                  intermediate): the server should serve the full chain (fullchain.pem)";
    let (code, text) = probe_with_roots(&certs.ca(), &[&target]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains(wanted), "{text}");
    assert!(text.contains("chain: 1 certificate sent"), "{text}");
    assert!(!text.contains("self-signed"), "{text}");
    let (_, stdout) = probe_with_roots(&certs.ca(), &["--json", &target]);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(tls_of(&doc)["chain_incomplete"], true, "{doc}");
    assert_eq!(tls_of(&doc)["chain_length"], 1, "{doc}");
    // With the root given as --tls-ca, it is not "not issued by" that CA: the intermediate is
    // what is missing.
    let ca = certs.ca();
    let (code, text) = probe_with_roots(&ca, &["--tls-ca", ca.to_str().unwrap(), &target]);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains("the server sent no intermediate certificate (its issuer is CN=soquete test intermediate)")
            && text.contains("fullchain.pem"),
        "{text}"
    );
    // The chat client says the same, and does not offer to pin what renews every 90 days.
    let state = tempfile::tempdir().unwrap();
    let output = soquete()
        .args(["chat", "--raw", "--tls", "--state-dir"])
        .arg(state.path())
        .arg(&target)
        .env("SSL_CERT_FILE", certs.ca())
        .env_remove("SSL_CERT_DIR")
        .write_stdin("never sent\n")
        .timeout(LIMIT)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(wanted), "{stderr}");
    assert!(!stderr.contains("--tls-fingerprint"), "{stderr}");
}

#[test]
fn escapes_in_a_certificates_names_are_shown_never_dropped() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    // Dropped, the escape would make this read "localhost".
    let server = TlsServer::openssl(&certs.self_signed("spoof", &["local\u{1b}[mhost"]));
    let (code, text) = probe(&[&server.addr.to_string()]);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains(r"certificate: CN=local\x1b[mhost; names: local\x1b[mhost (127.0.0.1 NOT"),
        "{text}"
    );
    assert!(!text.contains("localhost"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn an_expired_self_signed_certificate_is_not_offered_for_pinning() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let old = certs.self_signed_for("old", &["127.0.0.1"], Validity::Expired);
    let server = TlsServer::openssl(&old);
    let (code, text) = probe(&[&server.addr.to_string()]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("expired"), "{text}");
    assert!(
        !text.contains("--tls-fingerprint"),
        "chat would refuse it: {text}"
    );
    assert!(text.contains("--tls-renew"), "{text}");
}

#[test]
fn a_plain_server_that_speaks_first_is_said_to_answer_in_plain_text() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    // An ssh server: its banner first, whatever the client says; open until the client leaves.
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let _ = std::io::Write::write_all(&mut stream, b"SSH-2.0-OpenSSH_9.6\x1b[31m\r\n");
            std::thread::spawn(move || {
                let _ = std::io::Read::read_to_end(&mut stream, &mut Vec::new());
            });
        }
    });
    let (code, text) = probe(&["--timeout", "3", &target]);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains("tls: handshake failed: the server answered in plain text, not TLS: \"SSH-2.0-OpenSSH_9.6"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn a_tls_ca_file_that_cannot_be_used_is_a_usage_error_naming_it_in_chat_and_probe() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").unwrap();
    for (file, why) in [
        (&missing, "cannot be read: No such file or directory"),
        (&empty, "holds no PEM certificate"),
    ] {
        let file = file.to_str().unwrap();
        for args in [
            &["chat", "--tls", "--tls-ca", file, "127.0.0.1:9"][..],
            &["probe", "--tls", "--tls-ca", file, "127.0.0.1:9"][..],
        ] {
            let output = soquete()
                .args(args)
                .write_stdin("")
                .timeout(LIMIT)
                .output()
                .unwrap();
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            let wanted = format!("soquete: --tls-ca {file} {why}");
            assert!(stderr.starts_with(&wanted), "{args:?}: {stderr}");
        }
    }
}
