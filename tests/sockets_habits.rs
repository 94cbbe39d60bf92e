//! `soquete sockets` with the habits of ss and netstat users: `-tulpen`, `-H`, `-W`, `-o`,
//! `-4 -6`, and what it says when `--pid` names no process.

use std::net::TcpListener;

use crate::support::process::soquete;
use crate::support::sockets::{sockets_json, with_local_port};

/// `soquete sockets ARGS`: exit status, stdout and stderr.
fn sockets(args: &[&str]) -> (i32, String, String) {
    let output = soquete().arg("sockets").args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn extended_shows_the_uid_and_inode_as_netstat_e() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let json = &with_local_port(&sockets_json(&["-tl", "--port", &port.to_string()]), port)[0];
    let (status, out, err) = sockets(&["-tulpen", "--port", &port.to_string()]);
    assert_eq!(status, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert!(
        lines[0].contains("User") && lines[0].contains("Inode"),
        "{out}"
    );
    let fields: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        fields.len(),
        header.len() - 2,
        "Local Address, Foreign Address: {out}"
    );
    assert_eq!(fields[6], json["uid"].to_string(), "{out}");
    assert_eq!(fields[7], json["inode"].to_string(), "{out}");
}

#[test]
fn no_header_wide_and_timers_are_accepted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let (status, out, err) = sockets(&["-tlnH", "-W", "--port", &port]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "the row alone: {out}");
    assert!(out.contains(&format!("127.0.0.1:{port}")), "{out}");
    let (status, out, err) = sockets(&["-tlno", "--port", &port]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(err.lines().count(), 1, "one note: {err}");
    assert!(err.contains("timers are not shown"), "{err}");
}

#[test]
fn both_families_when_both_are_asked_for() {
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    let ports = [&v4, &v6].map(|l| l.local_addr().unwrap().port().to_string());
    let args = ["-tln", "-4", "-6", "--port", &ports[0], "--port", &ports[1]];
    let (status, out, err) = sockets(&args);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains(&format!("127.0.0.1:{}", ports[0])), "{out}");
    assert!(out.contains(&format!("[::1]:{}", ports[1])), "{out}");
}

#[test]
fn a_pid_that_is_no_process_is_said_so() {
    let (status, out, err) = sockets(&["-tan", "--pid", "999999"]);
    assert_eq!(
        status, 0,
        "as ss and netstat, nothing found is no failure: {err}"
    );
    assert_eq!(out.lines().count(), 1, "only the header: {out}");
    assert_eq!(err.trim(), "soquete: no process 999999", "{err}");
}

#[test]
fn sort_by_pid_shows_the_owners_it_sorts_by() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let (status, out, err) = sockets(&["-tln", "--sort", "pid", "--port", &port]);
    assert_eq!(status, 0, "{err}");
    assert!(out.lines().next().unwrap().contains("PID/Program"), "{out}");
    assert!(out.contains(&format!("{}/", std::process::id())), "{out}");
}
