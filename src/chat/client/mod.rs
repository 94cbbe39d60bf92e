//! `soquete chat [HOST][:PORT]`: the chat client, run from its [`Config`]. It connects, then one
//! thread reads the server's lines and one reads the user's (terminal); both feed this thread, the
//! only one that writes to the socket, which runs them through the session.
//!
//! Several targets, or a name with several addresses, are servers of one room (`servers`): the
//! first connection goes to the first that answers. When the server is lost (structured mode),
//! this thread drops the connection and a short-lived thread connects again after the session's
//! pause, resolving the names anew, to the next server that answers, round the list; each
//! connection's reader tags its events, so nothing from a dead connection reaches the session.
//! A server is lost at once on end of stream or reset, and within seconds on a half-open connection: the
//! server sends a `ping` after [`HEARTBEAT_INTERVAL`] of silence, so hearing nothing for
//! [`HEARTBEAT_TIMEOUT`] means it is gone; TCP keepalive ([`KEEPALIVE_IDLE`]) covers the rest.
//!
//! With `--raw` the reader passes the server's bytes on as they arrive, without line framing, so
//! a prompt with no newline shows at once and output from a pipe is byte for byte what the
//! server sent. Without `--raw`, a server that sends plain lines and no welcome within
//! [`WELCOME_TIMEOUT`] does not speak soquete: the client says so once and talks plain lines
//! to it from then on (no heartbeat, no reconnection).
//!
//! Output: what the server sends (chat lines, notices, the welcome, a raw server's bytes) goes to
//! stdout; connection state (connected, lost and reconnecting, half-closed, closed) and the
//! client's own notes go to stderr. With `--json` every received line is one JSON line on stdout
//! (the server's frames as received, `ping` excepted; `{"type":"line","text":…}` for text lines),
//! plus the client's `skipped`, `connected`, `reconnecting`, `reconnected`, `missed`, `half_closed`,
//! `closed` and `lost` events. With a line editor on a terminal, everything is printed above the
//! line being typed.
//!
//! [`HEARTBEAT_INTERVAL`]: crate::chat::protocol::HEARTBEAT_INTERVAL

mod config;
mod connection;
mod link;
mod password;
pub mod reconnect;
mod servers;
pub mod session;
mod terminal;

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::chat::protocol::{HEARTBEAT_TIMEOUT, quoted_name, validate_name};
use crate::error::{Context, Error, Result};
use crate::net::clock::millis_from_env;
use crate::net::target::Target;
use crate::net::tls::client::ClientTls;
use connection::{Dialer, refused};
use link::{Link, Wire};
use session::{Action, End, Event, Output, Session, Settings};
use terminal::Screen;

pub use config::{Config, GiveUp, TlsOptions};

/// How long a write to the server may block before the connection counts as lost.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server has to confirm our leaving (`bye` or close) after `quit`, counted from
/// `quit` and again from each frame that shows it still working through what we sent (a
/// rate-limited server reads a long piped input slowly): only that long with no progress at all
/// ends the wait.
pub const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Overrides [`QUIT_TIMEOUT`] (milliseconds), for tests that cannot wait 5 s.
pub const QUIT_TIMEOUT_ENV: &str = "SOQUETE_QUIT_TIMEOUT_MS";
/// After `hello`, how long a soquete server has to welcome us. A server that sent plain-text
/// lines and no welcome by then does not speak the protocol: the client says so and talks
/// plain lines to it; a silent one gets a hint.
pub const WELCOME_TIMEOUT: Duration = Duration::from_secs(2);
/// Overrides [`WELCOME_TIMEOUT`] (milliseconds), for tests.
pub const WELCOME_TIMEOUT_ENV: &str = "SOQUETE_WELCOME_TIMEOUT_MS";
/// After a re-join, how long the replay of missed messages may take to show its end before
/// the lines typed meanwhile are sent anyway.
pub const REPLAY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection must stay up after its welcome for its loss to count as a new one:
/// the move to the next server at once, and the backoff from its start. A server that welcomes
/// and drops us sooner counts as a failed attempt (the backoff grows, `--reconnect-attempts`
/// counts it), so servers that accept and close never make the client loop.
pub const STEADY_AFTER: Duration = Duration::from_secs(10);
/// Overrides [`STEADY_AFTER`] (milliseconds), for tests that cannot wait 10 s.
pub const STEADY_AFTER_ENV: &str = "SOQUETE_STEADY_AFTER_MS";
/// Idle time before TCP keepalive probes start, so a server that vanished (a cloud instance
/// stopped, a cable pulled) is noticed even when nobody speaks, and by a `--raw` client too.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(5);
/// Time between keepalive probes once they started.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// Unanswered keepalive probes after which the kernel declares the connection dead: with the
/// two figures above, a silent peer is found out after about 11 s.
pub const KEEPALIVE_PROBES: u32 = 3;
/// Overrides [`HEARTBEAT_TIMEOUT`] (milliseconds), for tests that cannot wait 15 s.
pub const HEARTBEAT_TIMEOUT_ENV: &str = "SOQUETE_HEARTBEAT_TIMEOUT_MS";
/// Events waiting for the session; a flooding server then waits in TCP's flow control.
const EVENT_QUEUE: usize = 256;
/// The name used when neither `--name` nor the login name gives a valid one.
const FALLBACK_NAME: &str = "guest";

