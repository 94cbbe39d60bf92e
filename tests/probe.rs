//! `soquete probe` against listeners the test opens on 127.0.0.1 and [::1], a DNS server of its
//! own (dnsmasq on 127.0.0.1), and a filtered address in a network namespace it makes itself.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use serde_json::Value;

use crate::support::filtered_host::FilteredHost;
use crate::support::hosts::{HostsFile, with_hosts};
use crate::support::ports::{ClosedPort, dual_stack_listeners, live_v4_dead_v6};
use crate::support::process::{Running, soquete};
use crate::support::serve::start_server;
use crate::support::{LIMIT, require};

/// Runs `soquete probe ARGS`: its exit code, stdout and stderr.
pub fn probe(args: &[&str]) -> (i32, String, String) {
    let output = soquete().arg("probe").args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Runs `soquete probe ARGS --json`: its exit code and the document.
pub fn probe_json(args: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = probe(&[args, &["--json"]].concat());
    let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    (code, doc)
}

#[test]
fn open_port_is_open_and_exit_0() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (code, stdout, _) = probe(&[&target]);
    assert_eq!(code, 0, "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&target))
        .expect("a line for the address");
    assert!(line.contains(" open "), "{line}");
}

#[test]
fn a_port_nothing_listens_on_is_closed_with_a_hint_and_exit_2() {
    let closed = ClosedPort::hold();
    let target = format!("127.0.0.1:{}", closed.port());
    let (code, stdout, _) = probe(&[&target]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("closed"), "{stdout}");
    assert!(
        stdout.contains("nothing listens on that port on this machine"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("filtered"),
        "a refusal is not silence: {stdout}"
    );
}

#[test]
fn unresolvable_name_is_exit_3() {
    let (code, stdout, _) = probe(&["name.invalid:80"]);
    assert_eq!(code, 3, "{stdout}");
    assert!(
        stdout.contains("does not exist") || stdout.contains("resolver"),
        "{stdout}"
    );
    let (code, doc) = probe_json(&["name.invalid:80"]);
    assert_eq!(code, 3);
    assert_eq!(doc["targets"][0]["resolved"], false);
    assert!(doc["targets"][0]["system"]["failure"].is_string());
}

#[test]
fn some_reachable_is_exit_1() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let closed_port = ClosedPort::hold();
    let closed = format!("127.0.0.1:{}", closed_port.port());
    let (code, stdout, _) = probe(&[&open, &closed]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with(&open)),
        "labelled by target: {stdout}"
    );
}

#[test]
fn the_same_target_twice_is_two_reports() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (code, doc) = probe_json(&[&target, &target]);
    assert_eq!(code, 0, "{doc}");
    for report in doc["targets"].as_array().unwrap() {
        assert_eq!(report["resolved"], true, "{report}");
        assert_eq!(report["addresses"][0]["last_verdict"], "open", "{report}");
    }
}

