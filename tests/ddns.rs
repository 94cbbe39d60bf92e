//! `serve --ddns NAME`: the server checks its own name against the cache, the authoritative
//! server, the public address STUN reports and its port, in a network namespace of the test's
//! own ([`DdnsLab`]): never a public address.

use crate::support::LIMIT;
use crate::support::ddns_lab::{DdnsLab, NAME, OTHER, PUBLIC, World};
use crate::support::process::Running;
use std::time::{Duration, Instant};

use crate::support::serve::{Serve, type_at_console};

/// The server's first ddns line on its console.
fn verdict(server: &Running) -> String {
    server
        .wait_for(LIMIT, |line| {
            line.starts_with("ddns ") || line.starts_with("! ddns ")
        })
        .expect("the server says what it found about its name")
}

#[test]
fn a_consistent_name_is_one_quiet_ok_line() {
    let Some(lab) = DdnsLab::create(&World::new(PUBLIC, PUBLIC, PUBLIC)) else {
        return;
    };
    let (mut server, addr) = lab.serve_ddns("0.0.0.0");
    let port = addr.port();
    assert_eq!(
        verdict(&server),
        format!(
            "ddns {NAME}: ok: {NAME} -> {PUBLIC}, public address {PUBLIC} (STUN), port {port} answers"
        )
    );
    lab.stun
        .wait_for(LIMIT, |line| line == "heard 20 bytes 00010000")
        .expect("the STUN server heard one Binding request");
    // The zone's nameserver was found through resolv.conf, then asked for the name.
    let mut asked = Vec::new();
    while let Ok(line) = lab.queries.recv_timeout(LIMIT) {
        let done = line.contains(&format!("auth[A] {NAME} from"));
        asked.push(line);
        if done {
            break;
        }
    }
    let at = |wanted: &str| asked.iter().position(|line| line.contains(wanted));
    let (zone, name) = (
        at("auth[NS] test from"),
        at(&format!("auth[A] {NAME} from")),
    );
    assert!(zone.is_some() && name > zone, "{asked:#?}");
    type_at_console(&mut server, "/status");
    let status = server
        .wait_for(LIMIT, |line| line.starts_with("ddns "))
        .expect("/status has a ddns line");
    assert!(
        status.starts_with(&format!("ddns {NAME}: ok: {NAME} -> {PUBLIC}"))
            && status.contains("(checked at "),
        "{status}"
    );
}

#[test]
fn a_name_that_points_elsewhere_than_stun_is_stale() {
    let Some(lab) = DdnsLab::create(&World::new(PUBLIC, PUBLIC, "198.51.100.9")) else {
        return;
    };
    let (mut server, _) = lab.serve_ddns("0.0.0.0");
    let warning = verdict(&server);
    assert_eq!(
        warning,
        format!(
            "! ddns {NAME}: warning: stale DNS: {NAME} points at {PUBLIC}, but this server's public \
             address is 198.51.100.9 (STUN): update the DDNS record"
        )
    );
    type_at_console(&mut server, "/status");
    let status = server
        .wait_for(LIMIT, |line| line.starts_with("ddns "))
        .expect("/status has a ddns line");
    assert!(
        status.contains("warning: stale DNS") && status.contains("update the DDNS record"),
        "{status}"
    );
}

#[test]
fn a_cache_behind_the_authoritative_server_is_stale() {
    let Some(lab) = DdnsLab::create(&World::new(OTHER, PUBLIC, PUBLIC)) else {
        return;
    };
    let (server, _) = lab.serve_ddns("0.0.0.0");
    let warning = verdict(&server);
    assert!(
        warning.starts_with(&format!(
            "! ddns {NAME}: warning: stale DNS: the authoritative servers say {PUBLIC}, the \
             resolver's cache says {OTHER}"
        )),
        "{warning}"
    );
}

#[test]
fn a_published_private_address_is_a_warning() {
    let Some(lab) = DdnsLab::create(&World::new("10.20.30.40", "10.20.30.40", PUBLIC)) else {
        return;
    };
    // The authority named rather than found (a hidden primary): the same verdict.
    let (server, _) = lab.serve_ddns_with("0.0.0.0", &["--ddns-authority", "127.0.0.1:53"], None);
    let warning = verdict(&server);
    assert!(
        warning.starts_with(&format!("! ddns {NAME}: warning: ")),
        "{warning}"
    );
    assert!(
        warning.contains(&format!(
            "{NAME} publishes 10.20.30.40, a private (RFC 1918) address: if this name is meant \
             to be reached from the Internet, the DDNS client published its interface address \
             from behind NAT; publish the public address instead"
        )),
        "{warning}"
    );
}

#[test]
fn a_port_that_does_not_answer_on_the_published_address_says_forward_it() {
    let Some(lab) = DdnsLab::create(&World::new(OTHER, OTHER, OTHER)) else {
        return;
    };
    // The server listens on the other public address only: its port is closed on this one.
    let (server, addr) = lab.serve_ddns(PUBLIC);
    let port = addr.port();
    let warning = verdict(&server);
    assert!(
        warning.starts_with(&format!(
            "! ddns {NAME}: warning: port {port} does not answer on {OTHER} (Connection refused"
        )),
        "{warning}"
    );
    assert!(
        warning.contains(&format!("forward port {port} on the router")),
        "{warning}"
    );
}

