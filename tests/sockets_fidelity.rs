//! `soquete sockets` where netstat and ss users expect it to behave as those do: repeated flags,
//! the documented sort, a stable owner order, the notes on hidden owners, process names that
//! carry escapes, and UDP's state.

use std::net::{TcpListener, UdpSocket};

use serde_json::Value;

use crate::support::process::{Running, soquete};
use crate::support::sockets::{sockets_json, soquete_as_nobody, with_local_port};
use crate::support::tmux::Tmux;
use crate::support::{LIMIT, require, tool};

#[test]
fn repeated_flags_are_accepted_as_netstat_and_ss_do() {
    for args in [
        &["-t", "-t"][..],
        &["-tuanp", "-p"][..],
        &["-tan", "-a"][..],
        &["-tln", "--listening", "-n"][..],
    ] {
        let output = soquete().arg("sockets").args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("multiple times"), "{args:?}: {stderr}");
    }
    // Values that add up still add up when repeated.
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let ports = [
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    ];
    let rows = sockets_json(&[
        "-tl",
        "-l",
        "--port",
        &ports[0].to_string(),
        "--port",
        &ports[1].to_string(),
    ]);
    assert_eq!(rows.len(), 2, "{rows:?}");
}

/// A python process that forks: parent and child both hold one listener; prints its port, the
/// child's PID, then waits for stdin to close.
fn shared_listener() -> (Running, u16, u32, u32) {
    let script = "import os,socket,sys\n\
        s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
        r,w=os.pipe()\n\
        pid=os.fork()\n\
        if pid==0:\n    os.close(w); os.read(r,1); os._exit(0)\n\
        print(s.getsockname()[1], pid, flush=True)\n\
        sys.stdin.read(); os.close(w); os.waitpid(pid,0)\n";
    let holder = Running::program("python3", &["-c", script]);
    let line = holder.wait_for(LIMIT, |_| true).expect("the holder's port");
    let mut fields = line.split_whitespace().map(|f| f.parse::<u32>().unwrap());
    let port = fields.next().unwrap() as u16;
    let child = fields.next().unwrap();
    let parent = holder.child.id();
    (holder, port, parent, child)
}

#[test]
fn owners_of_a_shared_socket_come_in_pid_order_every_time() {
    if !require(tool("python3"), "python3") {
        return;
    }
    let (_holder, port, parent, child) = shared_listener();
    let mut expected = vec![parent, child];
    expected.sort();
    for _ in 0..12 {
        let rows = sockets_json(&["-tlp", "--port", &port.to_string()]);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["pids"], serde_json::json!(expected), "{rows:?}");
    }
}

#[test]
fn sort_by_port_is_local_then_remote_port() {
    // Two listeners on one port: 127.0.0.2 (TCP) and 127.0.0.1 (UDP), and connections to both
    // ends of a pair; with --sort port, rows of the same local port follow the remote port.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let clients: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap())
        .collect();
    let accepted: Vec<_> = (0..3).map(|_| listener.accept().unwrap().0).collect();
    let udp = UdpSocket::bind(("127.0.0.1", port));
    let v6 = TcpListener::bind(("::1", port));
    let rows = sockets_json(&["-tua", "--sort", "port", "--port", &port.to_string()]);
    let keys: Vec<(u64, u64)> = rows
        .iter()
        .filter(|row| row["local_port"] == port && row["state"] != "time_wait")
        .map(|row| {
            (
                row["local_port"].as_u64().unwrap(),
                row["remote_port"].as_u64().map_or(0, |p| p + 1),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "local port, then remote port: {rows:?}");
    assert!(keys.len() >= 4, "{rows:?}");
    drop((clients, accepted, udp, v6));
}

#[test]
fn pid_and_process_filters_say_why_another_users_sockets_are_not_listed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let me = std::process::id().to_string();
    let program = sockets_json(&["-tlp", "--port", &port])[0]["programs"][0]
        .as_str()
        .unwrap()
        .to_string();
    for filter in [["--pid", me.as_str()], ["--process", program.as_str()]] {
        let args = ["sockets", "-tl", "--port", &port, filter[0], filter[1]];
        let Some(mut as_nobody) = soquete_as_nobody(&args) else {
            return;
        };
        let output = as_nobody.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stdout.lines().count(), 1, "only the header: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{filter:?}: {stderr}");
        assert!(
            stderr.contains("not all processes could be identified") && stderr.contains("root"),
            "{filter:?}: {stderr}"
        );
        assert!(stderr.contains(&me), "names the hidden process: {stderr}");
    }
}

