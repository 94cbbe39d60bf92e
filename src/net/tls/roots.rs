//! The certificate authorities a client trusts (the system's, or a `--tls-ca` file's) and the one
//! crypto provider soquete uses: below the client's trust decision and the verifier it runs in.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, Error as TlsError, RootCertStore};
use x509_parser::prelude::{ASN1Time, FromDer, X509Certificate};

use crate::error::{Error, Result};

/// The certificate authorities a client trusts.
#[derive(Clone)]
pub struct Roots {
    store: Arc<RootCertStore>,
    /// The `--tls-ca` file's certificates as written (the store keeps only names and keys).
    given: Arc<Vec<CertificateDer<'static>>>,
    /// The `--tls-ca` file, when the roots are its certificates instead of the system's.
    pub private_ca: Option<PathBuf>,
}

impl fmt::Debug for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Roots({} certificates", self.store.len())?;
        match &self.private_ca {
            Some(file) => write!(f, " from {})", file.display()),
            None => f.write_str(" of the system)"),
        }
    }
}

impl Roots {
    /// The system's roots (rustls-native-certs: the OS store, or `SSL_CERT_FILE`/`SSL_CERT_DIR`),
    /// or with `ca_file` the certificates of that PEM file only.
    pub fn load(ca_file: Option<&Path>) -> Result<Roots> {
        let mut store = RootCertStore::empty();
        let mut given = Vec::new();
        match ca_file {
            // A file that cannot be used is the user's to fix, said in one line naming it.
            Some(file) => {
                let bad = |why: String| Error::Usage(format!("--tls-ca {} {why}", file.display()));
                let pem =
                    std::fs::read(file).map_err(|err| bad(format!("cannot be read: {err}")))?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|err| bad(format!("is not valid PEM: {err}")))?;
                for cert in certs {
                    given.push(cert.clone());
                    store.add(cert).map_err(|err| {
                        bad(format!("holds a certificate that cannot be read: {err}"))
                    })?;
                }
                if store.is_empty() {
                    return Err(bad(
                        "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
                    ));
                }
            }
            // Roots that fail to load are skipped: a self-signed server still works by its
            // fingerprint, and a CA-signed one then fails with "unknown issuer".
            None => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
            }
        }
        Ok(Roots {
            store: Arc::new(store),
            given: Arc::new(given),
            private_ca: ca_file.map(Path::to_path_buf),
        })
    }

    /// The standard verifier over these roots (chain, validity dates, name).
    pub fn verifier(&self) -> Result<Arc<WebPkiServerVerifier>> {
        WebPkiServerVerifier::builder_with_provider(Arc::clone(&self.store), provider())
            .build()
            .map_err(|err| Error::Internal(format!("building the TLS verifier: {err}")))
    }

    /// When `end_entity` is byte for byte one of the `--tls-ca` file's certificates (the server's
    /// own self-signed certificate given as its CA, as new users do; webpki refuses one that says
    /// CA:TRUE as an end entity), the check that applies to it: it is exactly what the user said
    /// to trust, so only its name and its dates. None for any other certificate.
    pub fn check_given(
        &self,
        end_entity: &CertificateDer<'_>,
        name: &ServerName<'_>,
        now: UnixTime,
    ) -> Option<std::result::Result<(), TlsError>> {
        if !self.given.iter().any(|cert| cert[..] == end_entity[..]) {
            return None;
        }
        let parsed = ParsedCertificate::try_from(end_entity);
        let (_, x509) = X509Certificate::from_der(end_entity).ok()?;
        let at = |time: &ASN1Time| {
            UnixTime::since_unix_epoch(Duration::from_secs(
                u64::try_from(time.timestamp()).unwrap_or(0),
            ))
        };
        let (not_before, not_after) = (
            at(&x509.validity().not_before),
            at(&x509.validity().not_after),
        );
        let invalid = |error| Err(TlsError::InvalidCertificate(error));
        Some(if now.as_secs() < not_before.as_secs() {
            invalid(CertificateError::NotValidYetContext {
                time: now,
                not_before,
            })
        } else if now.as_secs() > not_after.as_secs() {
            invalid(CertificateError::ExpiredContext {
                time: now,
                not_after,
            })
        } else {
            parsed.and_then(|cert| verify_server_name(&cert, name))
        })
    }

    /// Where the roots come from, for messages.
    pub fn describe(&self) -> String {
        match &self.private_ca {
            Some(file) => format!("the CA in {}", file.display()),
            None => "the system's roots".into(),
        }
    }
}

/// The one crypto provider soquete uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_of_the_ca_file_is_checked_by_its_dates_and_name_only() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("own.pem");
        std::fs::write(&file, cert.pem()).unwrap();
        let roots = Roots::load(Some(&file)).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let at = |secs| UnixTime::since_unix_epoch(Duration::from_secs(secs));
        // 2020-07-01, 2022-01-01.
        let (within, after) = (at(1_593_561_600), at(1_640_995_200));
        assert_eq!(roots.check_given(cert.der(), &name, within), Some(Ok(())));
        assert!(matches!(
            roots.check_given(cert.der(), &name, after),
            Some(Err(TlsError::InvalidCertificate(
                CertificateError::ExpiredContext { .. }
            )))
        ));
        let other = ServerName::try_from("example.org").unwrap();
        assert!(matches!(
            roots.check_given(cert.der(), &other, within),
            Some(Err(TlsError::InvalidCertificate(_)))
        ));
        let stranger = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(roots.check_given(stranger.der(), &name, within), None);
    }
}
