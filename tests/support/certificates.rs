//! Certificates made by the tests themselves (rcgen), never committed: a self-signed pair for
//! some names, written as PEM files the way a CA hands them out (certificate, key).

use std::path::{Path, PathBuf};

/// A certificate and its key as PEM files in `dir`, named `NAME-cert.pem` and `NAME-key.pem`
/// (written again when they exist: a renewal). Returns their paths.
pub fn write_pair(dir: &Path, name: &str, hosts: &[&str]) -> (PathBuf, PathBuf) {
    let hosts: Vec<String> = hosts.iter().map(|host| host.to_string()).collect();
    let made = rcgen::generate_simple_self_signed(hosts).expect("rcgen makes a certificate");
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// The SHA-256 fingerprint of the PEM certificate at `path`, as soquete prints it.
pub fn fingerprint_of(path: &Path) -> String {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(path).expect("a PEM certificate");
    soquete::net::tls::Fingerprint::of_der(&der).to_string()
}