#[test]
fn watch_on_a_terminal_shows_the_hidden_owners_note() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let args = ["sockets", "-tlp", "--port", &port, "--watch", "0.2"];
    let Some(as_nobody) = soquete_as_nobody(&args) else {
        return;
    };
    // The same command line, in tmux's shell.
    let command = std::iter::once(as_nobody.get_program())
        .chain(as_nobody.get_args())
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let Some(tmux) = Tmux::start("sockets-note", &command) else {
        return;
    };
    let screen = tmux.wait_screen("the watch frame with our listener", |screen| {
        screen.iter().any(|line| line.contains(&port))
    });
    assert!(
        screen
            .iter()
            .any(|line| line.contains("not all processes could be identified")),
        "{screen:#?}"
    );
}

#[test]
fn a_program_name_with_escapes_cannot_reach_the_terminal() {
    if !require(tool("python3"), "python3") {
        return;
    }
    // prctl(PR_SET_NAME) gives the process a name with an escape sequence and a newline.
    let script = "import ctypes,socket,sys\n\
        ctypes.CDLL(None).prctl(15, b'bad\\x1b[7mX\\nY', 0, 0, 0)\n\
        s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
        print(s.getsockname()[1], flush=True)\n\
        sys.stdin.read()\n";
    let holder = Running::program("python3", &["-c", script]);
    let port = holder.wait_for(LIMIT, |_| true).expect("the holder's port");
    let output = soquete()
        .args(["sockets", "-tlnp", "--port", port.trim()])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "one header, one row: {text:?}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains("badX\u{fffd}Y"), "{text:?}");
}

#[test]
fn udp_state_is_established_when_connected_and_unconn_otherwise() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    let (a_port, b_port) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );

    // Only our two sockets: other tests' sockets may share a port number (on another address,
    // or TCP, whose ports are counted apart from UDP's).
    let ours = |rows: Vec<Value>, port: u16| -> Vec<Value> {
        with_local_port(&rows, port)
            .into_iter()
            .filter(|row| row["proto"] == "udp" && row["local_addr"] == "127.0.0.1")
            .collect()
    };
    let rows = sockets_json(&["-ua"]);
    assert_eq!(ours(rows.clone(), a_port)[0]["state"], "established");
    assert_eq!(ours(rows, b_port)[0]["state"], "unconnected");

    let output = soquete().args(["sockets", "-uan"]).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let state_of = |port: u16| -> String {
        let local = format!("127.0.0.1:{port}");
        let fields = text
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.get(3) == Some(&local.as_str()))
            .unwrap();
        fields[5].to_string()
    };
    assert_eq!(state_of(a_port), "ESTABLISHED", "{text}");
    assert_eq!(state_of(b_port), "UNCONN", "{text}");

    let established = ours(
        sockets_json(&["--state", "established", "--port", &a_port.to_string()]),
        a_port,
    );
    assert_eq!(established.len(), 1, "{established:?}");
    assert_eq!(established[0]["proto"], "udp");
    let unconnected = ours(
        sockets_json(&["--state", "unconn", "--port", &b_port.to_string()]),
        b_port,
    );
    assert_eq!(unconnected.len(), 1, "{unconnected:?}");
    assert_eq!(unconnected[0]["state"], Value::from("unconnected"));
}
