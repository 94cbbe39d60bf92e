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
    pub struct Saved(libc::termios);

    pub fn save() -> Option<Saved> {
        let mut termios = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr writes a termios through a valid pointer, or fails and writes
        // nothing; we read it only on success.
        let ok = unsafe { libc::tcgetattr(libc::STDIN_FILENO, termios.as_mut_ptr()) } == 0;
        // SAFETY: initialised by the successful tcgetattr above.
        ok.then(|| Saved(unsafe { termios.assume_init() }))
    }

    pub fn restore(saved: &Saved) {
        // SAFETY: tcsetattr reads a valid termios; a failure leaves the terminal as it was.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &saved.0);
        }
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
