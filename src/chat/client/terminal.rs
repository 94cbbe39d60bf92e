//! The user's side of the client: where typed lines come from (a line editor on a terminal, plain
//! lines from a pipe or file) and where received lines go (above the line being edited, or plain
//! stdout and stderr).

use std::io::{self, BufRead, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crossbeam_channel::Sender;
use rustyline::error::ReadlineError;
use rustyline::{DefaultEditor, ExternalPrinter, Prompt};

use super::session::{Event, Output};
use crate::chat::protocol::{Command, parse_command};

/// Where the client's output goes and how it is rendered.
pub struct Screen {
    /// `--json`: data and state events as JSON lines.
    json: bool,
    mode: Mode,
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
    saved: Option<platform::SavedTerminal>,
}

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
        use std::io::IsTerminal;
        let terminal = io::stdin().is_terminal() && io::stdout().is_terminal();
        if terminal && let Some(screen) = EditorScreen::open(name, events.clone())? {
            return Ok(Screen {
                json,
                mode: Mode::Editor(screen),
            });
        }
        spawn_plain_reader(events)?;
        Ok(Screen {
            json,
            mode: Mode::Plain,
        })
    }

    /// True when a person types at a line editor (not a pipe or file).
    pub fn is_interactive(&self) -> bool {
        matches!(self.mode, Mode::Editor(_))
    }

    /// Shows one output.
    pub fn show(&mut self, output: &Output) -> io::Result<()> {
        match &mut self.mode {
            Mode::Plain => show_plain(self.json, output),
            Mode::Editor(editor) => {
                let text = match output {
                    Output::Data { json, .. } if self.json => Some(json),
                    Output::Data { human, .. } => Some(human),
                    Output::State { json, .. } if self.json => Some(json),
                    Output::State { human, .. } => human.as_ref(),
                    Output::Note(note) => Some(note),
                };
                match text {
                    Some(text) => editor.print(text.clone()),
                    None => Ok(()),
                }
            }
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
        if let Mode::Editor(editor) = &mut self.mode {
            editor.close()?;
        }
        Ok(())
    }
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
    }
}

fn prompt_for(name: &str) -> String {
    format!("{name}> ")
}

impl EditorScreen {
    /// The editor and its printer; None where the terminal cannot host an editor (TERM=dumb).
    fn open(name: &str, events: Sender<Event>) -> io::Result<Option<EditorScreen>> {
        let mut editor = DefaultEditor::new().map_err(readline_to_io)?;
        let Ok(printer) = editor.create_external_printer() else {
            return Ok(None);
        };
        let saved = platform::SavedTerminal::save();
        let prompt = Arc::new(Mutex::new(prompt_for(name)));
        let gate = Arc::new(Gate {
            state: Mutex::new(Editing::Idle),
            changed: Condvar::new(),
        });
        let (thread_prompt, thread_gate) = (prompt.clone(), gate.clone());
        thread::Builder::new()
            .name("chat-editor".into())
            .spawn(move || edit_lines(editor, &thread_prompt, &thread_gate, &events))?;
        Ok(Some(EditorScreen {
            printer: Box::new(printer),
            prompt,
            gate,
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
        // the screen. Then the terminal leaves raw mode under the editor's feet, and the line being
        // typed is left as it is, with the cursor below it. (Cursor up, then the newline that
        // `print` adds: the cursor ends where it was.)
        const INVISIBLE: &str = "\x1b[A";
        self.print(INVISIBLE.into())?;
        self.print(INVISIBLE.into())?;
        if let Some(saved) = &self.saved {
            saved.restore();
        }
        let mut out = io::stdout().lock();
        out.write_all(b"\r\n")?;
        out.flush()
    }
}

/// The editor thread: reads lines until end of input, a quit, or Ctrl-C.
fn edit_lines(
    mut editor: DefaultEditor,
    prompt: &Mutex<String>,
    gate: &Gate,
    events: &Sender<Event>,
) {
    loop {
        let text = prompt.lock().map(|p| p.clone()).unwrap_or_default();
        if gate.set(&[Editing::Idle], Editing::Starting) == Editing::Stopped {
            return;
        }
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

#[cfg(unix)]
mod platform {
    /// The terminal's settings before the editor changed them.
    pub struct SavedTerminal(libc::termios);

    impl SavedTerminal {
        /// Saves stdin's terminal settings; None when stdin is no terminal.
        pub fn save() -> Option<SavedTerminal> {
            let mut termios = std::mem::MaybeUninit::<libc::termios>::uninit();
            // SAFETY: tcgetattr writes a termios through a valid pointer, or fails and writes
            // nothing; we read it only on success.
            let ok = unsafe { libc::tcgetattr(libc::STDIN_FILENO, termios.as_mut_ptr()) } == 0;
            // SAFETY: initialised by the successful tcgetattr above.
            ok.then(|| SavedTerminal(unsafe { termios.assume_init() }))
        }

        /// Puts the saved settings back (leaving the editor's raw mode).
        pub fn restore(&self) {
            // SAFETY: tcsetattr reads a valid termios; a failure leaves the terminal as it was.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &self.0);
            }
        }
    }
}

#[cfg(not(unix))]
mod platform {
    /// Elsewhere the editor restores the console itself when its thread ends with the process.
    pub struct SavedTerminal;

    impl SavedTerminal {
        pub fn save() -> Option<SavedTerminal> {
            None
        }

        pub fn restore(&self) {}
    }
}
