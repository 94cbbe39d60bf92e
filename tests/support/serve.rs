//! `soquete serve` as a child process, on port 0 (or a port it had before), found by the
//! address it prints (`listening on IP:PORT`).

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use super::LIMIT;
use super::process::{Running, soquete_path};

/// A `soquete serve` to start: its flags, port, environment and whether its console (stdin) is a
/// pipe to type into.
pub struct Serve {
    args: Vec<String>,
    port: u16,
    env: Vec<(String, String)>,
    console: bool,
}

impl Serve {
    /// `soquete serve --port 0 ARGS`.
    pub fn new(args: &[&str]) -> Serve {
        Serve {
            args: args.iter().map(|arg| arg.to_string()).collect(),
            port: 0,
            env: Vec::new(),
            console: false,
        }
    }

    /// On this port instead of 0 (a restarted server taking its port back).
    pub fn port(mut self, port: u16) -> Serve {
        self.port = port;
        self
    }

    /// With `var=value` in its environment (a test override such as a shorter heartbeat).
    pub fn env(mut self, var: &str, value: &str) -> Serve {
        self.env.push((var.into(), value.into()));
        self
    }

    /// With its console (stdin) a pipe to type into, rather than closed.
    pub fn console(mut self) -> Serve {
        self.console = true;
        self
    }

    /// Starts it and waits for the address it listens on.
    pub fn start(self) -> (Running, SocketAddr) {
        let mut command = Command::new(soquete_path());
        command
            .args(["serve", "--port", &self.port.to_string()])
            .args(&self.args)
            .envs(self.env);
        let stdin = if self.console {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let server = Running::spawn(command, stdin);
        let addr = listening_on(&server);
        (server, addr)
    }
}

/// Starts `soquete serve --port 0 ARGS` and returns it with the address it listens on.
pub fn start_server(args: &[&str]) -> (Running, SocketAddr) {
    Serve::new(args).start()
}

/// As [`start_server`], with the server's console (stdin) a pipe to type into.
pub fn start_server_with_console(args: &[&str]) -> (Running, SocketAddr) {
    Serve::new(args).console().start()
}

/// The address a server just started prints first (`listening on IP:PORT`).
pub fn listening_on(server: &Running) -> SocketAddr {
    let line = server
        .wait_for(LIMIT, |line| line.starts_with("listening on "))
        .expect("the server prints the socket it listens on");
    line["listening on ".len()..]
        .trim()
        .parse()
        .expect("listening on IP:PORT")
}

/// Types `line` at the server's console (started with [`Serve::console`]).
pub fn type_at_console(server: &mut Running, line: &str) {
    let stdin = server.child.stdin.as_mut().expect("the console is a pipe");
    stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
}

/// The next line the server's console prints that satisfies `wanted` (within [`LIMIT`]).
pub fn console_line(server: &Running, wanted: impl FnMut(&str) -> bool) -> String {
    server
        .wait_for(LIMIT, wanted)
        .expect("the console prints it in time")
}
