//! `soquete sockets -i`: TCP internals per connection, and in `--watch` each connection's
//! throughput and `stuck` on a connection whose reader stopped reading.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};

use serde_json::Value;

use crate::support::LIMIT;
use crate::support::process::{Running, soquete};
use crate::support::sockets::{sockets_json, with_local_port};

/// A connection on 127.0.0.1: the client end, the accepted end, and the listener's port.
fn connection() -> (TcpStream, TcpStream, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let port = listener.local_addr().unwrap().port();
    (client, server, port)
}

#[test]
fn json_has_tcp_info_with_the_kernels_names_and_null_elsewhere() {
    let (mut client, mut server, port) = connection();
    client.write_all(&[7; 10_000]).unwrap();
    let mut received = vec![0; 10_000];
    server.read_exact(&mut received).unwrap();
    let client_port = client.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port().to_string();

    let rows = sockets_json(&["-ti", "--port", &port.to_string()]);
    let client_row = &with_local_port(&rows, client_port)[0];
    let info = &client_row["tcp_info"];
    for field in [
        "rtt_us",
        "rttvar_us",
        "snd_cwnd",
        "retransmits",
        "total_retrans",
        "bytes_sent",
        "bytes_acked",
        "bytes_received",
        "delivery_rate",
        "last_data_sent_ms",
        "last_data_recv_ms",
    ] {
        assert!(info[field].is_u64(), "{field} in {info}");
    }
    assert_eq!(info["bytes_sent"], 10_000, "{info}");
    assert!(info["snd_cwnd"].as_u64().unwrap() > 0, "{info}");
    let server_row = &with_local_port(&rows, port)
        .into_iter()
        .find(|row| row["state"] == "established")
        .unwrap();
    assert_eq!(server_row["tcp_info"]["bytes_received"], 10_000);

    let plain = sockets_json(&["-t", "--port", &port.to_string()]);
    assert_eq!(plain[0]["tcp_info"], Value::Null, "not asked for");
    let udp_rows = sockets_json(&["-uli", "--port", &udp_port]);
    assert_eq!(udp_rows[0]["tcp_info"], Value::Null, "UDP has none");
}

#[test]
fn the_table_gets_compact_columns() {
    let (client, _server, port) = connection();
    let output = soquete()
        .args(["sockets", "-tni", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let header = text.lines().next().unwrap();
    for column in [
        "RTT ms", "Cwnd", "Retr", "Sent", "Recv", "Rate B/s", "Idle s",
    ] {
        assert!(header.contains(column), "{column}: {text}");
    }
    let endpoint = client.local_addr().unwrap().to_string();
    let row = text.lines().find(|l| l.contains(&endpoint)).unwrap();
    let fields: Vec<_> = row.split_whitespace().collect();
    assert!(fields[6].contains('/'), "RTT rtt/rttvar: {row}");
    assert_eq!(fields[8], "0/0", "no retransmits on loopback: {row}");
}

/// A watch row whose local address is `endpoint`, split on whitespace, without its `+`/`-` mark:
/// Proto, Recv-Q, Send-Q, Local, Foreign, State, 7 info cells, In B/s, Out B/s, Class, Service, then
/// `stuck` when it is.
fn fields_of(line: &str, endpoint: &str) -> Option<Vec<String>> {
    let mut fields: Vec<String> = line.split_whitespace().map(String::from).collect();
    if fields
        .first()
        .is_some_and(|mark| mark == "+" || mark == "-")
    {
        fields.remove(0);
    }
    (fields.get(3).map(String::as_str) == Some(endpoint)).then_some(fields)
}

#[test]
fn watch_shows_throughput_and_marks_a_connection_whose_reader_stopped_as_stuck() {
    let (mut client, mut server, port) = connection();
    let endpoint = client.local_addr().unwrap().to_string();
    let watch = Running::start(&[
        "sockets",
        "-tni",
        "--port",
        &port.to_string(),
        "--watch",
        "0.1",
    ]);
    let out_rate = |fields: &[String]| fields.get(14).cloned().unwrap_or_default();
    watch
        .wait_for(LIMIT, |line| fields_of(line, &endpoint).is_some())
        .expect("a first frame with the connection");

    // Data flows: the client's Out/s shows it in the next frame.
    let data = vec![1u8; 1 << 20];
    let reader = std::thread::spawn(move || {
        let mut sink = vec![0; 1 << 20];
        server.read_exact(&mut sink).unwrap();
        server
    });
    client.write_all(&data).unwrap();
    let server = reader.join().unwrap();
    let flowing = watch
        .wait_for(LIMIT, |line| {
            fields_of(line, &endpoint).is_some_and(|f| !["-", "0"].contains(&&*out_rate(&f)))
        })
        .expect("a frame with the client's throughput out");
    assert!(!flowing.contains("stuck"), "{flowing}");

    // The reader stops: the client keeps writing (and blocks once the reader's window and its
    // own send buffer are full), so its Send-Q holds data that nothing drains. It ends when the
    // reader goes away at the end of the test.
    let mut writer_end = client.try_clone().unwrap();
    let writer = std::thread::spawn(move || while writer_end.write_all(&data).is_ok() {});
    let stuck = watch
        .wait_for(LIMIT, |line| {
            fields_of(line, &endpoint).is_some_and(|f| f.last().is_some_and(|w| w == "stuck"))
        })
        .expect("a frame that marks the client's end stuck");
    let fields = fields_of(&stuck, &endpoint).unwrap();
    assert_ne!(fields[2], "0", "Send-Q holds what the reader left: {stuck}");
    drop(server);
    writer.join().unwrap();
}
