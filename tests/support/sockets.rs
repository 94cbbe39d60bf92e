//! `soquete sockets --json`, run and parsed, and picking rows out of it.

use std::process::Command;

use serde_json::Value;

use super::process::{soquete, soquete_path};
use super::{is_root, require, tool};

/// `soquete ARGS` run as `nobody` (setpriv), to look at this process's sockets as another user
/// would; None (the test is skipped, or fails under CI) without root and setpriv.
pub fn soquete_as_nobody(args: &[&str]) -> Option<Command> {
    if !require(
        is_root() && tool("setpriv"),
        "root and setpriv, to look as another user",
    ) {
        return None;
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(soquete_path())
        .args(args);
    Some(command)
}

/// Runs `soquete sockets ARGS --json` and parses the array it prints.
pub fn sockets_json(args: &[&str]) -> Vec<Value> {
    let output = soquete()
        .arg("sockets")
        .args(args)
        .arg("--json")
        .output()
        .expect("soquete runs");
    assert!(output.status.success(), "soquete failed: {output:?}");
    match serde_json::from_slice(&output.stdout).expect("stdout is JSON") {
        Value::Array(rows) => rows,
        other => panic!("expected an array, got {other}"),
    }
}

/// Rows whose local port is `port`.
pub fn with_local_port(rows: &[Value], port: u16) -> Vec<Value> {
    rows.iter()
        .filter(|row| row["local_port"] == port)
        .cloned()
        .collect()
}
