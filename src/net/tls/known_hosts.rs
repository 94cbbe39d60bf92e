//! The client's memory of self-signed servers, as ssh's `known_hosts`: one line per server,
//! `HOST:PORT SHA256:…`, in soquete's data directory (`known_hosts`, or under `--state-dir`).
//! The first connection to a server adds its line (trust on first use); a later one whose
//! certificate has another fingerprint is refused with both prints.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::Fingerprint;

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "known_hosts";
/// A known-hosts file larger than this is not read (it is ours: a few dozen bytes a server).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What the file says about one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// The fingerprint remembered.
    pub fingerprint: Fingerprint,
    /// Its line in the file, from 1 (for "remove line N").
    pub line: usize,
}

/// A known-hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    /// The file `known_hosts` in `state_dir` (created when a server is first remembered).
    pub fn in_dir(state_dir: &Path) -> KnownHosts {
        KnownHosts {
            path: state_dir.join(FILE_NAME),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fingerprint remembered for `server` (`HOST:PORT`), if any. A missing file knows no
    /// server; lines that do not parse are skipped (a hand edit must not lock anyone out).
    pub fn lookup(&self, server: &str) -> io::Result<Option<Known>> {
        let text = match self.read() {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        Ok(find(&text, server))
    }

    /// Remembers `fingerprint` for `server`, creating the directory and file if needed.
    pub fn remember(&self, server: &str, fingerprint: &Fingerprint) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)?;
        // Read again under the lock: another client may have remembered it meanwhile.
        file.lock()?;
        let mut text = String::new();
        (&file).take(MAX_FILE_BYTES).read_to_string(&mut text)?;
        match find(&text, server) {
            None => writeln!(file, "{} {fingerprint}", canonical(server)),
            Some(known) if known.fingerprint == *fingerprint => Ok(()),
            Some(known) => Err(io::Error::other(format!(
                "line {} already holds {} for {server}",
                known.line, known.fingerprint
            ))),
        }
    }

    fn read(&self) -> io::Result<String> {
        let size = fs::metadata(&self.path)?.len();
        if size > MAX_FILE_BYTES {
            return Err(io::Error::other(format!(
                "{} is larger than {MAX_FILE_BYTES} bytes",
                self.path.display()
            )));
        }
        fs::read_to_string(&self.path)
    }
}

/// The first line of `text` for `server`.
fn find(text: &str, server: &str) -> Option<Known> {
    let server = canonical(server);
    text.lines().enumerate().find_map(|(index, line)| {
        let (host, print) = parse_line(line)?;
        (canonical(host) == server).then_some(Known {
            fingerprint: print,
            line: index + 1,
        })
    })
}

/// `HOST:PORT` as one server has one spelling: a DNS name in lower case (`LAB.x` is `lab.x`),
/// an IPv6 address in brackets in its shortest form (`[0:0::1]` is `[::1]`).
fn canonical(server: &str) -> String {
    let (host, port) = server.rsplit_once(':').unwrap_or((server, ""));
    let v6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<std::net::Ipv6Addr>().ok());
    match v6 {
        Some(addr) => format!("[{addr}]:{port}"),
        None => format!("{}:{port}", host.to_ascii_lowercase()),
    }
}

/// `HOST:PORT SHA256:…`; None for a comment, a blank or a bad line.
fn parse_line(line: &str) -> Option<(&str, Fingerprint)> {
    let line = line.trim();
    if line.starts_with('#') {
        return None;
    }
    let (host, print) = line.split_once(char::is_whitespace)?;
    Some((host, print.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_servers_by_host_and_port_and_finds_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownHosts::in_dir(&dir.path().join("soquete"));
        let (a, b) = (Fingerprint::of_der(b"a"), Fingerprint::of_der(b"b"));
        assert_eq!(known.lookup("h:1").unwrap(), None, "no file yet");
        known.remember("h:1", &a).unwrap();
        known.remember("h:2", &b).unwrap();
        let found = |server| known.lookup(server).unwrap();
        assert_eq!(
            found("h:1"),
            Some(Known {
                fingerprint: a,
                line: 1
            })
        );
        assert_eq!(found("h:2").map(|k| (k.fingerprint, k.line)), Some((b, 2)));
        assert_eq!(found("h:3"), None);
        let text = fs::read_to_string(known.path()).unwrap();
        assert!(text.starts_with(&format!("h:1 {a}\n")), "{text}");
    }

    #[test]
    fn one_server_is_one_line_however_it_is_spelt() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownHosts::in_dir(dir.path());
        let (a, b) = (Fingerprint::of_der(b"a"), Fingerprint::of_der(b"b"));
        known.remember("LAB.Example:443", &a).unwrap();
        known.remember("lab.example:443", &a).unwrap();
        known.remember("[0:0::1]:7", &b).unwrap();
        known.remember("[::1]:7", &b).unwrap();
        let text = fs::read_to_string(known.path()).unwrap();
        assert_eq!(text, format!("lab.example:443 {a}\n[::1]:7 {b}\n"));
        assert_eq!(
            known.lookup("lab.EXAMPLE:443").unwrap().map(|k| k.line),
            Some(1)
        );
        assert_eq!(known.lookup("[::0:1]:7").unwrap().map(|k| k.line), Some(2));
        assert!(
            known.remember("lab.example:443", &b).is_err(),
            "not a second line"
        );
        assert_eq!(fs::read_to_string(known.path()).unwrap(), text);
    }

    #[test]
    fn comments_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownHosts::in_dir(dir.path());
        let a = Fingerprint::of_der(b"a");
        fs::write(known.path(), format!("# mine\nh:1 junk\n\nh:1 {a}\n")).unwrap();
        assert_eq!(known.lookup("h:1").unwrap().map(|k| k.line), Some(4));
    }
}
