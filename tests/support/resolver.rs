//! [`Resolver`]: the system resolver as a test wants it. A network namespace of the test's own,
//! whose `/etc/resolv.conf` names 127.0.0.1, where a small DNS stub (python3) answers every query
//! with one response code, or stays silent, or is not there at all (a stopped resolver).
//! `soquete` runs inside it with that resolv.conf and a hosts file that knows only localhost.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use super::process::{Running, soquete_path};
use super::{LIMIT, ip_steps, is_root, require, tool};

/// What the nameserver at 127.0.0.1:53 does.
#[derive(Debug, Clone, Copy)]
pub enum Nameserver {
    /// Nothing listens: the resolver is stopped.
    Stopped,
    /// It reads every query and never answers.
    Silent,
    /// It answers every query with this response code (2 SERVFAIL, 5 REFUSED).
    Answers(u8),
}

/// The namespace and its stub; removed on drop.
pub struct Resolver {
    namespace: String,
    dir: tempfile::TempDir,
    _stub: Option<Running>,
}

static CREATED: AtomicU32 = AtomicU32::new(0);

/// The stub: answers with the response code given (or never, with -1), for at most 60 s.
const STUB: &str = r#"
import socket, sys
code = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
s.settimeout(60)
print("ready", flush=True)
for _ in range(1000):
    query, peer = s.recvfrom(512)
    if code >= 0 and len(query) >= 12:
        s.sendto(query[:2] + bytes([query[2] | 0x80, 0x80 | code]) + query[4:], peer)
"#;

impl Resolver {
    /// Makes the namespace with `nameserver` in it; None (the test is skipped, or fails under
    /// CI) without root, `ip`, `unshare` and python3.
    pub fn start(nameserver: Nameserver) -> Option<Resolver> {
        if !require(
            is_root() && tool("ip") && tool("unshare") && tool("python3"),
            "root, ip, unshare and python3, for a resolver of the test's own",
        ) {
            return None;
        }
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        let namespace = format!("soq-dns-{}-{n}", std::process::id());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        std::fs::write(dir.path().join("hosts"), "127.0.0.1 localhost\n").unwrap();
        if !ip_steps(&[
            format!("netns add {namespace}"),
            format!("-n {namespace} link set lo up"),
        ]) {
            return None;
        }
        let mut resolver = Resolver {
            namespace,
            dir,
            _stub: None,
        };
        let code = match nameserver {
            Nameserver::Stopped => return Some(resolver),
            Nameserver::Silent => "-1".to_string(),
            Nameserver::Answers(code) => code.to_string(),
        };
        let stub = Running::program(
            "ip",
            &[
                "netns",
                "exec",
                &resolver.namespace,
                "python3",
                "-c",
                STUB,
                &code,
            ],
        );
        let ready = stub.wait_for(LIMIT, |line| line == "ready").is_some();
        resolver._stub = Some(stub);
        require(ready, "the DNS stub to start").then_some(resolver)
    }

    /// Runs `soquete ARGS` in the namespace, with its resolv.conf and hosts file.
    pub fn soquete(&self, args: &[&str]) -> Output {
        let script = "mount --bind \"$1\" /etc/resolv.conf && mount --bind \"$2\" /etc/hosts \
                      && shift 2 && exec \"$@\"";
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace,
                "unshare",
                "-m",
                "sh",
                "-c",
            ])
            .args([script, "sh"])
            .arg(self.dir.path().join("resolv.conf"))
            .arg(self.dir.path().join("hosts"))
            .arg(soquete_path())
            .args(args)
            .output()
            .expect("ip netns exec runs")
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        // The stub first (its Running kills it), then the namespace it lived in.
        self._stub.take();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}
