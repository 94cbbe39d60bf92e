//! The hub: the one thread that owns the member list, the names and the room's sequence number.
//! Readers, the accept thread, the console and Ctrl-C talk to it over one bounded channel; it
//! talks to each client through that client's bounded outbox with `try_send`, so a client that
//! stops reading only ever holds up itself. It also keeps the room's history (for clients that
//! resume after a reconnect) and its log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::chat::protocol::{
    ByeCode, Command, Greeting, HELP, MAX_LINE_BYTES, Member, MsgEncoder, PROTOCOL_VERSION,
    ServerFrame, parse_command, validate_name,
};
use crate::cli::{RateLimit, ServeMode};
use crate::net::clock::now;
use crate::net::sanitize::neutralize;
use crate::output::{Style, Table};

use super::connection::{
    Accepted, Bytes, OUTBOX_BYTES, OUTBOX_CAPACITY, Outgoing, STALL_TIMEOUT, Stats,
};
use super::console::Console;
use super::history::History;
use super::single::Session;

/// How long, at Ctrl-C, the writers get to deliver `bye` before the process exits.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How often the hub looks for clients that stopped reading ([`STALL_TIMEOUT`]).
pub const STALL_CHECK: Duration = Duration::from_millis(250);
/// Join and leave notices go to everyone while the room has at most this many members; in a
/// larger room they would grow with the square of its size, so only the console logs them
/// (`/who` still lists everyone).
pub const ANNOUNCE_LIMIT: usize = 100;
/// Most events handled in one round before the round's messages are queued for the members.
pub const ROUND_EVENTS: usize = 64;
/// Most bytes of messages (of the larger flavour) stamped in one round.
pub const ROUND_BYTES: usize = 256 * 1024;

/// Everything the hub hears about, from every thread.
pub enum Event {
    /// A connection was accepted (its reader starts after this is sent).
    Accepted(Box<Accepted>),
    /// The first line of a connection, which tells a structured client from a raw one.
    First { id: u64, greeting: Greeting },
    /// The connection has said nothing for the join grace: a person at nc, most likely.
    Silent { id: u64 },
    /// Lines after the first, in order (several when they arrived together).
    Input { id: u64, inputs: Vec<Input> },
    /// A line longer than the protocol allows was dropped.
    Overlong { id: u64 },
    /// The client's reader has started waiting for its rate limit (sent once per client).
    Throttled { id: u64 },
    /// The client has sent nothing for the idle timeout.
    Idle { id: u64 },
    /// The connection ended: end of stream (graceful: what is queued is still written), or a
    /// reset or failed write (forced).
    Closed {
        id: u64,
        reason: String,
        ending: Ending,
    },
    /// A writer thread has finished.
    WriterDone,
    /// A connection beyond `--max-clients` was told the server is full and closed.
    Refused { peer: SocketAddr },
    /// A connection was reset before it could be set up (a port probe).
    Vanished { peer: SocketAddr },
    /// A line typed at the server console.
    Console(String),
    /// Ctrl-C.
    Shutdown,
}

/// A client's input, the same for raw and structured clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A chat line (commands start with `/`).
    Text(String),
    Nick(String),
    Who,
    Quit,
    /// A structured line that is not a frame the client may send.
    Bad(String),
}

/// How a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has not sent its first line yet; written to as raw.
    Pending,
    Raw,
    Structured,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Pending => "-",
            Kind::Raw => "raw",
            Kind::Structured => "structured",
        }
    }
}

/// What the hub knows of one accepted connection.
pub struct Client {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub since: DateTime<FixedOffset>,
    pub stream: Arc<TcpStream>,
    /// None once the hub is done with the client: the writer drains what is queued and exits.
    pub outbox: Option<Sender<Outgoing>>,
    pub stats: Arc<Stats>,
    pub kind: Kind,
    /// Empty until the client is named (first line, or the join grace).
    pub name: String,
    /// Lines a queued client typed (single mode), delivered once it is served.
    pub held: Vec<(String, bool)>,
    /// Broker mode: what the room said since this connection arrived, kept until it says what it
    /// is. A raw client gets it first; a structured one never (a raw line may pass for a frame).
    pub unheard: Unheard,
    /// The last `seq` a reconnecting client saw: what it missed follows its `welcome`.
    pub resume: Option<u64>,
}

impl Client {
    fn named(&self) -> bool {
        !self.name.is_empty()
    }

    fn member(&self) -> Member {
        Member {
            name: self.name.clone(),
            addr: self.peer.to_string(),
            kind: self.kind.label().to_string(),
        }
    }
}

/// What the server was started with.
pub struct Config {
    pub mode: ServeMode,
    pub sync: bool,
    /// The console's name.
    pub name: String,
    pub listening: SocketAddr,
    /// Messages kept for resuming clients (group mode).
    pub history: usize,
    /// For the notice a flooder gets.
    pub rate_limit: RateLimit,
    /// For the `bye` of an idle client.
    pub idle_timeout: Option<Duration>,
}

/// How a client is let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Queued output is still written, then the connection half-closes.
    Graceful,
    /// The socket is shut down at once (the client stopped reading).
    Forced,
}

/// The owner of the room.
pub struct Hub {
    pub config: Config,
    pub started: DateTime<FixedOffset>,
    pub clients: BTreeMap<u64, Client>,
    pub seq: u64,
    guests: u64,
    live_writers: usize,
    pub console: Console,
    pub session: Session,
    /// The room's last messages, and its log.
    pub history: History,
    /// Connections open now, shared with the accept thread (`--max-clients`).
    pub connected: Arc<AtomicUsize>,
    /// Every member's name, lowercased (names are unique whatever their case), and its client.
    names: HashMap<String, u64>,
    /// Clients whose outbox went over its bounds, and since when: the hub takes no input until
    /// they drain to half, or [`STALL_TIMEOUT`] passes and they are let go.
    congested: BTreeMap<u64, Instant>,
    /// Writers say here that a congested outbox has drained.
    room: Receiver<()>,
    /// Clients to let go, with the reason: handled one after another, never recursively (a
    /// leave notice may congest someone else).
    drops: VecDeque<(u64, String)>,
    last_stall_check: Instant,
    /// The room's messages stamped in this round, not yet queued for the members.
    round: RoomBatch,
}

impl Hub {
    /// A hub for `config`, printing on the console; writers wake it on `room`.
    pub fn new(config: Config, console: Console, room: Receiver<()>) -> Hub {
        Hub {
            names: HashMap::new(),
            congested: BTreeMap::new(),
            room,
            drops: VecDeque::new(),
            last_stall_check: Instant::now(),
            round: RoomBatch::default(),
            history: History::new(config.history),
            connected: Arc::default(),
            config,
            started: now(),
            clients: BTreeMap::new(),
            seq: 0,
            guests: 0,
            live_writers: 0,
            console,
            session: Session::default(),
        }
    }

