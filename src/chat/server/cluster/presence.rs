//! Names, sessions and members across the servers of a room: one thread per server, with its
//! own connection, that does the hub's Redis work for them in batches (one pipeline for all
//! the requests waiting), and beats: every [`Timing::beat`] it refreshes what this server holds
//! and reads the other servers' members for `/who`.
//!
//! Keys (beside `store`'s): `name:KEY` (a name's [`name_key`], held by "SERVER DIGEST", DIGEST
//! the SHA-256 of the holder's session token, or `-` for a raw member), `session:DIGEST` (the
//! session's name key: a token from any server of the room resumes it), `members:SERVER` (a
//! hash, name → "ADDR KIND", for `/who`), `servers` (a hash, server → when it last beat, in ms).
//! Everything a server holds expires unless it beats: a crashed server's members and raw names
//! go after [`Timing::ttl`], its sessions' names after the name reservation (docs/CLUSTER.md).
//!
//! [`name_key`]: crate::chat::protocol::name_key

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redis::Value;

use crate::chat::protocol::Member;
use crate::chat::server::event::Event;

use super::entry::{News, Op, Verdict, clean};
use super::setup::ClusterSetup;
use super::store::Store;

/// How long what a server holds lives without its beat: its members and raw names, after a crash.
pub const TTL: Duration = Duration::from_secs(30);
/// Tests shorten [`TTL`] (and so the beat, a third of it) with this variable (milliseconds).
pub const TTL_ENV: &str = "SOQUETE_CLUSTER_TTL_MS";
/// Most requests done in one pipeline.
const BATCH: usize = 1024;

