//! Replayable streams: the events of one message or execution, numbered 1, 2, 3... and kept
//! for a while after the last one, so a subscriber can ask for everything after `seq` N.
//!
//! In Redis each stream is a Redis Stream (entry ids `0-<seq>`, capped) and a hash holding
//! the last `seq` and, once it ended, the final one. One Lua script assigns the next `seq`,
//! appends, refreshes the expiry and publishes, so numbering, retention and delivery order
//! can never disagree, whichever instance produces. In memory the same happens under a lock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use uuid::Uuid;

use super::bus::Bus;
use super::events::Event;
use crate::error::{AppError, AppResult};

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKey {
    Message(Uuid),
    Execution(Uuid),
}

impl StreamKey {
    fn name(&self) -> String {
        match self {
            StreamKey::Message(id) => format!("message:{id}"),
            StreamKey::Execution(id) => format!("execution:{id}"),
        }
    }
}

/// What is retained of a stream after some `seq`.
#[derive(Debug, Default)]
pub struct Retained {
    /// Events after the asked `seq`, in order (at most one page).
    pub events: Vec<Arc<Event>>,
    /// The last `seq` assigned, when the stream is known (not expired, not unborn).
    pub last_seq: Option<i64>,
    /// The `seq` of its final event, once it ended.
    pub end_seq: Option<i64>,
}

/// What became of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Kept and published with this `seq`.
    Seq(i64),
    /// Not kept: the stream lost what it held (see `APPEND`); the producer sends an event
    /// that states everything so far.
    Vanished,
}

/// Which events may re-seed a stream found behind its producer's count (Redis lost it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reseed {
    /// One that states everything before it (a REPLACE, an END).
    Whole,
    /// None: the producer puts the stream back itself (`Appended::Vanished`, then
    /// `StreamStore::restore`).
    Never,
}

/// What a producer says with an append.
#[derive(Debug, Clone, Copy)]
pub struct AppendAs {
    /// The last `seq` it saw assigned, when it keeps count.
    pub known: Option<i64>,
    pub reseed: Reseed,
    /// The append's name, the same when it is tried again.
    pub attempt: Option<Uuid>,
}

impl AppendAs {
    /// A producer that keeps no count: the stream numbers what comes.
    pub const UNCOUNTED: AppendAs = AppendAs {
        known: None,
        reseed: Reseed::Whole,
        attempt: None,
    };
}

/// Events read from Redis per round trip while catching up.
pub const PAGE: usize = 500;

/// ARGV[6] is the last `seq` the producer saw assigned (-1: it does not say) and ARGV[7]
/// whether this event states everything before it (a REPLACE, an END): a stream whose
/// number is behind what its producer saw lost its data (Redis restarted without
/// persistence, a failover to an empty replica). It is then re-seeded at the producer's
/// number by an event that states everything, and refused (VANISHED) for any other, so
/// `seq` never goes backwards and never repeats.
///
/// ARGV[8] names this append (empty: unnamed): a producer trying again an append whose
/// answer it did not get sends the same name, and if that append was kept its `seq` comes
/// back instead of a second copy.
const APPEND: &str = r#"
if ARGV[8] ~= '' and redis.call('HGET', KEYS[2], 'attempt') == ARGV[8] then
  return tonumber(redis.call('HGET', KEYS[2], 'seq'))
end
local ended = redis.call('HGET', KEYS[2], 'end')
if ended then
  return redis.error_reply('ENDED the stream ended at ' .. ended)
end
local known = tonumber(ARGV[6])
if known > 0 then
  local current = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
  if current < known then
    if ARGV[7] ~= '1' then
      return redis.error_reply('VANISHED the stream is at ' .. current .. ', not ' .. known)
    end
    redis.call('HSET', KEYS[2], 'seq', known)
  end
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[2], 'attempt', ARGV[8])
end
local body = '{"seq":' .. seq .. ',' .. string.sub(ARGV[2], 2)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '0-' .. seq, 'e', body)
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[2], 'end', seq)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[1], body)
return seq
"#;

/// Puts back events of a stream that lost its data: ARGV[1] the cap, ARGV[2] the expiry,
/// then pairs of `seq` and body, in order. Only events past what the stream holds are
/// added; returns the stream's last `seq`.
const RESTORE: &str = r#"
local current = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local last = current
for i = 3, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '0-' .. seq, 'e', ARGV[i + 1])
    last = seq
  end
end
if last > current then
  redis.call('HSET', KEYS[2], 'seq', last)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return last
"#;

/// Where streams are kept.
pub enum StreamStore {
    Redis {
        commands: ConnectionManager,
        append: redis::Script,
        restore: redis::Script,
    },
    Memory(Mutex<MemoryStreams>),
}

#[derive(Default)]
pub struct MemoryStreams {
    streams: HashMap<StreamKey, MemoryStream>,
    /// When expired streams were last removed: a sweep walks every stream, so it runs at
    /// most once a second rather than on every event.
    swept: Option<Instant>,
}

