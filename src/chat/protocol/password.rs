//! The room's password as both ends hold it: a secret read from a file (its first line) or from
//! `SOQUETE_PASSWORD`, never shown (its `Debug` says `<hidden>`), compared in constant time; and
//! the words the server uses about it (the raw prompt, the error codes).

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// The environment variable a password may come from (never a command-line value: `ps` shows
/// those to every user of the machine).
pub const PASSWORD_ENV: &str = "SOQUETE_PASSWORD";
/// The line a password-protected server sends every connection first, in place of its
/// greeting: a raw client's first line is then the password.
pub const PASSWORD_PROMPT: &str = "* password:";
/// Error code: a `hello` without a password, or no password line in time.
pub const PASSWORD_REQUIRED: &str = "password_required";
/// Error code: the password was wrong.
pub const BAD_PASSWORD: &str = "bad_password";
/// Error code: too many tries from the same address are waiting already.
pub const TOO_MANY_TRIES: &str = "too_many_tries";
/// Longest password accepted from a file or the environment (a line is at most 8 KiB anyway).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A room's password. Never printed: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<hidden>)")
    }
}

impl Password {
    /// A password given as text; an empty one, one with a control character (NUL, tab, escape…:
    /// no raw client could give it), or one over [`MAX_PASSWORD_BYTES`] is refused, `origin`
    /// saying where it came from.
    pub fn new(text: String, origin: &str) -> Result<Password> {
        if text.is_empty() {
            return Err(Error::Usage(format!("{origin}: the password is empty")));
        }
        if let Some(control) = text.chars().find(|c| c.is_control()) {
            // A raw client's line loses its NULs, and no one types the others.
            return Err(Error::Usage(format!(
                "{origin}: the password holds a control character (U+{:04X}), which a raw \
                 client cannot type: use printable characters only",
                u32::from(control)
            )));
        }
        if text.len() > MAX_PASSWORD_BYTES {
            return Err(Error::Usage(format!(
                "{origin}: the password is longer than {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        Ok(Password(text))
    }

    /// The first line of the file at `path`, its line ending stripped.
    pub fn from_file(path: &Path) -> Result<Password> {
        let origin = format!("--password-file {}", path.display());
        let text = std::fs::read(path).map_err(|err| Error::io(origin.clone(), err))?;
        let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        let first = String::from_utf8(first.to_vec())
            .map_err(|_| Error::Usage(format!("{origin}: the password is not UTF-8 text")))?;
        Password::new(first, &origin)
    }

    /// The password as sent on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this password, in time that does not depend on where they differ,
    /// nor on their lengths (both are hashed first).
    pub fn matches(&self, given: &str) -> bool {
        let ours = Sha256::digest(self.0.as_bytes());
        let theirs = Sha256::digest(given.as_bytes());
        ours.as_slice().ct_eq(theirs.as_slice()).into()
    }
}

/// Where a password is to come from, as the command line said: read when the feature starts, so
/// an unreadable file is a clear error there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PasswordSource {
    /// No password.
    #[default]
    None,
    /// `--password-file FILE`: its first line.
    File(PathBuf),
    /// `SOQUETE_PASSWORD`, as found in the environment.
    Env(String),
}

impl PasswordSource {
    /// `--password-file` when given, else `SOQUETE_PASSWORD` when set, else none.
    pub fn from_face(file: Option<PathBuf>) -> PasswordSource {
        match (file, std::env::var(PASSWORD_ENV)) {
            (Some(path), _) => PasswordSource::File(path),
            (None, Ok(text)) => PasswordSource::Env(text),
            (None, Err(_)) => PasswordSource::None,
        }
    }

    /// The password itself; an unreadable or empty file (or variable) is an error.
    pub fn load(&self) -> Result<Option<Password>> {
        match self {
            PasswordSource::None => Ok(None),
            PasswordSource::File(path) => Password::from_file(path).map(Some),
            PasswordSource::Env(text) => {
                let text = text.trim_end_matches(['\n', '\r']).to_string();
                Password::new(text, PASSWORD_ENV).map(Some)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_only_itself_and_never_shows() {
        let password = Password::new("s3cret".into(), "test").unwrap();
        assert!(password.matches("s3cret"));
        assert!(!password.matches("s3cre"));
        assert!(!password.matches("s3cret "));
        assert!(!password.matches(""));
        assert_eq!(format!("{password:?}"), "Password(<hidden>)");
    }

    #[test]
    fn a_file_gives_its_first_line_and_an_empty_or_missing_one_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("soquete-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "olá mundo\r\nsecond line\n").unwrap();
        let loaded = PasswordSource::File(file.clone()).load().unwrap().unwrap();
        assert_eq!(loaded.expose(), "olá mundo");
        std::fs::write(&file, "\n").unwrap();
        let empty = PasswordSource::File(file.clone()).load().unwrap_err();
        assert!(
            empty.to_string().contains("the password is empty"),
            "{empty}"
        );
        let missing = PasswordSource::File(dir.join("none")).load().unwrap_err();
        assert!(
            missing.to_string().starts_with("--password-file "),
            "{missing}"
        );
        assert_eq!(missing.exit_code(), crate::error::EXIT_FAILURE);
        std::fs::remove_dir_all(&dir).unwrap();
        let env = PasswordSource::Env("abc\n".into()).load().unwrap().unwrap();
        assert_eq!(env.expose(), "abc");
        assert!(PasswordSource::Env(String::new()).load().is_err());
    }

    #[test]
    fn a_password_with_a_control_character_is_refused_as_a_usage_error() {
        for text in [
            "abc\0def",
            "tab\there",
            "esc\u{1b}[2J",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            let err = Password::new(text.into(), "SOQUETE_PASSWORD").unwrap_err();
            assert_eq!(err.exit_code(), crate::error::EXIT_USAGE, "{text:?}");
            assert!(err.to_string().contains("control character"), "{err}");
        }
        assert!(Password::new("olá mundo ✓".into(), "test").is_ok());
    }
}
