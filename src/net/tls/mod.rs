//! TLS pieces that the server, the client and the probe share (rustls with the ring provider).
//! Each side's configuration lives in its own file here; this file holds what all of them show
//! a person: the certificate's fingerprint.

mod fingerprint;
// The server's: its configuration and reloads, and the self-signed certificate it keeps.
pub mod self_signed;
pub mod server;

pub use fingerprint::{Fingerprint, ParseFingerprintError};
