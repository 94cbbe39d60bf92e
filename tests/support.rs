//! Helpers shared by the integration tests: running the binary and reading what it prints.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `soquete` command ready to run.
pub fn soquete() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("soquete").expect("the soquete binary is built")
}

/// The path of the built binary, for tests that need a long-running child.
pub fn soquete_path() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("soquete")
}

/// Runs `soquete ARGS --json` and parses the array it prints.
pub fn sockets_json(args: &[&str]) -> Vec<serde_json::Value> {
    let output = soquete()
        .arg("sockets")
        .args(args)
        .arg("--json")
        .output()
        .expect("soquete runs");
    assert!(output.status.success(), "soquete failed: {output:?}");
    match serde_json::from_slice(&output.stdout).expect("stdout is JSON") {
        serde_json::Value::Array(rows) => rows,
        other => panic!("expected an array, got {other}"),
    }
}

/// Rows whose local port is `port`.
pub fn with_local_port(rows: &[serde_json::Value], port: u16) -> Vec<serde_json::Value> {
    rows.iter()
        .filter(|row| row["local_port"] == port)
        .cloned()
        .collect()
}

/// A child process whose stdout lines arrive on a channel, killed when dropped.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `soquete ARGS` with stdout piped and stdin closed.
    pub fn start(args: &[&str]) -> Running {
        Running::spawn(args, Stdio::null())
    }

    /// Starts `soquete ARGS` with stdout piped and stdin a pipe (`child.stdin`), to type into.
    pub fn start_with_stdin(args: &[&str]) -> Running {
        Running::spawn(args, Stdio::piped())
    }

    fn spawn(args: &[&str], stdin: Stdio) -> Running {
        let mut child = Command::new(soquete_path())
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("soquete starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Waits (at most `limit`) for a line that satisfies `wanted`; returns it.
    pub fn wait_for(&self, limit: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Sends SIGINT (Ctrl-C) and waits, at most `limit`, for the exit status.
    pub fn interrupt(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill() with a PID we own and a valid signal number has no memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Running {
    /// Sends SIGTERM (what `kill` and service managers send) and waits, at most `limit`, for
    /// the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill() with a PID we own and a valid signal number has no memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.wait_exit(limit)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `soquete serve --port 0 ARGS` and returns it with the address it printed
/// (`listening on IP:PORT`).
pub fn start_server(args: &[&str]) -> (Running, std::net::SocketAddr) {
    listening(Running::start(&serve_args(args)))
}

/// As [`start_server`], with the server's console (stdin) a pipe to type into.
pub fn start_server_with_console(args: &[&str]) -> (Running, std::net::SocketAddr) {
    listening(Running::start_with_stdin(&serve_args(args)))
}

/// As [`start_server`], on a given port (a restarted server taking its port back).
pub fn start_server_at(port: u16, args: &[&str]) -> (Running, std::net::SocketAddr) {
    let port = port.to_string();
    let mut all = vec!["serve", "--port", port.as_str()];
    all.extend_from_slice(args);
    listening(Running::start(&all))
}

fn serve_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["serve", "--port", "0"];
    all.extend_from_slice(args);
    all
}

fn listening(server: Running) -> (Running, std::net::SocketAddr) {
    let line = server
        .wait_for(Duration::from_secs(10), |line| {
            line.starts_with("listening on ")
        })
        .expect("the server prints the socket it listens on");
    let addr = line["listening on ".len()..]
        .trim()
        .parse()
        .expect("listening on IP:PORT");
    (server, addr)
}

/// Lines read from `source` on a thread, as they come.
fn line_channel(source: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Waits (at most `limit`) on `lines` for a line that satisfies `wanted`; returns it.
pub fn wait_line(
    lines: &mpsc::Receiver<String>,
    limit: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

impl Running {
    /// Starts any program (nc, python3, …) with stdin and stdout piped, killed when dropped.
    pub fn program(program: &str, args: &[&str]) -> Running {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("{program} starts: {err}"));
        let lines = line_channel(child.stdout.take().expect("stdout is piped"));
        Running { child, lines }
    }

    /// As [`Running::start_with_stdin`], with these variables added to the environment.
    pub fn start_with_stdin_env(args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut child = Command::new(soquete_path())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("soquete starts");
        let lines = line_channel(child.stdout.take().expect("stdout is piped"));
        Running { child, lines }
    }

    /// The child's stderr lines on a channel (once: the pipe is taken).
    pub fn stderr_lines(&mut self) -> mpsc::Receiver<String> {
        line_channel(
            self.child
                .stderr
                .take()
                .expect("stderr is piped, taken once"),
        )
    }

    /// Waits, at most `limit`, for the child to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
