//! TLS pieces that the server, the client and the probe share (rustls with the ring provider).
//! Each side's configuration lives in its own file here; this file holds what all of them show
//! a person: the certificate's fingerprint.

mod fingerprint;

pub use fingerprint::{Fingerprint, ParseFingerprintError};
