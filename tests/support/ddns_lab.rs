//! [`DdnsLab`]: a network namespace that plays the Internet for `serve --ddns`: its own public
//! addresses (TEST-NET-2 on its loopback interface), a resolver cache (`/etc/hosts`, which `ip netns
//! exec` mounts from `/etc/netns/NAME/`), an authoritative DNS server (dnsmasq on 127.0.0.1:53)
//! and a STUN server (a few lines of python3) that reports whatever public address the test
//! says. Nothing in it can reach, or be reached from, the machine's own network.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::Receiver;

use super::dns_server::DnsServer;
use super::process::{Running, soquete_path};
use super::serve::listening_on;
use super::{LIMIT, ip_steps, is_root, require, tool};

/// The namespace's own public addresses: the server's, and a second one nothing listens on.
pub const PUBLIC: &str = "198.51.100.7";
pub const OTHER: &str = "198.51.100.8";
/// The name the server checks.
pub const NAME: &str = "sala.test";

/// A STUN server: answers every Binding request with `mapped` as the address it saw, and says
/// on stdout each datagram it heard (`heard N bytes`).
const STUN_SERVER: &str = r#"
import socket, struct, sys
mapped = socket.inet_aton(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("stun on", s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(2048)
    print("heard", len(data), "bytes", data[:4].hex(), flush=True)
    if len(data) < 20 or data[4:8] != b"\x21\x12\xa4\x42":
        continue
    addr = bytes(a ^ b for a, b in zip(mapped, data[4:8]))
    attr = struct.pack("!HHBBH", 0x20, 8, 0, 1, peer[1] ^ 0x2112) + addr
    s.sendto(struct.pack("!HH", 0x0101, len(attr)) + data[4:20] + attr, peer)
"#;

/// What the lab's world says about [`NAME`].
pub struct World<'a> {
    /// The address the resolver's cache (`/etc/hosts`) has for the name.
    pub cached: &'a str,
    /// The address the authoritative server has.
    pub authoritative: &'a str,
    /// The public address STUN reports.
    pub public: &'a str,
}

impl<'a> World<'a> {
    /// The cache's, the authoritative server's and STUN's address, in that order.
    pub fn new(cached: &'a str, authoritative: &'a str, public: &'a str) -> World<'a> {
        World {
            cached,
            authoritative,
            public,
        }
    }
}

/// The namespace and its servers; all removed on drop (the servers first: fields drop in
/// order).
pub struct DdnsLab {
    /// The STUN server (its stdout says what it heard).
    pub stun: Running,
    pub stun_addr: SocketAddr,
    /// The authoritative server, and every query it was asked.
    _dns: DnsServer,
    pub queries: Receiver<String>,
    namespace: Namespace,
}

/// A network namespace and its /etc/netns files, removed on drop (a failed step under CI
/// panics: the namespace goes all the same).
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.0));
    }
}

/// Labs this process has made: each gets a namespace of its own.
static MADE: AtomicU32 = AtomicU32::new(0);

impl DdnsLab {
    /// Makes the namespace for `world`; None (the test is skipped, or fails under CI) without
    /// root, ip, dnsmasq and python3.
    pub fn create(world: &World) -> Option<DdnsLab> {
        if !require(
            is_root() && tool("ip") && tool("dnsmasq") && tool("python3"),
            "root, ip, dnsmasq and python3, for a network namespace",
        ) {
            return None;
        }
        let namespace = format!(
            "soq-ddns-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let guard = Namespace(namespace.clone());
        let etc = format!("/etc/netns/{namespace}");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(format!("{etc}/resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        let steps = [
            format!("netns add {namespace}"),
            format!("-n {namespace} link set lo up"),
            format!("-n {namespace} addr add {PUBLIC}/32 dev lo"),
            format!("-n {namespace} addr add {OTHER}/32 dev lo"),
        ];
        if !ip_steps(&steps) {
            return None;
        }
        let (dns, queries) = DnsServer::start_in(&namespace, &[(NAME, world.authoritative)])?;
        let stun = Running::program(
            "ip",
            &[
                "netns",
                "exec",
                &namespace,
                "python3",
                "-c",
                STUN_SERVER,
                world.public,
            ],
        );
        let line = stun
            .wait_for(LIMIT, |line| line.starts_with("stun on "))
            .expect("the STUN server starts");
        let port: u16 = line["stun on ".len()..].trim().parse().unwrap();
        let lab = DdnsLab {
            namespace: guard,
            stun,
            stun_addr: ([127, 0, 0, 1], port).into(),
            _dns: dns,
            queries,
        };
        lab.cache(world.cached);
        Some(lab)
    }

    /// Changes the resolver's cache: [`NAME`] now has `address` in the namespace's /etc/hosts
    /// (written in place: the servers see it through their bind mount).
    pub fn cache(&self, address: &str) {
        let hosts = format!("/etc/netns/{}/hosts", self.namespace.0);
        std::fs::write(hosts, format!("127.0.0.1 localhost\n{address} {NAME}\n")).unwrap();
    }

    /// `soquete serve --port 0 ARGS` in the namespace, its console a pipe, with `env`; and the
    /// address it listens on.
    pub fn serve(&self, args: &[&str], env: &[(&str, &str)]) -> (Running, SocketAddr) {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace.0])
            .arg(soquete_path())
            .args(["serve", "--port", "0"])
            .args(args)
            .envs(env.iter().copied());
        let server = Running::spawn(command, std::process::Stdio::piped());
        let addr = listening_on(&server);
        (server, addr)
    }

    /// `serve --bind BIND --ddns NAME` against this lab's STUN server, finding the name's
    /// authoritative server through the namespace's resolv.conf.
    pub fn serve_ddns(&self, bind: &str) -> (Running, SocketAddr) {
        self.serve_ddns_with(bind, &[], None)
    }

    /// As [`DdnsLab::serve_ddns`], with `more` flags, checking every `interval_ms` when given.
    pub fn serve_ddns_with(
        &self,
        bind: &str,
        more: &[&str],
        interval_ms: Option<&str>,
    ) -> (Running, SocketAddr) {
        let stun = self.stun_addr.to_string();
        let env: Vec<(&str, &str)> = interval_ms
            .map(|ms| ("SOQUETE_DDNS_INTERVAL_MS", ms))
            .into_iter()
            .collect();
        let mut args = vec!["--bind", bind, "--ddns", NAME, "--stun", &stun];
        args.extend(more);
        self.serve(&args, &env)
    }

    /// Runs python3 `code` in the namespace (a marker datagram, a DNS query) and waits for it.
    pub fn run_python(&self, code: &str) {
        let ran = Command::new("ip")
            .args(["netns", "exec", &self.namespace.0, "python3", "-c", code])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ran, "python3 ran in the namespace: {code}");
    }
}
