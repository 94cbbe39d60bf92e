//! The user's side of the client: where typed lines come from (a line editor on a terminal, plain
//! lines from a pipe or file) and where received lines go (above the line being edited, or plain
//! stdout and stderr).
//!
//! Nothing from the network drives the terminal: every human-readable line is neutralised here
//! ([`neutralize`]: escape sequences removed, other controls shown as U+FFFD), the one place
//! output is rendered. `--json` lines are JSON-escaped instead.
//!
//! A `--raw` server's bytes go to stdout unchanged to a pipe or file (as nc does), neutralised
//! line by line to a terminal. A line editor (and `--json`)
//! shows them line by line instead, and a partial line (a prompt such as `Name: `) as a line of
//! its own once no more bytes follow for [`PARTIAL_LINE_WAIT`]: the editor owns the last line
//! of the terminal, so text cannot be left hanging there.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, ExternalPrinter, Helper, Prompt};

use super::session::{Event, LocalEvent, Output};
use crate::chat::protocol::{Command, MAX_FRAME_BYTES, parse_command};
use crate::net::sanitize::neutralize;
use crate::platform::terminal::SavedTerminal;

/// How long a partial line from a `--raw` server waits for more bytes before a line editor (or
/// `--json`) shows it as it is.
pub const PARTIAL_LINE_WAIT: Duration = Duration::from_millis(30);

/// Where the client's output goes and how it is rendered.
pub struct Screen {
    /// `--json`: data and state events as JSON lines.
    json: bool,
    mode: Mode,
    /// A raw server's bytes not shown yet (line editor and `--json` only).
    raw: RawLines,
    /// Plain mode: stdout and stderr are one terminal, and raw bytes on stdout left the cursor
    /// in mid-line (so a note on stderr starts on a new line).
    mid_line: bool,
    shared_terminal: bool,
    /// stdout is a terminal: a raw server's bytes are neutralised too.
    stdout_terminal: bool,
}

enum Mode {
    /// stdin and stdout are not both terminals: data on stdout, diagnostics on stderr.
    Plain,
    /// A line editor owns the terminal; everything is printed above the line being typed.
    Editor(EditorScreen),
}

struct EditorScreen {
    printer: Box<dyn ExternalPrinter + Send>,
    /// The prompt the editor thread shows, `name> `.
    prompt: Arc<Mutex<String>>,
    gate: Arc<Gate>,
    /// The line being edited.
    line: Arc<Mutex<String>>,
    saved: Option<SavedTerminal>,
}

/// A `--raw` server's bytes cut into lines, for a line editor and `--json`: whole lines as soon
/// as they are complete, and the start of a line (a prompt) once nothing more of it follows for
/// [`PARTIAL_LINE_WAIT`].
#[derive(Debug, Default)]
struct RawLines {
    partial: Vec<u8>,
    /// When `partial` is due to be shown.
    due: Option<Instant>,
}

impl RawLines {
    /// Takes bytes as they arrived; returns the lines they complete (without `\n` or `\r\n`;
    /// invalid UTF-8 replaced). A partial line longer than any a soquete server sends
    /// ([`MAX_FRAME_BYTES`]) is complete too.
    fn push(&mut self, bytes: &[u8], now: Instant) -> Vec<String> {
        self.partial.extend_from_slice(bytes);
        let mut lines = Vec::new();
        if let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') {
            let complete: Vec<u8> = self.partial.drain(..=end).collect();
            lines.extend(complete[..end].split(|&b| b == b'\n').map(|line| {
                String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned()
            }));
        }
        if self.partial.len() > MAX_FRAME_BYTES {
            lines.push(String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned());
        }
        self.due = (!self.partial.is_empty()).then(|| now + PARTIAL_LINE_WAIT);
        lines
    }

    /// The partial line, if any. Unless `whole`, a character cut in two by the network is kept
    /// back for one more wait (then shown as it is).
    fn take_partial(&mut self, whole: bool, now: Instant) -> Option<String> {
        self.due = None;
        let cut = match std::str::from_utf8(&self.partial) {
            // Nothing before the cut character: it has had its wait.
            Err(err) if !whole && err.error_len().is_none() && err.valid_up_to() > 0 => {
                self.partial.len() - err.valid_up_to()
            }
            _ => 0,
        };
        let keep = self.partial.split_off(self.partial.len() - cut);
        let shown = std::mem::replace(&mut self.partial, keep);
        if !self.partial.is_empty() {
            self.due = Some(now + PARTIAL_LINE_WAIT);
        }
        (!shown.is_empty()).then(|| String::from_utf8_lossy(&shown).into_owned())
    }
}

