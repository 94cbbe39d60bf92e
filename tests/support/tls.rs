//! TLS for the tests: certificates made on the spot (rcgen; never a committed key) in a
//! temporary directory, and real TLS servers that use them (`openssl s_server`, `ncat --ssl`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use super::ports::listening_port;
use super::process::Running;

/// A test CA and the certificates a test asks of it, as PEM files in a temporary directory.
pub struct Certs {
    pub dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, on disk.
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How long a certificate is valid, relative to now.
#[derive(Clone, Copy)]
pub enum Validity {
    /// From yesterday for a year.
    Current,
    /// Ended years ago.
    Expired,
    /// From yesterday until this many days from now.
    Days(i64),
}

impl Certs {
    /// A new CA, written to `ca.pem`.
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "soquete test CA");
        let ca = params.self_signed(&key).expect("the CA signs itself");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("ca.pem written");
        Certs {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate file (for `--tls-ca`).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate for `names` signed by the CA, as `FILE.pem` and `FILE.key`.
    pub fn signed(&self, file: &str, names: &[&str], validity: Validity) -> Pair {
        let key = KeyPair::generate().expect("a key");
        let cert = params(names, validity)
            .signed_by(&key, &self.issuer)
            .expect("the CA signs");
        self.write(file, cert.pem(), &key)
    }

    /// A self-signed certificate for `names`, as `serve --tls` makes one (made again under the
    /// same `file`: a renewal).
    pub fn self_signed(&self, file: &str, names: &[&str]) -> Pair {
        self.self_signed_for(file, names, Validity::Current)
    }

    /// A self-signed certificate for `names`, valid over `validity`.
    pub fn self_signed_for(&self, file: &str, names: &[&str], validity: Validity) -> Pair {
        let key = KeyPair::generate().expect("a key");
        let cert = params(names, validity)
            .self_signed(&key)
            .expect("signs itself");
        self.write(file, cert.pem(), &key)
    }

    /// A self-signed certificate as `openssl req -x509` makes one (CA:TRUE, which webpki refuses
    /// as an end entity), for `names` (`subjectAltName` entries such as `IP:127.0.0.1`).
    pub fn openssl_self_signed(&self, file: &str, names: &str) -> Pair {
        let (cert, key) = (
            self.dir.path().join(format!("{file}.pem")),
            self.dir.path().join(format!("{file}.key")),
        );
        let san = format!("subjectAltName={names}");
        let key_type = ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        openssl_req(
            &key_type,
            "/CN=soquete test",
            &["-addext", &san],
            (&cert, &key),
        );
        Pair { cert, key }
    }

    fn write(&self, file: &str, pem: String, key: &KeyPair) -> Pair {
        let cert = self.dir.path().join(format!("{file}.pem"));
        let key_file = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&cert, pem).expect("certificate written");
        std::fs::write(&key_file, key.serialize_pem()).expect("key written");
        // As a CA's client leaves a key: its owner's alone (the server warns otherwise).
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&key_file, private).expect("key made private");
        Pair {
            cert,
            key: key_file,
        }
    }

    /// A CA that is nobody's issuer but bears `name` (as Debian's `ssl-cert-snakeoil.pem`,
    /// in `/etc/ssl/certs`, is `CN=localhost`), written as `decoy.pem` for `SSL_CERT_FILE`.
    pub fn decoy_root(&self, name: &str) -> PathBuf {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let root = params.self_signed(&key).expect("the decoy signs itself");
        let path = self.dir.path().join("decoy.pem");
        std::fs::write(&path, root.pem()).expect("decoy.pem written");
        path
    }

    /// A certificate for `names` signed by an intermediate CA (`CN=soquete test intermediate`)
    /// that the CA signed, written alone as `FILE.pem` (the leaf without its chain: the classic
    /// mistake of serving `cert.pem` instead of `fullchain.pem`) and `FILE.key`.
    pub fn leaf_without_intermediate(&self, file: &str, names: &[&str]) -> Pair {
        let key = KeyPair::generate().expect("a key");
        let mut middle = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        middle.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        middle
            .distinguished_name
            .push(DnType::CommonName, "soquete test intermediate");
        middle.signed_by(&key, &self.issuer).expect("the CA signs");
        let intermediate = Issuer::new(middle, key);
        let key = KeyPair::generate().expect("a key");
        let cert = params(names, Validity::Current)
            .signed_by(&key, &intermediate)
            .expect("the intermediate signs");
        self.write(file, cert.pem(), &key)
    }

    /// An RSA root that is nobody's issuer but bears `name`, as Debian's `ssl-cert-snakeoil.pem`
    /// is (`CN=localhost`, RSA), written as `decoy-rsa.pem` for `SSL_CERT_FILE` (openssl makes
    /// it: ring makes no RSA key).
    pub fn decoy_rsa_root(&self, name: &str) -> PathBuf {
        let (cert, key) = (
            self.dir.path().join("decoy-rsa.pem"),
            self.dir.path().join("decoy-rsa.key"),
        );
        openssl_req(&["rsa:2048"], &format!("/CN={name}"), &[], (&cert, &key));
        cert
    }

    /// A state directory for the client's known_hosts, inside the temporary directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

/// `openssl s_server` with a certificate for `names` from a new test CA (`certs.ca()`); None
/// when openssl is missing (and CI does not require it).
pub fn openssl_with_signed(names: &[&str]) -> Option<(Certs, TlsServer)> {
    if !super::require(super::tool("openssl"), "openssl") {
        return None;
    }
    let certs = Certs::new();
    let server = TlsServer::openssl(&certs.signed("signed", names, Validity::Current));
    Some((certs, server))
}