/// For each name asked about (KEYS, two each: the name, the session of the asker's token or a
/// dummy; ARGV: this server, then five each: the value if it resumes, the value if it claims,
/// the TTL, the name key, the new session's key or ''): 1 when the token's session holds the
/// name (it moves here), 2 when it was free (claimed, with a new session), 3 when this server
/// holds it (its hub decides), 0 when another server does. One call for a whole batch: a
/// reconnect storm is one command per batch, not one per client.
const ADMIT: &str = r"
local server, out = ARGV[1], {}
for i = 1, #KEYS / 2 do
  local name, session, a = KEYS[2 * i - 1], KEYS[2 * i], 1 + (i - 1) * 5
  local resume, claim, ttl, key, fresh = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  local holder = redis.call('GET', name)
  if redis.call('GET', session) == key then
    redis.call('SET', name, resume, 'PX', ttl)
    redis.call('PEXPIRE', session, ttl)
    out[i] = 1
  elseif not holder then
    redis.call('SET', name, claim, 'PX', ttl)
    if fresh ~= '' then redis.call('SET', fresh, key, 'PX', ttl) end
    out[i] = 2
  elseif string.sub(holder, 1, #server + 1) == server .. ' ' then
    out[i] = 3
  else
    out[i] = 0
  end
end
return out
";

/// Deletes a name if this server still holds it (KEYS: the name; ARGV: the value it holds).
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// How long things live.
#[derive(Clone, Copy)]
pub struct Timing {
    /// A member's and a raw name's life without a beat.
    pub ttl: Duration,
    /// A session's (and its name's) life without a beat: the name reservation, at least `ttl`.
    pub session: Duration,
}

impl Timing {
    fn beat(&self) -> Duration {
        self.ttl / 3
    }
}

/// What this server holds in Redis, refreshed at each beat.
#[derive(Default)]
struct Held {
    /// Name key → the value it is held with, and whether it is a session's (longer life).
    names: HashMap<String, (String, bool)>,
    /// Live sessions: digest → name key.
    sessions: HashMap<String, String>,
    /// Members for `/who`: name → "ADDR KIND".
    members: HashMap<String, String>,
}

/// Does the hub's requests (batched) and beats, until the hub is gone.
pub fn serve(
    setup: &ClusterSetup,
    server: &str,
    timing: Timing,
    (store, (console, about)): (Store, (String, String)),
    ops: &Receiver<Op>,
    events: &Sender<Event>,
) {
    let mut store = Some(store);
    let mut held = Held::default();
    held.members.insert(console, about);
    let mut next_beat = Instant::now() + timing.beat();
    loop {
        let wait = next_beat.saturating_duration_since(Instant::now());
        let mut batch = Vec::new();
        match ops.recv_timeout(wait) {
            Ok(op) => batch.push(op),
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        while batch.len() < BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if store.is_none() {
            store = Store::open(setup).ok();
        }
        let verdicts = match store.as_mut().filter(|_| !batch.is_empty()) {
            Some(open) => match run(open, server, timing, &batch, &mut held) {
                Ok(verdicts) => verdicts,
                // The connection may be one Redis dropped when it restarted: the batch goes once
                // more on a new one (each request is idempotent) before the hub decides alone.
                Err(_) => match Store::open(setup).ok().map(|mut open| {
                    let done = run(&mut open, server, timing, &batch, &mut held);
                    (open, done)
                }) {
                    Some((open, Ok(verdicts))) => {
                        store = Some(open);
                        verdicts
                    }
                    _ => {
                        store = None;
                        unknown(&batch)
                    }
                },
            },
            None => unknown(&batch),
        };
        if !verdicts.is_empty()
            && events
                .send(Event::Cluster(News::Verdicts(verdicts)))
                .is_err()
        {
            return;
        }
        if Instant::now() >= next_beat {
            next_beat = Instant::now() + timing.beat();
            let remote = store
                .as_mut()
                .and_then(|open| beat(open, server, timing, &held).ok());
            match remote {
                Some(members) => {
                    if events.send(Event::Cluster(News::Remote(members))).is_err() {
                        return;
                    }
                }
                None => store = None,
            }
        }
    }
}

/// Requests answered without Redis: the hub decides alone.
fn unknown(batch: &[Op]) -> Vec<(u64, Verdict)> {
    batch
        .iter()
        .filter_map(|op| match op {
            Op::Admit { id, .. } | Op::Claim { id: Some(id), .. } => Some((*id, Verdict::Unknown)),
            _ => None,
        })
        .collect()
}

/// One name asked about in a batch: the client, the name key, the digest of the token it
/// resumes with, the new session's digest ('' for a `/nick`).
type Asked = (u64, String, Option<String>, String);

/// One pipeline for the batch (one `ADMIT` call for every name asked about, one `HSET` for the
/// members who came); the verdicts the hub waits for.
fn run(
    store: &mut Store,
    server: &str,
    timing: Timing,
    batch: &[Op],
    held: &mut Held,
) -> redis::RedisResult<Vec<(u64, Verdict)>> {
    let keys = store.keys.clone();
    let (ttl, session_ttl) = (
        timing.ttl.as_millis() as u64,
        timing.session.as_millis() as u64,
    );
    let mut pipe = redis::pipe();
    let mut admit = redis::cmd("EVAL");
    let (mut names, mut args): (Vec<String>, Vec<String>) = (Vec::new(), vec![server.into()]);
    let mut asked: Vec<Asked> = Vec::new();
    let (mut came, mut went) = (Vec::new(), Vec::new());
    for op in batch {
        match op {
            Op::Admit {
                id,
                key,
                token,
                fresh,
            } => {
                let resume = token.as_deref().unwrap_or("-");
                names.push(keys.key(&format!("name:{key}")));
                names.push(keys.key(&format!("session:{resume}")));
                args.extend([
                    format!("{server} {resume}"),
                    format!("{server} {fresh}"),
                    session_ttl.to_string(),
                    key.clone(),
                    keys.key(&format!("session:{fresh}")),
                ]);
                asked.push((*id, key.clone(), token.clone(), fresh.clone()));
            }
            Op::Claim { id: Some(id), key } => {
                names.push(keys.key(&format!("name:{key}")));
                names.push(keys.key("session:-"));
                let claim = format!("{server} -");
                args.extend([
                    String::new(),
                    claim,
                    ttl.to_string(),
                    key.clone(),
                    String::new(),
                ]);
                asked.push((*id, key.clone(), None, String::new()));
            }
            Op::Claim { id: None, key } => {
                // A guest's name, or one this server holds already: never taken from another.
                let value = format!("{server} -");
                let name = keys.key(&format!("name:{key}"));
                pipe.cmd("SET")
                    .arg(&name)
                    .arg(&value)
                    .arg("PX")
                    .arg(ttl)
                    .arg("NX")
                    .ignore();
                held.names.insert(key.clone(), (value, false));
            }
            Op::Release { key, digest } => {
                let value = match (held.names.remove(key), digest) {
                    (Some((value, _)), _) => value,
                    (None, Some(digest)) => format!("{server} {digest}"),
                    (None, None) => continue,
                };
                let name = keys.key(&format!("name:{key}"));
                pipe.cmd("EVAL")
                    .arg(RELEASE)
                    .arg(1)
                    .arg(name)
                    .arg(value)
                    .ignore();
            }
            Op::Session { digest, key } => {
                held.sessions.insert(digest.clone(), key.clone());
                let value = format!("{server} {digest}");
                let session = keys.key(&format!("session:{digest}"));
                let name = keys.key(&format!("name:{key}"));
                set_px(&mut pipe, &session, key, session_ttl);
                set_px(&mut pipe, &name, &value, session_ttl);
                held.names.insert(key.clone(), (value, true));
            }
            Op::Dropped { key, digest } => {
                // Its name and session live on for the reservation, not refreshed.
                held.names.remove(key);
                held.sessions.remove(digest);
            }
            Op::EndSession { digest } => {
                held.sessions.remove(digest);
                pipe.cmd("DEL")
                    .arg(keys.key(&format!("session:{digest}")))
                    .ignore();
            }
            Op::Member { name, about } => {
                held.members.insert(name.clone(), about.clone());
                went.retain(|gone| gone != name);
                came.push((name.clone(), about.clone()));
            }
            Op::Gone { name } => {
                held.members.remove(name);
                came.retain(|(member, _)| member != name);
                went.push(name.clone());
            }
        }
    }
    let members = keys.key(&format!("members:{server}"));
    if !went.is_empty() {
        pipe.cmd("HDEL").arg(&members).arg(&went).ignore();
    }
    if !came.is_empty() {
        pipe.cmd("HSET").arg(&members).arg(&came).ignore();
        pipe.cmd("PEXPIRE").arg(&members).arg(ttl).ignore();
    }
    if !asked.is_empty() {
        admit.arg(ADMIT).arg(names.len()).arg(&names).arg(&args);
        pipe.add_command(admit);
    }
    if pipe.is_empty() {
        return Ok(Vec::new());
    }
    let replies: Vec<Value> = pipe.query(&mut store.con)?;
    let codes: Vec<i64> = match replies.into_iter().next() {
        Some(reply) if !asked.is_empty() => redis::from_redis_value(reply)?,
        _ => Vec::new(),
    };
    let mut verdicts = Vec::new();
    for ((id, key, token, fresh), code) in asked.into_iter().zip(codes) {
        let verdict = match code {
            1 => Verdict::Resumed,
            2 => Verdict::Claimed,
            3 => Verdict::Ours,
            _ => Verdict::Taken,
        };
        let digest = match verdict {
            Verdict::Resumed => token,
            Verdict::Claimed if !fresh.is_empty() => Some(fresh),
            _ => None,
        };
        if matches!(verdict, Verdict::Resumed | Verdict::Claimed) {
            let value = format!("{server} {}", digest.as_deref().unwrap_or("-"));
            held.names.insert(key.clone(), (value, digest.is_some()));
        }
        if let Some(digest) = digest {
            held.sessions.insert(digest, key);
        }
        verdicts.push((id, verdict));
    }
    Ok(verdicts)
}

/// At start: the console is a member; the other servers' members, as they are now.
pub fn register(
    store: &mut Store,
    server: &str,
    timing: Timing,
    (console, about): (&str, &str),
) -> redis::RedisResult<Vec<Member>> {
    let mut held = Held::default();
    held.members.insert(console.into(), about.into());
    beat(store, server, timing, &held)
}

/// `SET KEY VALUE PX MS` in `pipe`, its reply ignored.
fn set_px(pipe: &mut redis::Pipeline, key: &str, value: &str, ms: u64) {
    pipe.cmd("SET")
        .arg(key)
        .arg(value)
        .arg("PX")
        .arg(ms)
        .ignore();
}

/// Refreshes what this server holds, says it is alive, and reads the members of the servers
/// that are.
fn beat(
    store: &mut Store,
    server: &str,
    timing: Timing,
    held: &Held,
) -> redis::RedisResult<Vec<Member>> {
    let keys = store.keys.clone();
    let (ttl, session_ttl) = (
        timing.ttl.as_millis() as u64,
        timing.session.as_millis() as u64,
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut pipe = redis::pipe();
    // SET NX then PEXPIRE: a Redis that lost them (restarted without persistence) has them
    // again; one that has them keeps their holder.
    for (key, (value, session)) in &held.names {
        let life = if *session { session_ttl } else { ttl };
        let name = keys.key(&format!("name:{key}"));
        pipe.cmd("SET")
            .arg(&name)
            .arg(value)
            .arg("PX")
            .arg(life)
            .arg("NX")
            .ignore();
        pipe.cmd("PEXPIRE").arg(name).arg(life).ignore();
    }
    for (digest, key) in &held.sessions {
        let session = keys.key(&format!("session:{digest}"));
        set_px(&mut pipe, &session, key, session_ttl);
    }
    let members = keys.key(&format!("members:{server}"));
    pipe.cmd("DEL").arg(&members).ignore();
    if !held.members.is_empty() {
        pipe.cmd("HSET").arg(&members).arg(&held.members).ignore();
        pipe.cmd("PEXPIRE").arg(&members).arg(ttl).ignore();
    }
    let servers = keys.key("servers");
    pipe.cmd("HSET").arg(&servers).arg(server).arg(now).ignore();
    pipe.cmd("HGETALL").arg(&servers);
    let (beats,): (HashMap<String, u64>,) = pipe.query(&mut store.con)?;
    let live: Vec<&String> = beats
        .iter()
        .filter(|(other, at)| *other != server && now.saturating_sub(**at) < ttl)
        .map(|(other, _)| other)
        .collect();
    let dead: Vec<&String> = beats
        .iter()
        .filter(|(_, at)| now.saturating_sub(**at) >= ttl * 10)
        .map(|(other, _)| other)
        .collect();
    if live.is_empty() && dead.is_empty() {
        return Ok(Vec::new());
    }
    let mut read = redis::pipe();
    for other in &live {
        read.cmd("HGETALL")
            .arg(keys.key(&format!("members:{other}")));
    }
    if !dead.is_empty() {
        read.cmd("HDEL").arg(&servers).arg(&dead).ignore();
        read.cmd("HDEL")
            .arg(keys.key("readers"))
            .arg(&dead)
            .ignore();
    }
    let lists: Vec<HashMap<String, String>> = read.query(&mut store.con)?;
    let mut remote: Vec<Member> = lists
        .into_iter()
        .flatten()
        .map(|(name, about)| {
            // Cleaned for a terminal, as every entry is: a server of the room wrote it, but it
            // crossed the network.
            let (addr, kind) = about.split_once(' ').unwrap_or((&about, "-"));
            Member {
                name: clean(&name),
                addr: clean(addr),
                kind: clean(kind),
            }
        })
        .collect();
    remote.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(remote)
}