/// Runs the client until the user or the server ends the session.
pub fn run(config: &Config) -> Result<()> {
    let targets = match config.targets.as_slice() {
        [] => vec![Target::parse("")?],
        given => given
            .iter()
            .map(|text| Target::parse(text))
            .collect::<Result<_>>()?,
    };
    let name = chat_name(config.name.as_deref())?;
    let tls = config.tls.as_ref().map(ClientTls::try_from).transpose()?;
    let dialer = Dialer { targets, tls };
    let mut password = config.password.load()?;
    // The first connection must succeed: reconnecting is for a server that was there.
    let servers::Started {
        connection: stream,
        server,
        servers,
        skipped,
    } = dialer.start()?;
    // A person at a terminal is asked for the room's password, before the line editor starts,
    // when the server's first line asks for one. The reader that read that line goes on to
    // read the connection (with TLS it may hold bytes of the next records).
    let mut first_bytes = Vec::new();
    let mut first_reader = None;
    if !config.raw && password.is_none() && password::can_ask() {
        let context = || format!("connection to {}", server.label());
        let remote = stream.tcp().peer_addr().with_context(context)?;
        let mut reader = stream.reader().with_context(context)?;
        (password, first_bytes) = password::ask_if_needed(&mut reader, stream.tcp(), remote)?;
        first_reader = Some(reader);
    }

    let (user, typed) = crossbeam_channel::bounded(EVENT_QUEUE);
    let (wire, received) = crossbeam_channel::bounded(EVENT_QUEUE);
    let mut link = Link {
        dialer,
        raw: config.raw,
        wire,
        current: None,
        connections: 0,
        remote: None,
        server: Some(server),
        first_bytes,
        first_reader,
    };
    let (local, remote) = link.adopt(stream)?;
    let mut screen = Screen::open(config.json, &name, user).context("opening the terminal")?;
    for event in skipped
        .iter()
        .filter(|_| config.json)
        .map(servers::Skipped::event)
    {
        screen.show(&event).context("writing output")?;
    }

    let settings = Settings {
        raw: config.raw,
        sync: config.sync,
        name,
        password,
        encrypted: config.tls.is_some(),
        reconnect: config.reconnect_policy(screen.is_interactive(), servers),
    };
    let heartbeat = (!config.raw).then(heartbeat_timeout);
    let mut driver = Driver {
        quit_timeout: millis_from_env(QUIT_TIMEOUT_ENV).unwrap_or(QUIT_TIMEOUT),
        steady_after: millis_from_env(STEADY_AFTER_ENV).unwrap_or(STEADY_AFTER),
        welcome_timeout: millis_from_env(WELCOME_TIMEOUT_ENV).unwrap_or(WELCOME_TIMEOUT),
        session: Session::new(settings),
        link,
        timers: Vec::new(),
        heartbeat,
        heartbeat_setting: heartbeat,
        silent_until: heartbeat.map(|timeout| Instant::now() + timeout),
        input_open: true,
    };
    if !config.raw {
        driver.start_timer(driver.welcome_timeout, Event::WelcomeTimeout);
    }
    let result = driver.run(
        Event::Connected { local, remote },
        &mut screen,
        &typed,
        &received,
    );
    // Unblocks the reader thread; the socket may already be gone.
    driver.link.drop_current();
    let closed = screen.close().context("restoring the terminal");
    result.and(closed)
}