/// `soquete chat --tls` as `ana` to `target`, trusting the certificate `print` names and
/// remembering it in this test's state directory, with `extra` flags.
pub fn chat_as_ana(certs: &Certs, print: &str, target: &str, extra: &[&str]) -> Vec<String> {
    let state = certs.state_dir();
    let state = state.to_str().unwrap();
    let flags = [
        "--tls-fingerprint",
        print,
        "--state-dir",
        state,
        "--name",
        "ana",
    ];
    let all = [&["chat", "--tls"][..], &flags, extra, &[target]].concat();
    all.into_iter().map(String::from).collect()
}

/// The SHA-256 fingerprint of the PEM certificate at `path`, as soquete prints it.
pub fn fingerprint_of(path: &Path) -> String {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_file(path).expect("a PEM certificate");
    soquete::net::tls::Fingerprint::of_der(&der).to_string()
}

/// `openssl req -x509` for 30 days: a new key of `key_type` (`-newkey`'s arguments), the
/// certificate for `subject` with `extra` arguments, written to `files` (certificate, key).
fn openssl_req(key_type: &[&str], subject: &str, extra: &[&str], files: (&Path, &Path)) {
    let status = std::process::Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "30", "-newkey"])
        .args(key_type)
        .args(["-subj", subject])
        .args(extra)
        .arg("-out")
        .arg(files.0)
        .arg("-keyout")
        .arg(files.1)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl req -x509 -newkey {key_type:?}");
}

fn params(names: &[&str], validity: Validity) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("names");
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    let (from, days) = match validity {
        Validity::Current => (-1, 365),
        Validity::Expired => (-3000, 365),
        Validity::Days(days) => (-1, days + 1),
    };
    let ((y0, m0, d0), (y1, m1, d1)) = (day(from), day(from + days));
    params.not_before = rcgen::date_time_ymd(y0, m0, d0);
    params.not_after = rcgen::date_time_ymd(y1, m1, d1);
    params
}

/// The date `offset` days from today, UTC, as rcgen's `date_time_ymd` takes it.
fn day(offset: i64) -> (i32, u8, u8) {
    use chrono::Datelike;
    let date = (chrono::Utc::now() + chrono::Duration::days(offset)).date_naive();
    (date.year(), date.month() as u8, date.day() as u8)
}

/// A real TLS server on 127.0.0.1 (port 0), its stdin and stdout piped as `Running`'s.
pub struct TlsServer {
    pub running: Running,
    pub addr: SocketAddr,
}

impl TlsServer {
    /// `openssl s_server -quiet` with `pair`.
    pub fn openssl(pair: &Pair) -> TlsServer {
        TlsServer::start(
            "openssl",
            &[
                "s_server",
                "-quiet",
                "-accept",
                "127.0.0.1:0",
                "-cert",
                path(&pair.cert),
                "-key",
                path(&pair.key),
            ],
        )
    }

    /// `ncat --ssl -l` with `pair`.
    pub fn ncat(pair: &Pair) -> TlsServer {
        TlsServer::start(
            "ncat",
            &[
                "--ssl",
                "--ssl-cert",
                path(&pair.cert),
                "--ssl-key",
                path(&pair.key),
                "-l",
                "127.0.0.1",
                "0",
            ],
        )
    }

    /// `socat` with `pair` in front of the plain server at `backend`: a connection each
    /// (`fork`), TLS outside, plain TCP inside.
    pub fn socat_in_front_of(pair: &Pair, backend: SocketAddr) -> TlsServer {
        let listen = format!(
            "OPENSSL-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,verify=0,cert={},key={}",
            path(&pair.cert),
            path(&pair.key)
        );
        TlsServer::start("socat", &[&listen, &format!("TCP:{backend}")])
    }

    fn start(program: &str, args: &[&str]) -> TlsServer {
        let running = Running::program(program, args);
        let port = listening_port(running.child.id());
        TlsServer {
            running,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

fn path(file: &Path) -> &str {
    file.to_str().expect("a UTF-8 temporary path")
}

/// A python3 server that reads each ClientHello, then sends the start of a 16 KiB TLS record one
/// byte every 200 ms (13 s in all): a handshake that never ends, though bytes keep coming.
const DRIPPING: &str = r#"
import socket, threading, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(8)
print(server.getsockname()[1], flush=True)
def drip(conn):
    try:
        conn.settimeout(10)
        got = b""
        while len(got) < 5 or len(got) < 5 + int.from_bytes(got[3:5], "big"):
            more = conn.recv(4096)
            if not more:
                return
            got += more
        print("client hello", flush=True)
        for byte in b"\x16\x03\x03\x40\x00" + b"\x00" * 60:
            conn.sendall(bytes([byte]))
            time.sleep(0.2)
    except OSError:
        pass
    finally:
        conn.close()
server.settimeout(20)
while True:
    try:
        conn, _ = server.accept()
    except OSError:
        break
    threading.Thread(target=drip, args=(conn,), daemon=True).start()
"#;

/// The [`DRIPPING`] server on 127.0.0.1 and its address; it prints `client hello` per handshake.
pub fn dripping_server() -> (Running, SocketAddr) {
    let running = Running::program("python3", &["-c", DRIPPING]);
    let port = running
        .wait_for(super::LIMIT, |line| line.parse::<u16>().is_ok())
        .expect("the dripping server's port");
    (
        running,
        SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap())),
    )
}
