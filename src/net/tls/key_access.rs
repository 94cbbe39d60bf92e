//! Who besides the server's user may touch its private key, judged as ssh judges its keys: the
//! self-signed key soquete keeps is refused when another user could read it or put their own in
//! its place; a CA's key (`--tls-key`) that others may read or write is only warned about, since
//! where it lives is the CA client's choice.

use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::platform::files::{Access, access};

/// Refuses the kept certificate's folder `dir` and its `key` (either may be absent: nothing kept
/// yet) when they belong to another user, when others than their owner may write them, or when
/// others may read the key: one line naming the path, what is wrong and the fix.
pub fn refuse_exposed_kept(dir: &Path, key: &Path) -> Result<()> {
    // Whoever may rename entries of the folder that holds `dir` may put a folder of their own,
    // with their own key, in its place, however private `dir` itself is.
    let holder = dir.parent().filter(|parent| !parent.as_os_str().is_empty());
    let checks = [
        (Some(dir), Kept::Folder),
        (Some(key), Kept::Key),
        (holder, Kept::Holder),
    ];
    for (path, kept) in checks {
        let Some(path) = path else { continue };
        let seen = match access(path) {
            Ok(seen) => seen,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(Error::io(format!("reading {}", path.display()), err)),
        };
        let trouble = match kept {
            Kept::Folder => kept_trouble(path, false, &seen),
            Kept::Key => kept_trouble(path, true, &seen),
            Kept::Holder => holder_trouble(path, &seen),
        };
        if let Some(trouble) = trouble {
            return Err(Error::io(
                format!("refusing the server's key kept in {}", dir.display()),
                io::Error::new(io::ErrorKind::PermissionDenied, trouble),
            ));
        }
    }
    Ok(())
}

/// What [`refuse_exposed_kept`] looks at.
#[derive(Clone, Copy)]
enum Kept {
    /// The `tls` folder.
    Folder,
    /// The key in it.
    Key,
    /// The folder that holds `tls` (the state directory).
    Holder,
}

/// What is wrong with the folder that holds the kept folder (the state directory): another
/// user's, or one where others may rename entries (writable, and not sticky as /tmp is).
fn holder_trouble(holder: &Path, seen: &Access) -> Option<String> {
    let shown = holder.display();
    if let Some(uid) = seen.other_owner {
        return Some(format!(
            "{shown} belongs to user {uid}, who could put a folder with their own key in place of the server's: use a --state-dir of this user's"
        ));
    }
    let whom = who(seen.group_writes, seen.others_write).filter(|_| !seen.sticky)?;
    Some(format!(
        "{shown} is writable by {whom} (mode {:04o}): another user could put a folder with their own key in place of the server's; chmod 700 {shown}",
        seen.mode
    ))
}

/// What is wrong with a kept folder or key, and the fix, in words.
fn kept_trouble(path: &Path, is_key: bool, seen: &Access) -> Option<String> {
    let shown = path.display();
    let (chmod, what) = if is_key {
        ("600", "the key")
    } else {
        ("700", "the folder")
    };
    if let Some(uid) = seen.other_owner {
        return Some(format!(
            "{shown} belongs to user {uid}, who could put their own key there: remove {what} (a new certificate is made) or chown it to this user"
        ));
    }
    let writers = who(seen.group_writes, seen.others_write);
    let readers = who(seen.group_reads, seen.others_read).filter(|_| is_key);
    let (verb, whom) = match (writers, readers) {
        (Some(whom), _) => ("writable", whom),
        (None, Some(whom)) => ("readable", whom),
        (None, None) => return None,
    };
    Some(format!(
        "{shown} is {verb} by {whom} (mode {:04o}): another user could read or replace the server's key; chmod {chmod} {shown}",
        seen.mode
    ))
}

/// "its group", "others", or both.
fn who(group: bool, others: bool) -> Option<&'static str> {
    match (group, others) {
        (true, true) => Some("its group and others"),
        (true, false) => Some("its group"),
        (false, true) => Some("others"),
        (false, false) => None,
    }
}

/// A warning when anyone on this machine may read or write the key file of `--tls-key` (its
/// group may: a CA's `ssl-cert` group), with the fix; None when it cannot be looked at (reading
/// it says why).
pub fn exposed_key_warning(key: &Path) -> Option<String> {
    let seen = access(key).ok()?;
    let how = match (seen.others_read, seen.others_write) {
        (true, true) => "readable and writable",
        (true, false) => "readable",
        (false, true) => "writable",
        (false, false) => return None,
    };
    let shown = key.display();
    Some(format!(
        "the private key {shown} is {how} by others (mode {:04o}): anyone on this machine could read it and pose as this server; chmod 600 {shown} (or 640 with a group of its own)",
        seen.mode
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(mode: u32, other_owner: Option<u32>) -> Access {
        Access::of_mode(mode, other_owner)
    }

    #[test]
    fn the_state_folder_is_refused_when_others_could_rename_what_it_holds() {
        let holder = Path::new("/s");
        assert_eq!(holder_trouble(holder, &seen(0o755, None)), None);
        assert_eq!(holder_trouble(holder, &seen(0o700, None)), None);
        // /tmp: anyone writes, only a name's owner renames it.
        assert_eq!(holder_trouble(holder, &seen(0o1777, None)), None);
        let said = holder_trouble(holder, &seen(0o777, None)).unwrap();
        assert!(
            said.contains("/s is writable by its group and others (mode 0777)"),
            "{said}"
        );
        assert!(said.ends_with("chmod 700 /s"), "{said}");
        let said = holder_trouble(holder, &seen(0o775, None)).unwrap();
        assert!(said.contains("writable by its group (mode 0775)"), "{said}");
        let said = holder_trouble(holder, &seen(0o700, Some(1000))).unwrap();
        assert!(said.contains("/s belongs to user 1000"), "{said}");
    }

    #[test]
    fn a_kept_key_is_refused_when_another_user_could_read_or_replace_it() {
        let (dir, key) = (Path::new("/s/tls"), Path::new("/s/tls/server-key.pem"));
        assert_eq!(kept_trouble(dir, false, &seen(0o700, None)), None);
        assert_eq!(kept_trouble(dir, false, &seen(0o755, None)), None);
        assert_eq!(kept_trouble(key, true, &seen(0o600, None)), None);
        let said = kept_trouble(dir, false, &seen(0o777, None)).unwrap();
        assert_eq!(
            said,
            "/s/tls is writable by its group and others (mode 0777): another user could read or replace the server's key; chmod 700 /s/tls"
        );
        let said = kept_trouble(key, true, &seen(0o640, None)).unwrap();
        assert!(
            said.contains("is readable by its group (mode 0640)"),
            "{said}"
        );
        assert!(said.ends_with("chmod 600 /s/tls/server-key.pem"), "{said}");
        let said = kept_trouble(dir, false, &seen(0o700, Some(1001))).unwrap();
        assert!(said.starts_with("/s/tls belongs to user 1001"), "{said}");
    }
}
