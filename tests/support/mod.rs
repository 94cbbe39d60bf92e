//! What the integration tests share: one module per harness, the time any one step may take,
//! the one bounded poll for what has no event to wait on, and [`require`], which turns a missing
//! tool into a skip on a developer's machine and into a failure under CI.

pub mod course;
pub mod ddns_lab;
pub mod dns_server;
pub mod fake_server;
pub mod filtered_host;
pub mod hosts;
pub mod peer;
pub mod ports;
pub mod proc;
pub mod process;
pub mod redis;
pub mod resolver;
pub mod serve;
pub mod sockets;
pub mod tls;
pub mod tls_client;
pub mod tmux;
pub mod transcript;

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one step (a line, a frame, an exit, a screen) may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(10);

/// How often [`poll`] looks again: short against any timeout a test waits for.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Looks at `check` until it gives a value, for at most `limit`; None if it never did. For what
/// has no event to wait on (a process's exit, a terminal's screen, /proc): every other wait
/// blocks on its event with a timeout instead.
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Whether a test may go on: true when `available`. When not, the test fails under CI (which
/// installs every tool and runs as root, so nothing may skip there); elsewhere it says that it
/// is skipped, and why, and the test returns early.
#[track_caller]
pub fn require(available: bool, what: &str) -> bool {
    if available {
        return true;
    }
    assert!(
        !under_ci(),
        "this test needs {what}, and nothing may skip under CI"
    );
    eprintln!("skipped: this test needs {what}");
    false
}

/// Runs `ip STEP` for each step in turn; false (said by [`require`]) at the first that fails.
pub fn ip_steps(steps: &[String]) -> bool {
    steps.iter().all(|step| {
        let ok = Command::new("ip")
            .args(step.split_whitespace())
            .status()
            .is_ok_and(|s| s.success());
        require(ok, &format!("`ip {step}` to succeed"))
    })
}

/// True when the `CI` environment variable is set (to anything but empty, `0` or `false`).
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// Whether `program` is installed: it runs (`--version` or not, its exit status is no matter).
pub fn tool(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether the tests run as root (network namespaces, mounts, another user's view).
pub fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0)
}
