//! What `--cluster URL --room NAME` asks for, checked before anything connects: a `redis://` or
//! `rediss://` URL (its password, or `SOQUETE_REDIS_PASSWORD`'s, never shown: every message
//! names the URL with the password masked) and a room name that fits in a Redis key.

use crate::chat::protocol::Secret;

/// The environment variable a Redis password may come from (rather than the URL, which `ps`
/// shows); the face reads it.
pub const REDIS_PASSWORD_ENV: &str = "SOQUETE_REDIS_PASSWORD";
/// Longest room name.
pub const MAX_ROOM_CHARS: usize = 64;

/// A room shared by several servers through one Redis.
#[derive(Clone, PartialEq)]
pub struct ClusterSetup {
    /// The URL as given (it may carry a password: never printed, see [`ClusterSetup::shown`]).
    pub url: Secret,
    /// The room's name: every server given the same Redis and room shares one room.
    pub room: String,
    /// `SOQUETE_REDIS_PASSWORD`, used when the URL carries none.
    pub password: Option<Secret>,
    /// How long a crashed server's members and raw names outlive it (its sessions' names: the
    /// name reservation): `presence::TTL`, shortened by tests.
    pub ttl: std::time::Duration,
    /// Entries the stream keeps at least (`store::MIN_STREAM_LEN`, shortened by tests).
    pub stream_len: usize,
}

impl std::fmt::Debug for ClusterSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSetup")
            .field("url", &self.shown())
            .field("room", &self.room)
            .finish_non_exhaustive()
    }
}

impl ClusterSetup {
    /// The URL as messages show it: its password, if any, masked.
    pub fn shown(&self) -> String {
        masked(self.url.expose())
    }

    /// Checks the URL and the room; the message of a usage error.
    pub fn check(&self) -> Result<(), String> {
        check_url(self.url.expose())?;
        check_room(&self.room)
    }
}

/// `redis://` or `rediss://`, a host, a port and a database number that the Redis client
/// accepts (its own parsing decides; the message never carries the password).
fn check_url(url: &str) -> Result<(), String> {
    let shown = masked(url);
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if !matches!(scheme, Some("redis" | "rediss")) || url.contains('#') || url.contains('?') {
        return Err(format!(
            "--cluster {shown:?}: not a Redis URL (redis://HOST:PORT[/DB], or rediss:// for TLS)"
        ));
    }
    redis::Client::open(url).map(|_| ()).map_err(|err| {
        format!(
            "--cluster {shown:?}: not a Redis URL ({}): redis://HOST:PORT[/DB], or rediss:// for TLS",
            err.detail().unwrap_or("cannot be read")
        )
    })
}

/// A room name: 1 to [`MAX_ROOM_CHARS`] characters, letters, digits, `-`, `_` and `.` (it is part
/// of every Redis key of the room, and printed on consoles).
pub fn check_room(room: &str) -> Result<(), String> {
    let fine = (1..=MAX_ROOM_CHARS).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if fine {
        Ok(())
    } else {
        Err(format!(
            "--room: a room name is 1 to {MAX_ROOM_CHARS} letters, digits, '-', '_' or '.' (no spaces)"
        ))
    }
}

/// `url` with the password of its user information replaced by `***`, and nothing else
/// changed; a URL whose user information cannot be told is shown by its scheme alone.
pub fn masked(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.contains('@') || url.contains(':') {
            "(a URL not shown: it may hold a password)".into()
        } else {
            url.into()
        };
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let shown = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    // Nothing after the authority is secret but a query's `pass=`, which we never accept.
    let tail = if tail.contains("pass") { "/…" } else { tail };
    crate::net::sanitize::neutralize(&format!("{scheme}://{shown}{tail}")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(url: &str, room: &str) -> ClusterSetup {
        ClusterSetup {
            url: Secret::new(url.into()),
            room: room.into(),
            password: None,
            ttl: std::time::Duration::from_secs(30),
            stream_len: 100_000,
        }
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(
            masked("redis://:s3cret@10.0.0.5:6379/2"),
            "redis://:***@10.0.0.5:6379/2"
        );
        assert_eq!(
            masked("rediss://ana:p@ss:w@host:6380"),
            "rediss://ana:***@host:6380"
        );
        assert_eq!(masked("redis://host:6379"), "redis://host:6379");
        assert_eq!(masked("redis://user@host"), "redis://user@host");
        assert!(!masked("x:pw@host").contains("pw"));
        let with = setup("redis://:hunter2@127.0.0.1:1", "sala");
        assert!(!format!("{with:?}").contains("hunter2"));
        assert!(with.check().is_ok());
    }

    #[test]
    fn only_redis_urls_and_short_plain_room_names_are_taken() {
        assert!(setup("redis://127.0.0.1:6379", "sala-1").check().is_ok());
        assert!(setup("rediss://h:6380/3", "a.b_c").check().is_ok());
        for bad in [
            "http://127.0.0.1:6379",
            "127.0.0.1:6379",
            "redis://:pw@127.0.0.1:6379/db",
            "redis://",
            "rediss://h:6380/#insecure",
            "redis://h:1/?pass=x",
        ] {
            let err = setup(bad, "sala").check().unwrap_err();
            assert!(err.starts_with("--cluster "), "{err}");
            assert!(!err.contains("pw@"), "{err}");
        }
        for bad in ["", "a b", "sala\u{1b}", &"x".repeat(65), "{sala}"] {
            assert!(setup("redis://h:1", bad).check().is_err(), "{bad:?}");
        }
    }
}
