//! TLS pieces that the server, the client and the probe share (rustls with the ring provider).
//! Each side's configuration lives in its own file here; this file holds what all of them show
//! a person: the certificate's fingerprint.

pub mod certificate;
pub mod client;
mod fingerprint;
pub mod inspect;
mod judged;
pub mod known_hosts;
pub mod stream;

pub use fingerprint::{Fingerprint, ParseFingerprintError};

/// A TLS failure from rustls (wrapped in an I/O error) in one line.
pub fn describe_error(err: &std::io::Error) -> String {
    match err.get_ref() {
        Some(inner) => inner.to_string(),
        None => err.to_string(),
    }
}
