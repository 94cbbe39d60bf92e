//! Single mode's line: who is being served, who waits, and (under `--sync`) whose turn it is.

use std::collections::VecDeque;

/// Whose turn it is under `--sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Turn {
    /// The client asks first.
    #[default]
    Client,
    Server,
}

/// Who is being served and who waits.
#[derive(Debug, Default)]
pub struct Session {
    pub current: Option<u64>,
    /// Waiting clients, first in line first.
    pub queue: VecDeque<u64>,
    pub turn: Turn,
}

impl Session {
    /// The client's place, for `/status`.
    pub fn state_of(&self, id: u64) -> String {
        if self.current == Some(id) {
            return "served".into();
        }
        match self.queue.iter().position(|&q| q == id) {
            Some(index) => format!("queued #{}", index + 1),
            None => "-".into(),
        }
    }
}
