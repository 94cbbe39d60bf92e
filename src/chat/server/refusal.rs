//! Connections beyond `--max-clients`, refused without a thread each: the accept thread writes
//! the refusal without blocking and half-closes, and one lingering thread keeps a bounded number
//! of refused sockets open until their clients close or [`REFUSE_LINGER`] passes. Closing with
//! the client's `hello` unread would reset the connection, and a reset may destroy the line
//! before the client reads it; a burst of refusals beyond [`LINGERING`] is closed at once. So a
//! flood of connections costs the server one thread and at most twice [`LINGERING`] sockets.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::platform::threads::spawn_small;

/// How long a refused client gets to read its line and close before the server closes.
pub const REFUSE_LINGER: Duration = Duration::from_secs(2);
/// Refused sockets kept open at once (and as many more waiting to be); beyond that they are
/// closed as soon as they are told.
pub const LINGERING: usize = 32;
/// How often the lingering thread looks at its sockets.
const LINGER_TICK: Duration = Duration::from_millis(20);
/// Most bytes read from a refused socket at one look: what it sends is thrown away.
const DRAIN_BYTES: usize = 4096;
/// Stack of the lingering thread: it only reads into a small buffer.
const LINGER_STACK: usize = 64 * 1024;

/// Tells refused connections so and lets them go.
pub struct Refusals {
    /// To the lingering thread; None when it could not start (refused sockets are then closed
    /// as soon as they are told).
    lingering: Option<Sender<TcpStream>>,
}

impl Refusals {
    /// Starts the lingering thread; it ends once this is dropped and its sockets are let go.
    pub fn start() -> Refusals {
        let (lingering, arrivals) = crossbeam_channel::bounded(LINGERING);
        let started = spawn_small("refusals", LINGER_STACK, move || linger(&arrivals));
        Refusals {
            lingering: started.ok().map(|()| lingering),
        }
    }

    /// Writes `line` (if any) to `stream` without blocking, half-closes it, and hands it to the
    /// lingering thread, or closes it when that one has its hands full. A client whose socket
    /// would not take the line at once (it never does on a fresh connection) gets end of stream
    /// without it.
    pub fn refuse(&self, stream: TcpStream, line: Option<&[u8]>) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        if let Some(line) = line {
            let _ = (&stream).write(line);
        }
        let _ = stream.shutdown(Shutdown::Write);
        // What the client said already (its hello) is read now: closed unread, it would reset.
        if !drained(&stream) {
            return;
        }
        // Not taken (the lingering thread has its hands full), it is closed here.
        if let Some(lingering) = &self.lingering {
            let _ = lingering.try_send(stream);
        }
    }
}

/// Keeps refused sockets until their clients close or [`REFUSE_LINGER`] passes, at most
/// [`LINGERING`] at once; ends when the accept thread drops its [`Refusals`].
fn linger(arrivals: &Receiver<TcpStream>) {
    let mut open: Vec<(TcpStream, Instant)> = Vec::with_capacity(LINGERING);
    loop {
        let arrived = if open.is_empty() {
            arrivals.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else if open.len() < LINGERING {
            arrivals.recv_timeout(LINGER_TICK)
        } else {
            std::thread::sleep(LINGER_TICK);
            Err(RecvTimeoutError::Timeout)
        };
        match arrived {
            Ok(stream) => open.push((stream, Instant::now() + REFUSE_LINGER)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        while open.len() < LINGERING {
            let Ok(stream) = arrivals.try_recv() else {
                break;
            };
            open.push((stream, Instant::now() + REFUSE_LINGER));
        }
        let now = Instant::now();
        open.retain(|(stream, until)| now < *until && drained(stream));
    }
}

/// Reads (and throws away) what has arrived on a non-blocking socket, at most
/// [`DRAIN_BYTES`]; says whether the client is still there (it has not closed or reset).
fn drained(stream: &TcpStream) -> bool {
    let mut sink = [0u8; 512];
    let mut read = 0;
    while read < DRAIN_BYTES {
        match (&*stream).read(&mut sink) {
            Ok(0) => return false,
            Ok(n) => read += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return err.kind() == io::ErrorKind::WouldBlock,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connection and its accepted end.
    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (client, accepted)
    }

    /// Everything the client reads up to the end of the stream.
    fn heard(mut client: TcpStream) -> String {
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut heard = String::new();
        client.read_to_string(&mut heard).unwrap();
        heard
    }

    #[test]
    fn a_refused_client_reads_its_line_then_end_of_stream_even_after_saying_hello() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let refusals = Refusals::start();
        let (mut client, accepted) = pair(&listener);
        client.write_all(b"{\"type\":\"hello\"}\n").unwrap();
        refusals.refuse(accepted, Some(b"* server full\n"));
        assert_eq!(heard(client), "* server full\n");
    }

    #[test]
    fn beyond_what_lingers_refused_sockets_are_closed_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // No lingering thread to take them: each is closed as soon as it is told.
        let refusals = Refusals { lingering: None };
        let (client, accepted) = pair(&listener);
        refusals.refuse(accepted, Some(b"* full\n"));
        assert_eq!(heard(client), "* full\n");
    }
}