pub struct MemoryStream {
    last_seq: i64,
    end_seq: Option<i64>,
    events: VecDeque<Arc<Event>>,
    expires: Instant,
}

/// Names of keys and channels under the deployment's prefix.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn channel(&self, key: StreamKey) -> String {
        format!("{}ch:{}", self.prefix, key.name())
    }
    fn events(&self, key: StreamKey) -> String {
        format!("{}stream:{}", self.prefix, key.name())
    }
    fn meta(&self, key: StreamKey) -> String {
        format!("{}stream:{}:meta", self.prefix, key.name())
    }
    pub fn workspace_executions(&self, workspace_id: Uuid) -> String {
        format!("{}ch:workspace-executions:{workspace_id}", self.prefix)
    }
    pub fn conversation(&self, conversation_id: Uuid) -> String {
        format!("{}ch:conversation:{conversation_id}", self.prefix)
    }
    pub fn document(&self, document_id: Uuid) -> String {
        format!("{}ch:document:{document_id}", self.prefix)
    }
    /// Signals between instances (stops, queued runs).
    pub fn control(&self) -> String {
        format!("{}ch:control", self.prefix)
    }
    /// Ended rights (revoked keys, ended sessions, changed memberships), for the live
    /// connections and subscriptions that opened with them.
    pub fn rights(&self) -> String {
        format!("{}ch:rights", self.prefix)
    }
}

/// Retention settings.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub ttl: Duration,
    pub max_events: usize,
}

impl StreamStore {
    pub fn redis(commands: ConnectionManager) -> StreamStore {
        StreamStore::Redis {
            commands,
            append: redis::Script::new(APPEND),
            restore: redis::Script::new(RESTORE),
        }
    }

    pub fn memory() -> StreamStore {
        StreamStore::Memory(Mutex::new(MemoryStreams::default()))
    }

    /// Numbers `event`, keeps it and publishes it. A stream that ended takes nothing more
    /// (CONFLICT). `attempt` names the append, so that trying it again after an unanswered
    /// try cannot keep it twice (see `APPEND`). `known` is the last `seq` its producer saw
    /// assigned, when it keeps count:
    /// a stream behind it lost its data (`Appended::Vanished`, unless `event` states
    /// everything or `reseed` says otherwise).
    pub async fn append(
        &self,
        names: &Names,
        retention: Retention,
        bus: &Bus,
        key: StreamKey,
        event: Event,
        how: AppendAs,
    ) -> AppResult<Appended> {
        let AppendAs {
            known,
            reseed,
            attempt,
        } = how;
        let whole = match reseed {
            Reseed::Whole => event.states_everything(),
            Reseed::Never => false,
        };
        match self {
            StreamStore::Redis {
                commands, append, ..
            } => {
                let body = serde_json::to_string(&event)
                    .map_err(|e| AppError::internal(format!("cannot encode an event: {e}")))?;
                let mut conn = commands.clone();
                let seq: redis::RedisResult<i64> = append
                    .key(names.events(key))
                    .key(names.meta(key))
                    .arg(names.channel(key))
                    .arg(body)
                    .arg(retention.max_events)
                    .arg(retention.ttl.as_secs().max(1))
                    .arg(if event.is_terminal() { "1" } else { "0" })
                    .arg(known.unwrap_or(-1))
                    .arg(if whole { "1" } else { "0" })
                    .arg(attempt.map(|a| a.simple().to_string()).unwrap_or_default())
                    .invoke_async(&mut conn)
                    .await;
                match seq {
                    Ok(seq) => Ok(Appended::Seq(seq)),
                    Err(e) if e.to_string().contains("VANISHED") => Ok(Appended::Vanished),
                    Err(e) if e.to_string().contains("ENDED") => {
                        Err(AppError::Conflict(format!("{} has ended", key.name())))
                    }
                    Err(e) => Err(AppError::internal(format!(
                        "cannot append to a stream: {e}"
                    ))),
                }
            }
            StreamStore::Memory(streams) => {
                let mut memory = streams.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if memory
                    .swept
                    .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
                {
                    memory.streams.retain(|_, s| s.expires > now);
                    memory.swept = Some(now);
                }
                let stream = memory.streams.entry(key).or_insert_with(|| MemoryStream {
                    last_seq: 0,
                    end_seq: None,
                    events: VecDeque::new(),
                    expires: now,
                });
                if stream.expires <= now {
                    // Expired but not swept yet: a new stream of the same key.
                    *stream = MemoryStream {
                        last_seq: 0,
                        end_seq: None,
                        events: VecDeque::new(),
                        expires: now,
                    };
                }
                if stream.end_seq.is_some() {
                    return Err(AppError::Conflict(format!("{} has ended", key.name())));
                }
                if let Some(known) = known.filter(|known| *known > stream.last_seq) {
                    if !whole {
                        return Ok(Appended::Vanished);
                    }
                    stream.last_seq = known;
                }
                let seq = stream.last_seq + 1;
                let mut event = event;
                match &mut event {
                    Event::Message(e) => e.seq = seq,
                    Event::Execution(e) => e.seq = seq,
                    _ => {
                        return Err(AppError::internal(
                            "only message and execution events have streams",
                        ));
                    }
                }
                let terminal = event.is_terminal();
                let event = Arc::new(event);
                stream.last_seq = seq;
                if terminal {
                    stream.end_seq = Some(seq);
                }
                stream.events.push_back(event.clone());
                while stream.events.len() > retention.max_events {
                    stream.events.pop_front();
                }
                stream.expires = now + retention.ttl;
                // Delivered under the lock: subscribers see events in `seq` order.
                bus.deliver(&names.channel(key), event);
                Ok(Appended::Seq(seq))
            }
        }
    }

