//! `soquete chat [HOST][:PORT]`: the chat client. It connects (target), then one thread reads the
//! server's lines and one reads the user's (terminal); both feed one bounded channel of events,
//! and this thread, the only one that writes to the socket, runs them through the session.
//!
//! Output: what the server sends (chat lines, notices, the welcome, a raw server's lines) goes to
//! stdout; connection state (connected, half-closed, closed) and the client's own notes go to
//! stderr. With `--json` every received line is one JSON line on stdout (the server's frames as
//! received; `{"type":"line","text":…}` for text lines), plus the client's `connected`,
//! `half_closed`, `closed` and `lost` events. With a line editor on a terminal, everything is
//! printed above the line being typed.

pub mod session;
pub mod target;
mod terminal;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::chat::protocol::{Incoming, LineReader, validate_name};
use crate::cli::ChatArgs;
use crate::error::{Error, Result};
use session::{Action, End, Event, Session, Settings};
use target::Target;
use terminal::Screen;

/// How long a write to the server may block before the connection counts as lost.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server has to confirm our leaving (`bye` or close) after `quit`.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// After `hello`, how long before the client hints that the server may not speak soquete.
pub const WELCOME_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle time before TCP keepalive probes start, so a server that vanished (a cloud instance
/// stopped, a cable pulled) is noticed even when nobody speaks.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
/// Time between keepalive probes once they started.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Events waiting for the session; a flooding server then waits in TCP's flow control.
const EVENT_QUEUE: usize = 256;
/// The name used when neither `--name` nor the login name gives a valid one.
const FALLBACK_NAME: &str = "guest";

/// Runs the client until the user or the server ends the session.
pub fn run(args: &ChatArgs) -> Result<()> {
    let target = Target::parse(args.target.as_deref().unwrap_or(""))?;
    let settings = Settings {
        raw: args.raw,
        sync: args.sync,
        name: chat_name(args.name.as_deref())?,
    };
    let stream = target.connect()?;
    let (local, remote) = prepare(&stream, &target)?;

    let (events, incoming) = crossbeam_channel::bounded(EVENT_QUEUE);
    let reader = stream
        .try_clone()
        .map_err(|err| Error::io(format!("connection to {remote}"), err))?;
    spawn_server_reader(reader, events.clone())
        .map_err(|err| Error::io("starting the reader thread", err))?;
    let mut screen = Screen::open(args.json, &settings.name, events)
        .map_err(|err| Error::io("opening the terminal", err))?;

    let raw = settings.raw;
    let mut session = Session::new(settings);
    let result = drive(
        &mut session,
        &stream,
        &mut screen,
        &incoming,
        (local, remote),
        raw,
    );
    // Unblocks the reader thread; the socket may already be gone.
    let _ = stream.shutdown(Shutdown::Both);
    let closed = screen
        .close()
        .map_err(|err| Error::io("restoring the terminal", err));
    result.and(closed)
}

/// `--name`, checked; or the login name when it makes a valid chat name.
fn chat_name(name: Option<&str>) -> Result<String> {
    if let Some(name) = name {
        return validate_name(name)
            .map_err(|why| Error::Usage(format!("bad --name '{name}': {why}")));
    }
    let login = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()));
    Ok(login
        .and_then(|login| validate_name(&login).ok())
        .unwrap_or_else(|| FALLBACK_NAME.to_string()))
}

/// Sets the socket's timeouts and keepalive; returns both ends.
fn prepare(stream: &TcpStream, target: &Target) -> Result<(SocketAddr, SocketAddr)> {
    let context = || format!("connection to {target}");
    stream
        .set_write_timeout(Some(WRITE_TIMEOUT))
        .map_err(|err| Error::io(context(), err))?;
    // Chat lines are small and typed by people: send each at once.
    stream
        .set_nodelay(true)
        .map_err(|err| Error::io(context(), err))?;
    let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    #[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
    let keepalive = keepalive.with_interval(KEEPALIVE_INTERVAL);
    socket2::SockRef::from(stream)
        .set_tcp_keepalive(&keepalive)
        .map_err(|err| Error::io(context(), err))?;
    let local = stream
        .local_addr()
        .map_err(|err| Error::io(context(), err))?;
    let remote = stream
        .peer_addr()
        .map_err(|err| Error::io(context(), err))?;
    Ok((local, remote))
}

/// The server's lines, as events, until it closes or the connection fails.
fn spawn_server_reader(stream: TcpStream, events: Sender<Event>) -> io::Result<()> {
    thread::Builder::new()
        .name("chat-server-reader".into())
        .spawn(move || {
            let mut reader = LineReader::new(stream);
            loop {
                let (event, last) = match reader.next_line() {
                    Ok(Some(Incoming::Line(line))) => (Event::Received(line), false),
                    Ok(Some(Incoming::Overlong)) => (Event::Overlong, false),
                    Ok(None) => (Event::ServerClosed, true),
                    Err(err) => (Event::Lost(err.to_string()), true),
                };
                if events.send(event).is_err() || last {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Runs events through the session and carries out its actions until it finishes.
fn drive(
    session: &mut Session,
    stream: &TcpStream,
    screen: &mut Screen,
    incoming: &Receiver<Event>,
    (local, remote): (SocketAddr, SocketAddr),
    raw: bool,
) -> Result<()> {
    let mut writer = stream;
    let mut queued = VecDeque::from([Event::Connected { local, remote }]);
    let mut timer = (!raw).then(|| (Instant::now() + WELCOME_TIMEOUT, Event::WelcomeTimeout));
    loop {
        let event = match queued.pop_front() {
            Some(event) => event,
            None => next_event(incoming, &mut timer),
        };
        for action in session.handle(event) {
            match action {
                Action::Send(bytes) => {
                    if let Err(err) = writer.write_all(&bytes) {
                        queued.push_front(Event::Lost(err.to_string()));
                        break;
                    }
                }
                Action::HalfClose => {
                    if let Err(err) = stream.shutdown(Shutdown::Write) {
                        queued.push_front(Event::Lost(err.to_string()));
                        break;
                    }
                }
                Action::Show(output) => screen.show(&output)?,
                Action::Rename(name) => screen.rename(&name),
                Action::AwaitConfirmation => {
                    timer = Some((Instant::now() + QUIT_TIMEOUT, Event::QuitTimeout));
                }
                Action::Finish(End::Done) => return Ok(()),
                Action::Finish(End::Lost(error)) => {
                    return Err(Error::io(
                        format!("connection to {remote} lost"),
                        io::Error::other(error),
                    ));
                }
            }
        }
    }
}

/// The next event, or the timer's when it fires first.
fn next_event(incoming: &Receiver<Event>, timer: &mut Option<(Instant, Event)>) -> Event {
    let received = match timer {
        Some((at, _)) => incoming.recv_deadline(*at),
        None => incoming.recv().map_err(|_| RecvTimeoutError::Disconnected),
    };
    match received {
        Ok(event) => event,
        Err(RecvTimeoutError::Timeout) => timer.take().expect("a deadline was set").1,
        // Both readers ended without the session finishing: the server reader always ends with
        // an event that finishes it, so this is only a safety net.
        Err(RecvTimeoutError::Disconnected) => Event::Lost("the connection's reader ended".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_a_bad_login_falls_back() {
        assert_eq!(chat_name(Some("ana")).unwrap(), "ana");
        assert!(matches!(chat_name(Some("a b")), Err(Error::Usage(_))));
        assert!(!chat_name(None).unwrap().is_empty());
    }
}
