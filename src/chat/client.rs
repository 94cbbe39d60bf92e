//! `soquete chat`: the chat client (placeholder until built).

use crate::cli::ChatArgs;
use crate::error::{Error, Result};

/// Runs the client until the user or the server ends the session.
pub fn run(_args: &ChatArgs) -> Result<()> {
    Err(Error::Unsupported("`soquete chat` is not built yet".into()))
}
