//! Programs run by the tests: the built `soquete` (at once with assert_cmd, or as a long-running
//! [`Running`] child), and any other program (nc, python3) as a `Running` too; and waiting for
//! the lines they print.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::poll;

/// A `soquete` command ready to run.
pub fn soquete() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("soquete").expect("the soquete binary is built")
}

/// The path of the built binary, for tests that need a long-running child.
pub fn soquete_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("soquete")
}

/// A child process whose stdout lines arrive on a channel, killed when dropped.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `soquete ARGS` with stdout piped and stdin closed.
    pub fn start(args: &[&str]) -> Running {
        Running::spawn(soquete_command(args, &[]), Stdio::null())
    }

    /// Starts `soquete ARGS` with stdout piped and stdin a pipe (`child.stdin`), to type into.
    pub fn start_with_stdin(args: &[&str]) -> Running {
        Running::start_with_stdin_env(args, &[])
    }

    /// As [`Running::start_with_stdin`], with these variables added to the environment.
    pub fn start_with_stdin_env(args: &[&str], env: &[(&str, &str)]) -> Running {
        Running::spawn(soquete_command(args, env), Stdio::piped())
    }

    /// Starts any program (nc, python3, …) with stdin and stdout piped.
    pub fn program(program: &str, args: &[&str]) -> Running {
        let mut command = Command::new(program);
        command.args(args);
        Running::spawn(command, Stdio::piped())
    }

    /// Starts `command` with stdout and stderr piped; stdout is read on a thread, line by line.
    pub fn spawn(mut command: Command, stdin: Stdio) -> Running {
        let mut child = command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("{command:?} starts: {err}"));
        let lines = line_channel(child.stdout.take().expect("stdout is piped"));
        Running { child, lines }
    }

    /// Waits (at most `limit`) for a stdout line that satisfies `wanted`; returns it.
    pub fn wait_for(&self, limit: Duration, wanted: impl FnMut(&str) -> bool) -> Option<String> {
        wait_line(&self.lines, limit, wanted)
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

    /// Sends SIGINT (Ctrl-C) and waits, at most `limit`, for the exit status.
    pub fn interrupt(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGINT);
        self.wait_exit(limit)
    }

    /// Sends SIGTERM (what `kill` and service managers send) and waits, at most `limit`, for
    /// the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.signal(libc::SIGTERM);
        self.wait_exit(limit)
    }

    /// Stops the child where it stands (SIGSTOP): it does nothing until [`Running::thaw`], and
    /// what it was sleeping for is over when it wakes.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen child go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Waits, at most `limit`, for the child to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        poll(limit, || self.child.try_wait().ok().flatten())
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill() with a PID we own (not yet reaped) and a valid signal number has no
        // memory effects.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `soquete ARGS` with `env` added to its environment.
fn soquete_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(soquete_path());
    command.args(args).envs(env.iter().copied());
    command
}

/// Lines read from `source` on a thread, as they come; the channel ends with the source.
pub fn line_channel(source: impl Read + Send + 'static) -> mpsc::Receiver<String> {
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

/// Receives lines into `seen` until one satisfies `wanted` (true), or the lines end or `limit`
/// passes (false). Every wait for a line is this one loop.
pub fn collect_until(
    lines: &mpsc::Receiver<String>,
    limit: Duration,
    seen: &mut Vec<String>,
    mut wanted: impl FnMut(&str) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = lines.recv_timeout(left) else {
            return false;
        };
        let done = wanted(&line);
        seen.push(line);
        if done {
            return true;
        }
    }
    false
}

/// Waits (at most `limit`) on `lines` for a line that satisfies `wanted`; returns it.
pub fn wait_line(
    lines: &mpsc::Receiver<String>,
    limit: Duration,
    wanted: impl FnMut(&str) -> bool,
) -> Option<String> {
    let mut seen = Vec::new();
    collect_until(lines, limit, &mut seen, wanted).then(|| seen.pop().expect("the line wanted"))
}

/// Every line up to and including the first for which `wanted` holds (within
/// [`LIMIT`](super::LIMIT)); panics with what it saw when none does.
pub fn lines_until(
    lines: &mpsc::Receiver<String>,
    wanted: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    assert!(
        collect_until(lines, super::LIMIT, &mut seen, wanted),
        "no such line; saw {seen:?}"
    );
    seen
}
