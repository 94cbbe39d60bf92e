//! Servers played by the test on 127.0.0.1 (port 0), for the chat client to connect to:
//! [`Scripted`] runs a script on its one connection, [`FakeServer`] keeps its listener for the
//! whole test and hands over every connection (a client that reconnects); and the server's side
//! of soquete's protocol, spoken by a [`Peer`] they accepted.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;

use serde_json::Value;

use super::LIMIT;
use super::peer::Peer;

/// The plain line a soquete server greets with before the client's `hello`.
pub const GREETING: &str = "* soquete test server: send a JSON hello, or just type";

/// A server that runs `script` on its first connection; the script's result comes back through
/// [`Scripted::result`].
pub struct Scripted<T> {
    pub addr: SocketAddr,
    pub result: mpsc::Receiver<T>,
}

impl<T: Send + 'static> Scripted<T> {
    /// Listens, and runs `script` on a thread once the client connects.
    pub fn start(script: impl FnOnce(&mut Peer) -> T + Send + 'static) -> Scripted<T> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Scripted::start_on(listener, script)
    }

    /// As [`Scripted::start`], on a listener the test made (a port shared with another address).
    pub fn start_on(
        listener: TcpListener,
        script: impl FnOnce(&mut Peer) -> T + Send + 'static,
    ) -> Scripted<T> {
        let addr = listener.local_addr().unwrap();
        let (tx, result) = mpsc::channel();
        thread::spawn(move || {
            let (stream, _) = listener.accept().expect("the client connects");
            let _ = tx.send(script(&mut Peer::new(stream)));
        });
        Scripted { addr, result }
    }

    /// The address as the client's target argument.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// What the script returned (it must finish within [`LIMIT`]).
    pub fn result(&self) -> T {
        self.result
            .recv_timeout(LIMIT)
            .expect("the in-test server finished its script")
    }
}

/// A server whose listener stays open for the whole test: every connection it accepts is handed
/// over by [`FakeServer::next_peer`].
pub struct FakeServer {
    pub addr: SocketAddr,
    peers: mpsc::Receiver<Peer>,
}

impl FakeServer {
    /// Listens, accepting on a thread for as long as the server is kept.
    pub fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let (tx, peers) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                if tx.send(Peer::new(stream)).is_err() {
                    return;
                }
            }
        });
        FakeServer { addr, peers }
    }

    /// The address as the client's target argument.
    pub fn target(&self) -> String {
        self.addr.to_string()
    }

    /// The next connection the client makes.
    pub fn next_peer(&self) -> Peer {
        self.peers
            .recv_timeout(LIMIT)
            .expect("the client connects (again)")
    }
}

/// The server's side of soquete's protocol.
impl Peer {
    /// The greeting, then the client's `hello`, returned as sent.
    pub fn hello(&mut self) -> Value {
        self.send(GREETING);
        let hello = self.frame();
        assert_eq!(hello["type"], "hello", "{hello}");
        assert_eq!(hello["version"], 1, "{hello}");
        hello
    }

    /// A first connection: greeting, `hello`, and a `welcome` with no room history; returns
    /// the name the client asked for.
    pub fn handshake(&mut self) -> String {
        let hello = self.hello();
        let name = hello["name"]
            .as_str()
            .expect("hello has a name")
            .to_string();
        self.send(&welcome(&name, ""));
        name
    }

    /// A `welcome` to a room whose last message is `last_seq`, with `missed` messages the
    /// client cannot be sent again.
    pub fn welcome(&mut self, name: &str, last_seq: u64, missed: Option<u64>) {
        let missed = missed.map_or(String::new(), |n| format!(r#","missed":{n}"#));
        self.send(&welcome(
            name,
            &format!(r#","last_seq":{last_seq}{missed}"#),
        ));
    }

    /// A chat message `seq` from `from`, sent at 14:03:07.
    pub fn msg(&mut self, seq: u64, from: &str, text: &str) {
        self.send(&format!(
            r#"{{"type":"msg","seq":{seq},"time":"2026-11-26T14:03:07-03:00","from":"{from}","text":"{text}"}}"#
        ));
    }

    /// The `bye` that answers a client's `quit`.
    pub fn bye(&mut self) {
        self.send(r#"{"type":"bye","reason":"you left","code":"quit"}"#);
    }

    /// The client's frames up to and including `quit`, answered with `bye`: the texts it said.
    pub fn said_until_quit(&mut self) -> Vec<String> {
        let mut said = Vec::new();
        for _ in 0..super::peer::MAX_LINES {
            let frame = self.frame();
            match frame["type"].as_str() {
                Some("msg") => said.push(frame["text"].as_str().unwrap().to_string()),
                Some("quit") => {
                    self.bye();
                    return said;
                }
                other => panic!("unexpected frame {other:?}: {frame}"),
            }
        }
        panic!("no quit in {} lines", super::peer::MAX_LINES);
    }
}

/// A `welcome` line for `name`, with `extra` fields (each starting with a comma) at its end.
fn welcome(name: &str, extra: &str) -> String {
    format!(
        r#"{{"type":"welcome","version":1,"server":"soquete-test","mode":"group","name":"{name}","room_size":2{extra}}}"#
    )
}

/// A raw server played by the test: asks `Name: ` without a newline, reads the answer, greets
/// (`Hello NAME`, then `greeting`'s bytes) and closes. Returns the answer.
pub fn name_prompt_server(greeting: &'static [u8]) -> Scripted<Option<String>> {
    Scripted::start(move |peer| {
        peer.writer.write_all(b"Name: ").unwrap();
        let name = peer.next();
        if let Some(name) = &name {
            peer.writer
                .write_all(format!("Hello {name}").as_bytes())
                .unwrap();
            peer.writer.write_all(greeting).unwrap();
        }
        name
    })
}
