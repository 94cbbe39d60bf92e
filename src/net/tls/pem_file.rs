//! Reading the server's PEM files, certificate and key, as one that may be hostile would give
//! them: only a regular file (a link to one is followed, as Let's Encrypt's `live/` names are),
//! never waiting on a FIFO, at most [`MAX_PEM_BYTES`]; and what is wrong with a PEM file, in
//! words.

use std::io::{self, Read};
use std::path::Path;

use rustls_pki_types::pem;

use crate::net::sanitize::neutralize;
use crate::platform::files::open_regular;

/// The most a certificate or key file may hold: a chain of a dozen large certificates is a few
/// tens of KiB.
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The bytes of the PEM file at `path`: a FIFO, a device or a folder is an `InvalidInput` error
/// naming what it is, and so is a file larger than [`MAX_PEM_BYTES`].
pub fn read_pem(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?
        .take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "larger than 1 MiB, which no certificate or key file is",
        ));
    }
    Ok(bytes)
}

/// What is wrong with a PEM file, in words (rustls-pki-types shows the labels as byte arrays).
pub fn describe_pem_error(err: &pem::Error) -> String {
    let text = |bytes: &[u8]| neutralize(&String::from_utf8_lossy(bytes)).into_owned();
    match err {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "missing the end marker of a {} section: the file ends early (half written?)",
            text(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => {
            format!("a section starts with a malformed line: {:?}", text(line))
        }
        pem::Error::Base64Decode(why) => {
            format!("a section's base64 cannot be decoded ({})", neutralize(why))
        }
        pem::Error::NoItemsFound => "no PEM section of the kind wanted".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn pem_errors_are_said_in_words() {
        let cut = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
        let err = CertificateDer::pem_slice_iter(cut)
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            describe_pem_error(&err),
            "missing the end marker of a CERTIFICATE section: the file ends early (half written?)"
        );
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = CertificateDer::pem_slice_iter(bad)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(
            describe_pem_error(&err).starts_with("a section's base64"),
            "{err}"
        );
    }

    #[test]
    fn a_file_over_1_mib_is_refused_and_one_of_1_mib_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pem");
        std::fs::write(&path, vec![b'\n'; MAX_PEM_BYTES as usize]).unwrap();
        assert_eq!(read_pem(&path).unwrap().len() as u64, MAX_PEM_BYTES);
        std::fs::write(&path, vec![b'\n'; MAX_PEM_BYTES as usize + 1]).unwrap();
        let err = read_pem(&path).unwrap_err();
        assert!(err.to_string().starts_with("larger than 1 MiB"), "{err}");
    }
}
