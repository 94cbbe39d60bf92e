//! `soquete sockets` against sockets the test opens itself on 127.0.0.1 and [::1].

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;

use serde_json::Value;

use crate::support::process::{Running, soquete, soquete_path};
use crate::support::sockets::{sockets_json, soquete_as_nobody, with_local_port};
use crate::support::{LIMIT, poll, require};

/// A listener with one accepted connection: three sockets on 127.0.0.1.
struct Pair {
    listener: TcpListener,
    client: TcpStream,
    _server_side: TcpStream,
}

impl Pair {
    fn open() -> Pair {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        Pair {
            listener,
            client,
            _server_side: server_side,
        }
    }

    fn server_port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    fn client_port(&self) -> u16 {
        self.client.local_addr().unwrap().port()
    }
}

/// Rows of the connection from local port `local` to remote port `remote`.
fn connection(rows: &[Value], local: u16, remote: u16) -> Vec<Value> {
    with_local_port(rows, local)
        .into_iter()
        .filter(|row| row["remote_port"] == remote)
        .collect()
}

fn stdout_of(args: &[&str]) -> String {
    let output = soquete().arg("sockets").args(args).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

fn error_of(args: &[&str]) -> (i32, String) {
    let output = soquete().arg("sockets").args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn listener_shows_with_l_and_not_without() {
    let pair = Pair::open();
    let needle = format!("127.0.0.1:{} ", pair.server_port());
    let listening = stdout_of(&["-tln"]);
    let line = listening
        .lines()
        .find(|l| l.contains(&needle) && l.contains("LISTEN"))
        .unwrap_or_else(|| panic!("listener in -l output:\n{listening}"));
    assert!(line.starts_with("tcp "), "{line}");
    let default = stdout_of(&["-tn"]);
    assert!(
        !default
            .lines()
            .any(|l| l.contains("LISTEN") && l.contains(&needle)),
        "no listener without -l:\n{default}"
    );
}

#[test]
fn established_pair_shows_with_t() {
    let pair = Pair::open();
    let text = stdout_of(&["-t", "--port", &pair.server_port().to_string()]);
    let established: Vec<_> = text.lines().filter(|l| l.contains("ESTABLISHED")).collect();
    assert_eq!(established.len(), 2, "both ends of the connection:\n{text}");
    let client_end = format!("127.0.0.1:{}", pair.client_port());
    assert!(established.iter().any(|l| l.contains(&client_end)));
}

/// `soquete sockets ARGS --json` once no other process holds our sockets: while another test
/// spawns a program, the child holds a copy of this process's descriptors until its exec closes
/// them, and the walk of `/proc` may see it there.
fn rows_owned_by_us_alone(args: &[&str], ours: impl Fn(&Value) -> bool) -> Vec<Value> {
    let alone = serde_json::json!([std::process::id()]);
    poll(LIMIT, || {
        let rows = sockets_json(args);
        rows.iter()
            .filter(|row| ours(row))
            .all(|row| row["pids"] == alone)
            .then_some(rows)
    })
    .expect("our sockets held by this process alone")
}

#[test]
fn p_shows_our_own_pid_and_program() {
    let pair = Pair::open();
    let port = pair.server_port();
    let rows = rows_owned_by_us_alone(&["-tlp"], |row| row["local_port"] == port);
    let mine = with_local_port(&rows, pair.server_port());
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["pids"], serde_json::json!([std::process::id()]));
    let program = mine[0]["programs"][0].as_str().unwrap().to_string();
    assert!(
        !program.is_empty() && program != "?",
        "program name: {program}"
    );

    let text = stdout_of(&["-tlnp", "--port", &pair.server_port().to_string()]);
    assert!(
        text.contains(&format!("{}/{program}", std::process::id())),
        "PID/Program column:\n{text}"
    );
}

#[test]
fn json_carries_the_documented_fields() {
    let pair = Pair::open();
    let rows = sockets_json(&["-ta"]);
    let listener = with_local_port(&rows, pair.server_port())
        .into_iter()
        .find(|row| row["state"] == "listen")
        .expect("listener row");
    for field in [
        "proto",
        "family",
        "local_addr",
        "local_port",
        "remote_addr",
        "remote_port",
        "state",
        "recv_q",
        "send_q",
        "pids",
        "programs",
        "class",
        "service_port",
        "service",
        "ephemeral",
        "uid",
        "inode",
    ] {
        assert!(listener.get(field).is_some(), "field {field} in {listener}");
    }
    assert_eq!(listener["proto"], "tcp");
    assert_eq!(listener["local_addr"], "127.0.0.1");
    assert_eq!(listener["remote_addr"], Value::Null);
    assert_eq!(listener["pids"], Value::Null, "owners not asked for");
    assert!(listener["recv_q"].is_u64() && listener["send_q"].is_u64());

    // The same local port may also belong to an old TIME_WAIT socket: match both ends.
    let client = connection(&rows, pair.client_port(), pair.server_port());
    assert_eq!(client.len(), 1, "{client:?}");
    assert_eq!(client[0]["state"], "established");
    assert_eq!(client[0]["remote_port"], pair.server_port());
}

#[test]
fn client_port_is_marked_ephemeral() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range");
    if !require(range.is_ok(), "/proc/sys/net/ipv4/ip_local_port_range") {
        return;
    }
    let range = range.unwrap();
    let bounds: Vec<u16> = range
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let pair = Pair::open();
    let rows = sockets_json(&["-t"]);
    let client = &connection(&rows, pair.client_port(), pair.server_port())[0];
    let expected = (bounds[0]..=bounds[1]).contains(&pair.client_port());
    assert_eq!(client["ephemeral"], expected);
}

