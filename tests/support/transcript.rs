//! [`Transcript`]: a client's output lines, kept as they are waited for, so that the whole of
//! what it printed can be checked at the end.

use std::sync::mpsc;

use super::LIMIT;
use super::process::{Running, collect_until};

/// A child's stdout lines, and every one seen so far.
pub struct Transcript {
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Transcript {
    /// Takes over the child's stdout lines.
    pub fn of(child: &mut Running) -> Transcript {
        Transcript {
            lines: std::mem::replace(&mut child.lines, mpsc::channel().1),
            seen: Vec::new(),
        }
    }

    /// The next line that satisfies `wanted` (within [`LIMIT`]); panics with the transcript,
    /// saying it waited for `what`, when none does.
    pub fn wait_for(&mut self, what: &str, wanted: impl FnMut(&str) -> bool) -> String {
        if !collect_until(&self.lines, LIMIT, &mut self.seen, wanted) {
            panic!("waiting for {what}: {:#?}", self.seen);
        }
        self.seen.last().expect("the line wanted").clone()
    }

    /// Everything, once the child has exited (its output then ends).
    pub fn all(mut self) -> Vec<String> {
        collect_until(&self.lines, LIMIT, &mut self.seen, |_| false);
        self.seen
    }
}
