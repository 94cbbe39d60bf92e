//! soquete's state directory, where it keeps what it must remember between runs: the servers a
//! client has trusted (`tls::known_hosts`) and a server's self-signed certificate
//! (`tls::self_signed`). `--state-dir` chooses another.

use std::path::PathBuf;

/// soquete's state directory: `dirs::data_dir()/soquete` (on Linux `~/.local/share/soquete`);
/// None when the system has no data directory.
pub fn default_state_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| dir.join("soquete"))
}