#[test]
fn without_ddns_the_server_sends_nothing_of_the_kind() {
    let Some(lab) = DdnsLab::create(&World::new(PUBLIC, PUBLIC, PUBLIC)) else {
        return;
    };
    // A check every millisecond, were one started.
    let (mut server, _) = lab.serve(&["--bind", "0.0.0.0"], &[("SOQUETE_DDNS_INTERVAL_MS", "1")]);
    // The console answers: the server is up, past where a check would have started.
    type_at_console(&mut server, "/status");
    server
        .wait_for(LIMIT, |line| line.starts_with("listen "))
        .expect("/status answers");
    // Markers: the first datagram the STUN server hears, and the first query the DNS server
    // is asked, are the test's own.
    let stun_port = lab.stun_addr.port();
    lab.run_python(&format!(
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'marker', ('127.0.0.1', {stun_port}))"
    ));
    let heard = lab
        .stun
        .wait_for(LIMIT, |line| line.starts_with("heard "))
        .expect("the STUN server hears the marker");
    assert_eq!(heard, "heard 6 bytes 6d61726b");
    lab.run_python(
        "import socket\ntry: socket.getaddrinfo('marker.test', 1)\nexcept OSError: pass",
    );
    let asked = lab
        .queries
        .recv_timeout(LIMIT)
        .expect("dnsmasq logs the marker query");
    assert!(asked.contains("marker.test"), "{asked}");
    assert!(
        server
            .wait_for(std::time::Duration::ZERO, |line| line.contains("ddns"))
            .is_none(),
        "no ddns line without --ddns"
    );
}

#[test]
fn stun_and_the_authority_need_ddns() {
    for flag in [
        ["--stun", "127.0.0.1:3478"],
        ["--ddns-authority", "127.0.0.1"],
    ] {
        let output = crate::support::process::soquete()
            .args(["serve", "--port", "0"])
            .args(flag)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{flag:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--ddns"), "{stderr}");
    }
}

#[test]
fn a_warning_is_said_once_per_change_and_its_end_too() {
    let Some(lab) = DdnsLab::create(&World::new(OTHER, PUBLIC, PUBLIC)) else {
        return;
    };
    let (mut server, _) = lab.serve_ddns_with("0.0.0.0", &[], Some("50"));
    let first = verdict(&server);
    assert!(
        first.starts_with(&format!("! ddns {NAME}: warning: stale DNS")),
        "{first}"
    );
    // Three more checks find the same: the STUN server hears their requests.
    for _ in 0..3 {
        lab.stun
            .wait_for(LIMIT, |line| line.starts_with("heard 20 bytes"))
            .expect("the checks go on");
    }
    // /status's ddns line comes after whatever the console printed before it: no repeat.
    type_at_console(&mut server, "/status");
    let before_status = server
        .wait_for(LIMIT, |line| {
            line.starts_with("ddns ") || line.starts_with("! ddns ") || line.starts_with("listen ")
        })
        .expect("/status answers");
    assert!(
        before_status.starts_with("listen "),
        "said again: {before_status}"
    );
    server
        .wait_for(LIMIT, |line| {
            line.starts_with(&format!("ddns {NAME}: warning"))
        })
        .expect("/status has the warning");
    // The cache catches up: the next check says so, once.
    lab.cache(PUBLIC);
    let fixed = verdict(&server);
    assert!(
        fixed.starts_with(&format!("ddns {NAME}: ok: {NAME} -> {PUBLIC}"))
            && fixed.ends_with("(the earlier warning is gone)"),
        "{fixed}"
    );
}

#[test]
fn ctrl_c_during_a_check_ends_the_server_at_once() {
    // A STUN server and a DNS server that never answer, on this machine: the check waits.
    let stun = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (stun_addr, dns_addr) = (stun.local_addr().unwrap(), dns.local_addr().unwrap());
    let (mut server, _) = Serve::new(&[
        "--ddns",
        "localhost",
        "--stun",
        &stun_addr.to_string(),
        "--ddns-authority",
        &dns_addr.to_string(),
    ])
    .start();
    stun.set_read_timeout(Some(LIMIT)).unwrap();
    let mut request = [0u8; 64];
    let (size, _) = stun.recv_from(&mut request).expect("the check asks STUN");
    assert_eq!(size, 20);
    let started = Instant::now();
    let status = server.interrupt(LIMIT).expect("the server exits");
    assert!(status.success(), "{status:?}");
    // The check would wait 3 s for STUN; the server's own grace for its last lines is 2 s.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_server_on_loopback_is_told_to_bind_wider_not_to_blame_the_router() {
    let Some(lab) = DdnsLab::create(&World::new(PUBLIC, PUBLIC, PUBLIC)) else {
        return;
    };
    let (mut server, addr) = lab.serve_ddns("127.0.0.1");
    let port = addr.port();
    let warning = verdict(&server);
    assert!(
        warning.contains(&format!(
            "port {port} does not answer on {PUBLIC} (Connection refused (os error 111)): \
             listening on 127.0.0.1 only: serve --bind 0.0.0.0"
        )),
        "{warning}"
    );
    assert!(!warning.contains("router"), "{warning}");
    let stderr = server.stderr_lines();
    let said = stderr
        .recv_timeout(LIMIT)
        .expect("a warning at start, on stderr");
    assert_eq!(
        said,
        "soquete: warning: --ddns checks a name others reach this server by, but it is \
         listening on 127.0.0.1 only: serve --bind 0.0.0.0"
    );
}

/// The check's own connection to the port is no visitor: the console says whose it is.
#[test]
fn the_checks_own_connection_is_not_shown_as_a_visitor() {
    let Some(lab) = DdnsLab::create(&World::new(PUBLIC, PUBLIC, PUBLIC)) else {
        return;
    };
    let (server, addr) = lab.serve_ddns("0.0.0.0");
    let port = addr.port();
    let probe = server
        .wait_for(LIMIT, |line| line.starts_with("probe "))
        .expect("the check's connection is logged");
    assert!(
        probe.starts_with(&format!("probe {PUBLIC}:"))
            && probe.ends_with(&format!(
                ":{port}: closed without a word, without joining (the --ddns check)"
            )),
        "{probe}"
    );
}