#[test]
fn filters_narrow_the_list() {
    let pair = Pair::open();
    let port = pair.server_port().to_string();

    // Tests run side by side: the same port number can be another test's on another loopback
    // address ([::1]:P), or an earlier connection's lingering in TIME_WAIT. Only the open pair's
    // own sockets, on 127.0.0.1, are counted.
    let by_port: Vec<_> = sockets_json(&["-ta", "--port", &port])
        .into_iter()
        .filter(|row| row["local_addr"] == "127.0.0.1" && row["state"] != "time_wait")
        .collect();
    assert_eq!(by_port.len(), 3, "listener and both ends: {by_port:?}");

    let by_state = sockets_json(&["-ta", "--port", &port, "--state", "LISTEN"]);
    assert_eq!(by_state.len(), 1);
    assert_eq!(by_state[0]["state"], "listen");

    let established = sockets_json(&["-ta", "--port", &port, "--state", "established"]);
    assert_eq!(established.len(), 2);

    let by_pid =
        rows_owned_by_us_alone(&["-ta", "--pid", &std::process::id().to_string()], |_| true);
    assert!(
        by_pid
            .iter()
            .all(|r| r["pids"] == serde_json::json!([std::process::id()]))
    );
    assert_eq!(with_local_port(&by_pid, pair.server_port()).len(), 2);

    let not_our_pid = sockets_json(&["-ta", "--port", &port, "--pid", "1"]);
    assert!(not_our_pid.is_empty(), "{not_our_pid:?}");

    let by_process = sockets_json(&["-ta", "--port", &port, "--process", "no-such-program-xyz"]);
    assert!(by_process.is_empty());

    let udp_only = sockets_json(&["-ua", "--port", &port]);
    assert!(udp_only.is_empty(), "a TCP pair is not UDP: {udp_only:?}");

    let ipv6_only = sockets_json(&["-ta6", "--port", &port]);
    assert!(ipv6_only.is_empty(), "127.0.0.1 is not IPv6");
}

#[test]
fn process_filter_matches_our_program_name() {
    let pair = Pair::open();
    let port = pair.server_port().to_string();
    let rows = sockets_json(&["-tlp", "--port", &port]);
    let program = rows[0]["programs"][0].as_str().unwrap().to_string();
    let upper = program[..program.len().min(4)].to_uppercase();
    let matched = sockets_json(&["-tl", "--port", &port, "--process", &upper]);
    assert_eq!(
        matched.len(),
        1,
        "case-insensitive substring {upper} of {program}"
    );
}

#[test]
fn class_filter_and_column() {
    let pair = Pair::open();
    let port = pair.server_port().to_string();
    let rows = sockets_json(&["-tl", "--port", &port]);
    let class = rows[0]["class"].as_str().unwrap().to_string();
    let other = if class == "dynamic" {
        "well-known"
    } else {
        "dynamic"
    };
    assert_eq!(
        sockets_json(&["-tl", "--port", &port, "--class", &class]).len(),
        1
    );
    assert!(sockets_json(&["-tl", "--port", &port, "--class", other]).is_empty());
}

