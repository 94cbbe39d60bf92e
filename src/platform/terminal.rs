//! The terminal's settings, saved before a line editor changes them and put back when the chat
//! client ends while the editor still holds the terminal in raw mode.

/// The terminal's settings as they were when saved.
pub struct SavedTerminal(imp::Saved);

impl SavedTerminal {
    /// Saves stdin's terminal settings; None when stdin is no terminal (or, off Unix, always:
    /// there the editor puts the console back itself when its thread ends with the process).
    pub fn save() -> Option<SavedTerminal> {
        imp::save().map(SavedTerminal)
    }

    /// Puts the saved settings back (leaving the editor's raw mode).
    pub fn restore(&self) {
        imp::restore(&self.0);
    }
}

#[cfg(unix)]
mod imp {
    use rustix::termios::{OptionalActions, Termios, tcgetattr, tcsetattr};

    pub struct Saved(Termios);

    pub fn save() -> Option<Saved> {
        tcgetattr(std::io::stdin()).ok().map(Saved)
    }

    pub fn restore(saved: &Saved) {
        // A failure leaves the terminal as it was: nothing better to do while ending.
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Drain, &saved.0);
    }
}

#[cfg(not(unix))]
mod imp {
    pub struct Saved;

    pub fn save() -> Option<Saved> {
        None
    }

    pub fn restore(_saved: &Saved) {}
}