/// The editor's helper: it only watches the line being edited (the editor asks for a hint
/// after every change), so the end of a session knows whether the prompt is left bare.
struct LineWatch {
    line: Arc<Mutex<String>>,
}

impl Hinter for LineWatch {
    type Hint = String;

    fn hint(&self, line: &str, _pos: usize, _ctx: &rustyline::Context<'_>) -> Option<String> {
        set_line(&self.line, line);
        None
    }
}

impl Completer for LineWatch {
    type Candidate = String;
}

impl Highlighter for LineWatch {}

impl Validator for LineWatch {}

impl Helper for LineWatch {}

fn set_line(watched: &Mutex<String>, line: &str) {
    let mut watched = watched.lock().unwrap_or_else(|poison| poison.into_inner());
    watched.clear();
    watched.push_str(line);
}

fn watched_line(watched: &Mutex<String>) -> String {
    watched
        .lock()
        .unwrap_or_else(|poison| poison.into_inner())
        .clone()
}

type LineEditor = Editor<LineWatch, DefaultHistory>;

/// Where the editor thread is, so the session can end without leaving the terminal in raw mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Editing {
    /// Between lines: the terminal is as the user had it.
    Idle,
    /// `readline` was called and may be switching the terminal to raw mode.
    Starting,
    /// `readline` has drawn its prompt: the terminal is in raw mode.
    Active,
    /// The session is over: no more lines are read.
    Stopped,
}

/// How long the end of a session waits for a starting editor to finish switching modes.
const EDITOR_START_WAIT: Duration = Duration::from_secs(1);

struct Gate {
    state: Mutex<Editing>,
    changed: Condvar,
}

impl Gate {
    fn set(&self, from: &[Editing], to: Editing) -> Editing {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let was = *state;
        if from.contains(&was) {
            *state = to;
            self.changed.notify_all();
        }
        was
    }

    /// Stops the editor; returns whether it holds the terminal in raw mode.
    fn stop(&self) -> bool {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, EDITOR_START_WAIT, |state| {
                *state == Editing::Starting
            })
            .unwrap_or_else(|poison| poison.into_inner());
        let was = std::mem::replace(&mut *state, Editing::Stopped);
        matches!(was, Editing::Starting | Editing::Active)
    }
}

/// The prompt handed to the editor: the editor reads it first once the terminal is in raw
/// mode, which tells the gate so.
struct GatedPrompt<'a> {
    text: String,
    gate: &'a Gate,
}

impl Prompt for GatedPrompt<'_> {
    fn raw(&self) -> &str {
        self.gate.set(&[Editing::Starting], Editing::Active);
        &self.text
    }
}

impl Screen {
    /// Starts reading the user's lines on a thread that sends them to `events`: a line editor
    /// when stdin and stdout are terminals, plain lines otherwise.
    pub fn open(json: bool, name: &str, events: Sender<Event>) -> io::Result<Screen> {
        let terminal = io::stdin().is_terminal() && io::stdout().is_terminal();
        let mode = match terminal {
            true => EditorScreen::open(name, events.clone())?.map(Mode::Editor),
            false => None,
        };
        let mode = match mode {
            Some(mode) => mode,
            None => {
                spawn_plain_reader(events)?;
                Mode::Plain
            }
        };
        Ok(Screen {
            json,
            mode,
            raw: RawLines::default(),
            mid_line: false,
            shared_terminal: io::stdout().is_terminal() && io::stderr().is_terminal(),
            stdout_terminal: io::stdout().is_terminal(),
        })
    }

    /// True when a person types at a line editor (not a pipe or file).
    pub fn is_interactive(&self) -> bool {
        matches!(self.mode, Mode::Editor(_))
    }

    /// Shows one output.
    pub fn show(&mut self, output: &Output) -> io::Result<()> {
        if let Output::Raw(bytes) = output {
            return self.show_raw(bytes);
        }
        // What came before is shown before.
        self.flush_partial_now()?;
        let output = &neutralized(output);
        match &mut self.mode {
            Mode::Plain => {
                let to_stderr = match output {
                    Output::State { human, .. } => human.is_some(),
                    Output::Note(_) => true,
                    _ => false,
                };
                if to_stderr && std::mem::take(&mut self.mid_line) && self.shared_terminal {
                    eprintln!();
                }
                show_plain(self.json, output)
            }
            Mode::Editor(editor) => {
                let text = match output {
                    Output::Data { json, .. } if self.json => Some(json),
                    Output::Data { human, .. } => Some(human),
                    Output::State { json, .. } if self.json => Some(json),
                    Output::State { human, .. } => human.as_ref(),
                    Output::Note(note) => Some(note),
                    Output::Raw(_) => None,
                };
                match text {
                    Some(text) => editor.print(text.clone()),
                    None => Ok(()),
                }
            }
        }
    }

