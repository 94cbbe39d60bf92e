//! `soquete probe` and DNS: a DNS server of the test's own (dnsmasq on a loopback address, or a
//! socket that answers as the test says) asked with `--server`.

use std::net::TcpListener;

use serde_json::Value;

use crate::probe::{probe, probe_json, probe_with_hosts};
use crate::support::dns_server::{DnsServer, TTL};
use crate::support::ports::ClosedPort;
use crate::support::resolver::{Nameserver, Resolver};

#[test]
fn dns_server_answers_with_ttls_and_disagreement_is_flagged() {
    let Some(dns) = DnsServer::start(&[("ddns.test", "127.0.0.2")]) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = dns.addr.to_string();
    let target = format!("ddns.test:{port}");
    let Some((_, stdout)) = probe_with_hosts(
        "127.0.0.1 ddns.test\n",
        &[&target, "--server", &server, "--json"],
    ) else {
        return;
    };
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let report = &doc["targets"][0];
    assert_eq!(
        report["server"]["records"][0]["address"], "127.0.0.2",
        "{report}"
    );
    assert_eq!(report["server"]["records"][0]["ttl"], TTL, "{report}");
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("disagree"), "{warnings}");
}

#[test]
fn dns_server_nxdomain_is_distinct() {
    let Some(dns) = DnsServer::start(&[("ddns.test", "127.0.0.2")]) else {
        return;
    };
    let server = dns.addr.to_string();
    let (_, doc) = probe_json(&["nothing-here.test:1", "--server", &server]);
    let failure = &doc["targets"][0]["server"]["failure"];
    assert_eq!(failure, "nxdomain", "{doc}");
}

#[test]
fn dns_server_truncated_answer_is_asked_again_over_tcp() {
    let addresses: Vec<String> = (1..=50).map(|i| format!("127.0.0.{i}")).collect();
    let records: Vec<(&str, &str)> = addresses
        .iter()
        .map(|a| ("many.test", a.as_str()))
        .collect();
    let Some(dns) = DnsServer::start(&records) else {
        return;
    };
    let closed = ClosedPort::hold();
    let hosts: String = addresses
        .iter()
        .map(|a| format!("{a} many.test\n"))
        .collect();
    let target = format!("many.test:{}", closed.port());
    let server = dns.addr.to_string();
    let Some((_, stdout)) = probe_with_hosts(&hosts, &[&target, "--server", &server, "--json"])
    else {
        return;
    };
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let report = &doc["targets"][0];
    assert_eq!(
        report["server"]["records"].as_array().unwrap().len(),
        50,
        "{report}"
    );
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        [
            "127.0.0.1, 127.0.0.2 and 48 more in DNS: loopback address: only this very machine can reach it"
        ],
        "one warning, no disagreement"
    );
}

#[test]
fn dns_server_cname_chain_is_shown_step_by_step_with_ttls() {
    let Some(dns) = DnsServer::start_with(
        &[("host.test", "127.0.0.9")],
        &[
            "--cname=www.test,mid.test,77",
            "--cname=mid.test,host.test,88",
        ],
    ) else {
        return;
    };
    let server = dns.addr.to_string();
    let (_, stdout, _) = probe(&["www.test:1", "--server", &server, "-4"]);
    assert!(
        stdout.contains("cname chain: www.test -> mid.test (ttl 77 s) -> host.test (ttl 88 s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("127.0.0.9 (ttl {TTL} s)")),
        "{stdout}"
    );
}

#[test]
fn dns_server_refused_and_servfail_are_said_not_timeout() {
    let Some(dns) = DnsServer::start(&[("ddns.test", "127.0.0.2")]) else {
        return;
    };
    let server = dns.addr.to_string();
    let (_, doc) = probe_json(&["example.org:1", "--server", &server]);
    assert_eq!(doc["targets"][0]["server"]["failure"], "refused", "{doc}");
    let servfail = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = servfail.local_addr().unwrap().to_string();
    let answering = std::thread::spawn(move || {
        // Answers the A and AAAA queries: the query sent back as a response, rcode 2.
        let mut buffer = [0u8; 512];
        for _ in 0..2 {
            let (size, peer) = servfail.recv_from(&mut buffer).unwrap();
            buffer[2] |= 0x80;
            buffer[3] = 0x82;
            servfail.send_to(&buffer[..size], peer).unwrap();
        }
    });
    let (_, doc) = probe_json(&["example.org:1", "--server", &server, "-w", "5"]);
    assert_eq!(doc["targets"][0]["server"]["failure"], "servfail", "{doc}");
    answering.join().unwrap();
}

#[test]
fn dns_server_a_and_aaaa_share_one_deadline() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap().to_string();
    let (_, doc) = probe_json(&["name.test:1", "--server", &server, "-w", "1"]);
    let answer = &doc["targets"][0]["server"];
    assert_eq!(answer["failure"], "timeout", "{doc}");
    let took = answer["time_ms"].as_f64().unwrap();
    assert!(
        (1000.0..1500.0).contains(&took),
        "A and AAAA together: {took} ms"
    );
}

/// `soquete probe ARGS --json` in `resolver`'s namespace: the document and the wall time.
fn probe_in(resolver: &Resolver, args: &[&str]) -> (Value, std::time::Duration) {
    let started = std::time::Instant::now();
    let output = resolver.soquete(&[&["probe", "--json"], args].concat());
    let took = started.elapsed();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&output.stderr)));
    (doc, took)
}

#[test]
fn system_resolver_servfail_and_refused_are_said_not_temporary_failure() {
    for (code, word) in [(2, "servfail"), (5, "refused")] {
        let Some(resolver) = Resolver::start(Nameserver::Answers(code)) else {
            return;
        };
        let (doc, _) = probe_in(&resolver, &["ddns.example:1", "-w", "2"]);
        let dns = &doc["targets"][0]["system"];
        assert_eq!(dns["failure"], word, "{doc}");
        assert!(
            dns["error"]
                .as_str()
                .unwrap()
                .contains("nameserver 127.0.0.1:53"),
            "{doc}"
        );
    }
}

#[test]
fn a_stopped_resolver_is_said_at_once() {
    let Some(resolver) = Resolver::start(Nameserver::Stopped) else {
        return;
    };
    let (doc, took) = probe_in(&resolver, &["ddns.example:1", "-w", "3"]);
    let dns = &doc["targets"][0]["system"];
    assert!(
        dns["error"]
            .as_str()
            .unwrap()
            .contains("is the resolver stopped?"),
        "{doc}"
    );
    assert!(took.as_secs_f64() < 3.3, "{took:?}");
}

#[test]
fn a_silent_resolver_takes_no_longer_than_the_timeout() {
    let Some(resolver) = Resolver::start(Nameserver::Silent) else {
        return;
    };
    let (doc, took) = probe_in(&resolver, &["ddns.example:1", "-w", "1"]);
    assert_eq!(doc["targets"][0]["system"]["failure"], "timeout", "{doc}");
    assert!(
        took.as_secs_f64() < 1.5,
        "A and AAAA under one deadline: {took:?}"
    );
}