/// `--name`, checked; or the login name when it makes a valid chat name.
fn chat_name(name: Option<&str>) -> Result<String> {
    if let Some(name) = name {
        return validate_name(name)
            .map_err(|why| Error::Usage(format!("bad --name {}: {why}", quoted_name(name))));
    }
    let login = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()));
    Ok(login
        .and_then(|login| validate_name(&login).ok())
        .unwrap_or_else(|| FALLBACK_NAME.to_string()))
}

/// [`HEARTBEAT_TIMEOUT`], or the test override in [`HEARTBEAT_TIMEOUT_ENV`].
fn heartbeat_timeout() -> Duration {
    millis_from_env(HEARTBEAT_TIMEOUT_ENV).unwrap_or(HEARTBEAT_TIMEOUT)
}

/// Runs events through the session and carries out its actions until it finishes.
struct Driver {
    session: Session,
    link: Link,
    /// One-shot timers the session asked for, with the event each fires.
    timers: Vec<(Instant, Event)>,
    /// Silence from the server after which it counts as lost (structured mode), while the
    /// server is known or expected to send a heartbeat.
    heartbeat: Option<Duration>,
    /// The same, as configured.
    heartbeat_setting: Option<Duration>,
    /// When the heartbeat runs out for the live connection.
    silent_until: Option<Instant>,
    /// The user's input has not ended (its channel is still open).
    input_open: bool,
    /// [`QUIT_TIMEOUT`], or its test override.
    quit_timeout: Duration,
    /// [`STEADY_AFTER`], or its test override.
    steady_after: Duration,
    /// [`WELCOME_TIMEOUT`], or its test override.
    welcome_timeout: Duration,
}

impl Driver {
    fn run(
        &mut self,
        first: Event,
        screen: &mut Screen,
        typed: &Receiver<Event>,
        received: &Receiver<Wire>,
    ) -> Result<()> {
        let mut queued = VecDeque::from([first]);
        loop {
            let event = match queued.pop_front() {
                Some(event) => event,
                None => self.next_event(screen, typed, received)?,
            };
            // After a failed write, the rest of the batch's writes go nowhere: the loss comes
            // next, and the session sends what matters again after the re-join.
            let mut broken = false;
            for action in self.session.handle(event) {
                match action {
                    Action::Send(bytes) if !broken => {
                        if let Err(err) = self.write(&bytes) {
                            queued.push_front(Event::Lost(err.to_string()));
                            broken = true;
                        }
                    }
                    Action::HalfClose if !broken => {
                        let done = match &self.link.current {
                            Some((_, stream)) => stream.shutdown(Shutdown::Write),
                            None => Ok(()),
                        };
                        if let Err(err) = done {
                            queued.push_front(Event::Lost(err.to_string()));
                            broken = true;
                        }
                    }
                    Action::Send(_) | Action::HalfClose => {}
                    Action::Show(output) => screen.show(&output).context("writing output")?,
                    Action::Rename(name) => screen.rename(&name),
                    Action::AwaitConfirmation => {
                        // Asked again while the server makes progress: the wait starts over.
                        self.timers
                            .retain(|(_, event)| !matches!(event, Event::QuitTimeout));
                        self.start_timer(self.quit_timeout, Event::QuitTimeout);
                    }
                    Action::AwaitReplay => self.start_timer(REPLAY_TIMEOUT, Event::ReplayTimeout),
                    Action::AwaitWelcome => {
                        self.start_timer(self.welcome_timeout, Event::WelcomeTimeout);
                    }
                    Action::AwaitSteady => self.start_timer(self.steady_after, Event::Steady),
                    Action::AwaitPrompt => {
                        self.start_timer(password::FIRST_LINE_WAIT, Event::PromptTimeout);
                    }
                    Action::Heartbeat(on) => {
                        self.heartbeat = self.heartbeat_setting.filter(|_| on);
                        self.silent_until = self.heartbeat.map(|t| Instant::now() + t);
                    }
                    Action::Reconnect(delay) => {
                        self.link.drop_current();
                        self.silent_until = None;
                        self.timers.clear();
                        queued.clear();
                        if let Err(err) = self.link.dial(delay) {
                            queued.push_back(Event::ReconnectFailed(err.to_string()));
                        }
                    }
                    Action::Finish(End::Done) => return Ok(()),
                    Action::Finish(End::Lost(error)) => return Err(self.link.lost_error(error)),
                    Action::Finish(End::NeedsTls) => return Err(self.link.needs_tls_error()),
                    Action::Finish(End::Denied(reason)) => {
                        return Err(self.link.denied_error(reason));
                    }
                }
            }
        }
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        match &self.link.current {
            Some((_, stream)) => stream.write_all(bytes),
            None => Ok(()),
        }
    }

