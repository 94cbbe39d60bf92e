//! `serve --tls` without certificate files: a self-signed certificate made once (rcgen) for the
//! names the server is reached by, kept in soquete's data directory with its key (mode 0600) and
//! the list of names it was made for, and reused on every later start, so its fingerprint stays
//! the one people were told. Asked for a name it lacks, the server refuses to start and says
//! which; `--tls-renew` makes a new one (and says both fingerprints). A kept key another user
//! could read or replace (the folder or key theirs, or writable by others) is refused
//! (`key_access`), before it is read and before a new one is written.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use super::Fingerprint;
use super::key_access::refuse_exposed_kept;
use super::pem_file::read_pem;

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

/// Checks a name asked for (`--tls-name`): a DNS name as a certificate carries one (letters,
/// digits, '-' and '_' in dot-separated labels, as rustls accepts it), or an IP address.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    match ServerName::try_from(name) {
        Ok(_) => Ok(()),
        Err(_) => Err(
            "a certificate names a DNS name (letters, digits, '-' and '_' in labels of 1 to 63, split by '.') or an IP address"
                .into(),
        ),
    }
}

/// How long a new self-signed certificate is valid: about ten years from the day before it is
/// made (a day's slack for clocks behind).
const VALID_FOR: Duration = Duration::from_secs(3653 * 86_400);
/// How long before it is made a new certificate is valid from.
const VALID_BEFORE: Duration = Duration::from_secs(86_400);

/// A self-signed certificate and its key, as PEM, and how they came to be.
pub struct SelfSigned {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// Where they are kept.
    pub dir: PathBuf,
    pub names: Vec<String>,
    /// Made on this start (not found, or renewed).
    pub created: bool,
    /// With `--tls-renew`: the fingerprint of the certificate this one replaced.
    pub replaced: Option<Fingerprint>,
    /// Addresses listened on that the kept certificate does not name.
    pub unnamed: Vec<String>,
}

/// What a server asks of its self-signed certificate.
pub struct Wanted<'a> {
    /// Names it must have (`--tls-name`, and the address listened on unless it is a wildcard):
    /// a kept certificate that lacks one is not used.
    pub required: &'a [String],
    /// The addresses the server listens on (the machine's, on a wildcard): a new one names
    /// them; a kept one that lacks one is used all the same, and says which ([`SelfSigned::unnamed`]).
    pub listening: &'a [String],
    /// Names a new one is made for besides (localhost and the loopback addresses).
    pub also: &'a [String],
    /// `--tls-renew`: make a new one even if the kept one would do.
    pub renew: bool,
}

/// The certificate kept in `state/tls/` when it names everything required; a new one when none
/// is kept or `--tls-renew` asks (for the names the old one had and those asked); otherwise an
/// error that names what is missing, never a silent new fingerprint.
pub fn load_or_create(state: &Path, wanted: &Wanted) -> Result<SelfSigned> {
    let dir = state.join(FOLDER);
    let (cert, key, list) = (
        dir.join(CERT_FILE),
        dir.join(KEY_FILE),
        dir.join(NAMES_FILE),
    );
    refuse_exposed_kept(&dir, &key)?;
    let kept_names = read_if_present(&list)?.map(|text| {
        String::from_utf8_lossy(&text)
            .lines()
            .map(str::to_string)
            .filter(|name| !name.is_empty())
            .collect::<Vec<_>>()
    });
    let kept = match (&kept_names, read_if_present(&cert)?, read_if_present(&key)?) {
        (Some(names), Some(cert_pem), Some(key_pem)) => Some((names.clone(), cert_pem, key_pem)),
        _ => None,
    };
    let mut replaced = None;
    if let Some((names, cert_pem, key_pem)) = kept {
        let missing: Vec<&str> = (wanted.required.iter())
            .filter(|name| !name.is_empty() && !names_it(&names, name))
            .map(String::as_str)
            .collect();
        let old = fingerprint_of(&cert_pem);
        if !wanted.renew {
            if !missing.is_empty() {
                return Err(Error::Usage(format!(
                    "the certificate kept in {} ({}) does not name {}: start once with --tls-renew to make a new one (clients that remembered the old fingerprint will refuse it until they trust the new one)",
                    dir.display(),
                    old.map_or_else(|| "unreadable".to_string(), |print| print.to_string()),
                    missing.join(", ")
                )));
            }
            let unnamed = (wanted.listening.iter())
                .filter(|address| !names_it(&names, address))
                .cloned()
                .collect();
            return Ok(SelfSigned {
                cert_pem,
                key_pem,
                dir,
                names,
                created: false,
                replaced: None,
                unnamed,
            });
        }
        replaced = old;
    }
    let mut all = kept_names.unwrap_or_default();
    let wanted_names = wanted.required.iter().chain(wanted.listening);
    for name in wanted_names.chain(wanted.also) {
        if !name.is_empty() && !names_it(&all, name) {
            all.push(name.clone());
        }
    }
    let made = generate(&all, SystemTime::now())?;
    create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // The folder may have been there already, or made by another user meanwhile.
    refuse_exposed_kept(&dir, &key)?;
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
        replaced,
        ..made
    })
}