    /// Puts back the events of a stream that lost its data, as they were numbered (`events`
    /// in `seq` order, each with its `seq`), so that subscribers reading it from the start
    /// get its whole history; what the stream still holds is left as it is. Nothing is
    /// published: live subscribers past these events have them, the others read them when
    /// the next event shows them a gap.
    pub async fn restore(
        &self,
        names: &Names,
        retention: Retention,
        key: StreamKey,
        events: &[Arc<Event>],
    ) -> AppResult<()> {
        match self {
            StreamStore::Redis {
                commands, restore, ..
            } => {
                let mut script = restore.prepare_invoke();
                script
                    .key(names.events(key))
                    .key(names.meta(key))
                    .arg(retention.max_events)
                    .arg(retention.ttl.as_secs().max(1));
                for event in events {
                    let body = serde_json::to_string(event.as_ref())
                        .map_err(|e| AppError::internal(format!("cannot encode an event: {e}")))?;
                    script.arg(event.seq()).arg(body);
                }
                let mut conn = commands.clone();
                script
                    .invoke_async::<i64>(&mut conn)
                    .await
                    .map_err(|e| AppError::internal(format!("cannot restore a stream: {e}")))?;
                Ok(())
            }
            StreamStore::Memory(streams) => {
                let mut memory = streams.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let stream = memory.streams.entry(key).or_insert_with(|| MemoryStream {
                    last_seq: 0,
                    end_seq: None,
                    events: VecDeque::new(),
                    expires: now,
                });
                for event in events {
                    if event.seq() > stream.last_seq {
                        stream.last_seq = event.seq();
                        stream.events.push_back(event.clone());
                    }
                }
                while stream.events.len() > retention.max_events {
                    stream.events.pop_front();
                }
                stream.expires = now + retention.ttl;
                Ok(())
            }
        }
    }

    /// The retained events after `after` (one page), with the stream's last and final seq.
    pub async fn read_after(
        &self,
        names: &Names,
        key: StreamKey,
        after: i64,
    ) -> AppResult<Retained> {
        match self {
            StreamStore::Redis { commands, .. } => {
                let mut conn = commands.clone();
                let start = format!("0-{}", after.max(0) + 1);
                let (meta, range): (Vec<Option<i64>>, redis::streams::StreamRangeReply) =
                    redis::pipe()
                        .atomic()
                        .cmd("HMGET")
                        .arg(names.meta(key))
                        .arg("seq")
                        .arg("end")
                        .cmd("XRANGE")
                        .arg(names.events(key))
                        .arg(start)
                        .arg("+")
                        .arg("COUNT")
                        .arg(PAGE)
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| AppError::internal(format!("cannot read a stream: {e}")))?;
                let mut events = Vec::with_capacity(range.ids.len());
                for entry in range.ids {
                    let Some(body) = entry.map.get("e") else {
                        continue;
                    };
                    let body: Vec<u8> = redis::from_redis_value_ref(body)
                        .map_err(|e| AppError::internal(format!("unreadable stream entry: {e}")))?;
                    let event: Event = serde_json::from_slice(&body)
                        .map_err(|e| AppError::internal(format!("unreadable stream entry: {e}")))?;
                    events.push(Arc::new(event));
                }
                Ok(Retained {
                    events,
                    last_seq: meta.first().copied().flatten(),
                    end_seq: meta.get(1).copied().flatten(),
                })
            }
            StreamStore::Memory(streams) => {
                let memory = streams.lock().unwrap_or_else(|e| e.into_inner());
                let Some(stream) = memory
                    .streams
                    .get(&key)
                    .filter(|s| s.expires > Instant::now())
                else {
                    return Ok(Retained::default());
                };
                Ok(Retained {
                    events: stream
                        .events
                        .iter()
                        .filter(|e| e.seq() > after)
                        .take(PAGE)
                        .cloned()
                        .collect(),
                    last_seq: Some(stream.last_seq),
                    end_seq: stream.end_seq,
                })
            }
        }
    }
}
