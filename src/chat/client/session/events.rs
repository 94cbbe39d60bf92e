//! What goes into the session ([`Event`]: something that happened) and what comes out of it
//! ([`Action`]: something to do, [`Output`]: something to show, [`End`]: how it ended), and the
//! client's own events in `--json` output ([`LocalEvent`]).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

/// Something that happened to the client.
#[derive(Debug)]
pub enum Event {
    /// A connection is up (the first one, or a new one after a loss).
    Connected {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// The user entered a line; `terminated` is false for a last line without a newline.
    Typed { text: String, terminated: bool },
    /// Standard input ended (end of a pipe or file, Ctrl-D in the editor).
    InputEnded,
    /// Ctrl-C in the editor: leave at once.
    Interrupted,
    /// One line from the server, without its terminator.
    Received(String),
    /// Bytes from a `--raw` server, as they arrived (no line framing: a prompt without a
    /// newline is shown at once, and output stays byte for byte what the server sent).
    ReceivedRaw(Vec<u8>),
    /// The server sent a line longer than the protocol's limit; its start was dropped.
    Overlong,
    /// The server closed its side cleanly (end of stream).
    ServerClosed,
    /// Reading from or writing to the server failed, or the server fell silent.
    Lost(String),
    /// An attempt to connect again failed.
    ReconnectFailed(String),
    /// The server did not confirm our leaving in time.
    QuitTimeout,
    /// Holding a password, no first line came from the server in time: it did not ask.
    PromptTimeout,
    /// No welcome arrived in time after `hello`.
    WelcomeTimeout,
    /// After a re-join, the replay of missed messages did not visibly end in time.
    ReplayTimeout,
    /// The connection has stayed up [`Action::AwaitSteady`]'s while since its welcome: a loss
    /// from now on starts the backoff afresh.
    Steady,
}

/// What the client must do in answer to an event, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes to the server.
    Send(Vec<u8>),
    /// Shut down our sending side (FIN): everything typed has been sent.
    HalfClose,
    /// Show something.
    Show(Output),
    /// Our name changed (the welcome or a `/nick`): the prompt shows it.
    Rename(String),
    /// We asked to leave: wait a bounded time for the server to confirm. Asked again each time
    /// a frame shows the server still working through what we sent: the wait starts over, so
    /// a slow (rate-limited) server reading a long input is waited for as long as it progresses.
    AwaitConfirmation,
    /// Holding a password: wait a bounded time for the server's first line (its prompt?)
    /// before the `hello`, then send [`Event::PromptTimeout`].
    AwaitPrompt,
    /// We re-joined and the server replays what we missed: wait a bounded time for its end.
    AwaitReplay,
    /// Connected again with several servers: send [`Event::WelcomeTimeout`] if no welcome comes
    /// in time (the server is then skipped).
    AwaitWelcome,
    /// Welcomed: send [`Event::Steady`] if the connection is still up after a while
    /// (`STEADY_AFTER`), so that only a connection that held resets the backoff.
    AwaitSteady,
    /// Drop the connection (if any is left) and connect again after this pause.
    Reconnect(Duration),
    /// Wait for the server's heartbeat (true), or stop (false): a server that does not speak
    /// soquete (or has not shown yet that it does: no welcome) sends none.
    Heartbeat(bool),
    /// The session is over.
    Finish(End),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Normally: we left, the server said bye, or a raw server closed. Exit code 0.
    Done,
    /// The connection failed under us. Exit code 1.
    Lost(String),
    /// The server would not let us in (a wrong or missing password): its reason. Exit code 1.
    Denied(String),
    /// A soquete server on a TLS-only port said so: connecting again without TLS is pointless.
    /// Exit code 1.
    NeedsTls,
}

/// Something to show the user, in both renderings: one for people and one for `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A line the server sent: chat data, on stdout.
    Data { human: String, json: String },
    /// A change of the connection's state (connected, closed): on stderr for people, and as a JSON
    /// event on stdout with `--json`. `human` is None where the final error message says it.
    State { human: Option<String>, json: String },
    /// A remark of the client itself (a line refused under `--sync`, a hint): stderr only.
    Note(String),
    /// Bytes a `--raw` server sent, as they arrived: written unchanged to stdout from a pipe;
    /// on a line editor and with `--json`, shown line by line, a partial line (a prompt) once
    /// no more bytes follow for a moment.
    Raw(Vec<u8>),
}

/// Events the client adds to the server's frames in `--json` output.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LocalEvent<'a> {
    /// The connection is up: both ends, as `IP:PORT`.
    Connected { local: String, remote: String },
    /// A server skipped at start (several servers): its `IP:PORT` (or the name that did not
    /// resolve), and why.
    Skipped { server: &'a str, error: &'a str },
    /// A line that is not a frame: everything in `--raw`, and a server's plain-text greeting.
    /// `partial`: the text ends without a newline (a prompt such as `Name: `, or the last
    /// bytes before the server closed); the rest of that line, if any, comes as the next `line`.
    Line {
        text: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        partial: bool,
    },
    /// We sent everything and shut down our sending side (`--raw` at end of input).
    HalfClosed,
    /// The connection ended normally; `by` is `server` or `client`.
    Closed { by: &'a str },
    /// The connection failed (for good: no reconnection follows).
    Lost { error: &'a str },
    /// The connection was lost (or an attempt failed); attempt `attempt` follows in `delay_ms`.
    Reconnecting {
        attempt: u32,
        delay_ms: u64,
        error: &'a str,
    },
    /// A new connection is up after a loss: both ends, as `IP:PORT`; `previous`, the server
    /// lost, when this is another one (failover).
    Reconnected {
        local: String,
        remote: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
    },
    /// Messages sent while we were away that the server could no longer replay.
    Missed { count: u64 },
}

impl LocalEvent<'_> {
    /// The event as one JSON line (without its newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("local events always serialize")
    }
}
