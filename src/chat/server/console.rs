//! The server console: stdin lines go to the hub as events; what the hub reports (connections,
//! messages, `/status`) is printed on stdout by a printer thread of its own, so a stdout nobody
//! reads never holds up the hub.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::chat::protocol::ServerFrame;
use crate::output::{Style, Table, render_table};

use super::hub::Event;

/// Reports waiting to be printed; beyond this they are counted and dropped.
pub const CONSOLE_CAPACITY: usize = 4096;

/// Reads the console's lines until end of input, then returns: the server goes on serving, as a
/// daemon does when stdin is not a terminal or is closed.
pub fn read_stdin(events: &Sender<Event>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        if events.send(Event::Console(line)).is_err() {
            return;
        }
    }
}

/// Where the hub's reports go: a bounded queue to the printer thread.
#[derive(Debug, Clone)]
pub struct Console {
    queue: Sender<String>,
    dropped: Arc<AtomicU64>,
}

impl Console {
    /// A console and the printer loop that empties it (run it on its own thread).
    pub fn new() -> (Console, impl FnOnce() + Send + 'static) {
        let (queue, printing) = crossbeam_channel::bounded(CONSOLE_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let console = Console {
            queue,
            dropped: Arc::clone(&dropped),
        };
        (console, move || print_loop(&printing, &dropped))
    }

    /// A connection event or a notice for the person at the console.
    pub fn event(&self, text: &str) {
        self.push(format!("{text}\n"));
    }

    /// A chat frame, as a raw client would read it.
    pub fn message(&self, frame: &ServerFrame) {
        self.push(String::from_utf8_lossy(&frame.to_text_line()).into_owned());
    }

    /// A table (`/status`).
    pub fn table(&self, table: &Table, style: Style) {
        self.push(render_table(table, style));
    }

    /// Text already formatted (lines that end with a newline).
    pub fn push(&self, text: String) {
        if let Err(TrySendError::Full(_)) = self.queue.try_send(text) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Most reports printed in one write.
const PRINT_BATCH: usize = 256;

/// Prints until every [`Console`] is dropped, what has queued up in one write. A server whose
/// stdout went away (a closed pipe, a detached terminal) keeps serving its clients: the console
/// is a view, not the service, so its write errors end only the printing.
fn print_loop(printing: &Receiver<String>, dropped: &AtomicU64) {
    let mut out = std::io::stdout();
    let mut batch = String::new();
    while let Ok(first) = printing.recv() {
        batch.clear();
        let mut next = Some(first);
        for _ in 0..PRINT_BATCH {
            let Some(text) = next.take() else { break };
            let lost = dropped.swap(0, Ordering::Relaxed);
            if lost > 0 {
                batch.push_str(&format!(
                    "({lost} console lines dropped: stdout was not read fast enough)\n"
                ));
            }
            batch.push_str(&text);
            next = printing.try_recv().ok();
        }
        if out
            .write_all(batch.as_bytes())
            .and_then(|()| next.map_or(Ok(()), |text| out.write_all(text.as_bytes())))
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}
