//! What `soquete serve` tells its operator about the certificate it serves, at start and on
//! every reload: a certificate that ends soon, a leaf served without its chain; a chain in the
//! wrong order or a passphrase on the key, refused in words; `/status` and the console's line
//! for a handshake that failed.

use std::path::Path;

use crate::serve_tls::tls_server;
use crate::support::process::soquete;
use crate::support::serve::{Serve, console_line, type_at_console};
use crate::support::tls::{Certs, Pair, Validity};
use crate::support::{LIMIT, require, tool};

/// `serve --tls-cert CERT --tls-key KEY EXTRA` run to its end: its exit code and stderr.
fn refused(cert: &Path, key: &Path) -> (Option<i32>, String) {
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let args = ["serve", "--port", "0", "--tls-cert", cert, "--tls-key", key];
    let output = soquete().args(args).timeout(LIMIT).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_ending_certificate_without_its_chain_is_served_with_a_warning_at_start_and_on_reload() {
    let certs = Certs::new();
    let Pair { cert, key } = certs.signed("leaf", &["localhost"], Validity::Days(4));
    let leaf = std::fs::read_to_string(&cert).unwrap();
    let ca = std::fs::read_to_string(certs.ca()).unwrap();
    let (mut server, _) = tls_server(&cert, &key, &[])
        .env("SOQUETE_TLS_RELOAD_MS", "3600000")
        .console()
        .start();
    let stderr = server.stderr_lines();
    let mut warned = Vec::new();
    while warned.len() < 2 {
        warned.push(stderr.recv_timeout(LIMIT).expect("two warnings at start"));
    }
    assert!(
        warned[0].starts_with("soquete: warning: tls: the certificate expires in 3 days (")
            || warned[0].starts_with("soquete: warning: tls: the certificate expires in 4 days ("),
        "{warned:?}"
    );
    assert_eq!(
        warned[1],
        "soquete: warning: tls: only the server's certificate, no intermediate (issuer CN=soquete \
         test CA): clients will not verify it; serve the full chain (fullchain.pem)"
    );

    // The full chain (the same leaf, a new chain): served, the date warned about again, no other.
    std::fs::write(&cert, format!("{leaf}{ca}")).unwrap();
    type_at_console(&mut server, "/reload");
    console_line(&server, |line| line.starts_with("tls: new certificate"));
    let said = console_line(&server, |line| line.starts_with("tls: "));
    assert!(said.contains("the certificate expires in"), "{said}");
    // The CA first: refused in words, the old pair still served.
    std::fs::write(&cert, format!("{ca}{leaf}")).unwrap();
    type_at_console(&mut server, "/reload");
    let said = console_line(&server, |line| line.starts_with("tls: "));
    assert!(
        said.contains("still served")
            && said.contains("the server's own certificate must come first in the file"),
        "{said}"
    );
}

#[test]
fn a_chain_in_the_wrong_order_or_a_key_with_a_passphrase_is_refused_at_start_in_words() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.signed("leaf", &["localhost"], Validity::Current);
    let leaf = std::fs::read_to_string(&cert).unwrap();
    let ca = std::fs::read_to_string(certs.ca()).unwrap();
    let ca_first = certs.dir.path().join("ca-first.pem");
    std::fs::write(&ca_first, format!("{ca}{leaf}")).unwrap();
    let (code, stderr) = refused(&ca_first, &key);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "the server's own certificate must come first in the file (leaf first, then the chain)"
        ) && !stderr.contains("KeyMismatch"),
        "{stderr}"
    );

    let locked = certs.dir.path().join("locked.key");
    let status = std::process::Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "pass:secret", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&locked)
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let (code, stderr) = refused(&cert, &locked);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("the key file is passphrase-protected: give an unencrypted key"),
        "{stderr}"
    );
}

#[test]
fn status_says_plain_for_a_plain_client_and_a_failed_handshake_is_said_in_words() {
    if !require(tool("openssl"), "openssl") {
        return;
    }
    let certs = Certs::new();
    let Pair { cert, key } = certs.self_signed("server", &["localhost"]);
    let (mut server, addr) = tls_server(&cert, &key, &["--tls-optional"])
        .console()
        .start();
    let mut plain = crate::support::peer::Peer::connect(addr);
    plain.send("a plain one");
    console_line(&server, |line| line.ends_with("> a plain one"));
    type_at_console(&mut server, "/status");
    let row = console_line(&server, |line| line.contains("guest-1"));
    assert!(row.split_whitespace().any(|cell| cell == "plain"), "{row}");

    // A client that offers TLS 1.1 at most: said so, not in rustls's names.
    let connect = format!("127.0.0.1:{}", addr.port());
    let _old = std::process::Command::new("openssl")
        .args(["s_client", "-tls1_1", "-connect", &connect])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    let said = console_line(&server, |line| line.contains("handshake"));
    assert!(
        said.contains("TLS handshake failed: the client offers only TLS 1.1 or older"),
        "{said}"
    );
}

/// The fingerprint in a TLS server's start-up line.
fn fingerprint_at_start(server: &crate::support::process::Running) -> String {
    let line = console_line(server, |line| line.starts_with("tls: certificate "));
    line.split_whitespace().nth(2).unwrap().to_string()
}

#[test]
fn a_kept_certificate_that_lacks_the_address_listened_on_is_served_with_a_warning() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let (mut server, _) = Serve::new(&["-b", "127.0.0.1", "--tls", "--state-dir", dir]).start();
    let made = fingerprint_at_start(&server);
    assert!(server.interrupt(LIMIT).is_some());
    // The machine's address changed (a cloud VM's new IP): served, and said, not refused.
    let (mut server, _) = Serve::new(&["-b", "127.0.0.2", "--tls", "--state-dir", dir]).start();
    assert_eq!(fingerprint_at_start(&server), made);
    let warning = server
        .stderr_lines()
        .recv_timeout(LIMIT)
        .expect("a warning");
    assert!(
        warning.starts_with("soquete: warning: tls: the certificate kept in ")
            && warning.contains("does not name 127.0.0.2, which this server listens on")
            && warning.contains("--tls-renew would add it"),
        "{warning}"
    );
}

#[test]
fn a_certificate_made_for_a_wildcard_names_the_machines_addresses() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let (server, _) = Serve::new(&["-b", "0.0.0.0", "--tls", "--state-dir", dir]).start();
    let line = console_line(&server, |line| line.starts_with("tls: certificate "));
    let names = std::fs::read_to_string(state.path().join("tls/server-names")).unwrap();
    let names: Vec<&str> = names.lines().collect();
    let networks = sysinfo::Networks::new_with_refreshed_list().unwrap();
    let ipv4 = networks
        .values()
        .flat_map(|data| data.ip_networks().iter().map(|network| network.addr))
        .filter(std::net::IpAddr::is_ipv4);
    for ip in ipv4 {
        assert!(
            names.contains(&ip.to_string().as_str()),
            "{ip} in {names:?}"
        );
        assert!(line.contains(&ip.to_string()), "{ip} in {line}");
    }
    for also in ["localhost", "127.0.0.1", "::1"] {
        assert!(names.contains(&also), "{also} in {names:?}");
    }
}
