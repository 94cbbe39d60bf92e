//! The one error type of soquete, with context, and the exit codes it maps to.

use std::io;

/// Everything that can make a soquete command fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something that cannot be done as asked (a bad value, a bad combination).
    #[error("{0}")]
    Usage(String),

    /// An operating-system call failed; `context` says what soquete was doing.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// This OS (or this build) cannot do what was asked.
    #[error("{0}")]
    Unsupported(String),

    /// A part of soquete itself failed (a thread panicked): a bug, said in one line.
    #[error("{0}")]
    Internal(String),
}

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a runtime failure (an OS call failed, the feature is missing).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for bad usage, in every subcommand and for clap's own errors alike: EX_USAGE of
/// sysexits.h, a code no verdict uses (`probe` says "none reachable" with 2).
pub const EXIT_USAGE: i32 = 64;

impl Error {
    /// Wraps an I/O error with what soquete was doing when it happened.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Io { .. } | Error::Unsupported(_) | Error::Internal(_) => EXIT_FAILURE,
        }
    }

    /// True when the error is only the reader of our stdout going away (`soquete sockets | head`),
    /// which is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Adds what soquete was doing to an I/O error at the call site: `file.read(..).context("reading
/// /etc/services")?`.
pub trait Context<T> {
    /// Wraps the error with a fixed description of what was being done.
    fn context(self, what: &str) -> Result<T>;
    /// Wraps the error with a description built only when there is an error.
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|source| Error::io(what, source))
    }

    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|source| Error::io(what(), source))
    }
}

/// soquete's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
