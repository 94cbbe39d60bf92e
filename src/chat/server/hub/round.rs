//! What the room holds back before delivery: the messages of the current round of the hub, and,
//! in group and broker mode, the lines kept for a connection that has not said what it is yet.

use std::sync::Arc;

use crate::chat::server::outbox::{Bytes, OUTBOX_BYTES, Part};

/// The room's messages of one round of the hub, in order.
#[derive(Default)]
pub struct RoomBatch {
    /// In the order they were said.
    pub pieces: Vec<Piece>,
    /// Bytes of the larger flavour (JSON), to bound a round.
    pub bytes: usize,
    /// Lines in all the pieces.
    pub lines: u32,
}

impl RoomBatch {
    /// Adds one author's lines to the round.
    pub fn add(&mut self, piece: Piece) {
        self.bytes += piece.json.len().max(piece.text.len());
        self.lines += piece.lines;
        self.pieces.push(piece);
    }

    /// The round's pieces in one flavour, as every member of that flavour shares them.
    pub fn parts(&self, structured: bool) -> Arc<[Part]> {
        self.pieces
            .iter()
            .map(|piece| Part {
                bytes: Arc::clone(if structured { &piece.json } else { &piece.text }),
                seen_by: piece.author_saw_it.then_some(piece.author),
            })
            .collect()
    }
}

/// Lines of one author, encoded once per flavour and shared by every member of that flavour.
pub struct Piece {
    /// The client that said them.
    pub author: u64,
    /// The author is a raw client, which saw its lines as it typed them: not sent back.
    pub author_saw_it: bool,
    /// As structured clients read them.
    pub json: Bytes,
    /// As raw clients read them.
    pub text: Bytes,
    /// Lines in each flavour.
    pub lines: u32,
}

/// Lines the room keeps for a connection that has not said what it is yet, as a raw client
/// reads them (bare, from a broker).
#[derive(Debug, Default)]
pub struct Unheard {
    /// The kept lines, in order.
    pub parts: Vec<Bytes>,
    bytes: usize,
    /// Lines in `parts`.
    pub lines: u32,
}

impl Unheard {
    /// Keeps `bytes`; says whether what is kept now exceeds an outbox's bounds.
    pub fn keep(&mut self, bytes: &Bytes, lines: u32) -> bool {
        self.parts.push(Arc::clone(bytes));
        self.bytes += bytes.len();
        self.lines += lines;
        self.bytes > OUTBOX_BYTES
    }
}

/// A chat line as a broker relays it to raw clients: its text alone.
pub fn bare_line(text: &str) -> Bytes {
    let mut line = Vec::with_capacity(text.len() + 1);
    line.extend_from_slice(text.as_bytes());
    line.push(b'\n');
    line.into()
}
