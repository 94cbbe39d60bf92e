//! The room in Redis: its keys, one connection to them (opened within a bounded time, every
//! command bounded too), the script that stamps a round of messages, and the reads of the
//! stream. Each thread of the cluster owns one [`Store`]; nothing here keeps state of the room.
//!
//! Keys, all with the room's name in braces (one Redis Cluster slot for a room):
//! `soquete:{ROOM}:log` the stream of messages and notices, `soquete:{ROOM}:meta` a hash (`seq`,
//! the last message's number; `epoch`, set once), `soquete:{ROOM}:round:SERVER` the last round
//! a server stored (so a retried round is stored once), `soquete:{ROOM}:readers` where each
//! server's reader is (so that no burst outruns a live reader).

use std::time::Duration;

use redis::streams::{StreamId, StreamRangeReply, StreamReadOptions, StreamReadReply};
use redis::{Commands, Connection, IntoConnectionInfo, RedisError, Value};

use crate::error::{Error, Result};

use super::entry::{Line, Round};
use super::setup::ClusterSetup;

/// How long connecting to Redis may take (at start, and each reconnection).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one command may take before the connection is taken for lost.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the reader's `XREAD` waits for news before it asks again.
pub const READ_BLOCK: Duration = Duration::from_millis(1000);
/// Most entries one `XREAD` returns: one event for the hub, bounded.
pub const READ_COUNT: usize = 512;
/// The stream keeps at least this many entries (`MAXLEN ~`; each holds one message or more, up
/// to [`PACK`]), however small `--history` is: a server behind (each publisher waits for its
/// own reader beyond `publisher::WINDOW` messages) still finds what it has not read.
pub const MIN_STREAM_LEN: usize = 65_536;
/// Tests shorten [`MIN_STREAM_LEN`] with this variable (entries); the face reads it.
pub const STREAM_LEN_ENV: &str = "SOQUETE_CLUSTER_STREAM_LEN";

/// Says where a server's reader is (KEYS: the readers hash; ARGV: the server, the last `seq` it
/// read), with Redis's clock: "SEQ MS".
const MARK: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. now)
";

/// How recent a reader's mark must be for the publishers to wait for it: a reader marks at
/// each read, at least every [`READ_BLOCK`]; one that stopped (its server crashed or is stuck)
/// is not waited for.
pub const READER_FRESH: Duration = Duration::from_secs(3);

/// Most messages in one entry of the stream.
pub const PACK: usize = 256;

/// Guest numbers a server takes at start: its guests are `guest-N` for N in its own block.
pub const GUEST_BLOCK: u64 = 10_000;

/// Stamps a round: numbers its messages (`HINCRBY meta seq N`) and appends them and the round's
/// notices to the stream, in order, once per round of a server (a retried round is skipped).
/// Consecutive messages go in one entry (`seq` the first one's number, `n` how many, `msgs` a
/// JSON array of `[from, text, action, client]`): one `XADD` for up to [`PACK`] messages. KEYS:
/// meta, log, the server's round key. ARGV: server, round, maxlen, time, the highest `seq` this
/// server knows and the room's epoch (a Redis that lost the room, restarted without
/// persistence, takes them back: numbers are never given twice), then five per item (`msgs`,
/// the JSON array, its length, '', '', or a notice's kind, a, b, c, client). Returns the last
/// `seq` stamped (0 when none), -1 for a round stored already, -2 when a live server's reader
/// (KEYS[4]: each server's last `seq` read and when, by Redis's clock; live when that is less
/// than ARGV[8] ms ago) is more than ARGV[7] messages behind: nothing is stored, the publisher
/// tries again in a moment, so that no live server's reader loses what the stream trims.
const STAMP: &str = r"
local server, round = ARGV[1], tonumber(ARGV[2])
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if round <= last then return -1 end
local window, ttl = tonumber(ARGV[7]), tonumber(ARGV[8])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local current = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local readers = redis.call('HGETALL', KEYS[4])
for i = 2, #readers, 2 do
  local read, at = string.match(readers[i], '^(%d+) (%d+)$')
  if read and now - tonumber(at) < ttl and current - tonumber(read) > window then return -2 end