#[test]
fn ipv6_is_bracketed_and_unconnected_udp_says_so() {
    let v6 = TcpListener::bind("[::1]:0");
    if !require(v6.is_ok(), "an IPv6 loopback") {
        return;
    }
    let v6 = v6.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let v6_port = v6.local_addr().unwrap().port();
    let text = stdout_of(&["-tuln"]);
    assert!(text.contains(&format!("[::1]:{v6_port}")), "{text}");
    // The same port number can be another test's TCP socket: the UDP row is the one that says so.
    let local = format!("127.0.0.1:{}", udp.local_addr().unwrap().port());
    let udp_line = text
        .lines()
        .find(|l| l.starts_with("udp ") && l.split_whitespace().nth(3) == Some(&local))
        .expect("unconnected UDP socket listed with -l");
    let fields: Vec<_> = udp_line.split_whitespace().collect();
    assert_eq!(fields[0], "udp");
    assert_eq!(fields[5], "UNCONN", "UDP state column: {udp_line}");
    let rows = sockets_json(&["-ul"]);
    let row = &with_local_port(&rows, udp.local_addr().unwrap().port())[0];
    assert_eq!(row["state"], "unconnected");
}

#[test]
fn connected_udp_shows_its_peer() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    let rows = sockets_json(&["-u"]);
    let row = &with_local_port(&rows, a.local_addr().unwrap().port())[0];
    assert_eq!(row["remote_port"], b.local_addr().unwrap().port());
    assert!(
        with_local_port(&rows, b.local_addr().unwrap().port()).is_empty(),
        "b is unconnected"
    );
}

#[test]
fn sort_by_port_orders_rows() {
    let first = Pair::open();
    let second = Pair::open();
    let low = first.server_port().min(second.server_port()).to_string();
    let high = first.server_port().max(second.server_port()).to_string();
    let rows = sockets_json(&["-tl", "--sort", "port", "--port", &low, "--port", &high]);
    let ports: Vec<_> = rows
        .iter()
        .map(|r| r["local_port"].as_u64().unwrap())
        .collect();
    let mut sorted = ports.clone();
    sorted.sort();
    assert_eq!(ports, sorted);
    assert_eq!(ports.len(), 2);
}

#[test]
fn bad_values_are_one_readable_line() {
    for (args, mentions) in [
        (&["--state", "nonsense"][..], "established"),
        (&["--port", "70000"][..], "70000"),
        (&["--port", "9-1"][..], "9-1"),
        (&["--class", "huge"][..], "well-known"),
        (&["--sort", "colour"][..], "port"),
        (&["--pid", "abc"][..], "abc"),
        (&["--watch", "-1"][..], "-1"),
    ] {
        let (code, stderr) = error_of(args);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(mentions), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn closed_pipe_is_a_clean_exit() {
    // Enough sockets that the JSON outgrows the pipe buffer and the writer meets EPIPE.
    let listeners: Vec<_> = (0..400)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let script = format!(
        "set -o pipefail; '{}' sockets -tl --json | head -c 1 >/dev/null",
        soquete_path().display()
    );
    let output = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(listeners);
}

#[test]
fn watch_marks_new_sockets_and_exits_0_on_ctrl_c() {
    let pair = Pair::open();
    let port = pair.server_port();
    let mut watch = Running::start(&["sockets", "-tl", "--watch", "0.2"]);
    watch
        .wait_for(LIMIT, |line| line.contains(&format!("127.0.0.1:{port}")))
        .expect("first frame lists our listener");

    let newcomer = TcpListener::bind("127.0.0.1:0").unwrap();
    let new_port = newcomer.local_addr().unwrap().port();
    let marked = watch
        .wait_for(LIMIT, |line| {
            line.contains(&format!("127.0.0.1:{new_port}"))
        })
        .expect("a later frame lists the new listener");
    assert!(
        marked.trim_start().starts_with('+'),
        "marked as appeared: {marked}"
    );

    drop(newcomer);
    let gone = watch
        .wait_for(LIMIT, |line| {
            line.contains(&format!("127.0.0.1:{new_port}")) && line.trim_start().starts_with('-')
        })
        .expect("a frame marks the closed listener with -");
    assert!(gone.contains("LISTEN"));

    let status = watch.interrupt(LIMIT).expect("exits after Ctrl-C");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn hidden_owners_show_dash_and_one_note() {
    let pair = Pair::open();
    let port = pair.server_port().to_string();
    let Some(mut as_nobody) = soquete_as_nobody(&["sockets", "-tlp", "--port", &port]) else {
        return;
    };
    let output = as_nobody.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let row = stdout.lines().nth(1).expect("the listener row");
    assert_eq!(row.split_whitespace().nth(6), Some("-"), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("root"), "{stderr}");
}