    /// Serves events until Ctrl-C, then says `bye` to everyone and waits (a bounded time) for
    /// the writers to deliver it.
    pub fn run(mut self, events: &Receiver<Event>) {
        loop {
            // While an outbox is over its bounds, no input is taken: readers wait on the full
            // event channel, and TCP slows the senders down. Nothing is dropped.
            self.wait_for_room();
            match events.recv_timeout(STALL_CHECK) {
                Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(event) => {
                    self.handle(event);
                    if self.handle_waiting(events) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.settle();
            if self.last_stall_check.elapsed() >= STALL_CHECK {
                self.last_stall_check = Instant::now();
                self.drop_stalled();
            }
        }
        self.shutdown(events);
    }

    /// Handles the events that are already waiting, up to a round's bounds, then queues the
    /// round's messages for the members: each gets them as one item and wakes once, however many
    /// authors spoke. Says whether Ctrl-C was among them.
    fn handle_waiting(&mut self, events: &Receiver<Event>) -> bool {
        let mut shutdown = false;
        for _ in 0..ROUND_EVENTS {
            if self.round.bytes >= ROUND_BYTES || !self.congested.is_empty() {
                break;
            }
            match events.try_recv() {
                Ok(Event::Shutdown) => {
                    shutdown = true;
                    break;
                }
                Ok(event) => self.handle(event),
                Err(_) => break,
            }
        }
        self.flush_round();
        shutdown
    }

    /// Lets go, one after another, of the clients found too slow.
    fn settle(&mut self) {
        while let Some((id, reason)) = self.drops.pop_front() {
            self.remove(id, &reason, Ending::Forced);
        }
    }

    /// A client with something to read that has read nothing for [`STALL_TIMEOUT`] is let go.
    fn drop_stalled(&mut self) {
        for (&id, client) in &self.clients {
            let stalled = client.stats.stalled_for();
            if client.outbox.is_some() && stalled >= STALL_TIMEOUT {
                let waiting = client.stats.queued_bytes.load(Ordering::Relaxed);
                let reason = format!(
                    "too slow: nothing read for {} s, {} KiB waiting",
                    stalled.as_secs(),
                    waiting.div_ceil(1024)
                );
                self.drops.push_back((id, reason));
            }
        }
        self.settle();
    }

    /// Waits until every congested outbox is down to half its bounds; one that is not within
    /// [`STALL_TIMEOUT`] of going over is let go.
    fn wait_for_room(&mut self) {
        while !self.congested.is_empty() {
            let clients = &self.clients;
            self.congested.retain(|id, _| {
                clients.get(id).is_some_and(|c| {
                    c.outbox.is_some() && !c.stats.is_closed() && c.stats.above_low_water()
                })
            });
            let now = Instant::now();
            let mut deadline = now + STALL_CHECK;
            for (&id, &since) in &self.congested {
                if now.duration_since(since) >= STALL_TIMEOUT {
                    let waiting = self.clients[&id].stats.queued_bytes.load(Ordering::Relaxed);
                    let reason = format!(
                        "too slow: {} KiB waiting to be read after {} s",
                        waiting.div_ceil(1024),
                        STALL_TIMEOUT.as_secs()
                    );
                    self.drops.push_back((id, reason));
                } else {
                    deadline = deadline.min(since + STALL_TIMEOUT);
                }
            }
            if !self.drops.is_empty() {
                self.settle();
                continue;
            }
            if !self.congested.is_empty() {
                let _ = self.room.recv_deadline(deadline);
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Accepted(accepted) => self.accepted(*accepted),
            Event::First { id, greeting } => self.first_line(id, greeting),
            Event::Silent { id } => {
                if self.clients.get(&id).is_some_and(|c| !c.named()) {
                    self.join(id, None);
                }
                self.release_unheard(id);
            }
            Event::Input { id, inputs } => self.inputs(id, inputs),
            Event::Overlong { id } => self.send(
                id,
                &ServerFrame::Error {
                    code: "line_too_long".into(),
                    message: format!(
                        "a line longer than {MAX_LINE_BYTES} bytes was dropped, not delivered"
                    ),
                },
            ),
            Event::Throttled { id } => {
                let rate = match self.config.rate_limit {
                    RateLimit::Bucket { per_second, .. } => format!("{per_second} lines/s"),
                    RateLimit::Off => "the rate limit".into(),
                };
                let text = format!(
                    "you are sending faster than {rate}: your lines are now read more slowly, none is lost"
                );
                self.send(id, &ServerFrame::Notice { text });
            }
            Event::Idle { id } => {
                let secs = self.config.idle_timeout.map_or(0, |t| t.as_secs());
                let reason = format!("idle for {secs} s (--idle-timeout)");
                self.send(
                    id,
                    &ServerFrame::Bye {
                        reason: reason.clone(),
                        code: ByeCode::Idle,
                    },
                );
                self.remove(id, &reason, Ending::Graceful);
            }
            Event::Closed { id, reason, ending } => self.remove(id, &reason, ending),
            Event::WriterDone => self.live_writers = self.live_writers.saturating_sub(1),
            Event::Vanished { peer } => self.console.event(&format!(
                "probe {peer} → {}: closed without a word, without joining",
                self.config.listening
            )),
            Event::Refused { peer } => self.console.event(&format!(
                "refused {peer} → {}: server full (--max-clients)",
                self.config.listening
            )),
            Event::Console(line) => self.console_line(&line),
            Event::Shutdown => {}
        }
    }

    fn accepted(&mut self, accepted: Accepted) {
        self.live_writers += 1;
        let Accepted {
            id,
            peer,
            local,
            stream,
            outbox,
            stats,
        } = accepted;
        self.clients.insert(
            id,
            Client {
                peer,
                local,
                since: now(),
                stream,
                outbox: Some(outbox),
                stats,
                kind: Kind::Pending,
                name: String::new(),
                held: Vec::new(),
                unheard: Unheard::default(),
                resume: None,
            },
        );
        // A raw client such as the course's may wait for a reply before finishing its first
        // line: it hears something readable at once.
        let greeting = match self.config.mode {
            ServeMode::Group => format!(
                "soquete chat server (group mode) at {}: type a line to talk to everyone, /help lists commands",
                self.config.listening
            ),
            ServeMode::Echo => "soquete echo server: every line you send comes back".to_string(),
            ServeMode::Single => self.single_accepted(id),
            ServeMode::Broker => return,
        };
        self.send(id, &ServerFrame::Notice { text: greeting });
    }

    fn first_line(&mut self, id: u64, greeting: Greeting) {
        // What was said before this line goes out (or, for a broker, is kept for it) first.
        self.flush_round();
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if matches!(greeting, Greeting::Structured { .. }) {
            client.unheard = Unheard::default();
        }
        match greeting {
            Greeting::Structured { probe: true, .. } => {
                // `soquete probe --chat`: say what is here, and let it go without a join.
                client.kind = Kind::Structured;
                self.welcome(id);
                self.send(
                    id,
                    &ServerFrame::Bye {
                        reason: "probe answered".into(),
                        code: ByeCode::Probe,
                    },
                );
                self.remove(id, "answered a soquete probe", Ending::Graceful);
            }
            Greeting::Structured { name, last_seq, .. } => {
                client.kind = Kind::Structured;
                if matches!(self.config.mode, ServeMode::Group | ServeMode::Broker)
                    && last_seq.is_some()
                {
                    client.resume = last_seq;
                    self.take_over(id, &name);
                }
                let Some(client) = self.clients.get(&id) else {
                    return;
                };
                if client.named() {
                    // Announced as raw after the grace, then it said hello: it keeps its place.
                    self.nick(id, &name);
                    self.welcome(id);
                } else {
                    self.join(id, Some(&name));
                }
            }
            Greeting::Raw(line) => {
                if client.kind == Kind::Pending {
                    client.kind = Kind::Raw;
                }
                if !client.named() {
                    self.join(id, None);
                }
                self.release_unheard(id);
                self.input(id, Input::Text(line));
            }
        }
    }

    /// Names a client (its wish if free and valid, else `guest-N`), welcomes it and announces it.
    fn join(&mut self, id: u64, wish: Option<&str>) {
        // What the room said before this client joined is not for it (a resume replays it from
        // the history, after the welcome).
        self.flush_round();
        let name = match wish.map(validate_name) {
            Some(Ok(name)) if !self.name_taken(&name, id) => name,
            Some(Ok(name)) => {
                self.send(id, &name_taken(&name));
                self.guest_name()
            }
            Some(Err(message)) => {
                self.send(
                    id,
                    &ServerFrame::Error {
                        code: "bad_name".into(),
                        message,
                    },
                );
                self.guest_name()
            }
            None => self.guest_name(),
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.name = name.clone();
        self.names.insert(name.to_lowercase(), id);
        let (peer, local, kind) = (client.peer, client.local, client.kind);
        // An echo client sent raw hears nothing but its own lines back after the greeting.
        if self.config.mode != ServeMode::Echo || kind == Kind::Structured {
            self.welcome(id);
        }
        match self.config.mode {
            ServeMode::Group | ServeMode::Broker => {
                self.console.event(&format!(
                    "connected {peer} → {local} ({name}, {})",
                    kind.label()
                ));
                if self.names.len() <= ANNOUNCE_LIMIT {
                    let frame = ServerFrame::Join {
                        time: now(),
                        name,
                        addr: peer.to_string(),
                    };
                    self.broadcast(&frame, Some(id));
                }
            }
            ServeMode::Echo => self.console.event(&format!(
                "connected {peer} → {local} ({name}, {})",
                kind.label()
            )),
            ServeMode::Single => self.single_joined(id),
        }
    }

    /// The `welcome`; for a client that resumes, followed by every kept message it missed.
    fn welcome(&mut self, id: u64) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let (replay, missed) = match client.resume.take() {
            Some(last_seq) => self.history.since(last_seq, self.seq),
            None => (Vec::new(), 0),
        };
        let client = &self.clients[&id];
        let frame = ServerFrame::Welcome {
            version: PROTOCOL_VERSION,
            server: format!("soquete {}", env!("CARGO_PKG_VERSION")),
            mode: mode_name(self.config.mode).into(),
            name: client.name.clone(),
            room_size: self.names.len(),
            last_seq: self.seq,
            missed: (missed > 0).then_some(missed),
        };
        let stats = Arc::clone(&client.stats);
        let structured = client.kind == Kind::Structured;
        self.send(id, &frame);
        if let Some(outbox) = &self.clients.get(&id).and_then(|c| c.outbox.as_ref()) {
            for bytes in replay {
                let _ = outbox.send(Outgoing::one(bytes, 1, false));
            }
        }
        if structured {
            stats.start_heartbeat();
        }
    }

    /// A reconnecting client (a `hello` with `last_seq`) takes its name back from a structured
    /// connection of the same name and the same IP address: most likely its own old connection,
    /// half-open after the network dropped. The old one is told and let go.
    fn take_over(&mut self, id: u64, wish: &str) {
        let Ok(name) = validate_name(wish) else {
            return;
        };
        let wanted = name.to_lowercase();
        let Some(ip) = self.clients.get(&id).map(|c| c.peer.ip()) else {
            return;
        };
        let Some((&old, old_client)) = self.clients.iter().find(|&(&other, c)| {
            other != id && c.name.to_lowercase() == wanted && c.kind == Kind::Structured
        }) else {
            return;
        };
        if old_client.peer.ip() != ip {
            return;
        }
        let newcomer = self.clients[&id].peer;
        self.send(
            old,
            &ServerFrame::Bye {
                reason: format!("{name} reconnected from {newcomer}: this connection is replaced"),
                code: ByeCode::Replaced,
            },
        );
        self.remove(old, "reconnected", Ending::Graceful);
    }

    fn guest_name(&mut self) -> String {
        loop {
            self.guests += 1;
            let name = format!("guest-{}", self.guests);
            if !self.name_taken(&name, u64::MAX) {
                return name;
            }
        }
    }

    /// Names are unique without regard to case; the console's name is taken too.
    fn name_taken(&self, name: &str, except: u64) -> bool {
        let wanted = name.to_lowercase();
        wanted == self.config.name.to_lowercase()
            || self.names.get(&wanted).is_some_and(|&id| id != except)
    }

    /// Lines that arrived together from one client. In group and broker mode, a run of plain
    /// chat lines goes out as one batch: stamped one by one, sent to each member in one piece.
    fn inputs(&mut self, id: u64, inputs: Vec<Input>) {
        if !self.is_room() {
            for input in inputs {
                self.input(id, input);
            }
            return;
        }
        let verbatim = self.relays_verbatim(id);
        let mut run = Vec::new();
        for input in inputs {
            let input = clean_input(input);
            match &input {
                Input::Text(_) if verbatim => {
                    let Input::Text(text) = input else {
                        unreachable!()
                    };
                    run.push((text, false));
                }
                Input::Text(text) if text.trim().is_empty() => {}
                Input::Text(text) => match parse_command(text) {
                    None => {
                        let Input::Text(text) = input else {
                            unreachable!()
                        };
                        run.push((text, false));
                    }
                    Some(Command::Me(action)) if !action.is_empty() => run.push((action, true)),
                    Some(_) => {
                        self.said_together(id, std::mem::take(&mut run));
                        self.input(id, input);
                    }
                },
                _ => {
                    self.said_together(id, std::mem::take(&mut run));
                    self.input(id, input);
                }
            }
        }
        self.said_together(id, run);
    }

    /// Chat lines of one member, stamped one by one (one `seq` each, one time), join the round's
    /// messages as one piece per flavour.
    fn said_together(&mut self, id: u64, lines: Vec<(String, bool)>) {
        let Some(client) = self.clients.get(&id).filter(|c| c.named()) else {
            return;
        };
        if lines.is_empty() {
            return;
        }
        let (from, structured) = (client.name.clone(), client.kind == Kind::Structured);
        let encoder = MsgEncoder::new(&now(), &from);
        // A broker relays the lines bare and logs connections, not the traffic.
        let broker = self.config.mode == ServeMode::Broker;
        let (mut json, mut text) = (Vec::new(), String::new());
        let count = lines.len() as u32;
        for (line, action) in lines {
            self.seq += 1;
            let start = json.len();
            encoder.json_line(self.seq, &line, action, &mut json);
            self.keep(self.seq, json[start..].into());
            if broker {
                text.push_str(&line);
                text.push('\n');
            } else {
                encoder.text_line(&line, action, &mut text);
            }
        }
        if !broker {
            self.console.push(text.clone());
        }
        self.round.add(Piece {
            author: id,
            // Raw clients (nc, telnet) already see what they typed; structured clients get
            // their own messages back, stamped, as the confirmation of their order.
            author_saw_it: !structured,
            json: json.into(),
            text: text.into_bytes().into(),
            lines: count,
        });
    }

    fn input(&mut self, id: u64, input: Input) {
        if !self.clients.get(&id).is_some_and(Client::named) {
            return;
        }
        let input = clean_input(input);
        if self.config.mode == ServeMode::Echo {
            return self.echo(id, input);
        }
        match input {
            Input::Text(text) if self.relays_verbatim(id) => self.said(id, text, false),
            Input::Text(text) => {
                if text.trim().is_empty() {
                    return;
                }
                match parse_command(&text) {
                    Some(Command::Nick(name)) => self.nick(id, &name),
                    Some(Command::Who) => self.who(id),
                    Some(Command::Help) => self.help(id),
                    Some(Command::Quit) => self.quit(id),
                    Some(Command::Me(action)) if action.is_empty() => {
                        self.refuse(id, "usage", "/me needs an action: /me waves")
                    }
                    Some(Command::Me(action)) => self.said(id, action, true),
                    Some(Command::Status) | Some(Command::Unknown(_)) => {
                        let word = text.split_whitespace().next().unwrap_or("").to_string();
                        self.refuse(
                            id,
                            "unknown_command",
                            &format!("unknown command {word}; /help lists commands"),
                        )
                    }
                    None => self.said(id, text, false),
                }
            }
            Input::Nick(name) => self.nick(id, &name),
            Input::Who => self.who(id),
            Input::Quit => self.quit(id),
            Input::Bad(message) => self.refuse(id, "bad_frame", &message),
        }
    }

    /// Group and broker mode: a room of N members.
    fn is_room(&self) -> bool {
        matches!(self.config.mode, ServeMode::Group | ServeMode::Broker)
    }

    /// A broker relays a raw client's every line as it came, blank ones and `/…` included: it
    /// runs no commands for it.
    fn relays_verbatim(&self, id: u64) -> bool {
        self.config.mode == ServeMode::Broker
            && self
                .clients
                .get(&id)
                .is_some_and(|c| c.kind != Kind::Structured)
    }

    /// A client said something (or did, with `/me`).
    fn said(&mut self, id: u64, text: String, action: bool) {
        match self.config.mode {
            ServeMode::Single => self.single_said(id, text, action),
            _ => self.said_together(id, vec![(text, action)]),
        }
    }

    /// A stamped message with the room's next sequence number.
    pub fn msg(&mut self, from: String, text: String, action: bool) -> ServerFrame {
        self.seq += 1;
        ServerFrame::Msg {
            seq: self.seq,
            time: now(),
            from,
            text,
            action,
        }
    }

    /// Keeps a room message in the history and the log; returns its JSON line for the fan-out.
    fn record(&mut self, frame: &ServerFrame) -> Bytes {
        let json: Bytes = frame.to_json_line().into();
        if let ServerFrame::Msg { seq, .. } = frame {
            self.keep(*seq, Arc::clone(&json));
        }
        json
    }

    /// Keeps message `seq` (its JSON line) in the history and the log.
    fn keep(&mut self, seq: u64, json: Bytes) {
        if let Some((path, err)) = self.history.record(seq, json) {
            eprintln!(
                "soquete: writing to the log {}: {err} (the room goes on; later failures are not reported)",
                path.display()
            );
        }
    }

    fn echo(&mut self, id: u64, input: Input) {
        let (name, kind) = (self.clients[&id].name.clone(), self.clients[&id].kind);
        match input {
            Input::Text(text) => {
                let frame = self.msg(name, text.clone(), false);
                self.console.message(&frame);
                if kind == Kind::Structured {
                    self.send(id, &frame);
                } else {
                    let mut line = text.clone().into_bytes();
                    line.push(b'\n');
                    self.deliver(id, line.into());
                }
                if text.trim() == "exit" {
                    self.quit(id);
                }
            }
            Input::Quit => self.quit(id),
            Input::Nick(_) | Input::Who => {
                self.refuse(id, "unsupported", "echo mode only sends lines back")
            }
            Input::Bad(message) => self.refuse(id, "bad_frame", &message),
        }
    }

    /// `/nick`: unique without regard to case; everyone hears of the change.
    pub fn nick(&mut self, id: u64, wish: &str) {
        let name = match validate_name(wish) {
            Ok(name) => name,
            Err(message) => return self.refuse(id, "bad_name", &message),
        };
        if self.name_taken(&name, id) {
            return self.send(id, &name_taken(&name));
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut client.name, name.clone());
        if old == name {
            return;
        }
        self.names.remove(&old.to_lowercase());
        self.names.insert(name.to_lowercase(), id);
        let frame = ServerFrame::Nick {
            time: now(),
            old,
            new: name,
        };
        self.console.message(&frame);
        if self.is_room() {
            self.broadcast(&frame, None);
        } else {
            self.send(id, &frame);
        }
    }

    fn who(&mut self, id: u64) {
        let frame = ServerFrame::Who {
            members: self.members(),
        };
        self.send(id, &frame);
    }

    /// The console, then every named client in order of arrival.
    fn members(&self) -> Vec<Member> {
        let console = Member {
            name: self.config.name.clone(),
            addr: self.config.listening.to_string(),
            kind: "console".into(),
        };
        std::iter::once(console)
            .chain(
                self.clients
                    .values()
                    .filter(|c| c.named())
                    .map(Client::member),
            )
            .collect()
    }

    fn help(&mut self, id: u64) {
        for line in HELP {
            self.send(
                id,
                &ServerFrame::Notice {
                    text: (*line).to_string(),
                },
            );
        }
    }

    /// `/quit` or `exit`: `bye`, then the connection closes after it.
    fn quit(&mut self, id: u64) {
        self.send(
            id,
            &ServerFrame::Bye {
                reason: "you left".into(),
                code: ByeCode::Quit,
            },
        );
        self.remove(id, "quit", Ending::Graceful);
    }

    /// Tells one client that what it sent was refused.
    pub fn refuse(&mut self, id: u64, code: &str, message: &str) {
        self.send(
            id,
            &ServerFrame::Error {
                code: code.into(),
                message: message.into(),
            },
        );
    }

    /// Forgets a client; announces it left if it had joined.
    pub fn remove(&mut self, id: u64, reason: &str, ending: Ending) {
        // What the room said before this client left is still its to read (a graceful ending
        // drains the outbox).
        self.flush_round();
        let Some(mut client) = self.clients.remove(&id) else {
            return;
        };
        self.connected.fetch_sub(1, Ordering::Relaxed);
        client.stats.close();
        client.outbox = None;
        if ending == Ending::Forced {
            let _ = client.stream.shutdown(Shutdown::Both);
        }
        self.congested.remove(&id);
        let (peer, local) = (client.peer, client.local);
        if !client.named() {
            self.console.event(&format!(
                "probe {peer} → {local}: {reason}, without joining"
            ));
        } else {
            // Counted with the one leaving, as its join was counted with it.
            let announce = self.names.len() <= ANNOUNCE_LIMIT;
            self.names.remove(&client.name.to_lowercase());
            self.console.event(&format!(
                "disconnected {peer} → {local} ({}: {reason})",
                client.name
            ));
            if self.is_room() && announce {
                let frame = ServerFrame::Leave {
                    time: now(),
                    name: client.name,
                    reason: reason.into(),
                };
                self.broadcast(&frame, None);
            }
        }
        if self.config.mode == ServeMode::Single {
            self.single_removed(id);
        }
    }

    /// Encodes `frame` for this client's flavour and queues it.
    pub fn send(&mut self, id: u64, frame: &ServerFrame) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let bytes: Bytes = match client.kind {
            Kind::Structured => frame.to_json_line().into(),
            // A broker's raw clients hear nothing but the others' lines.
            Kind::Raw | Kind::Pending if self.config.mode == ServeMode::Broker => return,
            Kind::Raw | Kind::Pending => frame.to_text_line().into(),
        };
        self.deliver(id, bytes);
    }

    /// Queues bytes for one client without ever blocking. An outbox over its bounds makes the
    /// hub wait for it before it takes more input.
    fn deliver(&mut self, id: u64, bytes: Bytes) {
        self.flush_round();
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if offer(client, Outgoing::one(bytes, 1, true)) {
            self.congested.entry(id).or_insert_with(Instant::now);
        }
    }

    /// Sends `frame` to every named client but `except`, encoded once per flavour.
    pub fn broadcast(&mut self, frame: &ServerFrame, except: Option<u64>) {
        self.fan_out(frame, None, except);
    }

    /// As [`Hub::broadcast`], with the JSON encoding already made (a recorded message). In
    /// broker mode raw clients get only the text of chat messages, bare.
    fn fan_out(&mut self, frame: &ServerFrame, json: Option<Bytes>, except: Option<u64>) {
        self.flush_round();
        let broker = self.config.mode == ServeMode::Broker;
        let (mut json, mut text): (Option<Bytes>, Option<Option<Bytes>>) = (json, None);
        let mut overflowing = Vec::new();
        for (&id, client) in &mut self.clients {
            let waiting = broker && !client.named() && client.kind == Kind::Pending;
            if !(client.named() || waiting) || Some(id) == except {
                continue;
            }
            let bytes = match client.kind {
                Kind::Structured => json.get_or_insert_with(|| frame.to_json_line().into()),
                Kind::Raw | Kind::Pending => {
                    let text = text.get_or_insert_with(|| match frame {
                        ServerFrame::Msg { text, .. } if broker => Some(bare_line(text)),
                        _ if broker => None,
                        _ => Some(frame.to_text_line().into()),
                    });
                    match text {
                        Some(bytes) => bytes,
                        None => continue,
                    }
                }
            };
            if waiting {
                if client.unheard.keep(bytes, 1) {
                    overflowing.push(id);
                }
            } else if offer(client, Outgoing::one(Arc::clone(bytes), 1, true)) {
                self.congested.entry(id).or_insert_with(Instant::now);
            }
        }
        for id in overflowing {
            self.taken_as_raw(id);
        }
    }

    /// Queues the round's messages for every named member as one item, without the member's
    /// own lines when it saw them as it typed them.
    fn flush_round(&mut self) {
        if self.round.pieces.is_empty() {
            return;
        }
        let round = std::mem::take(&mut self.round);
        let broker = self.config.mode == ServeMode::Broker;
        let mut overflowing = Vec::new();
        for (&id, client) in &mut self.clients {
            if broker && !client.named() && client.kind == Kind::Pending {
                for piece in &round.pieces {
                    if client.unheard.keep(&piece.text, piece.lines) {
                        overflowing.push(id);
                    }
                }
                continue;
            }
            if !client.named() {
                continue;
            }
            let structured = client.kind == Kind::Structured;
            let mut lines = 0;
            let parts: Vec<Bytes> = round
                .pieces
                .iter()
                .filter(|piece| !(piece.author_saw_it && piece.author == id))
                .map(|piece| {
                    lines += piece.lines;
                    Arc::clone(if structured { &piece.json } else { &piece.text })
                })
                .collect();
            if parts.is_empty() {
                continue;
            }
            let outgoing = Outgoing {
                parts,
                lines,
                counted: true,
            };
            if offer(client, outgoing) {
                self.congested.entry(id).or_insert_with(Instant::now);
            }
        }
        overflowing.dedup();
        for id in overflowing {
            self.taken_as_raw(id);
        }
    }

    /// A broker's connection that says nothing while more than an outbox's worth was kept for
    /// it is a listener: it is named, as after the join grace, and gets what was kept.
    fn taken_as_raw(&mut self, id: u64) {
        if self.clients.get(&id).is_some_and(|c| !c.named()) {
            self.join(id, None);
        }
        self.release_unheard(id);
    }

    /// What a broker kept for a connection, queued for it now that it is known to be raw.
    fn release_unheard(&mut self, id: u64) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let unheard = std::mem::take(&mut client.unheard);
        if unheard.parts.is_empty() {
            return;
        }
        let outgoing = Outgoing {
            parts: unheard.parts,
            lines: unheard.lines,
            counted: true,
        };
        if offer(client, outgoing) {
            self.congested.entry(id).or_insert_with(Instant::now);
        }
    }

    fn console_line(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        match parse_command(line) {
            Some(Command::Status) => {
                let table = self.status();
                self.console.table(&table, Style::for_stdout());
            }
            Some(Command::Who) => {
                let members = self.members();
                self.console.message(&ServerFrame::Who { members });
            }
            Some(Command::Help) => {
                for text in CONSOLE_HELP {
                    self.console.event(text);
                }
            }
            _ if self.config.mode == ServeMode::Single => self.single_console(line),
            _ if self.config.mode == ServeMode::Echo => self
                .console
                .event("! echo mode: the console only runs /status, /who and /help"),
            Some(Command::Me(action)) if !action.is_empty() => {
                let frame = self.msg(self.config.name.clone(), action, true);
                let json = self.record(&frame);
                self.fan_out(&frame, Some(json), None);
            }
            Some(Command::Quit) => self.console.event("! Ctrl-C stops the server"),
            Some(_) => self
                .console
                .event("! not a console command; /help lists them"),
            None if line.trim().is_empty() => {}
            None => {
                let frame = self.msg(self.config.name.clone(), line.to_string(), false);
                let json = self.record(&frame);
                self.fan_out(&frame, Some(json), None);
            }
        }
    }

    /// The `/status` table: the listening socket, then every accepted one.
    fn status(&self) -> Table {
        let header = [
            "state",
            "local",
            "peer",
            "name",
            "kind",
            "since",
            "msgs in",
            "msgs out",
            "bytes in",
            "bytes out",
            "queue",
        ];
        let mut rows = vec![vec![
            "listen".to_string(),
            self.config.listening.to_string(),
            "*:*".into(),
            self.config.name.clone(),
            mode_name(self.config.mode).into(),
            self.started.format("%H:%M:%S").to_string(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ]];
        for (&id, client) in &self.clients {
            let stats = &client.stats;
            rows.push(vec![
                self.state_of(id),
                client.local.to_string(),
                client.peer.to_string(),
                if client.named() {
                    client.name.clone()
                } else {
                    "-".into()
                },
                client.kind.label().into(),
                client.since.format("%H:%M:%S").to_string(),
                Stats::get(&stats.msgs_in).to_string(),
                Stats::get(&stats.msgs_out).to_string(),
                Stats::get(&stats.bytes_in).to_string(),
                Stats::get(&stats.bytes_out).to_string(),
                client.outbox.as_ref().map_or(0, Sender::len).to_string(),
            ]);
        }
        Table::from_rows(header.iter().map(|h| (*h).to_string()).collect(), rows)
    }

    fn state_of(&self, id: u64) -> String {
        match self.config.mode {
            ServeMode::Single => self.session.state_of(id),
            _ if self.clients.get(&id).is_some_and(Client::named) => "member".into(),
            _ => "new".into(),
        }
    }

    /// `bye` to everyone; then waits, at most [`SHUTDOWN_GRACE`], for the writers to send it.
    fn shutdown(mut self, events: &Receiver<Event>) {
        let bye = ServerFrame::Bye {
            reason: "the server is shutting down".into(),
            code: ByeCode::Shutdown,
        };
        let ids: Vec<u64> = self.clients.keys().copied().collect();
        for id in ids {
            self.send(id, &bye);
            if let Some(client) = self.clients.get_mut(&id) {
                client.stats.close();
                client.outbox = None;
            }
        }
        self.clients.clear();
        if let Err(err) = self.history.flush() {
            eprintln!("soquete: flushing the log: {err}");
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.live_writers > 0 {
            match events.recv_deadline(deadline) {
                Ok(Event::WriterDone) => self.live_writers -= 1,
                // Accepted in the meantime: dropping it closes it.
                Ok(Event::Accepted(accepted)) => {
                    self.live_writers += 1;
                    accepted.stats.close();
                    let _ = accepted.stream.shutdown(Shutdown::Both);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.console.event("stopped");
    }
}

/// Nobody's terminal (the console's included) may be driven by what a client sends; a line break
/// inside a frame's text would let it forge a second line for raw readers.
fn clean_input(input: Input) -> Input {
    match input {
        // Printable ASCII, the usual line, has nothing to neutralise.
        Input::Text(text) if text.bytes().all(|b| (b' '..=b'~').contains(&b)) => Input::Text(text),
        Input::Text(text) => Input::Text(neutralize(&text.replace(['\n', '\r'], " ")).into_owned()),
        Input::Bad(message) => Input::Bad(neutralize(&message).into_owned()),
        input => input,
    }
}

/// The room's messages of one round of the hub, in order.
#[derive(Default)]
struct RoomBatch {
    pieces: Vec<Piece>,
    /// Bytes of the larger flavour (JSON), to bound a round.
    bytes: usize,
}

impl RoomBatch {
    fn add(&mut self, piece: Piece) {
        self.bytes += piece.json.len().max(piece.text.len());
        self.pieces.push(piece);
    }
}

/// Lines of one author, encoded once per flavour and shared by every member of that flavour.
struct Piece {
    author: u64,
    /// The author is a raw client, which saw its lines as it typed them: not sent back.
    author_saw_it: bool,
    json: Bytes,
    text: Bytes,
    lines: u32,
}

/// Bare lines a broker keeps for a connection that has not said what it is yet.
#[derive(Debug, Default)]
pub struct Unheard {
    parts: Vec<Bytes>,
    bytes: usize,
    lines: u32,
}

impl Unheard {
    /// Keeps `bytes`; says whether what is kept now exceeds an outbox's bounds.
    fn keep(&mut self, bytes: &Bytes, lines: u32) -> bool {
        self.parts.push(Arc::clone(bytes));
        self.bytes += bytes.len();
        self.lines += lines;
        self.bytes > OUTBOX_BYTES
    }
}

/// A chat line as a broker relays it to raw clients: its text alone.
fn bare_line(text: &str) -> Bytes {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    line.into()
}

/// What the console's `/help` prints.
const CONSOLE_HELP: &[&str] = &[
    "a line       say it to the room (group, broker) or to the client being served (single)",
    "/me ACTION   say what you are doing (group)",
    "/status      the listening socket and every accepted one, with traffic and queue depth",
    "/who         who is connected",
    "exit         end the current session and serve the next client (single)",
    "Ctrl-C       stop the server",
];

/// The mode's name, as `welcome` carries it.
pub fn mode_name(mode: ServeMode) -> &'static str {
    match mode {
        ServeMode::Group => "group",
        ServeMode::Single => "single",
        ServeMode::Echo => "echo",
        ServeMode::Broker => "broker",
    }
}

fn name_taken(name: &str) -> ServerFrame {
    ServerFrame::Error {
        code: "name_taken".into(),
        message: format!("the name {name} is taken (names are unique, whatever their case)"),
    }
}

/// Queues without blocking, and says whether the outbox is now over its bounds, in messages or
/// in bytes (the hub then waits for it to drain). A closed queue takes nothing: its client is
/// already on its way out.
fn offer(client: &Client, outgoing: Outgoing) -> bool {
    let Some(outbox) = &client.outbox else {
        return false;
    };
    let stats = &client.stats;
    let len = outgoing.len();
    // Added before the send (the hub is the only one adding), so the writer's subtraction can
    // never come first. A queue that was empty starts the stall clock.
    if stats.queued_msgs.fetch_add(1, Ordering::Relaxed) == 0 {
        stats.touch();
    }
    let queued = stats.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
    if outbox.send(outgoing).is_err() {
        stats.queued_msgs.fetch_sub(1, Ordering::Relaxed);
        stats.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        return false;
    }
    let over = queued > OUTBOX_BYTES || stats.queued_msgs.load(Ordering::Relaxed) > OUTBOX_CAPACITY;
    if over {
        stats.congested.store(true, Ordering::Release);
    }
    over
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A hub in group mode whose clients' outboxes the test reads directly.
    fn hub() -> Hub {
        hub_in(ServeMode::Group)
    }

    fn hub_in(mode: ServeMode) -> Hub {
        let (console, _printer) = Console::new(None);
        let config = Config {
            mode,
            sync: false,
            name: "server".into(),
            listening: "127.0.0.1:65432".parse().unwrap(),
            history: 100,
            rate_limit: RateLimit::Off,
            idle_timeout: None,
        };
        let (_room, room_wakes) = crossbeam_channel::bounded(1);
        Hub::new(config, console, room_wakes)
    }

    /// Adds a client (named unless `name` is empty); returns the queue its writer would read.
    fn add(hub: &mut Hub, id: u64, name: &str, kind: Kind) -> Receiver<Outgoing> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (outbox, queue) = crossbeam_channel::unbounded();
        hub.clients.insert(
            id,
            Client {
                peer: stream.local_addr().unwrap(),
                local: stream.peer_addr().unwrap(),
                since: now(),
                stream: Arc::new(stream),
                outbox: Some(outbox),
                stats: Arc::default(),
                kind,
                name: name.into(),
                held: Vec::new(),
                unheard: Unheard::default(),
                resume: None,
            },
        );
        if !name.is_empty() {
            hub.names.insert(name.to_lowercase(), id);
        }
        hub.connected.fetch_add(1, Ordering::Relaxed);
        queue
    }

    #[test]
    fn a_broadcast_is_encoded_once_per_flavour_and_shared() {
        let mut hub = hub();
        let nc = add(&mut hub, 1, "nc", Kind::Raw);
        let py = add(&mut hub, 2, "py", Kind::Raw);
        let ana = add(&mut hub, 3, "ana", Kind::Structured);
        let frame = hub.msg("server".into(), "oi".into(), false);
        hub.broadcast(&frame, None);
        let [nc, py, ana] = [nc, py, ana].map(|queue| queue.recv().unwrap().parts.remove(0));
        assert!(Arc::ptr_eq(&nc, &py), "one text encoding, shared");
        assert!(nc.ends_with(b"<server> oi\n"));
        assert!(ana.starts_with(b"{\"type\":\"msg\",\"seq\":1,"));
    }

    #[test]
    fn an_outbox_over_its_bounds_congests_the_hub_and_nothing_is_dropped() {
        let mut hub = hub();
        let sleeper = add(&mut hub, 1, "sleeper", Kind::Raw);
        let big = "x".repeat(8000);
        let mut sent = 0;
        while hub.congested.is_empty() {
            let frame = hub.msg("server".into(), big.clone(), false);
            hub.broadcast(&frame, None);
            sent += 1;
            assert!(sent <= OUTBOX_BYTES / 8000 + 1, "never congested");
        }
        // Over 4 MiB of ~8 KB lines: far fewer than the messages the queue may hold.
        assert!(
            (OUTBOX_BYTES / 8100..=OUTBOX_BYTES / 8000 + 1).contains(&sent),
            "{sent}"
        );
        assert!(hub.clients.contains_key(&1), "kept: it may still catch up");
        assert!(hub.clients[&1].stats.congested.load(Ordering::Relaxed));
        assert_eq!(sleeper.len(), sent, "every message is queued");
    }

    #[test]
    fn a_congested_client_that_does_not_drain_in_time_is_let_go() {
        let mut hub = hub();
        let _sleeper = add(&mut hub, 1, "sleeper", Kind::Raw);
        let ana = add(&mut hub, 2, "ana", Kind::Structured);
        let frame = hub.msg("server".into(), "oi".into(), false);
        hub.broadcast(&frame, None);
        let stats = Arc::clone(&hub.clients[&1].stats);
        stats.queued_bytes.store(OUTBOX_BYTES, Ordering::Relaxed);
        hub.congested
            .insert(1, Instant::now() - STALL_TIMEOUT - Duration::from_millis(1));
        hub.wait_for_room();
        assert!(!hub.clients.contains_key(&1), "the sleeper is gone");
        assert!(stats.is_closed());
        let frames: Vec<serde_json::Value> = ana
            .try_iter()
            .map(|out| serde_json::from_slice(&out.concat()).unwrap())
            .collect();
        let types: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["msg", "leave"]);
        let reason = frames[1]["reason"].as_str().unwrap();
        assert!(reason.starts_with("too slow"), "{reason}");
    }

    #[test]
    fn thousands_of_clients_let_go_at_once_need_no_deep_stack() {
        const CLIENTS: u64 = 3000;
        let mut hub = hub();
        let mut queues = Vec::new();
        for id in 1..=CLIENTS {
            queues.push(add(&mut hub, id, &format!("c{id}"), Kind::Raw));
            hub.clients[&id]
                .stats
                .queued_bytes
                .store(OUTBOX_BYTES, Ordering::Relaxed);
            hub.congested.insert(id, Instant::now() - STALL_TIMEOUT);
        }
        // A small stack: the drops are a loop, not a recursion.
        let hub = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                hub.wait_for_room();
                hub
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(hub.clients.is_empty());
        assert!(hub.names.is_empty());
    }

    #[test]
    fn joins_and_leaves_are_announced_only_in_a_room_of_at_most_the_limit() {
        let mut hub = hub();
        let watcher = add(&mut hub, 1, "watcher", Kind::Raw);
        let last = ANNOUNCE_LIMIT as u64 + 5;
        let mut queues = Vec::new();
        for id in 2..=last {
            queues.push(add(&mut hub, id, "", Kind::Raw));
            hub.join(id, None);
        }
        let joins = watcher.try_iter().count();
        assert_eq!(
            joins,
            ANNOUNCE_LIMIT - 1,
            "joins up to the limit, then none"
        );
        hub.remove(last, "quit", Ending::Graceful);
        assert_eq!(watcher.try_iter().count(), 0, "no leave in a big room");
        for id in 6..last {
            hub.remove(id, "quit", Ending::Graceful);
        }
        // Announced from a room of 100 down to one of 6 (members 1 to 5 stay).
        assert_eq!(watcher.try_iter().count(), ANNOUNCE_LIMIT - 5);
    }

    #[test]
    fn a_round_reaches_each_member_as_one_item_in_order_without_a_raw_authors_own_lines() {
        let mut hub = hub();
        let nc = add(&mut hub, 1, "nc", Kind::Raw);
        let ana = add(&mut hub, 2, "ana", Kind::Structured);
        let py = add(&mut hub, 3, "py", Kind::Raw);
        let text = |line: &str| Input::Text(line.into());
        hub.handle(Event::Input {
            id: 1,
            inputs: vec![text("one"), text("two")],
        });
        hub.handle(Event::Input {
            id: 2,
            inputs: vec![text("three")],
        });
        hub.handle(Event::Input {
            id: 1,
            inputs: vec![text("four")],
        });
        assert!(py.is_empty(), "nothing is queued before the round ends");
        hub.flush_round();
        let lines = |queue: &Receiver<Outgoing>| {
            let items: Vec<Outgoing> = queue.try_iter().collect();
            assert_eq!(items.len(), 1, "one item for the whole round");
            let all = String::from_utf8(items[0].concat()).unwrap();
            assert_eq!(items[0].lines as usize, all.lines().count());
            all.lines()
                .map(|l| l.split_once("> ").map_or(l, |(_, t)| t).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(&py), ["one", "two", "three", "four"]);
        assert_eq!(
            lines(&nc),
            ["three"],
            "nc saw its own lines as it typed them"
        );
        let ana_items: Vec<Outgoing> = ana.try_iter().collect();
        assert_eq!(ana_items.len(), 1);
        let seqs: Vec<u64> = String::from_utf8(ana_items[0].concat())
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            seqs,
            [1, 2, 3, 4],
            "a structured author gets its own lines back, stamped"
        );
    }

    #[test]
    fn a_round_goes_to_the_members_of_its_time_not_to_who_joins_after_it() {
        let mut hub = hub();
        let ana = add(&mut hub, 1, "ana", Kind::Structured);
        hub.handle(Event::Input {
            id: 1,
            inputs: vec![Input::Text("before bia".into())],
        });
        let bia = add(&mut hub, 2, "", Kind::Structured);
        hub.clients.get_mut(&2).unwrap().resume = Some(0);
        hub.join(2, Some("bia"));
        hub.handle(Event::Input {
            id: 1,
            inputs: vec![Input::Text("after bia".into())],
        });
        hub.handle(Event::Closed {
            id: 1,
            reason: "closed by the client".into(),
            ending: Ending::Graceful,
        });
        hub.flush_round();
        let frames = |queue: &Receiver<Outgoing>| -> Vec<String> {
            queue
                .try_iter()
                .flat_map(|out| {
                    let text = String::from_utf8(out.concat()).unwrap();
                    text.lines()
                        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                        .map(|f| format!("{} {}", f["type"].as_str().unwrap(), f["seq"]))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        // bia: its welcome, the message it missed replayed once, then what came after.
        assert_eq!(
            frames(&bia),
            ["welcome null", "msg 1", "msg 2", "leave null"]
        );
        // ana left gracefully: its own two messages still reach it, stamped.
        assert_eq!(frames(&ana), ["msg 1", "join null", "msg 2"]);
    }

    /// Everything queued for a client, as one string.
    fn text_of(queue: &Receiver<Outgoing>) -> String {
        queue
            .try_iter()
            .map(|out| String::from_utf8(out.concat()).unwrap())
            .collect()
    }

    #[test]
    fn a_broker_keeps_the_room_for_a_connection_until_it_says_what_it_is() {
        let mut hub = hub_in(ServeMode::Broker);
        let _ana = add(&mut hub, 1, "ana", Kind::Raw);
        let listener = add(&mut hub, 2, "", Kind::Pending);
        let soquete = add(&mut hub, 3, "", Kind::Pending);
        let forged = r#"{"type":"bye","reason":"forged"}"#;
        hub.handle(Event::Input {
            id: 1,
            inputs: vec![Input::Text(forged.into()), Input::Text("dois".into())],
        });
        hub.flush_round();
        assert_eq!(text_of(&listener), "", "nothing before it says what it is");
        assert_eq!(text_of(&soquete), "");

        // A second of silence: a listener, which gets all it missed, bare, and nothing else.
        hub.handle(Event::Silent { id: 2 });
        assert_eq!(text_of(&listener), format!("{forged}\ndois\n"));

        // A hello: a soquete client, which never sees a raw line that could pass for a frame.
        hub.first_line(
            3,
            Greeting::Structured {
                name: "bia".into(),
                last_seq: None,
                probe: false,
            },
        );
        let frames: Vec<serde_json::Value> = text_of(&soquete)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let types: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["welcome"]);
        assert_eq!(frames[0]["mode"], "broker");
    }

    #[test]
    fn a_broker_connection_that_stays_silent_through_an_outbox_of_traffic_is_a_listener() {
        let mut hub = hub_in(ServeMode::Broker);
        let _ana = add(&mut hub, 1, "ana", Kind::Raw);
        let listener = add(&mut hub, 2, "", Kind::Pending);
        let line = "x".repeat(8000);
        let mut sent = 0;
        while !hub.clients[&2].named() {
            hub.handle(Event::Input {
                id: 1,
                inputs: vec![Input::Text(line.clone())],
            });
            hub.flush_round();
            sent += 1;
            assert!(sent <= OUTBOX_BYTES / 8000 + 1, "never taken as raw");
        }
        let got = text_of(&listener);
        assert_eq!(got.lines().count(), sent, "it gets every line kept for it");
        assert!(got.lines().all(|l| l == line));
    }

    #[test]
    fn a_reply_to_one_member_comes_after_the_round_it_followed() {
        let mut hub = hub();
        let ana = add(&mut hub, 1, "ana", Kind::Structured);
        hub.handle(Event::Input {
            id: 1,
            inputs: vec![Input::Text("oi".into()), Input::Who],
        });
        hub.flush_round();
        let types: Vec<String> = ana
            .try_iter()
            .map(|out| serde_json::from_slice::<serde_json::Value>(&out.concat()).unwrap())
            .map(|frame| frame["type"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, ["msg", "who"]);
    }

    #[test]
    fn a_resume_replays_what_was_missed_after_the_welcome() {
        let mut hub = hub();
        let _ana = add(&mut hub, 1, "ana", Kind::Structured);
        for n in 1..=5 {
            let frame = hub.msg("server".into(), format!("m{n}"), false);
            let json = hub.record(&frame);
            hub.fan_out(&frame, Some(json), None);
        }
        let bia = add(&mut hub, 2, "bia", Kind::Structured);
        hub.clients.get_mut(&2).unwrap().resume = Some(3);
        hub.welcome(2);
        let frames: Vec<serde_json::Value> = bia
            .try_iter()
            .map(|out| serde_json::from_slice(&out.concat()).unwrap())
            .collect();
        assert_eq!(frames[0]["type"], "welcome");
        assert_eq!(frames[0]["last_seq"], 5);
        let seqs: Vec<u64> = frames[1..]
            .iter()
            .map(|f| f["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [4, 5]);
    }

    #[test]
    fn names_clash_whatever_their_case_and_the_console_name_is_taken() {
        let mut hub = hub();
        let _ana = add(&mut hub, 1, "ana", Kind::Structured);
        let bia = add(&mut hub, 2, "bia", Kind::Structured);
        hub.nick(2, "ANA");
        hub.nick(2, "Server");
        let codes: Vec<String> = bia
            .try_iter()
            .map(|out| serde_json::from_slice::<serde_json::Value>(&out.concat()).unwrap())
            .map(|f| f["code"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(codes, ["name_taken", "name_taken"]);
        assert_eq!(hub.clients[&2].name, "bia");
    }
}