    /// Bytes from a `--raw` server: unchanged to stdout from a pipe; else whole lines at once,
    /// and the rest once nothing more follows for [`PARTIAL_LINE_WAIT`].
    fn show_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        if matches!(self.mode, Mode::Plain) && !self.json {
            if let Some(&last) = bytes.last() {
                self.mid_line = last != b'\n';
            }
            let mut out = io::stdout().lock();
            match self.stdout_terminal {
                true => out.write_all(neutralized_raw(bytes).as_bytes())?,
                false => out.write_all(bytes)?,
            }
            return out.flush();
        }
        let lines = self.raw.push(bytes, Instant::now());
        if !lines.is_empty() {
            self.show_lines(&lines, false)?;
        }
        Ok(())
    }

    /// When the partial line waiting to be shown is due, if there is one.
    pub fn flush_due(&self) -> Option<Instant> {
        self.raw.due
    }

    /// Shows the partial line, as nothing more of it came in time.
    pub fn flush_partial(&mut self) -> io::Result<()> {
        match self.raw.take_partial(false, Instant::now()) {
            Some(text) => self.show_lines(&[text], true),
            None => Ok(()),
        }
    }

    /// Shows everything waiting, whatever it ends with.
    fn flush_partial_now(&mut self) -> io::Result<()> {
        match self.raw.take_partial(true, Instant::now()) {
            Some(text) => self.show_lines(&[text], true),
            None => Ok(()),
        }
    }

    /// Lines of a `--raw` server's text (`partial`: the last one has no newline yet).
    fn show_lines(&mut self, lines: &[String], partial: bool) -> io::Result<()> {
        let rendered: Vec<String> = if self.json {
            lines
                .iter()
                .map(|text| LocalEvent::Line { text, partial }.to_json())
                .collect()
        } else {
            lines
                .iter()
                .map(|line| neutralize(line).into_owned())
                .collect()
        };
        match &mut self.mode {
            Mode::Plain => {
                let mut out = io::stdout().lock();
                for line in rendered {
                    writeln!(out, "{line}")?;
                }
                out.flush()
            }
            Mode::Editor(editor) => editor.print(rendered.join("\n")),
        }
    }

    /// Our name changed: the prompt shows the new one from the next line on.
    pub fn rename(&mut self, name: &str) {
        if let Mode::Editor(editor) = &mut self.mode
            && let Ok(mut prompt) = editor.prompt.lock()
        {
            *prompt = prompt_for(name);
        }
    }

    /// Hands the terminal back as it was: called once the session is over, even if the editor
    /// thread is still waiting for a key.
    pub fn close(mut self) -> io::Result<()> {
        self.flush_partial_now()?;
        if let Mode::Editor(editor) = &mut self.mode {
            editor.close()?;
        }
        Ok(())
    }
}

/// The output with its human-readable text neutralised (its `--json` rendering is JSON-escaped
/// already; a raw server's bytes are handled where they are written).
fn neutralized(output: &Output) -> Output {
    let text = |text: &String| neutralize(text).into_owned();
    match output {
        Output::Data { human, json } => Output::Data {
            human: text(human),
            json: json.clone(),
        },
        Output::State { human, json } => Output::State {
            human: human.as_ref().map(text),
            json: json.clone(),
        },
        Output::Note(note) => Output::Note(text(note)),
        Output::Raw(bytes) => Output::Raw(bytes.clone()),
    }
}

/// A raw server's bytes for a terminal: each line neutralised, its newline kept (a `\r` before
/// it dropped).
fn neutralized_raw(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<_> = text
        .split('\n')
        .map(|line| neutralize(line.strip_suffix('\r').unwrap_or(line)))
        .collect();
    lines.join("\n")
}

fn show_plain(json: bool, output: &Output) -> io::Result<()> {
    match output {
        Output::Data { human, json: line } => {
            let mut out = io::stdout().lock();
            writeln!(out, "{}", if json { line } else { human })?;
            out.flush()
        }
        Output::State { human, json: line } => {
            if let Some(human) = human {
                eprintln!("{human}");
            }
            if json {
                let mut out = io::stdout().lock();
                writeln!(out, "{line}")?;
                out.flush()?;
            }
            Ok(())
        }
        Output::Note(note) => {
            eprintln!("{note}");
            Ok(())
        }
        Output::Raw(bytes) => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)?;
            out.flush()
        }
    }
}

fn prompt_for(name: &str) -> String {
    format!("{name}> ")
}

