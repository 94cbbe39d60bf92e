//! `soquete serve`: the chat server (docs/PROTOCOL.md). Threads, no async: one accept thread; per
//! client a reader and a writer fed by a bounded queue; one hub that owns the room and its
//! history; one console thread reading stdin. Ctrl-C or SIGTERM tells every client `bye`, flushes
//! the log and exits 0.

mod connection;
mod console;
mod history;
mod hub;
mod single;
mod throttle;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::chat::protocol::validate_name;
use crate::cli::{DEFAULT_RATE_LIMIT, RateLimit, ServeArgs, ServeMode};
use crate::error::{Error, Result};
use crate::platform::limits::raise_open_files_limit;
use crate::platform::terminal::SavedTerminal;

use connection::Policy;
use history::History;
use hub::{Config, Event, Hub};

/// Events waiting for the hub. A reader that finds it full waits (and TCP slows its sender
/// down): so it goes while the hub waits for a congested outbox to drain.
const EVENT_CAPACITY: usize = 1024;
/// Pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Limit on the connection that wakes the accept thread at shutdown.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a client refused by `--max-clients` gets to read its "server full" line.
const REFUSE_LINGER: Duration = Duration::from_secs(2);
/// Stack of the short-lived thread that tells a refused client.
const REFUSE_STACK: usize = 64 * 1024;

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: &ServeArgs) -> Result<()> {
    let name = validate_name(&args.name)
        .map_err(|message| Error::Usage(format!("--name {:?}: {message}", args.name)))?;
    if args.sync && args.mode != ServeMode::Single {
        return Err(Error::Usage(
            "--sync is turn-taking between one client and the console: use it with --mode single"
                .into(),
        ));
    }
    if args.log.is_some() && !matches!(args.mode, ServeMode::Group | ServeMode::Broker) {
        return Err(Error::Usage(
            "--log keeps the room's messages: use it in group or broker mode".into(),
        ));
    }
    let mut history = History::new(args.history);
    let mut last_seq = 0;
    if let Some(path) = &args.log {
        let found = history
            .open_log(path)
            .map_err(|err| Error::io(format!("opening the log {}", path.display()), err))?;
        last_seq = found.last_seq;
        if found.skipped > 0 || found.torn > 0 {
            eprintln!(
                "soquete: the log {} had {} unreadable line(s){}; they were skipped, and {} messages reloaded",
                path.display(),
                found.skipped,
                if found.torn > 0 {
                    format!(
                        " and a last line cut short ({} bytes, removed: the server stopped mid-write)",
                        found.torn
                    )
                } else {
                    String::new()
                },
                found.messages,
            );
        }
    }
    // One file per client: let the server hold as many as the system allows it.
    if let Err(err) = raise_open_files_limit() {
        eprintln!("soquete: could not raise the limit on open files: {err}");
    }
    // std sets SO_REUSEADDR on Unix, so a restarted server takes its port back at once, even
    // with connections of the old one still in TIME_WAIT.
    let wanted = SocketAddr::new(args.bind, args.port);
    let listener = TcpListener::bind(wanted)
        .map_err(|err| Error::io(format!("cannot listen on {wanted}"), err))?;
    let listening = listener
        .local_addr()
        .map_err(|err| Error::io(format!("cannot listen on {wanted}"), err))?;

    let (events, inbox) = crossbeam_channel::bounded(EVENT_CAPACITY);
    let on_interrupt = events.clone();
    // Set before the address is printed: whoever reads it may send SIGINT at once. The
    // "termination" feature makes this SIGTERM (and SIGHUP) too.
    ctrlc::set_handler(move || {
        let _ = on_interrupt.send(Event::Shutdown);
    })
    .map_err(|err| Error::Unsupported(format!("cannot catch Ctrl-C and SIGTERM: {err}")))?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {listening}")?;
    stdout.flush()?;
    drop(stdout);

    let idle_timeout = args.idle_timeout.map(Duration::from_secs);
    let broker = args.mode == ServeMode::Broker;
    let rate_limit = args.rate_limit.unwrap_or(if broker {
        RateLimit::Off
    } else {
        DEFAULT_RATE_LIMIT
    });
    let config = Config {
        mode: args.mode,
        sync: args.sync,
        name,
        listening,
        history: args.history,
        rate_limit,
        idle_timeout,
    };
    let policy = Policy {
        rate_limit,
        idle_timeout,
    };
    let max_clients = args.max_clients.map(|n| n as usize);
    let editor = console::ConsoleEditor::open(&args.name);
    // The editor puts the terminal in raw mode: whatever ends the server puts it back.
    let saved_terminal = editor.as_ref().and_then(|_| SavedTerminal::save());
    let (editor, editor_printer) = match editor {
        Some((editor, printer)) => (Some(editor), Some(printer)),
        None => (None, None),
    };
    let (console, printer) = console::Console::new(editor_printer);
    let (printed, printer_done) = crossbeam_channel::bounded::<()>(1);
    spawn("console-out", move || {
        printer();
        let _ = printed.send(());
    })?;
    // Writers wake the hub here when an outbox it waits for has drained.
    let (room, room_wakes) = crossbeam_channel::bounded(1);
    let mut hub = Hub::new(config, console, room_wakes);
    hub.history = history;
    hub.seq = last_seq;
    let connected = Arc::clone(&hub.connected);
    let hub = spawn("hub", move || hub.run(&inbox))?;
    let console_events = events.clone();
    spawn("console", move || {
        console::read_stdin(&console_events, editor)
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let accept_stop = Arc::clone(&stop);
    let accept = spawn("accept", move || {
        // A broker's raw clients hear nothing of the server's own, "server full" included.
        let limits = (max_clients, connected.as_ref(), !broker);
        accept_loop(&listener, (&events, &room), &accept_stop, limits, policy)
    })?;

    let _ = hub.join();
    // The hub owned the console: its last reports are printed, unless stdout is stuck.
    let _ = printer_done.recv_timeout(hub::SHUTDOWN_GRACE);
    stop.store(true, Ordering::SeqCst);
    // accept() has no timeout of its own: a connection of our own unblocks it.
    if TcpStream::connect_timeout(&reachable(listening), WAKE_TIMEOUT).is_ok() {
        let _ = accept.join();
    }
    if let Some(saved) = saved_terminal {
        saved.restore();
    }
    Ok(())
}

fn spawn<F: FnOnce() + Send + 'static>(name: &str, work: F) -> Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map_err(|err| Error::io(format!("starting the {name} thread"), err))
}

/// Accepts until told to stop; each connection gets its reader and writer, unless
/// `--max-clients` are connected already (`connected` counts them; the hub counts them down).
fn accept_loop(
    listener: &TcpListener,
    (events, room): (&Sender<Event>, &Sender<()>),
    stop: &AtomicBool,
    (max_clients, connected, tell_refused): (Option<usize>, &AtomicUsize, bool),
    policy: Policy,
) {
    let mut next_id = 1u64;
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                if let Some(max) = max_clients
                    && connected.load(Ordering::Relaxed) >= max
                {
                    refuse(stream, max, tell_refused, events);
                    continue;
                }
                connected.fetch_add(1, Ordering::Relaxed);
                if let Err(err) = connection::start(next_id, stream, events, room, policy) {
                    // Failed before the hub heard of it: it never counted.
                    connected.fetch_sub(1, Ordering::Relaxed);
                    if matches!(
                        err.kind(),
                        io::ErrorKind::NotConnected
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                    ) {
                        // Reset as soon as it was made: a port probe, nothing to worry about.
                        let _ = events.send(Event::Vanished { peer });
                    } else {
                        eprintln!("soquete: setting up connection {next_id}: {err}");
                    }
                }
                next_id += 1;
            }
            Err(err) => {
                eprintln!("soquete: accepting a connection: {err}");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

/// Tells a connection beyond `--max-clients` so (when `tell`), in a line any client can read (it
/// has not said what it is yet), and closes it. The close lingers until the client closes or
/// [`REFUSE_LINGER`] passes: closing with its `hello` unread would reset the connection, and
/// the reset could destroy the line before the client reads it.
fn refuse(stream: TcpStream, max: usize, tell: bool, events: &Sender<Event>) {
    if let Ok(peer) = stream.peer_addr() {
        let _ = events.try_send(Event::Refused { peer });
    }
    let tell = move || {
        let line = format!(
            "* server full: {max} clients are connected (--max-clients); try again later\n"
        );
        let _ = stream.set_write_timeout(Some(REFUSE_LINGER));
        let _ = stream.set_read_timeout(Some(REFUSE_LINGER));
        if tell {
            let _ = (&stream).write_all(line.as_bytes());
        }
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let deadline = std::time::Instant::now() + REFUSE_LINGER;
        let mut sink = [0u8; 512];
        while std::time::Instant::now() < deadline {
            match (&stream).read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    // Without a thread to spare, the connection is simply closed.
    let _ = thread::Builder::new()
        .name("refuse".into())
        .stack_size(REFUSE_STACK)
        .spawn(tell);
}

/// The address to reach a listener at: a wildcard address is reached on loopback.
fn reachable(listening: SocketAddr) -> SocketAddr {
    let mut addr = listening;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}
