//! Files only their owner may read (a private key): created with mode 0600 in a directory of
//! mode 0700 on Unix, and who besides their owner may touch existing ones; files opened only
//! when they are regular files, without waiting on a FIFO. Elsewhere the OS's defaults for the
//! user's own data directory apply, and nothing is reported about who may touch a file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Who besides its owner may touch a file or folder (all false where the OS has no Unix modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Access {
    /// The user it belongs to, when that is neither this process's user nor root.
    pub other_owner: Option<u32>,
    pub group_reads: bool,
    pub group_writes: bool,
    pub others_read: bool,
    pub others_write: bool,
    /// The sticky bit (a folder such as /tmp): only a name's owner may rename or remove it.
    pub sticky: bool,
    /// Its permission bits (`0o644`), for messages.
    pub mode: u32,
}

impl Access {
    /// What Unix permission bits `mode` (`0o1777`) allow besides the owner, for a file that
    /// `other_owner` owns (None: this user or root).
    pub fn of_mode(mode: u32, other_owner: Option<u32>) -> Access {
        Access {
            other_owner,
            group_reads: mode & 0o040 != 0,
            group_writes: mode & 0o020 != 0,
            others_read: mode & 0o004 != 0,
            others_write: mode & 0o002 != 0,
            sticky: mode & 0o1000 != 0,
            mode,
        }
    }
}

/// Who besides its owner may touch the file or folder at `path` (a link is followed).
pub fn access(path: &Path) -> io::Result<Access> {
    let meta = fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let me = rustix::process::geteuid().as_raw();
        let mode = meta.mode() & 0o7777;
        let other_owner = Some(meta.uid()).filter(|&uid| uid != me && uid != 0);
        Ok(Access::of_mode(mode, other_owner))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(Access::default())
    }
}

/// Opens `path` for reading only if it is a regular file (a link to one is followed): a FIFO, a
/// device, a socket or a folder is an `InvalidInput` error that says which, and opening never
/// waits for a FIFO's writer.
pub fn open_regular(path: &Path) -> io::Result<File> {
    not_regular(&fs::metadata(path)?)?;
    let mut options = OpenOptions::new();
    options.read(true);
    // Should a FIFO take the file's place after the look above, opening it does not wait.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NONBLOCK | libc::O_NOCTTY,
    );
    let file = options.open(path)?;
    not_regular(&file.metadata()?)?;
    Ok(file)
}

/// An error naming what the file is, unless it is a regular file.
fn not_regular(meta: &fs::Metadata) -> io::Result<()> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        special_kind(&kind)
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({what})"),
    ))
}

/// What a file that is neither a regular file nor a folder is.
fn special_kind(kind: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    let _ = kind;
    "a special file"
}

/// Creates `dir` (and its parents) if absent; a directory this creates is its owner's alone.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `bytes` to a new file at `path` (replacing none: an existing file is an error) that
/// only its owner may read or write.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Whether others than the owner may read the file at `path` (always false off Unix).
pub fn readable_by_others(path: &Path) -> io::Result<bool> {
    let meta = fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(meta.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_file_is_its_owners_alone_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("a/b");
        create_private_dir(&inner).unwrap();
        let path = inner.join("key.pem");
        write_private(&path, b"secret").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        assert!(!readable_by_others(&path).unwrap());
        assert!(write_private(&path, b"other").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        let private = access(&inner).unwrap();
        assert_eq!(private.other_owner, None);
        assert!(
            !private.group_writes && !private.others_write,
            "{private:?}"
        );
    }

    #[test]
    #[cfg(unix)]
    fn only_regular_files_are_opened_and_modes_are_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cert.pem");
        fs::write(&path, b"pem").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o646)).unwrap();
        let seen = access(&path).unwrap();
        assert!(seen.others_read && seen.others_write && seen.group_reads && !seen.group_writes);
        assert_eq!(seen.mode, 0o646);
        assert!(open_regular(&path).is_ok());
        for (special, what) in [("/dev/zero", "a character device"), ("/", "a directory")] {
            let err = open_regular(Path::new(special)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert_eq!(err.to_string(), format!("not a regular file ({what})"));
        }
    }
}
