//! `soquete probe` against listeners the test opens on 127.0.0.1 and [::1], a DNS server of its
//! own (dnsmasq on 127.0.0.1), and a filtered address in a network namespace it makes itself.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{soquete, soquete_path};

fn probe(args: &[&str]) -> (i32, String, String) {
    let output = soquete().arg("probe").args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn probe_json(args: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = probe(&[args, &["--json"]].concat());
    let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    (code, doc)
}

/// A port that was free a moment ago: bound by us, then released.
fn released_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
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
fn released_port_is_closed_with_a_hint_and_exit_2() {
    let target = format!("127.0.0.1:{}", released_port());
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
    assert!(doc["targets"][0]["dns"]["failure"].is_string());
}

#[test]
fn some_reachable_is_exit_1() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let closed = format!("127.0.0.1:{}", released_port());
    let (code, stdout, _) = probe(&[&open, &closed]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with(&open)),
        "labelled by target: {stdout}"
    );
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
    assert_eq!(lines.last().unwrap()["type"], "exit");
}

#[test]
fn count_text_is_ping_style() {
    let target = format!("127.0.0.1:{}", released_port());
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
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.starts_with("soquete: "), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// Runs `soquete probe ARGS` with `/etc/hosts` replaced by `hosts` in a private mount namespace.
fn probe_with_hosts(hosts: &str, args: &[&str]) -> Option<(i32, String)> {
    if !is_root() || Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("skipped: needs root and unshare for a private /etc/hosts");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts");
    std::fs::write(&file, hosts).unwrap();
    let script = "mount --bind \"$1\" /etc/hosts && shift && exec \"$@\"";
    let output = Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(&file)
        .arg(soquete_path())
        .arg("probe")
        .args(args)
        .output()
        .unwrap();
    Some((
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    ))
}

#[test]
fn every_address_of_a_name_is_probed() {
    let Ok(v6) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped: no IPv6 loopback");
        return;
    };
    let port = v6.local_addr().unwrap().port();
    let v4 = TcpListener::bind(("127.0.0.1", port));
    let hosts = "127.0.0.1 localhost\n::1 localhost\n";
    let Some((code, stdout)) = probe_with_hosts(hosts, &[&format!("localhost:{port}")]) else {
        return;
    };
    assert!(stdout.contains("2 addresses"), "{stdout}");
    assert!(stdout.contains(&format!("[::1]:{port}")), "{stdout}");
    assert!(stdout.contains(&format!("127.0.0.1:{port}")), "{stdout}");
    if v4.is_ok() {
        assert_eq!(code, 0, "{stdout}");
    }
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

/// A network namespace with a veth pair whose far end drops all TCP; removed on drop. Each test
/// process takes its own /30 of TEST-NET-2 (198.51.100.0/24), so two runs at once do not route
/// into each other's namespace.
struct FilteredHost {
    namespace: String,
    host_side: String,
    near: String,
    far: String,
}

impl FilteredHost {
    fn create() -> Option<FilteredHost> {
        if !is_root() {
            eprintln!("skipped: needs root for a network namespace");
            return None;
        }
        let id = std::process::id() % 100_000;
        let block = 4 * (1 + std::process::id() % 62);
        let host = FilteredHost {
            namespace: format!("soq-probe-{id}"),
            host_side: format!("soqp{id}"),
            near: format!("198.51.100.{}", block + 1),
            far: format!("198.51.100.{}", block + 2),
        };
        let peer = format!("soqq{id}");
        let ns = host.namespace.as_str();
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.into()],
            vec![
                "link".into(),
                "add".into(),
                host.host_side.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                peer.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                peer.clone(),
                "netns".into(),
                ns.into(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("{}/30", host.near),
                "dev".into(),
                host.host_side.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                host.host_side.clone(),
                "up".into(),
            ],
            vec![
                "-n".into(),
                ns.into(),
                "addr".into(),
                "add".into(),
                format!("{}/30", host.far),
                "dev".into(),
                peer.clone(),
            ],
            vec![
                "-n".into(),
                ns.into(),
                "link".into(),
                "set".into(),
                peer.clone(),
                "up".into(),
            ],
        ];
        for step in steps {
            let ok = Command::new("ip")
                .args(&step)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("skipped: `ip {}` failed", step.join(" "));
                return None;
            }
        }
        let rules = "table inet soquete_test {\n chain input {\n  type filter hook input priority 0; policy accept;\n  meta l4proto tcp drop\n }\n}\n";
        let mut nft = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .ok()?;
        nft.stdin.take()?.write_all(rules.as_bytes()).ok()?;
        if !nft.wait().is_ok_and(|s| s.success()) {
            eprintln!("skipped: nft could not add the drop rule");
            return None;
        }
        Some(host)
    }
}