/// Whether `name` is among `names` as TLS compares them: an address by its value (`::1` is
/// `0:0::1`), a DNS name whatever its case and trailing dot.
fn names_it(names: &[String], name: &str) -> bool {
    let dns = |name: &str| name.trim_end_matches('.').to_ascii_lowercase();
    names.iter().any(|kept| {
        match (
            kept.parse::<std::net::IpAddr>(),
            name.parse::<std::net::IpAddr>(),
        ) {
            (Ok(kept), Ok(name)) => kept == name,
            (Err(_), Err(_)) => dns(kept) == dns(name),
            _ => false,
        }
    })
}

/// The fingerprint of the first certificate in `pem`.
fn fingerprint_of(pem: &[u8]) -> Option<Fingerprint> {
    let der = CertificateDer::pem_slice_iter(pem).next()?.ok()?;
    Some(Fingerprint::of_der(&der))
}

/// A new self-signed certificate (ECDSA P-256) for `names` (host names and IP addresses), valid
/// from a day before `now` for [`VALID_FOR`].
fn generate(names: &[String], now: SystemTime) -> Result<SelfSigned> {
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
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + since_epoch.saturating_sub(VALID_BEFORE);
    params.not_after = epoch + since_epoch + VALID_FOR;
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok(SelfSigned {
        cert_pem: cert.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes(),
        dir: PathBuf::new(),
        names: names.to_vec(),
        created: true,
        replaced: None,
        unnamed: Vec::new(),
    })
}

/// The file's bytes, or None when it does not exist.
fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    match read_pem(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Error::io(format!("reading {}", path.display()), err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::files::readable_by_others;

    fn wanted(required: &[String], renew: bool) -> Wanted<'_> {
        Wanted {
            required,
            listening: &[],
            also: &[],
            renew,
        }
    }

    #[test]
    fn made_once_then_reused_and_never_replaced_without_renew() {
        let state = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let first = load_or_create(state.path(), &wanted(&names, false)).unwrap();
        assert!(first.created);
        assert!(first.replaced.is_none());
        let key = state.path().join("tls").join(KEY_FILE);
        assert!(!readable_by_others(&key).unwrap(), "the key is its owner's");
        let again = load_or_create(state.path(), &wanted(&names[..1], false)).unwrap();
        assert!(!again.created);
        assert_eq!(again.cert_pem, first.cert_pem);
        // A name it lacks: refused, naming it and the way out, and the certificate is kept.
        let more = ["chat.example.org".to_string(), "::1".to_string()];
        let Err(Error::Usage(refused)) = load_or_create(state.path(), &wanted(&more, false)) else {
            panic!("a certificate lacking a name must not be replaced quietly");
        };
        assert!(
            refused.contains("does not name chat.example.org, ::1"),
            "{refused}"
        );
        assert!(
            refused.contains("--tls-renew") && !refused.contains('\n'),
            "{refused}"
        );
        let kept = load_or_create(state.path(), &wanted(&names, false)).unwrap();
        assert_eq!(kept.cert_pem, first.cert_pem);
        // --tls-renew: a new one, for the old names and the new, saying what it replaced.
        let renewed = load_or_create(state.path(), &wanted(&more, true)).unwrap();
        assert!(renewed.created);
        assert_ne!(renewed.cert_pem, first.cert_pem);
        assert_eq!(renewed.replaced, fingerprint_of(&first.cert_pem));
        assert_eq!(
            renewed.names,
            ["localhost", "127.0.0.1", "chat.example.org", "::1"]
        );
    }

    #[test]
    fn a_name_asked_for_is_a_dns_name_or_an_address() {
        for good in [
            "chat.example.org",
            "localhost",
            "127.0.0.1",
            "::1",
            "lab_07.example",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a\nb.example",
            "x\u{1b}[31m.example",
            "a b",
            "a..b",
            "*.example",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_compare_as_dns_does_whatever_their_case_or_trailing_dot() {
        let state = tempfile::tempdir().unwrap();
        let first = load_or_create(state.path(), &wanted(&["CHAT.Example.org".into()], false));
        let first = first.unwrap();
        for same in ["chat.example.org", "chat.example.org.", "Chat.EXAMPLE.org"] {
            let again = load_or_create(state.path(), &wanted(&[same.into()], false));
            let again = again.unwrap_or_else(|err| panic!("{same}: {err}"));
            assert_eq!(again.cert_pem, first.cert_pem, "{same}");
        }
        let renewed = load_or_create(state.path(), &wanted(&["chat.example.org".into()], true));
        assert_eq!(renewed.unwrap().names, ["CHAT.Example.org"]);
    }

    #[test]
    fn a_new_certificate_is_valid_from_yesterday_for_about_ten_years() {
        let now = SystemTime::now();
        let made = generate(&["localhost".to_string()], now).unwrap();
        let der = CertificateDer::pem_slice_iter(&made.cert_pem)
            .next()
            .unwrap()
            .unwrap();
        let info = crate::net::tls::certificate::CertificateInfo::parse(&der).unwrap();
        let today = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 / 86_400;
        assert!(
            (3650..=3654).contains(&info.days_left),
            "{}",
            info.days_left
        );
        assert!(
            info.not_before.starts_with(&date_of(today - 1)),
            "{}",
            info.not_before
        );
    }

    /// `YYYY-MM-DD` of a day counted from 1970-01-01.
    fn date_of(day: i64) -> String {
        let date = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(day as u64 * 86_400);
        format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    }
}
