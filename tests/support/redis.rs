//! [`RedisServer`]: the real `redis-server`, started by a test on a loopback port in a
//! directory of its own (no RDB snapshots; AOF only when asked), killed when dropped; and
//! `redis-cli` against it.

use std::net::TcpListener;
use std::process::Command;

use super::process::Running;
use super::{LIMIT, require, tool};

/// Tries at starting redis-server on a port found free (another program may take it between).
const TRIES: usize = 10;

/// A `redis-server` of the test's own.
pub struct RedisServer {
    server: Option<Running>,
    pub port: u16,
    aof: bool,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one without persistence; None (a skip, a failure under CI) without redis-server.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(false)
    }

    /// Starts one that keeps what it is told in an append-only file (`appendfsync always`), so
    /// that a restart finds it again.
    pub fn start_with(aof: bool) -> Option<RedisServer> {
        if !require(
            tool("redis-server") && tool("redis-cli"),
            "redis-server and redis-cli",
        ) {
            return None;
        }
        let mut dir = tempfile::tempdir().expect("a temporary directory");
        for _ in 0..TRIES {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut redis = RedisServer {
                server: None,
                port,
                aof,
                dir,
            };
            if redis.run() {
                return Some(redis);
            }
            dir = redis.dir;
        }
        panic!("redis-server found no free port in {TRIES} tries");
    }

    /// Starts redis-server on our port and directory; false when it could not listen.
    fn run(&mut self) -> bool {
        let port = self.port.to_string();
        let appendonly = if self.aof { "yes" } else { "no" };
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", appendonly, "--appendfsync", "always"])
            .args([
                "--logfile",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path());
        let server = Running::spawn(command, std::process::Stdio::null());
        let ready = server.wait_for(LIMIT, |line| {
            line.contains("Ready to accept connections") || line.contains("Could not create")
        });
        let ok = ready.is_some_and(|line| line.contains("Ready"));
        self.server = ok.then_some(server);
        ok
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL): clients lose it at once.
    pub fn kill(&mut self) {
        self.server = None;
    }

    /// Starts it again on the same port and directory (its append-only file, if any, is read
    /// back); panics if it cannot.
    pub fn restart(&mut self) {
        for _ in 0..TRIES {
            if self.run() {
                return;
            }
        }
        panic!("redis-server did not start again on port {}", self.port);
    }

    /// `redis-cli -p PORT ARGS`: what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
