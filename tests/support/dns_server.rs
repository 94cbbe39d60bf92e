//! [`DnsServer`]: dnsmasq answering for names the test gives it, with a TTL, on a loopback
//! address of this test process's own (127.64.0.0/10 holds one per process ID), so its port is
//! never one that was free a moment ago.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::mpsc::{Receiver, Sender};

use super::{LIMIT, require, tool};

/// The TTL dnsmasq gives the records it serves.
pub const TTL: u32 = 42;

/// dnsmasq, stopped on drop.
pub struct DnsServer {
    child: Child,
    /// Where it answers.
    pub addr: SocketAddr,
}

/// The servers this process has started: each takes the next port on the process's address.
static STARTED: AtomicU16 = AtomicU16::new(0);

impl DnsServer {
    /// Serves `records` (name, IPv4 address) for the `test` domain; None (the test is skipped,
    /// or fails under CI) without dnsmasq, or when it does not start.
    pub fn start(records: &[(&str, &str)]) -> Option<DnsServer> {
        DnsServer::start_with(records, &[])
    }

    /// As [`DnsServer::start`], with more dnsmasq options (`--cname=…`, say).
    pub fn start_with(records: &[(&str, &str)], options: &[&str]) -> Option<DnsServer> {
        if !require(tool("dnsmasq"), "dnsmasq") {
            return None;
        }
        let addr = SocketAddr::from((
            own_address(),
            5300 + STARTED.fetch_add(1, Ordering::Relaxed),
        ));
        let mut command = Command::new("dnsmasq");
        command.args(options);
        DnsServer::spawn(command, addr, records)
    }

    /// As [`DnsServer::start`], on 127.0.0.1:53 of the network namespace `namespace`, and
    /// authoritative for the `test` zone (its NS is `ns.test`, at 127.0.0.1): a name's zone and
    /// nameservers can be found through it as on the Internet. Every query it is asked comes
    /// on `queries`.
    pub fn start_in(
        namespace: &str,
        records: &[(&str, &str)],
    ) -> Option<(DnsServer, Receiver<String>)> {
        if !require(tool("dnsmasq"), "dnsmasq") {
            return None;
        }
        let mut command = Command::new("ip");
        command.args(["netns", "exec", namespace, "dnsmasq", "--log-queries"]);
        command.args([
            "--auth-zone=test",
            "--auth-server=ns.test,127.0.0.1",
            "--host-record=ns.test,127.0.0.1",
        ]);
        let (queries, heard) = std::sync::mpsc::channel();
        let server =
            DnsServer::spawn_logging(command, ([127, 0, 0, 1], 53).into(), records, Some(queries))?;
        Some((server, heard))
    }

    fn spawn(command: Command, addr: SocketAddr, records: &[(&str, &str)]) -> Option<DnsServer> {
        DnsServer::spawn_logging(command, addr, records, None)
    }

    /// Runs `command` (dnsmasq, maybe behind `ip netns exec`) with the harness's flags; its
    /// `query[…]` log lines, if `queries` is given, go there.
    fn spawn_logging(
        mut command: Command,
        addr: SocketAddr,
        records: &[(&str, &str)],
        queries: Option<Sender<String>>,
    ) -> Option<DnsServer> {
        command.args([
            "--keep-in-foreground",
            "--log-facility=-",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--local=/test/",
            "--user=root",
            "--pid-file",
        ]);
        command.arg(format!("--listen-address={}", addr.ip()));
        command.arg(format!("--port={}", addr.port()));
        command.arg(format!("--local-ttl={TTL}"));
        for (name, address) in records {
            command.arg(format!("--host-record={name},{address}"));
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dnsmasq runs");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("started") || line.contains("failed") {
                    let _ = tx.send(line);
                } else if let Some(queries) = queries
                    .as_ref()
                    .filter(|_| line.contains("query[") || line.contains("auth["))
                {
                    let _ = queries.send(line);
                }
            }
        });
        let said = rx.recv_timeout(LIMIT);
        let server = DnsServer { child, addr };
        let started = said.as_ref().is_ok_and(|line| line.contains("started"));
        require(started, &format!("dnsmasq to start (it said {said:?})")).then_some(server)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 127.64.0.0/10 (all loopback on Linux) has room for every process ID (at most 2^22): no
/// other test run, and nothing else on the machine, listens on this process's address.
fn own_address() -> Ipv4Addr {
    let [_, high, middle, low] = (std::process::id() | 0x0040_0000).to_be_bytes();
    Ipv4Addr::new(127, high, middle, low)
}