    fn start_timer(&mut self, after: Duration, event: Event) {
        self.timers.push((Instant::now() + after, event));
    }

    /// The next event: typed, received on the live connection, a new connection, or a timer.
    /// Meanwhile, shows a partial line the server sent once no more of it follows.
    fn next_event(
        &mut self,
        screen: &mut Screen,
        typed: &Receiver<Event>,
        received: &Receiver<Wire>,
    ) -> Result<Event> {
        loop {
            let next_timer = self
                .timers
                .iter()
                .enumerate()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(index, (at, _))| (index, *at));
            let deadline = [
                next_timer.map(|(_, at)| at),
                self.silent_until,
                screen.flush_due(),
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = deadline.map_or_else(crossbeam_channel::never, crossbeam_channel::at);
            // While too many typed lines wait for the server, the user's input waits in its
            // channel (and a pipe in the kernel).
            let never = crossbeam_channel::never();
            let typed = if self.input_open && self.session.accepts_input() {
                typed
            } else {
                &never
            };
            crossbeam_channel::select! {
                recv(typed) -> event => match event {
                    Ok(event) => return Ok(event),
                    // The input thread ended after its last event.
                    Err(_) => self.input_open = false,
                },
                recv(received) -> wire => match wire {
                    Ok(Wire::Server { conn, event }) => {
                        if self.link.is_current(conn) {
                            self.silent_until = self.heartbeat.map(|t| Instant::now() + t);
                            return Ok(event);
                        }
                    }
                    Ok(Wire::Skipped(lines)) => {
                        for line in lines {
                            screen.show(&Output::Note(line)).context("writing output")?;
                        }
                    }
                    Ok(Wire::Dialed(Ok((stream, server)))) => {
                        self.link.server = Some(server);
                        return Ok(match self.link.adopt(stream) {
                            Ok((local, remote)) => {
                                self.silent_until = self.heartbeat.map(|t| Instant::now() + t);
                                Event::Connected { local, remote }
                            }
                            Err(err) => Event::ReconnectFailed(err.to_string()),
                        });
                    }
                    Ok(Wire::Dialed(Err(error))) => return Ok(Event::ReconnectFailed(error)),
                    // Never a silent downgrade, never a retry with a certificate refused.
                    Ok(Wire::Refused(refusal)) => {
                        let mut why = refusal.to_string();
                        if let Some(unsent) = self.session.unsent() {
                            why.push_str(&format!(": {unsent}"));
                        }
                        return Err(refused(why));
                    }
                    // The driver holds a sender itself: this cannot happen.
                    Err(_) => return Ok(Event::Lost("the connection's reader ended".into())),
                },
                recv(timeout) -> _ => {
                    let now = Instant::now();
                    if screen.flush_due().is_some_and(|at| at <= now) {
                        screen.flush_partial().context("writing output")?;
                    }
                    if let Some((index, at)) = next_timer
                        && at <= now
                    {
                        return Ok(self.timers.swap_remove(index).1);
                    }
                    if self.silent_until.is_some_and(|silent| silent <= now) {
                        self.silent_until = None;
                        let waited = self.heartbeat.unwrap_or(HEARTBEAT_TIMEOUT);
                        return Ok(Event::Lost(format!(
                            "no word from the server in {} (heartbeat timeout)",
                            reconnect::describe(waited)
                        )));
                    }
                }
            }
        }
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
