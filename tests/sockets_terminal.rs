//! `soquete sockets` on a real terminal (a tmux pane): one line per socket whatever the width,
//! as ss prints, and `--watch` on a screen too short for its rows says how many it left out.

use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};

use crate::support::process::{soquete, soquete_path};
use crate::support::sockets::{sockets_json, with_local_port};
use crate::support::tmux::Tmux;
use crate::support::{LIMIT, poll};

/// A connection on 127.0.0.1 whose reader never reads, with a Send-Q of several digits: the
/// client end, the accepted end, and the listener's port.
fn connection_with_unsent_data() -> (TcpStream, TcpStream, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nonblocking(true).unwrap();
    let chunk = [7u8; 64 * 1024];
    // Writes until the reader's window is full and data waits in the client's Send-Q.
    poll(LIMIT, || {
        for _ in 0..1_000 {
            match client.write(&chunk) {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) => panic!("writing: {err}"),
            }
        }
        (send_q(&client) >= 10_000).then_some(())
    })
    .expect("data waiting in the client's Send-Q");
    (client, server, listener.local_addr().unwrap().port())
}

/// The client's Send-Q, as soquete's JSON says (of its connection: a socket in TIME_WAIT may
/// have the same local port).
fn send_q(client: &TcpStream) -> u64 {
    let client_port = client.local_addr().unwrap().port();
    let server_port = client.peer_addr().unwrap().port();
    let rows = sockets_json(&["-tn", "--port", &client_port.to_string()]);
    let ours = with_local_port(&rows, client_port)
        .into_iter()
        .find(|row| row["remote_port"] == server_port)
        .expect("the client's row");
    ours["send_q"].as_u64().unwrap()
}

/// Asserts that each of the two rows of the connection is one line, with its addresses whole,
/// and the client's Send-Q whole: near what JSON said before (`send_q_before`; it still moves a
/// little while the kernel tunes the reader's window, where a cut would divide it by ten).
fn assert_one_line_per_socket(
    screen: &[String],
    client: &TcpStream,
    server: &TcpStream,
    send_q_before: u64,
) {
    let (client_end, server_end) = (
        client.local_addr().unwrap().to_string(),
        server.local_addr().unwrap().to_string(),
    );
    let rows: Vec<&String> = screen
        .iter()
        .filter(|line| line.contains(&client_end) && line.contains(&server_end))
        .collect();
    assert_eq!(rows.len(), 2, "both ends, one line each: {screen:#?}");
    let client_row = rows
        .iter()
        .find(|line| line.find(&client_end) < line.find(&server_end))
        .unwrap();
    // Proto, Recv-Q, Send-Q, … after the watch mark, with or without borders.
    let words: Vec<&str> = client_row
        .split(|c: char| c.is_whitespace() || c == '│' || c == '┆')
        .filter(|word| !word.is_empty() && *word != "+")
        .collect();
    let shown: u64 = words[2].parse().expect("a whole Send-Q");
    assert!(send_q_before >= 10_000, "several digits: {send_q_before}");
    assert!(
        (send_q_before / 2..=send_q_before * 2).contains(&shown),
        "Send-Q whole, near {send_q_before}: {client_row}"
    );
}

#[test]
fn a_narrow_terminal_keeps_each_socket_on_one_line() {
    let (client, server, port) = connection_with_unsent_data();
    let send_q_before = send_q(&client);
    let command = format!(
        "{} sockets -tnip --port {port}; echo \"exit status $?\"",
        soquete_path().display()
    );
    let Some(tmux) = Tmux::start_sized("sockets-narrow", &command, 90, 20) else {
        return;
    };
    tmux.wait_screen("the end of the table", |screen| {
        screen.iter().any(|line| line == "exit status 0")
    });
    assert_one_line_per_socket(&tmux.screen_joined(), &client, &server, send_q_before);
}

#[test]
fn watch_on_a_narrow_terminal_keeps_each_socket_on_one_line() {
    let (client, server, port) = connection_with_unsent_data();
    let send_q_before = send_q(&client);
    let command = format!(
        "{} sockets -tnip --port {port} --watch 0.2",
        soquete_path().display()
    );
    // A screen whose edge falls inside the RTT column: the watch mark, then the table as a pipe
    // gets it, cut three columns into "RTT ms".
    let piped = soquete()
        .args(["sockets", "-tnip", "--port", &port.to_string()])
        .output()
        .unwrap();
    let piped = String::from_utf8(piped.stdout).unwrap();
    let rtt_at = piped.lines().next().unwrap().find("RTT ms").unwrap();
    let width = u16::try_from(3 + rtt_at + 3).unwrap();
    let Some(tmux) = Tmux::start_sized("sockets-narrow-watch", &command, width, 20) else {
        return;
    };
    let client_end = client.local_addr().unwrap().to_string();
    let screen = tmux.wait_screen("a frame with the connection", |screen| {
        screen
            .iter()
            .filter(|line| line.contains(&client_end))
            .count()
            == 2
    });
    assert_one_line_per_socket(&screen, &client, &server, send_q_before);
    // What does not fit is left out whole, never cut at the screen's edge.
    let header = screen.iter().find(|line| line.contains("Proto")).unwrap();
    let known = [
        "Proto",
        "Recv-Q",
        "Send-Q",
        "Local Address",
        "Foreign Address",
        "State",
        "PID/Program",
        "RTT ms",
        "Cwnd",
        "Retr",
        "Sent",
        "Recv",
        "Rate B/s",
        "Idle s",
        "In B/s",
        "Out B/s",
        "Class",
        "Service",
        "Flow",
    ];
    for column in header.split("  ").map(str::trim).filter(|c| !c.is_empty()) {
        assert!(known.contains(&column), "{column:?} whole: {screen:#?}");
    }
}

#[test]
fn watch_on_a_short_terminal_says_how_many_rows_it_left_out() {
    let listeners: Vec<TcpListener> = (0..10)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<String> = listeners
        .iter()
        .map(|l| format!("--port {}", l.local_addr().unwrap().port()))
        .collect();
    let command = format!(
        "{} sockets -tln {} --watch 0.2",
        soquete_path().display(),
        ports.join(" ")
    );
    let Some(tmux) = Tmux::start_sized("sockets-short-watch", &command, 100, 8) else {
        return;
    };
    let screen = tmux.wait_screen("a frame that ends with what it left out", |screen| {
        screen
            .last()
            .is_some_and(|line| line.ends_with("more (of 10)"))
    });
    let shown = screen
        .iter()
        .filter(|line| line.contains("127.0.0.1:"))
        .count();
    let more = format!("… {} more (of 10)", 10 - shown);
    assert_eq!(screen.last().unwrap(), &more, "{screen:#?}");
    assert!(screen.len() <= 8, "{screen:#?}");
}