impl EditorScreen {
    /// The editor and its printer; None where the terminal cannot host an editor (TERM=dumb).
    fn open(name: &str, events: Sender<Event>) -> io::Result<Option<EditorScreen>> {
        let mut editor = LineEditor::new().map_err(readline_to_io)?;
        let Ok(printer) = editor.create_external_printer() else {
            return Ok(None);
        };
        let line = Arc::new(Mutex::new(String::new()));
        editor.set_helper(Some(LineWatch { line: line.clone() }));
        let saved = SavedTerminal::save();
        let prompt = Arc::new(Mutex::new(prompt_for(name)));
        let gate = Arc::new(Gate {
            state: Mutex::new(Editing::Idle),
            changed: Condvar::new(),
        });
        let (thread_prompt, thread_gate, thread_line) =
            (prompt.clone(), gate.clone(), line.clone());
        thread::Builder::new()
            .name("chat-editor".into())
            .spawn(move || {
                edit_lines(editor, &thread_prompt, &thread_gate, &thread_line, &events)
            })?;
        Ok(Some(EditorScreen {
            printer: Box::new(printer),
            prompt,
            gate,
            line,
            saved,
        }))
    }

    fn print(&mut self, mut text: String) -> io::Result<()> {
        // Between lines the printer writes straight to the terminal, adding no newline.
        text.push('\n');
        self.printer.print(text).map_err(readline_to_io)
    }

    fn close(&mut self) -> io::Result<()> {
        if !self.gate.stop() {
            return Ok(());
        }
        // The editor prints on its own thread, one message at a time from a channel that holds
        // one: once two more (invisible) messages have been taken, everything before them is on
        // the screen. Then the terminal leaves raw mode under the editor's feet. A half-typed
        // line is left as it is, with the cursor below it, so what was not sent stays in sight;
        // a bare prompt is erased, as it asks for nothing any more. (Cursor up, then the newline
        // that `print` adds: the cursor ends where it was, on the prompt's row.)
        const INVISIBLE: &str = "\x1b[A";
        self.print(INVISIBLE.into())?;
        self.print(INVISIBLE.into())?;
        if let Some(saved) = &self.saved {
            saved.restore();
        }
        let mut out = io::stdout().lock();
        if watched_line(&self.line).is_empty() {
            // Back to the row's start, and erase it.
            out.write_all(b"\r\x1b[K")?;
        } else {
            out.write_all(b"\r\n")?;
        }
        out.flush()
    }
}

/// The editor thread: reads lines until end of input, a quit, or Ctrl-C.
fn edit_lines(
    mut editor: LineEditor,
    prompt: &Mutex<String>,
    gate: &Gate,
    line: &Mutex<String>,
    events: &Sender<Event>,
) {
    loop {
        let text = prompt.lock().map(|p| p.clone()).unwrap_or_default();
        set_line(line, "");
        if gate.set(&[Editing::Idle], Editing::Starting) == Editing::Stopped {
            return;
        }
        // Ctrl-D is end of input on an empty line only, as in readline: on a half-typed line it
        // deletes the character under the cursor, or does nothing at the end of the line.
        let read = editor.readline(&GatedPrompt { text, gate });
        gate.set(&[Editing::Starting, Editing::Active], Editing::Idle);
        let event = match read {
            Ok(text) => {
                if !text.trim().is_empty() {
                    let _ = editor.add_history_entry(text.as_str());
                }
                let quit = parse_command(&text) == Some(Command::Quit);
                let event = Event::Typed {
                    text,
                    terminated: true,
                };
                // After a quit no more lines are read, so the terminal is ours again when the
                // server's bye arrives.
                if events.send(event).is_err() || quit {
                    return;
                }
                continue;
            }
            Err(ReadlineError::Interrupted) => Event::Interrupted,
            Err(_) => Event::InputEnded,
        };
        let _ = events.send(event);
        return;
    }
}

/// Reads plain lines from stdin on a thread, as nc does: a last line without a newline is sent
/// as it is, and end of input is an event.
fn spawn_plain_reader(events: Sender<Event>) -> io::Result<()> {
    thread::Builder::new()
        .name("chat-stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                match stdin.read_until(b'\n', &mut line) {
                    Ok(0) => break,
                    Err(err) => {
                        // Said here because no one else sees it; leaving is what follows.
                        eprintln!("soquete: reading standard input: {err}");
                        break;
                    }
                    Ok(_) => {
                        let terminated = line.ends_with(b"\n");
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches('\n').trim_end_matches('\r');
                        let event = Event::Typed {
                            text: text.to_string(),
                            terminated,
                        };
                        if events.send(event).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = events.send(Event::InputEnded);
        })?;
    Ok(())
}

fn readline_to_io(err: ReadlineError) -> io::Error {
    match err {
        ReadlineError::Io(err) => err,
        other => io::Error::other(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
