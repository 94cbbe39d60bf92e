//! `soquete serve`: the chat server (docs/PROTOCOL.md). Threads, no async: one accept thread; per
//! client a reader and a writer fed by a bounded queue; one hub that owns the room; one console
//! thread reading stdin. Ctrl-C tells every client `bye` and exits 0.

mod connection;
mod console;
mod hub;
mod single;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::chat::protocol::validate_name;
use crate::cli::{ServeArgs, ServeMode};
use crate::error::{Error, Result};

use hub::{Config, Event, Hub};

/// Events waiting for the hub; a reader that finds it full waits, and only that reader.
const EVENT_CAPACITY: usize = 4096;
/// Pause after a failed accept (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Limit on the connection that wakes the accept thread at shutdown.
const WAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the server until Ctrl-C.
pub fn run(args: &ServeArgs) -> Result<()> {
    let name = validate_name(&args.name)
        .map_err(|message| Error::Usage(format!("--name {:?}: {message}", args.name)))?;
    if args.sync && args.mode != ServeMode::Single {
        return Err(Error::Usage(
            "--sync is turn-taking between one client and the console: use it with --mode single"
                .into(),
        ));
    }
    let wanted = SocketAddr::new(args.bind, args.port);
    let listener = TcpListener::bind(wanted)
        .map_err(|err| Error::io(format!("listening on {wanted}"), err))?;
    let listening = listener
        .local_addr()
        .map_err(|err| Error::io(format!("listening on {wanted}"), err))?;

    let (events, inbox) = crossbeam_channel::bounded(EVENT_CAPACITY);
    let on_interrupt = events.clone();
    // Set before the address is printed: whoever reads it may send SIGINT at once.
    ctrlc::set_handler(move || {
        let _ = on_interrupt.send(Event::Shutdown);
    })
    .map_err(|err| Error::Unsupported(format!("cannot catch Ctrl-C: {err}")))?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {listening}")?;
    stdout.flush()?;
    drop(stdout);

    let config = Config {
        mode: args.mode,
        sync: args.sync,
        name,
        listening,
    };
    let (console, printer) = console::Console::new();
    let (printed, printer_done) = crossbeam_channel::bounded::<()>(1);
    spawn("console-out", move || {
        printer();
        let _ = printed.send(());
    })?;
    let hub = Hub::new(config, console);
    let hub = spawn("hub", move || hub.run(&inbox))?;
    let console_events = events.clone();
    spawn("console", move || console::read_stdin(&console_events))?;
    let stop = Arc::new(AtomicBool::new(false));
    let accept_stop = Arc::clone(&stop);
    let accept = spawn("accept", move || {
        accept_loop(&listener, &events, &accept_stop)
    })?;

    let _ = hub.join();
    // The hub owned the console: its last reports are printed, unless stdout is stuck.
    let _ = printer_done.recv_timeout(hub::SHUTDOWN_GRACE);
    stop.store(true, Ordering::SeqCst);
    // accept() has no timeout of its own: a connection of our own unblocks it.
    if TcpStream::connect_timeout(&reachable(listening), WAKE_TIMEOUT).is_ok() {
        let _ = accept.join();
    }
    Ok(())
}

fn spawn<F: FnOnce() + Send + 'static>(name: &str, work: F) -> Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map_err(|err| Error::io(format!("starting the {name} thread"), err))
}

/// Accepts until told to stop; each connection gets its reader and writer.
fn accept_loop(listener: &TcpListener, events: &Sender<Event>, stop: &AtomicBool) {
    let mut next_id = 1u64;
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match stream {
            Ok(stream) => {
                if let Err(err) = connection::start(next_id, stream, events) {
                    eprintln!("soquete: setting up connection {next_id}: {err}");
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