#[test]
fn json_document_has_the_documented_fields() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (code, doc) = probe_json(&[&target]);
    assert_eq!(code, 0);
    assert_eq!(doc["exit_code"], 0);
    let report = &doc["targets"][0];
    assert_eq!(report["target"], target.as_str());
    assert_eq!(report["reachable"], true);
    let address = &report["addresses"][0];
    assert_eq!(address["address"], target.as_str());
    assert_eq!(address["last_verdict"], "open");
    assert!(address["last_time_ms"].is_number());
    assert!(address["rtt_avg_ms"].is_number());
    assert!(
        address["source"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[test]
fn count_prints_one_ndjson_line_per_attempt_and_a_summary() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (code, stdout, _) = probe(&[&target, "--count", "3", "--interval", "0.05", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let attempts: Vec<_> = lines.iter().filter(|l| l["type"] == "attempt").collect();
    assert_eq!(attempts.len(), 3);
    let rounds: Vec<_> = attempts
        .iter()
        .map(|a| a["round"].as_u64().unwrap())
        .collect();
    assert_eq!(rounds, [1, 2, 3]);
    let summary = lines
        .iter()
        .find(|l| l["type"] == "summary")
        .expect("a summary line");
    assert_eq!(summary["addresses"][0]["sent"], 3);
    assert_eq!(summary["addresses"][0]["open"], 3);
    assert_eq!(
        summary["rounds"], 3,
        "an address literal counts its rounds too: {summary}"
    );
    assert_eq!(lines.last().unwrap()["type"], "exit");
}

#[test]
fn count_text_is_ping_style() {
    let closed = ClosedPort::hold();
    let target = format!("127.0.0.1:{}", closed.port());
    let (code, stdout, _) = probe(&[&target, "-c", "2", "-i", "0.05"]);
    assert_eq!(code, 2);
    assert!(
        stdout.contains("seq=1") && stdout.contains("seq=2"),
        "{stdout}"
    );
    assert!(stdout.contains("2 sent, 0 open, 100% loss"), "{stdout}");
}

#[test]
fn chat_check_on_a_listener_that_is_not_soquete_is_exit_4() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let banner = std::thread::spawn(move || {
        let (mut peer, _) = listener.accept().unwrap();
        peer.write_all(b"220 mail.example ESMTP\r\n").unwrap();
        let mut line = String::new();
        let _ = BufReader::new(&peer).read_line(&mut line);
    });
    let (code, stdout, _) = probe(&[&target, "--chat"]);
    assert_eq!(code, 4, "{stdout}");
    assert!(
        stdout.contains("not soquete") && stdout.contains("220 mail.example"),
        "{stdout}"
    );
    banner.join().unwrap();
}

#[test]
fn chat_check_on_a_silent_listener_says_silent() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (code, stdout, _) = probe(&[&target, "--chat"]);
    assert_eq!(code, 4, "{stdout}");
    assert!(stdout.contains("silent"), "{stdout}");
    drop(listener);
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["host:notaport"][..],
        &["[::1"][..],
        &["localhost", "--server", "x.y"][..],
        &[][..],
    ] {
        let (code, _, stderr) = probe(args);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(stderr.starts_with("soquete: "), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn odd_targets_are_one_line_that_names_the_fix() {
    let long = vec!["a".repeat(60); 5].join(".");
    for (args, fix) in [
        (&[":80"][..], "127.0.0.1:80"),
        (&[""][..], "name the host"),
        (&["::1:80"][..], "[::1]:80"),
        (&["10.0.0.1:80", "-6"][..], "drop -6"),
        (&[long.as_str()][..], "at most 253 characters"),
    ] {
        let (code, stdout, stderr) = probe(args);
        assert_eq!(code, 64, "{args:?}: {stdout} {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(fix), "{args:?}: {stderr}");
    }
}

#[test]
fn expect_ip_on_an_address_says_so_not_dns() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (_, doc) = probe_json(&[&target, "--expect-ip", "203.0.113.7"]);
    let warnings = doc["targets"][0]["warnings"].to_string();
    assert!(!warnings.contains("DDNS"), "{warnings}");
    assert!(warnings.contains("is an address, not a name"), "{warnings}");
}

#[test]
fn chat_check_on_a_listener_that_hangs_up_says_so() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let closer = std::thread::spawn(move || drop(listener.accept().unwrap()));
    let (code, stdout, _) = probe(&[&target, "--chat"]);
    assert_eq!(code, 4, "{stdout}");
    assert!(stdout.contains("closed without a word"), "{stdout}");
    closer.join().unwrap();
}

/// Runs `soquete probe ARGS` with `/etc/hosts` replaced by `hosts`: its exit code and stdout.
pub fn probe_with_hosts(hosts: &str, args: &[&str]) -> Option<(i32, String)> {
    let output = with_hosts(hosts, &[&["probe"], args].concat())?;
    Some((
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    ))
}

#[test]
fn every_address_of_a_name_is_probed() {
    let listeners = dual_stack_listeners();
    if !require(listeners.is_some(), "an IPv6 loopback") {
        return;
    }
    let (v6, _v4) = listeners.unwrap();
    let port = v6.local_addr().unwrap().port();
    let hosts = "127.0.0.1 localhost\n::1 localhost\n";
    let Some((code, stdout)) = probe_with_hosts(hosts, &[&format!("localhost:{port}")]) else {
        return;
    };
    assert!(stdout.contains("2 addresses"), "{stdout}");
    assert!(stdout.contains(&format!("[::1]:{port}")), "{stdout}");
    assert!(stdout.contains(&format!("127.0.0.1:{port}")), "{stdout}");
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn expect_ip_mismatch_and_private_address_are_flagged() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hosts = "127.0.0.1 localhost\n127.0.0.1 chat.ddns.test\n";
    let target = format!("chat.ddns.test:{port}");
    let Some((code, stdout)) =
        probe_with_hosts(hosts, &[&target, "--expect-ip", "203.0.113.7", "--json"])
    else {
        return;
    };
    assert_eq!(code, 0, "reachable all the same: {stdout}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let warnings: Vec<String> = doc["targets"][0]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("not an expected address")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("203.0.113.7")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("loopback")),
        "{warnings:?}"
    );
}

#[test]
fn a_dead_address_never_delays_a_live_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let Some(host) = FilteredHost::create() else {
        return;
    };
    // The dead address comes first, as a dead AAAA record would.
    let hosts = format!(
        "127.0.0.1 localhost\n{} both.test\n127.0.0.1 both.test\n",
        host.far
    );
    let target = format!("both.test:{port}");
    let Some((code, stdout)) = probe_with_hosts(&hosts, &[&target, "--timeout", "1"]) else {
        return;
    };
    let lines: Vec<&str> = stdout.lines().collect();
    let open = lines
        .iter()
        .position(|l| l.contains("127.0.0.1") && l.contains(" open "))
        .expect(&stdout);
    let filtered = lines
        .iter()
        .position(|l| l.contains(&host.far) && l.contains("filtered"))
        .expect(&stdout);
    assert!(
        open < filtered,
        "the live address is reported first:\n{stdout}"
    );
    assert!(
        stdout.contains("firewall"),
        "a hint for the filtered one:\n{stdout}"
    );
    assert_eq!(code, 1, "one of its addresses is dead:\n{stdout}");
}

#[test]
fn a_dead_aaaa_beside_a_live_a_is_exit_1_unless_any() {
    let pair = live_v4_dead_v6();
    if !require(pair.is_some(), "an IPv6 loopback") {
        return;
    }
    let (v4, _v6) = pair.unwrap();
    let port = v4.local_addr().unwrap().port();
    let hosts = "::1 both.test\n127.0.0.1 both.test\n";
    let target = format!("both.test:{port}");
    let Some((code, stdout)) = probe_with_hosts(hosts, &[&target]) else {
        return;
    };
    assert!(
        stdout.contains(" open ") && stdout.contains("closed"),
        "{stdout}"
    );
    assert_eq!(code, 1, "the IPv6 users cannot connect:\n{stdout}");
    let Some((code, stdout)) = probe_with_hosts(hosts, &[&target, "--any"]) else {
        return;
    };
    assert_eq!(code, 0, "nc's rule: one address is enough:\n{stdout}");
}

#[test]
fn a_host_absent_from_its_link_is_said_so_not_filtered() {
    let Some(host) = FilteredHost::absent() else {
        return;
    };
    let target = format!("{}:80", host.far);
    let (_, doc) = probe_json(&[&target, "-w", "1"]);
    let address = &doc["targets"][0]["addresses"][0];
    assert_eq!(address["last_verdict"], "unreachable", "{doc}");
    assert!(
        address["hint"]
            .as_str()
            .unwrap()
            .contains("ARP/neighbour discovery"),
        "{doc}"
    );
}

#[test]
fn icmp_protocol_unreachable_is_unreachable() {
    let Some(host) = FilteredHost::with_rule("reject with icmp type prot-unreachable") else {
        return;
    };
    let target = format!("{}:80", host.far);
    let (code, doc) = probe_json(&[&target]);
    let address = &doc["targets"][0]["addresses"][0];
    assert_eq!(address["last_verdict"], "unreachable", "{doc}");
    assert!(
        address["hint"].as_str().unwrap().contains("refused"),
        "{doc}"
    );
    assert_eq!(code, 2, "{doc}");
}

#[test]
fn chat_check_finds_a_soquete_server_without_joining_its_room() {
    let (server, addr) = start_server(&[]);
    let (code, stdout, _) = probe(&[&addr.to_string(), "--chat", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let chat = &doc["targets"][0]["addresses"][0]["chat"];
    assert_eq!(chat["found"], "soquete", "{chat}");
    assert_eq!(chat["mode"], "group");
    assert_eq!(chat["room_size"], 0, "the probe is not counted: {chat}");
    assert_eq!(doc["targets"][0]["soquete"], true);
    let console = server
        .wait_for(LIMIT, |line| line.contains("probe"))
        .expect("the server console notes the probe");
    assert!(console.contains("without joining"), "{console}");
}

#[test]
fn count_runs_every_round_and_counts_those_the_name_did_not_resolve() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let Some(hosts) = HostsFile::new("127.0.0.1 gone.test\n") else {
        return;
    };
    let target = format!("gone.test:{port}");
    let mut probe = hosts.start(&["probe", &target, "-c", "3", "-i", "0.5"]);
    probe
        .wait_for(LIMIT, |line| {
            line.contains("seq=1") && line.contains(" open ")
        })
        .expect("round 1 finds it open");
    // The DDNS record is removed: the rounds that follow have no address to try.
    hosts.write("127.0.0.1 localhost\n");
    let lost = probe
        .wait_for(LIMIT, |line| line.contains("seq=3"))
        .expect("round 3 runs all the same");
    // What getaddrinfo said, not NXDOMAIN: the resolver may never have been asked.
    assert!(
        lost.contains("seq=3  lost: system resolver, after ")
            && lost.contains("the name is not known")
            && lost.contains("Name or service not known")
            && !lost.contains("NXDOMAIN"),
        "{lost}"
    );
    let summary = probe
        .wait_for(LIMIT, |line| line.contains("rounds lost"))
        .expect("the summary counts the lost rounds");
    assert!(summary.contains("of 3 rounds lost"), "{summary}");
    let status = probe.wait_exit(LIMIT).expect("exits");
    assert_eq!(status.code(), Some(1), "open once, then lost: {summary}");
}

#[test]
fn ctrl_c_during_a_connect_ends_at_once_with_the_summary_so_far() {
    let Some(host) = FilteredHost::create() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let filtered = format!("{}:80", host.far);
    let mut probe = Running::start(&["probe", &open, &filtered, "-c", "3", "-w", "20"]);
    probe
        .wait_for(LIMIT, |line| line.contains(&open) && line.contains("seq=1"))
        .expect("the open one answers at once");
    // The filtered address is now in a connect that would last 20 s.
    let started = std::time::Instant::now();
    let status = probe.interrupt(LIMIT).expect("stops on Ctrl-C");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let summary = probe
        .wait_for(LIMIT, |line| {
            line.starts_with("--- ") && line.contains(&open)
        })
        .expect("the summary so far");
    assert!(summary.contains("1 sent, 1 open"), "{summary}");
    probe
        .wait_for(LIMIT, |line| line.contains("interrupted"))
        .expect("says what was left");
    assert_eq!(status.code(), Some(1), "the filtered one had no verdict");
}

#[test]
fn count_0_runs_until_ctrl_c_then_summarises() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let mut probe = Running::start(&["probe", &target, "--count", "0", "-i", "0.05"]);
    probe
        .wait_for(LIMIT, |line| line.contains("seq=3"))
        .expect("rounds keep coming");
    let status = probe.interrupt(LIMIT).expect("stops on Ctrl-C");
    assert_eq!(status.code(), Some(0));
    let summary = probe
        .wait_for(LIMIT, |line| line.starts_with("--- "))
        .expect("a summary after Ctrl-C");
    assert!(summary.contains("0% loss"), "{summary}");
}

/// `--json` with one round prints one document, with more rounds NDJSON: a target's object and
/// the run's fields have the same names in both, and the summary lines keep the events' order.
#[test]
fn json_forms_use_the_same_names() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (code, doc) = probe_json(&[&target, "-c", "1"]);
    assert_eq!(code, 0, "{doc}");
    let (code, stdout, _) = probe(&[&target, "-c", "2", "-i", "0.05", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys = |value: &Value, skip: &str| -> Vec<String> {
        let object = value.as_object().unwrap();
        object.keys().filter(|k| *k != skip).cloned().collect()
    };
    let summary = lines.iter().find(|l| l["type"] == "summary").unwrap();
    assert_eq!(
        keys(summary, "type"),
        keys(&doc["targets"][0], ""),
        "{summary}\n{doc}"
    );
    let exit = lines.last().unwrap();
    assert_eq!(keys(exit, "type"), keys(&doc, "targets"), "{exit}\n{doc}");
    let dns = lines.iter().find(|l| l["type"] == "dns").unwrap();
    assert_eq!(dns["system"], doc["targets"][0]["system"], "{dns}\n{doc}");
    assert!(
        stdout
            .lines()
            .find(|l| l.contains("summary"))
            .unwrap()
            .starts_with(r#"{"type":"summary","target":"#),
        "{stdout}"
    );
}

/// --server asks about names: for an address target it is not used, and the probe says so.
#[test]
fn server_with_an_address_target_is_noted_not_ignored_in_silence() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let (code, _, stderr) = probe(&[&target, "--server", "127.0.0.1:9"]);
    assert_eq!(code, 0, "a note, not an error: {stderr}");
    assert_eq!(
        stderr,
        "soquete: note: --server 127.0.0.1:9 is not asked about 127.0.0.1: it is an address, not a name\n"
    );
}
