//! `soquete` with a private `/etc/hosts`: bind-mounted over the real one in a mount namespace of
//! its own, so names resolve as a test says without touching the machine's file.

use std::process::{Command, Output};

use super::process::soquete_path;
use super::{is_root, require, tool};

/// Runs `soquete ARGS` with `/etc/hosts` replaced by `hosts`; None (the test is skipped, or
/// fails under CI) without root and `unshare`.
pub fn with_hosts(hosts: &str, args: &[&str]) -> Option<Output> {
    if !require(
        is_root() && tool("unshare"),
        "root and unshare, for a private /etc/hosts",
    ) {
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
        .args(args)
        .output()
        .expect("unshare runs");
    Some(output)
}
