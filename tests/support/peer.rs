//! [`Peer`]: one TCP connection played by a test, read line by line with a timeout, on either
//! end: a client of `soquete serve` (raw, as nc is, or structured, speaking soquete's JSON
//! frames), or the accepted end of a server the test plays (see `fake_server`).

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::LIMIT;

/// Most lines a test reads while looking for one.
pub const MAX_LINES: usize = 5_000;

/// One connection, read line by line; every read and write gives up after [`LIMIT`].
pub struct Peer {
    pub writer: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Peer {
    /// Wraps a connected stream (ours, or one a test's listener accepted).
    pub fn new(stream: TcpStream) -> Peer {
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        stream.set_write_timeout(Some(LIMIT)).unwrap();
        Peer {
            writer: stream.try_clone().expect("the stream can be cloned"),
            reader: BufReader::new(stream),
        }
    }

    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Peer {
        Peer::new(TcpStream::connect_timeout(&addr, LIMIT).expect("connects"))
    }

    /// A raw client (nc, telnet): it hears a greeting line at once, returned with it.
    pub fn raw(addr: SocketAddr) -> (Peer, String) {
        let mut peer = Peer::connect(addr);
        let greeting = peer.line();
        (peer, greeting)
    }

    /// A structured client: says hello, skips the plain greeting, returns once welcomed.
    pub fn structured(addr: SocketAddr, name: &str) -> Peer {
        let (peer, welcome) =
            Peer::join(addr, json!({"type": "hello", "version": 1, "name": name}));
        assert_eq!(welcome["name"], name, "{welcome}");
        peer
    }

    /// A structured client, as [`Peer::structured`]; returns it with its resume token.
    pub fn session(addr: SocketAddr, name: &str) -> (Peer, String) {
        let (peer, welcome) =
            Peer::join(addr, json!({"type": "hello", "version": 1, "name": name}));
        assert_eq!(welcome["name"], name, "{welcome}");
        let token = welcome["token"].as_str().expect("a welcome gives a token");
        (peer, token.to_string())
    }

    /// A structured client that reconnects: its hello says the last `seq` it saw, and carries
    /// its session's resume token. Returns the peer and its `welcome`.
    pub fn resume(addr: SocketAddr, name: &str, last_seq: u64, token: &str) -> (Peer, Value) {
        Peer::join(
            addr,
            json!({"type": "hello", "version": 1, "name": name, "last_seq": last_seq, "token": token}),
        )
    }

    /// A structured client that says `hello` (any fields): returns the peer and its `welcome`.
    pub fn join(addr: SocketAddr, hello: Value) -> (Peer, Value) {
        let mut peer = Peer::connect(addr);
        peer.send_json(hello);
        let welcome = peer.frame_where(|f| f["type"] == "welcome");
        (peer, welcome)
    }

    /// Sends `text` and a newline.
    pub fn send(&mut self, text: &str) {
        self.writer
            .write_all(format!("{text}\n").as_bytes())
            .expect("the other end is connected");
    }

    /// Sends one JSON frame as a line.
    pub fn send_json(&mut self, frame: Value) {
        self.send(&frame.to_string());
    }

    /// A structured client's chat message.
    pub fn say(&mut self, text: &str) {
        self.send_json(json!({"type": "msg", "text": text}));
    }

    /// The next line without its line ending; None at the end of the stream (or a reset).
    /// Panics when none comes within [`LIMIT`].
    pub fn next(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
            Err(err) if err.kind() == ErrorKind::ConnectionReset => None,
            Err(err) => panic!("no line in time: {err}"),
        }
    }

    /// The next line; panics at the end of the stream.
    pub fn line(&mut self) -> String {
        self.next().expect("a line before the end of the stream")
    }

    /// The next line for which `wanted` holds, within [`LIMIT`] (heartbeats keep a connection
    /// talking, so a wait is bounded in time, not only in lines).
    pub fn line_where(&mut self, mut wanted: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + LIMIT;
        for _ in 0..MAX_LINES {
            let line = self.line();
            if wanted(&line) {
                return line;
            }
            assert!(Instant::now() < deadline, "no such line in time");
        }
        panic!("no such line in {MAX_LINES}");
    }

    /// The next line, which must be a JSON frame.
    pub fn frame(&mut self) -> Value {
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON: {line}: {err}"))
    }

    /// The next JSON frame for which `wanted` holds (plain lines, such as a greeting, and other
    /// frames are passed over).
    pub fn frame_where(&mut self, mut wanted: impl FnMut(&Value) -> bool) -> Value {
        let mut found = None;
        self.line_where(|line| {
            let Ok(frame) = serde_json::from_str::<Value>(line) else {
                return false;
            };
            let done = wanted(&frame);
            found = done.then_some(frame);
            done
        });
        found.expect("the frame wanted")
    }

    /// Reads frames until `wanted` holds, keeping every chat message met on the way.
    pub fn frames_until(
        &mut self,
        heard: &mut Vec<Value>,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        self.frame_where(|frame| {
            if frame["type"] == "msg" {
                heard.push(frame.clone());
            }
            wanted(frame)
        })
    }

    /// The next `count` chat messages, passing over other frames.
    pub fn messages(&mut self, count: usize) -> Vec<Value> {
        (0..count)
            .map(|_| self.frame_where(|f| f["type"] == "msg"))
            .collect()
    }

    /// True when the other end has closed the connection (after what is left to read).
    pub fn closed(&mut self) -> bool {
        let mut rest = String::new();
        for _ in 0..MAX_LINES {
            rest.clear();
            match self.reader.read_line(&mut rest) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Ends the connection with a reset (RST), as when a process dies with unread data.
    pub fn reset(self) {
        socket2::SockRef::from(&self.writer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
}