impl Drop for FilteredHost {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_side])
            .status();
    }
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
    let Some((code, stdout)) = probe_with_hosts(&hosts, &[&target, "--timeout", "2"]) else {
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
    assert_eq!(code, 0, "the name is reachable:\n{stdout}");
}

/// dnsmasq on 127.0.0.1, answering for `ddns.test` with a TTL, stopped on drop.
struct DnsServer {
    child: std::process::Child,
    port: u16,
}

impl DnsServer {
    fn start(records: &[(&str, &str)]) -> Option<DnsServer> {
        let port = UdpSocket::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut command = Command::new("dnsmasq");
        command.args([
            "--keep-in-foreground",
            "--log-facility=-",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--local-ttl=42",
            "--local=/test/",
            "--user=root",
            "--pid-file",
        ]);
        command.arg(format!("--port={port}"));
        for (name, address) in records {
            command.arg(format!("--host-record={name},{address}"));
        }
        let Ok(mut child) = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn() else {
            eprintln!("skipped: dnsmasq is not installed");
            return None;
        };
        let stderr = child.stderr.take()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("started") || line.contains("failed") {
                    let _ = tx.send(line);
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains("started") => Some(DnsServer { child, port }),
            other => {
                eprintln!("skipped: dnsmasq did not start: {other:?}");
                let _ = child.kill();
                None
            }
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn dns_server_answers_with_ttls_and_disagreement_is_flagged() {
    let Some(dns) = DnsServer::start(&[("ddns.test", "127.0.0.2")]) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = format!("127.0.0.1:{}", dns.port);
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
        report["dns_server"]["records"][0]["address"], "127.0.0.2",
        "{report}"
    );
    assert_eq!(report["dns_server"]["records"][0]["ttl"], 42, "{report}");
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("disagree"), "{warnings}");
}

#[test]
fn dns_server_nxdomain_is_distinct() {
    let Some(dns) = DnsServer::start(&[("ddns.test", "127.0.0.2")]) else {
        return;
    };
    let server = format!("127.0.0.1:{}", dns.port);
    let (_, doc) = probe_json(&["nothing-here.test:1", "--server", &server]);
    let failure = &doc["targets"][0]["dns_server"]["failure"];
    assert_eq!(failure, "nxdomain", "{doc}");
}

#[test]
fn chat_check_finds_a_soquete_server_without_joining_its_room() {
    let (server, addr) = crate::support::start_server(&[]);
    let (code, stdout, _) = probe(&[&addr.to_string(), "--chat", "--json"]);
    assert_eq!(code, 0, "{stdout}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let chat = &doc["targets"][0]["addresses"][0]["chat"];
    assert_eq!(chat["found"], "soquete", "{chat}");
    assert_eq!(chat["mode"], "group");
    assert_eq!(chat["room_size"], 0, "the probe is not counted: {chat}");
    assert_eq!(doc["targets"][0]["soquete"], true);
    let console = server
        .wait_for(Duration::from_secs(10), |line| line.contains("probe"))
        .expect("the server console notes the probe");
    assert!(console.contains("without joining"), "{console}");
}

#[test]
fn count_0_runs_until_ctrl_c_then_summarises() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let mut probe =
        crate::support::Running::start(&["probe", &target, "--count", "0", "-i", "0.05"]);
    probe
        .wait_for(Duration::from_secs(10), |line| line.contains("seq=3"))
        .expect("rounds keep coming");
    let status = probe
        .interrupt(Duration::from_secs(10))
        .expect("stops on Ctrl-C");
    assert_eq!(status.code(), Some(0));
    let summary = probe
        .wait_for(Duration::from_secs(5), |line| line.starts_with("--- "))
        .expect("a summary after Ctrl-C");
    assert!(summary.contains("0% loss"), "{summary}");
}
