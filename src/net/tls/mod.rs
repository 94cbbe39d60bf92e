//! TLS pieces that the server, the client and the probe share (rustls with the ring provider).
//! Each side's configuration lives in its own file here; this file holds what all of them show
//! a person: the certificate's fingerprint.

// Files import downwards only: `roots` (the provider, a client's CAs), `fingerprint`,
// `certificate`, `known_hosts` and `stream` import nothing of `tls/`; `judged` → `roots`;
// `client` → those; `inspect` → `judged`, `roots`, `stream`; the server's `server` (its
// configuration and reloads) → `self_signed` (the certificate it keeps), `roots`.
pub mod certificate;
pub mod client;
mod fingerprint;
pub mod inspect;
mod judged;
pub mod known_hosts;
pub mod roots;
pub mod self_signed;
pub mod server;
pub mod stream;

pub use fingerprint::{Fingerprint, ParseFingerprintError};

/// A TLS failure from rustls (wrapped in an I/O error) in one line.
pub fn describe_error(err: &std::io::Error) -> String {
    let Some(inner) = err.get_ref() else {
        return err.to_string();
    };
    match inner.downcast_ref::<rustls::Error>() {
        // The first bytes back were no TLS record: a plain-text server (soquete without TLS,
        // nc, a web server on port 80).
        Some(rustls::Error::InvalidMessage(_)) => format!(
            "the server answered in plain text, not TLS ({inner}): is TLS on at its end? \
             (for a plain server, connect without --tls)"
        ),
        _ => inner.to_string(),
    }
}
