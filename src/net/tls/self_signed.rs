//! `serve --tls` without certificate files: a self-signed certificate made once (rcgen) for the
//! names the server is reached by, kept in soquete's data directory with its key (mode 0600) and
//! the list of names it was made for, and reused on every later start, so its fingerprint stays
//! the one people were told. Asked for a name it lacks, a new one is made (and said so).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};
use crate::net::state::default_state_dir;
use crate::platform::files::{create_private_dir, write_private};

/// The folder under the state directory that holds the server's certificate.
const FOLDER: &str = "tls";
/// The certificate, PEM.
pub const CERT_FILE: &str = "server-cert.pem";
/// Its private key, PEM (PKCS#8), readable by its owner only.
pub const KEY_FILE: &str = "server-key.pem";
/// The names the certificate was made for, one a line.
const NAMES_FILE: &str = "server-names";

/// soquete's state directory ([`default_state_dir`]), unless `--state-dir` says otherwise.
pub fn state_dir(chosen: Option<&Path>) -> Result<PathBuf> {
    match chosen {
        Some(dir) => Ok(dir.to_path_buf()),
        None => default_state_dir().ok_or_else(|| {
            Error::Usage(
                "no data directory for this user (HOME unset?): choose one with --state-dir DIR"
                    .into(),
            )
        }),
    }
}

/// A self-signed certificate and its key, as PEM, and how they came to be.
pub struct SelfSigned {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// Where they are kept.
    pub dir: PathBuf,
    pub names: Vec<String>,
    /// Made on this start (not found, or lacking a name asked for).
    pub created: bool,
}

/// The certificate kept in `state/tls/` when it names everything in `names`; otherwise a new one
/// for `names` (and the names the old one had), written there first.
pub fn load_or_create(state: &Path, names: &[String]) -> Result<SelfSigned> {
    let dir = state.join(FOLDER);
    let (cert, key, list) = (
        dir.join(CERT_FILE),
        dir.join(KEY_FILE),
        dir.join(NAMES_FILE),
    );
    let kept = read_if_present(&list)?.map(|text| {
        String::from_utf8_lossy(&text)
            .lines()
            .map(str::to_string)
            .filter(|name| !name.is_empty())
            .collect::<Vec<_>>()
    });
    if let Some(kept) = &kept
        && names.iter().all(|name| kept.contains(name))
        && let (Some(cert_pem), Some(key_pem)) = (read_if_present(&cert)?, read_if_present(&key)?)
    {
        return Ok(SelfSigned {
            cert_pem,
            key_pem,
            dir,
            names: kept.clone(),
            created: false,
        });
    }
    let mut all = kept.unwrap_or_default();
    for name in names {
        if !name.is_empty() && !all.contains(name) {
            all.push(name.clone());
        }
    }
    let made = generate(&all)?;
    create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for path in [&cert, &key, &list] {
        match fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(Error::io(format!("replacing {}", path.display()), err));
            }
            _ => {}
        }
    }
    // The key first and the list last: a start cut short leaves no list, and is made again.
    write_private(&key, &made.key_pem).with_context(|| format!("writing {}", key.display()))?;
    write_private(&cert, &made.cert_pem).with_context(|| format!("writing {}", cert.display()))?;
    let text: String = all.iter().map(|name| format!("{name}\n")).collect();
    write_private(&list, text.as_bytes()).with_context(|| format!("writing {}", list.display()))?;
    Ok(SelfSigned {
        dir,
        names: all,
        created: true,
        ..made
    })
}

/// A new self-signed certificate (ECDSA P-256) for `names` (host names and IP addresses).
fn generate(names: &[String]) -> Result<SelfSigned> {
    let failed = |err: rcgen::Error| {
        Error::Usage(format!(
            "cannot make a certificate for {}: {err}",
            names.join(", ")
        ))
    };
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(failed)?;
    let common = names.first().map_or("soquete", String::as_str);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common);
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok(SelfSigned {
        cert_pem: cert.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
        dir: PathBuf::new(),
        names: names.to_vec(),
        created: true,
    })
}

/// The file's bytes, or None when it does not exist.
fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io(format!("reading {}", path.display()), err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::files::readable_by_others;

    #[test]
    fn made_once_then_reused_and_remade_only_for_a_new_name() {
        let state = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let first = load_or_create(state.path(), &names).unwrap();
        assert!(first.created);
        let key = state.path().join("tls").join(KEY_FILE);
        assert!(!readable_by_others(&key).unwrap(), "the key is its owner's");
        let again = load_or_create(state.path(), &names[..1]).unwrap();
        assert!(!again.created);
        assert_eq!(again.cert_pem, first.cert_pem);
        let more = load_or_create(state.path(), &["chat.example.org".to_string()]).unwrap();
        assert!(more.created);
        assert_ne!(more.cert_pem, first.cert_pem);
        assert_eq!(more.names, ["localhost", "127.0.0.1", "chat.example.org"]);
    }
}
