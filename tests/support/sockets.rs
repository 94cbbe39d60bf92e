//! `soquete sockets --json`, run and parsed, and picking rows out of it.

use serde_json::Value;

use super::process::soquete;

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
