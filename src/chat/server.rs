//! `soquete serve`: the chat server (placeholder until built).

use crate::cli::ServeArgs;
use crate::error::{Error, Result};

/// Runs the server until Ctrl-C.
pub fn run(_args: &ServeArgs) -> Result<()> {
    Err(Error::Unsupported(
        "`soquete serve` is not built yet".into(),
    ))
}
