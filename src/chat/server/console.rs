//! The server console: stdin lines go to the hub as events; what the hub reports (connections,
//! messages, `/status`) is printed on stdout by a printer thread of its own, so a stdout nobody
//! reads never holds up the hub.

use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use rustyline::error::ReadlineError;
use rustyline::{DefaultEditor, ExternalPrinter};

use crate::chat::protocol::{Incoming, LineReader, MAX_LINE_BYTES, ServerFrame};
use crate::output::{Style, Table, render_table};

use super::event::Event;

/// Reports waiting to be printed; beyond this they are counted and dropped.
pub const CONSOLE_CAPACITY: usize = 4096;

/// Shows reports above the line being typed at the console.
pub type Printer = Box<dyn ExternalPrinter + Send>;

/// The console's line editor, when stdin and stdout are a terminal: reports print above the line
/// being typed instead of running through it.
pub struct ConsoleEditor {
    editor: DefaultEditor,
    prompt: String,
}

impl ConsoleEditor {
    /// The editor and its printer; None without a terminal (then plain lines are read).
    pub fn open(name: &str) -> Option<(ConsoleEditor, Printer)> {
        if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
            return None;
        }
        let mut editor = DefaultEditor::new().ok()?;
        let printer = editor.create_external_printer().ok()?;
        let prompt = format!("{name}> ");
        Some((ConsoleEditor { editor, prompt }, Box::new(printer)))
    }
}

/// Reads the console's lines until end of input, then returns: the server goes on serving, as a
/// daemon does when stdin is not a terminal or is closed. With an editor, Ctrl-C (which the
/// editor's raw mode turns into a key) stops the server as the signal would. A line longer than
/// a client may send ([`MAX_LINE_BYTES`]) is refused with a note, as a client's would be.
pub fn read_stdin(events: &Sender<Event>, editor: Option<ConsoleEditor>) {
    if let Some(mut console) = editor {
        loop {
            match console.editor.readline(&console.prompt) {
                Ok(line) if line.len() > MAX_LINE_BYTES => refuse_overlong(),
                Ok(line) => {
                    let _ = console.editor.add_history_entry(line.as_str());
                    if events.send(Event::Console(line)).is_err() {
                        return;
                    }
                }
                Err(ReadlineError::Interrupted) => {
                    let _ = events.send(Event::Shutdown);
                    return;
                }
                Err(_) => return,
            }
        }
    }
    read_lines(std::io::stdin().lock(), events);
}

/// Plain lines (stdin not a terminal), bounded as a client's are, until end of input.
fn read_lines(input: impl Read, events: &Sender<Event>) {
    let mut lines = LineReader::new(input);
    loop {
        match lines.next_line() {
            Ok(Some(Incoming::Line(line))) => {
                if events.send(Event::Console(line)).is_err() {
                    return;
                }
            }
            Ok(Some(Incoming::Overlong)) => refuse_overlong(),
            Ok(Some(Incoming::Telnet(_))) => {}
            Ok(None) | Err(_) => return,
        }
    }
}

/// Says why a console line was not sent.
fn refuse_overlong() {
    eprintln!("soquete: console line not sent: longer than {MAX_LINE_BYTES} bytes");
}

/// Where the hub's reports go: a bounded queue to the printer thread.
#[derive(Debug, Clone)]
pub struct Console {
    queue: Sender<String>,
    dropped: Arc<AtomicU64>,
}

impl Console {
    /// A console and the printer loop that empties it (run it on its own thread), into the line
    /// editor's `printer` when there is one, else onto stdout.
    pub fn new(printer: Option<Printer>) -> (Console, impl FnOnce() + Send + 'static) {
        let (queue, printing) = crossbeam_channel::bounded(CONSOLE_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let console = Console {
            queue,
            dropped: Arc::clone(&dropped),
        };
        (console, move || print_loop(&printing, &dropped, printer))
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
fn print_loop(printing: &Receiver<String>, dropped: &AtomicU64, mut editor: Option<Printer>) {
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
        if let Some(text) = next {
            batch.push_str(&text);
        }
        let written = match editor.as_mut() {
            // The printer puts the text above the edited line; it ends in a newline already.
            Some(printer) => printer
                .print(std::mem::take(&mut batch))
                .map_err(|err| std::io::Error::other(err.to_string())),
            None => out.write_all(batch.as_bytes()).and_then(|()| out.flush()),
        };
        if written.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_longer_than_a_clients_are_refused() {
        let (events, heard) = crossbeam_channel::unbounded();
        let long = "x".repeat(MAX_LINE_BYTES + 1);
        read_lines(format!("oi\n{long}\ntchau").as_bytes(), &events);
        let lines: Vec<String> = heard
            .try_iter()
            .map(|event| match event {
                Event::Console(line) => line,
                _ => panic!("not a console line"),
            })
            .collect();
        assert_eq!(lines, ["oi", "tchau"]);
    }
}
