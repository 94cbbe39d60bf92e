//! TLS pieces that the server, the client and the probe share (rustls with the ring provider).
//! Each side's configuration lives in its own file here; this file holds what all of them show
//! a person: the certificate's fingerprint.

// Files import downwards only: `roots` (the provider, a client's CAs), `fingerprint`,
// `certificate`, `known_hosts`, `failure`, `addresses` and `stream` import nothing of `tls/`;
// `judged` → `roots`; `client` → those; `inspect` → `judged`, `roots`, `stream`; the server's
// `server` (its configuration and reloads) → `addresses`, `self_signed` (the certificate it
// keeps), `served` (what the operator is told about the pair served: → `certificate`, `roots`),
// `roots`, and `server` and `self_signed` both → `pem_file` (reading a PEM file, bounded) and
// `key_access` (who else may touch the key).
pub mod addresses;
pub mod certificate;
pub mod client;
pub mod failure;
mod fingerprint;
pub mod inspect;
mod judged;
mod key_access;
pub mod known_hosts;
mod pem_file;
pub mod roots;
pub mod self_signed;
pub mod served;
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Files here import downwards (docs/ARCHITECTURE.md): no two import each other.
    #[test]
    fn no_two_files_here_import_each_other() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/net/tls");
        let mut imports = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let Some(rest) = line.trim().strip_prefix("use super::") else {
                    continue;
                };
                let to: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
                if !to.is_empty() && to != name {
                    imports.insert((name.clone(), to));
                }
            }
        }
        let cycles: Vec<_> = imports
            .iter()
            .filter(|(a, b)| a < b && imports.contains(&(b.clone(), a.clone())))
            .collect();
        assert!(cycles.is_empty(), "files importing each other: {cycles:?}");
    }
}
