//! Verdicts on facts a check could gather.

use super::*;

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|ip| ip.parse().unwrap()).collect()
}

fn facts(cached: &[&str], authoritative: &[&str], public: &[&str]) -> Facts {
    let published = if authoritative.is_empty() {
        cached
    } else {
        authoritative
    };
    Facts {
        cached: Ok(ips(cached)),
        authoritative: Ok(ips(authoritative)),
        public: Ok(ips(public)),
        port: published
            .iter()
            .map(|ip| (ip.parse().unwrap(), None))
            .collect(),
        loopback_bind: None,
    }
}

#[test]
fn a_consistent_name_is_ok() {
    let verdict = Verdict::of(
        "sala.example",
        65432,
        &facts(&["198.51.100.7"], &["198.51.100.7"], &["198.51.100.7"]),
    );
    assert!(verdict.is_ok(), "{verdict:?}");
    assert_eq!(
        verdict.line(),
        "ok: sala.example -> 198.51.100.7, public address 198.51.100.7 (STUN), port 65432 answers"
    );
}

#[test]
fn a_cache_behind_the_authority_is_stale() {
    let verdict = Verdict::of(
        "sala.example",
        1,
        &facts(&["198.51.100.7"], &["198.51.100.9"], &["198.51.100.9"]),
    );
    assert_eq!(verdict.findings.len(), 1, "{verdict:?}");
    assert!(verdict.line().contains(
        "the authoritative servers say 198.51.100.9, the resolver's cache says 198.51.100.7"
    ));
}

#[test]
fn a_name_that_points_elsewhere_than_stun_says_update_the_record() {
    let verdict = Verdict::of(
        "sala.example",
        1,
        &facts(&["198.51.100.7"], &["198.51.100.7"], &["198.51.100.9"]),
    );
    let line = verdict.line();
    assert!(
        line.contains("points at 198.51.100.7, but this server's public address is 198.51.100.9"),
        "{line}"
    );
    assert!(line.contains("update the DDNS record"), "{line}");
}

#[test]
fn a_name_without_aaaa_is_no_fault_but_one_without_a_is() {
    let v6_public = facts(
        &["198.51.100.7"],
        &["198.51.100.7"],
        &["198.51.100.7", "2001:db8::7"],
    );
    assert!(Verdict::of("n", 1, &v6_public).is_ok());
    let v6_only = facts(
        &["2001:db8::7"],
        &["2001:db8::7"],
        &["198.51.100.7", "2001:db8::7"],
    );
    assert!(
        Verdict::of("n", 1, &v6_only)
            .line()
            .contains("points at no IPv4 address")
    );
}

#[test]
fn private_cgnat_and_loopback_addresses_are_named() {
    for (ip, words) in [
        ("192.168.1.20", "private (RFC 1918)"),
        ("100.72.1.2", "carrier-grade NAT"),
        ("127.0.0.1", "loopback"),
        ("fd00::1", "unique-local"),
    ] {
        let verdict = Verdict::of("n", 1, &facts(&[ip], &[ip], &[ip]));
        assert!(verdict.line().contains(words), "{ip}: {verdict:?}");
    }
}

#[test]
fn a_closed_port_says_forward_it() {
    let mut closed = facts(&["198.51.100.7"], &["198.51.100.7"], &["198.51.100.7"]);
    closed.port[0].1 = Some("Connection refused (os error 111)".into());
    let line = Verdict::of("n", 9000, &closed).line();
    assert!(
        line.contains("port 9000 does not answer on 198.51.100.7 (Connection refused"),
        "{line}"
    );
    assert!(line.contains("forward port 9000 on the router"), "{line}");
}

#[test]
fn nothing_resolving_and_no_stun_are_findings_too() {
    let lost = Facts {
        cached: Err("Name or service not known".into()),
        authoritative: Err("192.0.2.53:53: timed out".into()),
        public: Err("the STUN server s:1 did not answer".into()),
        port: Vec::new(),
        loopback_bind: None,
    };
    let verdict = Verdict::of("n", 1, &lost);
    assert_eq!(verdict.findings.len(), 2, "{verdict:?}");
    assert!(
        verdict
            .line()
            .contains("n does not resolve (Name or service not known; 192.0.2.53:53: timed out)")
    );
    assert!(verdict.line().contains("public address is unknown"));
}

#[test]
fn an_authority_that_cannot_be_asked_is_a_finding_not_silence() {
    let mut unasked = facts(&["198.51.100.7"], &[], &["198.51.100.7"]);
    unasked.authoritative =
        Err("192.0.2.53:53: the DNS server 192.0.2.53:53 answered Refused".into());
    let verdict = Verdict::of("n", 1, &unasked);
    assert_eq!(verdict.findings.len(), 1, "{verdict:?}");
    assert_eq!(
        verdict.line(),
        "warning: the name's authoritative servers could not be asked: 192.0.2.53:53: the DNS \
         server 192.0.2.53:53 answered Refused (a stale cache cannot be told from a fresh one)"
    );
}

#[test]
fn a_server_on_loopback_is_told_to_bind_wider_not_to_forward_a_port() {
    let mut closed = facts(&["198.51.100.7"], &["198.51.100.7"], &["198.51.100.7"]);
    closed.port[0].1 = Some("Connection refused (os error 111)".into());
    closed.loopback_bind = Some("127.0.0.1".parse().unwrap());
    let line = Verdict::of("n", 9000, &closed).line();
    assert!(
        line.contains("listening on 127.0.0.1 only: serve --bind 0.0.0.0"),
        "{line}"
    );
    assert!(!line.contains("router"), "{line}");
}
