//! The certificate authorities a client trusts (the system's, or a `--tls-ca` file's) and the one
//! crypto provider soquete uses: below the client's trust decision and the verifier it runs in.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{Context, Error, Result};

/// The certificate authorities a client trusts.
#[derive(Clone)]
pub struct Roots {
    store: Arc<RootCertStore>,
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
        match ca_file {
            Some(file) => {
                let context = || format!("reading the CA file {}", file.display());
                let certs = CertificateDer::pem_file_iter(file)
                    .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|err| std::io::Error::other(err.to_string()))
                    .with_context(context)?;
                for cert in certs {
                    store
                        .add(cert)
                        .map_err(|err| std::io::Error::other(err.to_string()))
                        .with_context(context)?;
                }
                if store.is_empty() {
                    return Err(Error::Usage(format!(
                        "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                        file.display()
                    )));
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
            private_ca: ca_file.map(Path::to_path_buf),
        })
    }

    /// The standard verifier over these roots (chain, validity dates, name).
    pub fn verifier(&self) -> Result<Arc<WebPkiServerVerifier>> {
        WebPkiServerVerifier::builder_with_provider(Arc::clone(&self.store), provider())
            .build()
            .map_err(|err| Error::Internal(format!("building the TLS verifier: {err}")))
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