end
redis.call('SET', KEYS[3], ARGV[2], 'EX', 86400)
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[6])
if tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') < tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 'seq', ARGV[5])
end
local seq = 0
for i = 9, #ARGV, 5 do
  if ARGV[i] == 'msgs' then
    local n = tonumber(ARGV[i+2])
    seq = redis.call('HINCRBY', KEYS[1], 'seq', n)
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'seq', seq - n + 1, 'n', n,
      'time', ARGV[4], 'server', server, 'msgs', ARGV[i+1])
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', ARGV[i], 'time', ARGV[4],
      'server', server, 'client', ARGV[i+4], 'a', ARGV[i+1], 'b', ARGV[i+2], 'c', ARGV[i+3])
  end
end
return seq
";

/// The room's keys.
#[derive(Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(room: &str) -> Keys {
        Keys {
            prefix: format!("soquete:{{{room}}}:"),
        }
    }

    pub fn key(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }
}

/// One connection to the room in Redis.
pub struct Store {
    pub con: Connection,
    pub keys: Keys,
}

/// What the room in Redis holds when a server starts.
pub struct Loaded {
    /// The room's epoch (set by the first server, read by the others).
    pub epoch: String,
    /// The last `seq` stamped.
    pub seq: u64,
    /// The last entries, oldest first (at most the history's worth).
    pub entries: Vec<StreamId>,
    /// Where the reader starts: after the newest entry.
    pub last_id: String,
}

impl Store {
    /// Connects (within [`CONNECT_TIMEOUT`]) and checks that Redis answers; the message says
    /// which Redis (its URL masked) and why not.
    pub fn open(setup: &ClusterSetup) -> Result<Store> {
        let fail = |err: RedisError| {
            let context = format!("cannot reach Redis at {}", setup.shown());
            Error::io(context, std::io::Error::other(why(&err)))
        };
        let mut info =
            setup.url.expose().into_connection_info().map_err(|err| {
                Error::Usage(format!("--cluster {}: {}", setup.shown(), why(&err)))
            })?;
        if let Some(password) = &setup.password
            && info.redis_settings().password().is_none()
        {
            let redis = info
                .redis_settings()
                .clone()
                .set_password(password.expose());
            info = info.set_redis_settings(redis);
        }
        let client = redis::Client::open(info).map_err(fail)?;
        let mut con = client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(fail)?;
        con.set_read_timeout(Some(COMMAND_TIMEOUT)).map_err(fail)?;
        con.set_write_timeout(Some(COMMAND_TIMEOUT)).map_err(fail)?;
        redis::cmd("PING").query::<String>(&mut con).map_err(fail)?;
        Ok(Store {
            con,
            keys: Keys::new(&setup.room),
        })
    }

    /// Sets the room's epoch if no server has (`fresh`), and reads the room back: its epoch,
    /// its last `seq`, and its last `keep` entries (in one transaction, so the three agree).
    pub fn load(&mut self, fresh: &str, keep: usize) -> redis::RedisResult<Loaded> {
        let (meta, log) = (self.keys.key("meta"), self.keys.key("log"));
        let _: bool = self.con.hset_nx(&meta, "epoch", fresh)?;
        let (epoch, seq, range): (Option<String>, Option<u64>, StreamRangeReply) = redis::pipe()
            .atomic()
            .hget(&meta, "epoch")
            .hget(&meta, "seq")
            .xrevrange_count(&log, "+", "-", keep.max(1))
            .query(&mut self.con)?;
        let mut entries = range.ids;
        entries.reverse();
        let last_id = entries
            .last()
            .map_or_else(|| "0-0".into(), |e| e.id.clone());
        if keep == 0 {
            entries.clear();
        }
        Ok(Loaded {
            epoch: epoch.unwrap_or_else(|| fresh.into()),
            seq: seq.unwrap_or(0),
            entries,
            last_id,
        })
    }

    /// A block of [`GUEST_BLOCK`] guest numbers of this server's own: the first one.
    pub fn guest_block(&mut self) -> redis::RedisResult<u64> {
        let end: u64 = self.con.incr(self.keys.key("guests"), GUEST_BLOCK)?;
        Ok(end - GUEST_BLOCK)
    }

