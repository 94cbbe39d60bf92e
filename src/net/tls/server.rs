//! The server's side of TLS: a rustls `ServerConfig` (ring provider) built from PEM files as a CA
//! issues them (a chain, then a PKCS#8, RSA or SEC1 key), or from the self-signed certificate
//! kept in the state directory; and the one being served, swapped whole when the files change or
//! the console asks. Each connection takes the configuration current when it arrives, so a
//! reload never touches a session under way, and a bad new pair leaves the old one in place.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Fingerprint;
use super::addresses;
use super::key_access::exposed_key_warning;
use super::pem_file::{describe_pem_error, read_pem};
use super::roots::provider;
use super::self_signed::{self, SelfSigned, Wanted};
use super::served;
use crate::error::{Error, Result};

/// Tests shorten how often the certificate files are looked at with this variable
/// (milliseconds); the face reads it into [`TlsSetup::watch_every`].
pub const TLS_RELOAD_ENV: &str = "SOQUETE_TLS_RELOAD_MS";
/// How often the certificate files are looked at for a change.
pub const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--tls-cert FILE --tls-key FILE`.
    Files { cert: PathBuf, key: PathBuf },
    /// `--tls`: self-signed, for these names (`--tls-name`) and the listening address, kept
    /// under `state` (`--state-dir`, else the data directory).
    SelfSigned {
        names: Vec<String>,
        state: Option<PathBuf>,
        /// `--tls-renew`: a new certificate even if the kept one would do.
        renew: bool,
    },
}

/// What `serve` was asked about TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSetup {
    pub source: Source,
    /// `--tls-optional`: plain clients served too, on the same port.
    pub optional: bool,
    /// How often the files are looked at for a change.
    pub watch_every: std::time::Duration,
}

/// A certificate ready to serve: the configuration every new connection takes, and the
/// fingerprint of its leaf.
#[derive(Clone)]
pub struct Identity {
    pub config: Arc<ServerConfig>,
    pub fingerprint: Fingerprint,
    /// The certificates served, its own first: for [`served::warnings`].
    pub chain: Vec<CertificateDer<'static>>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new certificate is served to new connections.
    New(Fingerprint),
    /// The files hold the certificate already served.
    Same(Fingerprint),
    /// The new files could not be used; the old certificate is still served.
    Kept(String),
    /// A self-signed certificate has no files to reload.
    NoFiles,
}

/// The certificate being served, and where it came from.
pub struct ServerTls {
    current: Mutex<Identity>,
    /// Warnings that hold as long as the server runs (a kept certificate that lacks an
    /// address listened on).
    notes: Vec<String>,
    /// The files to reload from, with what they looked like when last read.
    files: Option<(PathBuf, PathBuf, Mutex<Stamp>)>,
    /// Serves plain clients too.
    pub optional: bool,
    /// How the certificate came: for the start-up line.
    pub origin: String,
    pub watch_every: std::time::Duration,
}

/// The files' modification times and sizes: a renewal changes them.
type Stamp = [Option<(SystemTime, u64)>; 2];

impl ServerTls {
    /// Loads the certificate (making the self-signed one on its first use), for a server that
    /// listens on `listening`.
    pub fn open(setup: &TlsSetup, listening: IpAddr) -> Result<ServerTls> {
        let mut notes = Vec::new();
        let (identity, files, origin) = match &setup.source {
            Source::Files { cert, key } => {
                let stamp = stamp(cert, key);
                let identity = load_files(cert, key)?;
                let origin = format!("from {}", cert.display());
                (
                    identity,
                    Some((cert.clone(), key.clone(), Mutex::new(stamp))),
                    origin,
                )
            }
            Source::SelfSigned {
                names,
                state,
                renew,
            } => {
                let state = self_signed::state_dir(state.as_deref())?;
                let interfaces = match listening.is_unspecified() {
                    true => addresses::interfaces(),
                    false => Vec::new(),
                };
                let (listened, also) = with_address(names, listening, &interfaces);
                let wanted = Wanted {
                    required: names,
                    listening: &listened,
                    also: &also,
                    renew: *renew,
                };
                let made = self_signed::load_or_create(&state, &wanted)?;
                let identity = identity(&made.cert_pem, &made.key_pem).map_err(|err| {
                    Error::Usage(format!(
                        "the certificate kept in {} cannot be used: {err} (remove the folder to make a new one)",
                        made.dir.display()
                    ))
                })?;
                notes.extend(unnamed_line(&made));
                (identity, None, describe(&made))
            }
        };
        Ok(ServerTls {
            current: Mutex::new(identity),
            notes,
            files,
            optional: setup.optional,
            origin,
            watch_every: setup.watch_every,
        })
    }

    /// The configuration a connection arriving now takes.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.lock().config)
    }

    /// The fingerprint of the certificate served to new connections.
    pub fn fingerprint(&self) -> Fingerprint {
        self.lock().fingerprint
    }

    /// Reads the files again and serves them to new connections, unless they cannot be used.
    pub fn reload(&self) -> Reloaded {
        let Some((cert, key, seen)) = &self.files else {
            return Reloaded::NoFiles;
        };
        *lock(seen) = stamp(cert, key);
        match load_files(cert, key) {
            Ok(loaded) => {
                let mut current = self.lock();
                // The same leaf with another chain (the intermediate added) is new too.
                if current.chain == loaded.chain {
                    Reloaded::Same(loaded.fingerprint)
                } else {
                    *current = loaded;
                    Reloaded::New(current.fingerprint)
                }
            }
            Err(err) => Reloaded::Kept(err.to_string()),
        }
    }

    /// What a reload did, in lines for the console: [`describe_reload`]; when it read a pair it
    /// serves, the warnings about that pair ([`ServerTls::warnings`]); then the warning of
    /// [`ServerTls::key_warning`] if it applies.
    pub fn reload_lines(&self, reloaded: &Reloaded) -> Vec<String> {
        let mut lines = vec![describe_reload(reloaded)];
        if let Reloaded::New(_) | Reloaded::Same(_) = reloaded {
            lines.extend(self.warnings());
        }
        lines.extend(
            self.key_warning()
                .map(|warning| format!("tls: warning: {warning}")),
        );
        lines
    }

    /// With `--tls-key`: a warning when anyone on this machine may read or write the key file.
    pub fn key_warning(&self) -> Option<String> {
        let (_, key, _) = self.files.as_ref()?;
        exposed_key_warning(key)
    }

    /// Reloads when the files have changed since they were last read (None: unchanged).
    pub fn reload_if_changed(&self) -> Option<Reloaded> {
        let (cert, key, seen) = self.files.as_ref()?;
        if *lock(seen) == stamp(cert, key) {
            return None;
        }
        Some(self.reload())
    }

    /// The warnings about the certificate served to new connections (it expires soon, its
    /// chain is missing): one line each, for the console.
    pub fn warnings(&self) -> Vec<String> {
        let mut lines = self.notes.clone();
        lines.extend(served::warnings(&self.lock().chain));
        lines
    }

    /// Whether there are files to watch.
    pub fn has_files(&self) -> bool {
        self.files.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Identity> {
        lock(&self.current)
    }
}

/// What a reload did, in a line for the console.
pub fn describe_reload(reloaded: &Reloaded) -> String {
    match reloaded {
        Reloaded::New(print) => format!("tls: new certificate {print}, served to new connections"),
        Reloaded::Same(print) => format!("tls: the files hold the certificate served already ({print})"),
        Reloaded::Kept(why) => format!("tls: the new certificate files cannot be used, the old certificate is still served: {why}"),
        Reloaded::NoFiles => "tls: a self-signed certificate (--tls) has no files to reload; --tls-cert and --tls-key do".into(),
    }
}

/// The guarded value, even if a thread panicked holding it (it is only ever replaced whole).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The addresses a self-signed certificate names for a server listening on `listening` (the
/// machine's `interfaces` on a wildcard), and the names a new one gets besides: on loopback or
/// a wildcard, `localhost`; on a wildcard, both loopback addresses. Both leave out `names`
/// (`--tls-name`), which are required.
fn with_address(
    names: &[String],
    listening: IpAddr,
    interfaces: &[IpAddr],
) -> (Vec<String>, Vec<String>) {
    let mut listened: Vec<String> = addresses::reached_by(listening, interfaces)
        .iter()
        .map(IpAddr::to_string)
        .collect();
    listened.retain(|address| !names.contains(address));
    let mut also = Vec::new();
    if listening.is_loopback() || listening.is_unspecified() {
        also.push("localhost".to_string());
    }
    if listening.is_unspecified() {
        also.extend(["127.0.0.1".to_string(), "::1".to_string()]);
    }
    also.retain(|name| !names.contains(name) && !listened.contains(name));
    (listened, also)
}

/// The warning for a kept certificate that does not name every address listened on: served
/// all the same (clients that connect by name are unaffected), renewal left to the operator.
fn unnamed_line(made: &SelfSigned) -> Option<String> {
    let (first, rest) = made.unnamed.split_first()?;
    let (listed, it) = match rest {
        [] => (first.clone(), "it"),
        _ => (made.unnamed.join(", "), "them"),
    };
    Some(format!(
        "tls: the certificate kept in {} does not name {listed}, which this server listens on: \
         clients that connect by that address will refuse it; --tls-renew would add {it} (a new \
         fingerprint, which clients that remembered the old one refuse until they trust it)",
        made.dir.display()
    ))
}

/// Where a self-signed certificate came from, for the start-up line (a renewal names the
/// fingerprint it replaced, and warns).
fn describe(made: &SelfSigned) -> String {
    let how = match (made.created, made.replaced) {
        (true, Some(old)) => format!(
            "renewed (--tls-renew) and kept in {}, replacing {old}: clients that remembered that one will refuse this one until they trust it",
            made.dir.display()
        ),
        (true, None) => format!("made and kept in {}", made.dir.display()),
        (false, _) => format!("kept in {}", made.dir.display()),
    };
    format!("self-signed for {}, {how}", made.names.join(", "))
}

/// The files' modification times and sizes (None for one that cannot be read).
fn stamp(cert: &Path, key: &Path) -> Stamp {
    [cert, key].map(|path| {
        let meta = fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    })
}

/// A certificate chain and its key from PEM files, checked to belong together. A file that
/// cannot be read (missing, a FIFO, larger than 1 MiB) is an I/O error; what it holds, a usage
/// error.
pub fn load_files(cert: &Path, key: &Path) -> Result<Identity> {
    let read = |flag: &str, path: &Path| {
        read_pem(path)
            .map_err(|err| Error::io(format!("cannot read {flag} {}", path.display()), err))
    };
    let (cert_pem, key_pem) = (read("--tls-cert", cert)?, read("--tls-key", key)?);
    identity(&cert_pem, &key_pem)
        .map_err(|err| Error::Usage(format!("{} and {}: {err}", cert.display(), key.display())))
}

/// A certificate chain (leaf first, as `fullchain.pem` is) and its private key (PKCS#8, RSA or
/// SEC1), checked to belong together.
pub fn identity(cert_pem: &[u8], key_pem: &[u8]) -> std::result::Result<Identity, String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| format!("not a PEM certificate: {}", describe_pem_error(&err)))?;
    let Some(leaf) = chain.first() else {
        return Err("no certificate (-----BEGIN CERTIFICATE-----) in the certificate file".into());
    };
    let fingerprint = Fingerprint::of_der(leaf);
    if let Some(why) = served::encrypted_key(key_pem) {
        return Err(why);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| {
        format!(
            "no private key (PKCS#8, RSA or EC) in the key file: {}",
            describe_pem_error(&err)
        )
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|err| served::misfit(&chain, &key, &err))?;
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
        chain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    #[test]
    fn a_pair_that_belongs_together_serves_and_one_that_does_not_is_refused() {
        let (cert, key) = pair("localhost");
        let (_, other_key) = pair("localhost");
        assert!(identity(cert.as_bytes(), key.as_bytes()).is_ok());
        let err = identity(cert.as_bytes(), other_key.as_bytes())
            .err()
            .unwrap();
        assert!(err.contains("does not belong"), "{err}");
        let err = identity(b"", key.as_bytes()).err().unwrap();
        assert!(err.contains("no certificate"), "{err}");
        let err = identity(cert.as_bytes(), b"junk").err().unwrap();
        assert!(err.contains("no private key"), "{err}");
    }

    #[test]
    fn changed_files_are_served_and_bad_ones_keep_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let (cert_pem, key_pem) = pair("localhost");
        fs::write(&cert, &cert_pem).unwrap();
        fs::write(&key, &key_pem).unwrap();
        let setup = TlsSetup {
            source: Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            optional: false,
            watch_every: WATCH_EVERY,
        };
        let tls = ServerTls::open(&setup, "127.0.0.1".parse().unwrap()).unwrap();
        let first = tls.fingerprint();
        assert_eq!(tls.reload_if_changed(), None);
        assert_eq!(tls.reload(), Reloaded::Same(first));
        let (new_cert, new_key) = pair("localhost");
        fs::write(&cert, &new_cert).unwrap();
        assert!(matches!(tls.reload_if_changed(), Some(Reloaded::Kept(_))));
        assert_eq!(tls.fingerprint(), first);
        fs::write(&key, format!("{new_key}\n")).unwrap();
        let Some(Reloaded::New(second)) = tls.reload_if_changed() else {
            panic!("the new pair is served");
        };
        assert_ne!(second, first);
        assert_eq!(tls.fingerprint(), second);
    }
}
