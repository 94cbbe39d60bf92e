//! `soquete` with a private `/etc/hosts`: bind-mounted over the real one in a mount namespace of
//! its own, so names resolve as a test says without touching the machine's file.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use super::process::{Running, soquete_path};
use super::{is_root, require, tool};

/// A private `/etc/hosts` file that a test may rewrite while `soquete` runs with it.
pub struct HostsFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl HostsFile {
    /// A file holding `hosts`; None (the test is skipped, or fails under CI) without root and
    /// `unshare`.
    pub fn new(hosts: &str) -> Option<HostsFile> {
        if !require(
            is_root() && tool("unshare"),
            "root and unshare, for a private /etc/hosts",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, hosts).unwrap();
        Some(HostsFile { _dir: dir, path })
    }

    /// Rewrites the file in place (the same inode, so a running `soquete` sees it).
    pub fn write(&self, hosts: &str) {
        std::fs::write(&self.path, hosts).unwrap();
    }

    /// `soquete ARGS` with this file bind-mounted over `/etc/hosts`, in a mount namespace.
    fn command(&self, args: &[&str]) -> Command {
        let script = "mount --bind \"$1\" /etc/hosts && shift && exec \"$@\"";
        let mut command = Command::new("unshare");
        command
            .args(["-m", "sh", "-c", script, "sh"])
            .arg(&self.path)
            .arg(soquete_path())
            .args(args);
        command
    }

    /// Starts `soquete ARGS` with this file as `/etc/hosts`.
    pub fn start(&self, args: &[&str]) -> Running {
        Running::spawn(self.command(args), Stdio::null())
    }
}

/// Runs `soquete ARGS` with `/etc/hosts` replaced by `hosts`; None (the test is skipped, or
/// fails under CI) without root and `unshare`.
pub fn with_hosts(hosts: &str, args: &[&str]) -> Option<Output> {
    let file = HostsFile::new(hosts)?;
    Some(file.command(args).output().expect("unshare runs"))
}