    /// Stores `round` (a server's round `number`, retried with the same number after a failure,
    /// stored once): its messages stamped, in order, in one call.
    pub fn stamp(
        &mut self,
        server: &str,
        number: u64,
        maxlen: usize,
        (known, epoch): (u64, &str),
        (window, ttl): (u64, u64),
        round: &Round,
    ) -> redis::RedisResult<i64> {
        let keys = [
            self.keys.key("meta"),
            self.keys.key("log"),
            self.keys.key(&format!("round:{server}")),
            self.keys.key("readers"),
        ];
        let mut eval = redis::cmd("EVAL");
        eval.arg(STAMP).arg(keys.len()).arg(&keys);
        eval.arg(server).arg(number).arg(maxlen);
        eval.arg(round.time.to_rfc3339()).arg(known).arg(epoch);
        eval.arg(window).arg(ttl);
        let mut msgs: Vec<Packed> = Vec::new();
        for line in &round.lines {
            if let Line::Msg {
                from,
                text,
                action,
                client,
                held,
            } = line
            {
                msgs.push(Packed(from, text, *action, *client, *held));
                if msgs.len() == PACK {
                    pack(&mut eval, &mut msgs);
                }
                continue;
            }
            pack(&mut eval, &mut msgs);
            let (kind, a, b, c, client) = line.fields();
            eval.arg(kind).arg(a).arg(b).arg(c).arg(client);
        }
        pack(&mut eval, &mut msgs);
        eval.query(&mut self.con)
    }

    /// The entries after `last_id`, waiting up to [`READ_BLOCK`] for one; empty when none came.
    /// Says where this server's reader is (`(server, seq)`, in the same round trip): the
    /// publishers wait for the slowest live reader.
    pub fn read_after(
        &mut self,
        last_id: &str,
        (server, seq): (&str, u64),
    ) -> redis::RedisResult<Vec<StreamId>> {
        let options = StreamReadOptions::default()
            .count(READ_COUNT)
            .block(READ_BLOCK.as_millis() as usize);
        let log = self.keys.key("log");
        let mut pipe = redis::pipe();
        let readers = self.keys.key("readers");
        pipe.cmd("EVAL")
            .arg(MARK)
            .arg(1)
            .arg(readers)
            .arg(server)
            .arg(seq)
            .ignore();
        pipe.xread_options(&[&log], &[last_id], &options);
        let (reply,): (Option<StreamReadReply>,) = pipe.query(&mut self.con)?;
        Ok(reply
            .map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect())
            .unwrap_or_default())
    }

    /// The reader's connection waits longer than its `XREAD` blocks.
    pub fn for_reading(self) -> redis::RedisResult<Store> {
        self.con
            .set_read_timeout(Some(READ_BLOCK + COMMAND_TIMEOUT))?;
        Ok(self)
    }
}

/// A Redis error in words a person reads: the OS's error for I/O, else Redis's own words.
pub fn why(err: &RedisError) -> String {
    let text = match err.detail() {
        _ if err.is_timeout() => {
            "no answer in time (is it Redis, and does it speak TLS if the URL is rediss://?)".into()
        }
        Some(detail) if err.is_io_error() => detail.to_string(),
        _ if err.kind() == redis::ErrorKind::Parse => {
            "it answered, but not as Redis does (is it Redis, and is it rediss:// for TLS?)".into()
        }
        _ => err.to_string(),
    };
    crate::net::sanitize::neutralize(&text).into_owned()
}

/// A text field of an entry (Redis returns bulk strings).
pub fn field(entry: &StreamId, name: &str) -> Option<String> {
    match entry.map.get(name)? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Consecutive messages as one item of the script (one entry of the stream), if any.
/// One message in an entry's `msgs` array: `[from, text, action, client, held]`.
#[derive(serde::Serialize)]
struct Packed<'a>(&'a str, &'a str, bool, u64, bool);

fn pack(eval: &mut redis::Cmd, msgs: &mut Vec<Packed>) {
    if msgs.is_empty() {
        return;
    }
    let json = serde_json::to_string(&*msgs).expect("strings always serialize");
    eval.arg("msgs").arg(json).arg(msgs.len()).arg("").arg("");
    msgs.clear();
}

/// A notice of a round for the script: what it puts in the stream.
impl Line {
    fn fields(&self) -> (&str, &str, &str, &str, u64) {
        match self {
            Line::Msg { .. } => unreachable!("messages are packed"),
            Line::Join {
                name,
                addr,
                kind,
                client,
            } => ("join", name, addr, kind, *client),
            Line::Leave {
                name,
                reason,
                client,
            } => ("leave", name, reason, "", *client),
            Line::Nick { old, new, client } => ("nick", old, new, "", *client),
        }
    }
}
