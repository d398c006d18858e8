//! What the nodes of a cluster share in Redis, and nothing else: which nodes are alive and how
//! to reach them, which node owns each session and its last snapshot, which session a
//! participant's private rpc id belongs to, and the cluster-wide round-robin state. Keys (all
//! under `{cluster_name}:`, `rtcpool:` by default):
//!
//! | key | type | value | lifetime |
//! |---|---|---|---|
//! | `node:{id}` | hash | `url`, `started`, `heartbeat`, `sessions`, `participants` | TTL `cluster_node_ttl_ms`, refreshed every fifth of it |
//! | `nodes` | set | node ids | members pruned when their hash expired |
//! | `session:{id}` | string | owner node id | deleted when the session closes; taken over when its owner is dead |
//! | `snap:{id}` | string | the session as JSON (`Snapshot`): connections, tokens, publishers, subscriptions, engine object ids | written by the owner after each change; deleted with the session |
//! | `node:{id}:sessions` | set | the sessions a node owns | emptied by the nodes adopting them when it dies |
//! | `rpc:{rpc}` | string | session id | deleted when the participant leaves; TTL one day at most |
//! | `swrr` | hash | engine id → current weight | small: one field per engine ever used |
//! | `health:{engine}:reader` | string | the node whose turn it is to read the engine's health | TTL 3 health intervals, renewed by that node |
//! | `health:{engine}` | string | its last reading (JSON) | TTL 3 health intervals |
//! | `pool` | hash | engine id → what operators changed at runtime (JSON `PoolRecord`, URI with its secret) | one field per engine ever added, patched or removed through the API |
//!
//! Every command has a 1 s limit: a Redis that is away makes the calls that need it fail with
//! [`Error::Unavailable`] instead of hanging.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::sentinel::{self, Primary};
use crate::error::Error;
use std::collections::HashMap;
use std::time::Duration;

const RPC_TTL_SECS: u64 = 24 * 3600;

/// A node as the cluster sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    pub id: String,
    pub url: String,
    pub started: u64,
    pub heartbeat: u64,
    pub sessions: u64,
    pub participants: u64,
}

/// This node's figures for its heartbeat.
#[derive(Debug, Clone, Copy)]
pub struct Beat {
    pub now_ms: u64,
    pub started: u64,
    pub sessions: u64,
    pub participants: u64,
}

pub struct Store {
    /// `None` until Sentinel named the primary.
    conn: parking_lot::RwLock<Option<ConnectionManager>>,
    /// With `redis+sentinel://`: the sentinels, asked for the primary at start and after a failed call.
    primary: Option<Primary>,
    /// The cluster's name and a colon: several clusters can share one Redis.
    prefix: String,
    node_ttl: Duration,
    claim: Script,
    owner: Script,
    release: Script,
    bury: Script,
    turn: Script,
    swrr: Script,
}

/// A connection that reconnects by itself, every command limited to a second.
fn manager(client: redis::Client) -> Result<ConnectionManager, Error> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    Ok(ConnectionManager::new_lazy_with_config(client, config)?)
}

impl Store {
    /// Connects lazily: the node starts even when Redis is not up yet, and every call reconnects
    /// when it went away. A `redis+sentinel://` URL is resolved by the first
    /// [`Store::follow_primary`] (the heartbeat's).
    pub fn open(url: &str, name: &str, node_ttl: Duration) -> Result<Self, Error> {
        let (conn, primary) = match sentinel::parse(url) {
            Some(target) => {
                let target = target.map_err(Error::Unavailable)?;
                (None, Some(Primary::new(&target)?))
            }
            None => (Some(manager(redis::Client::open(url)?)?), None),
        };
        Ok(Self {
            conn: parking_lot::RwLock::new(conn),
            primary,
            prefix: format!("{name}:"),
            node_ttl,
            // A session id is ours if nobody has it or its owner is dead; the owners' lists of
            // sessions follow. KEYS: session, ARGV: node, node key prefix, session id.
            claim: Script::new(
                r"local o = redis.call('GET', KEYS[1])
                  if o and o ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. o) == 1 then return 0 end
                  if o and o ~= ARGV[1] then redis.call('SREM', ARGV[2] .. o .. ':sessions', ARGV[3]) end
                  redis.call('SET', KEYS[1], ARGV[1])
                  redis.call('SADD', ARGV[2] .. ARGV[1] .. ':sessions', ARGV[3])
                  return 1",
            ),
            // The owner's id and its URL ('' when it is dead).
            owner: Script::new(
                r"local o = redis.call('GET', KEYS[1])
                  if not o then return false end
                  local url = redis.call('HGET', ARGV[1] .. o, 'url')
                  return {o, url or ''}",
            ),
            // KEYS: session, snapshot; ARGV: node, node key prefix, session id.
            release: Script::new(
                r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
                  redis.call('DEL', KEYS[1], KEYS[2])
                  redis.call('SREM', ARGV[2] .. ARGV[1] .. ':sessions', ARGV[3])
                  return 1",
            ),
            // A node that stopped answering and missed its heartbeats is dead now, before its
            // TTL runs out. KEYS: node; ARGV: now ms, oldest heartbeat still alive.
            bury: Script::new(
                r"local hb = tonumber(redis.call('HGET', KEYS[1], 'heartbeat') or '0')
                  if hb < tonumber(ARGV[1]) - tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) return 1 end
                  return 0",
            ),
            // Whose turn it is to read an engine's health: the caller's if nobody's or already
            // its own (renewed); otherwise the last reading. KEYS: reader, reading; ARGV: node,
            // lease ms.
            turn: Script::new(
                r"local r = redis.call('GET', KEYS[1])
                  if not r or r == ARGV[1] then
                    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
                    return {1, ''}
                  end
                  return {0, redis.call('GET', KEYS[2]) or ''}",
            ),
            // nginx's smooth weighted round robin, one step, over the engines the caller admits.
            swrr: Script::new(
                r"local total, best, best_current = 0, false, nil
                  for i = 1, #ARGV, 2 do
                    local w = tonumber(ARGV[i + 1])
                    local c = redis.call('HINCRBY', KEYS[1], ARGV[i], w)
                    total = total + w
                    if best_current == nil or c > best_current then best, best_current = ARGV[i], c end
                  end
                  if best then redis.call('HINCRBY', KEYS[1], best, -total) end
                  return best",
            ),
        })
    }

    /// `{cluster name}:{parts joined by ':'}`.
    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        k.push_str(&parts.join(":"));
        k
    }

    fn conn(&self) -> Result<ConnectionManager, Error> {
        self.conn.read().clone().ok_or_else(|| {
            Error::Unavailable("Sentinel has not named the Redis primary yet".into())
        })
    }

    /// Behind Sentinel: asks the sentinels which server is the primary, and talks to that one
    /// from now on if it changed (a failover). Nothing to do for a plain Redis URL.
    pub async fn follow_primary(&self) -> Result<(), Error> {
        let Some(p) = &self.primary else {
            return Ok(());
        };
        if let Some(client) = p
            .changed(Duration::from_secs(1))
            .await
            .map_err(Error::Unavailable)?
        {
            *self.conn.write() = Some(manager(client)?);
        }
        Ok(())
    }

    /// Registers (or refreshes) this node; it is dead to the others once the TTL passes. True
    /// when the node was not registered (its first beat, or Redis lost it: restarted, or the
    /// node was silent too long), so what it owns must be written again.
    pub async fn heartbeat(&self, id: &str, url: &str, b: Beat) -> Result<bool, Error> {
        let node = self.key(&["node", id]);
        let ttl = u64::try_from(self.node_ttl.as_millis()).unwrap_or(u64::MAX);
        let (existed,): (bool,) = redis::pipe()
            .atomic()
            .exists(&node)
            .hset_multiple(
                &node,
                &[
                    ("url", url.to_string()),
                    ("started", b.started.to_string()),
                    ("heartbeat", b.now_ms.to_string()),
                    ("sessions", b.sessions.to_string()),
                    ("participants", b.participants.to_string()),
                ],
            )
            .ignore()
            .pexpire(&node, i64::try_from(ttl).unwrap_or(i64::MAX))
            .ignore()
            .sadd(self.key(&["nodes"]), id)
            .ignore()
            .query_async(&mut self.conn()?)
            .await?;
        Ok(!existed)
    }

    /// Writes again what this node owns after Redis lost it: its sessions (unless another live
    /// node took one meanwhile) and its participants' rpc ids.
    pub async fn resync<'a>(
        &self,
        node: &str,
        sessions: impl Iterator<Item = &'a str>,
        rpcs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), Error> {
        for s in sessions {
            if !self.claim_session(s, node).await? {
                tracing::warn!(session = %s, "another node owns a session of this node's since the store came back");
            }
        }
        let mut pipe = redis::pipe();
        let mut any = false;
        for (rpc, session) in rpcs {
            pipe.set_ex(self.key(&["rpc", rpc]), session, RPC_TTL_SECS)
                .ignore();
            any = true;
        }
        // Redis refuses an empty pipeline ("empty command"): a node without participants.
        if any {
            pipe.query_async::<()>(&mut self.conn()?).await?;
        }
        Ok(())
    }

    /// Leaves the cluster at once (a clean stop).
    pub async fn leave(&self, id: &str) -> Result<(), Error> {
        redis::pipe()
            .del(self.key(&["node", id]))
            .ignore()
            .srem(self.key(&["nodes"]), id)
            .ignore()
            .query_async::<()>(&mut self.conn()?)
            .await?;
        Ok(())
    }

    /// Dead at once, its sessions left listed for the others to adopt.
    pub async fn retire(&self, id: &str) -> Result<(), Error> {
        let _: () = self.conn()?.del(self.key(&["node", id])).await?;
        Ok(())
    }

    /// The live nodes, and the ids of dead ones still listed (their sessions wait for adoption).
    pub async fn nodes(&self) -> Result<(Vec<NodeInfo>, Vec<String>), Error> {
        let mut c = self.conn()?;
        let ids: Vec<String> = c.smembers(self.key(&["nodes"])).await?;
        if ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hgetall(self.key(&["node", id]));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut c).await?;
        let (mut live, mut dead) = (Vec::new(), Vec::new());
        for (id, h) in ids.into_iter().zip(hashes) {
            if h.is_empty() {
                dead.push(id);
                continue;
            }
            let n = |f: &str| h.get(f).and_then(|v| v.parse().ok()).unwrap_or(0);
            live.push(NodeInfo {
                url: h.get("url").cloned().unwrap_or_default(),
                started: n("started"),
                heartbeat: n("heartbeat"),
                sessions: n("sessions"),
                participants: n("participants"),
                id,
            });
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok((live, dead))
    }

    /// The sessions `node` owns (a dead node's, to adopt).
    pub async fn sessions_of(&self, node: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .conn()?
            .smembers(self.key(&["node", node, "sessions"]))
            .await?)
    }

    /// A dead node all of whose sessions were adopted leaves the list.
    pub async fn forget_node(&self, node: &str) -> Result<(), Error> {
        let left: u64 = self
            .conn()?
            .scard(self.key(&["node", node, "sessions"]))
            .await?;
        if left == 0 {
            let _: () = self.conn()?.srem(self.key(&["nodes"]), node).await?;
        }
        Ok(())
    }

    /// Declares `node` dead if its last heartbeat is older than `max_age_ms` (it also stopped
    /// answering). True when it was.
    pub async fn bury(&self, node: &str, now_ms: u64, max_age_ms: u64) -> Result<bool, Error> {
        let dead: i64 = self
            .bury
            .key(self.key(&["node", node]))
            .arg(now_ms)
            .arg(max_age_ms)
            .invoke_async(&mut self.conn()?)
            .await?;
        Ok(dead == 1)
    }

    /// Writes sessions' snapshots (the owner, after changes).
    pub async fn put_snapshots(&self, snaps: &[(String, String)]) -> Result<(), Error> {
        if snaps.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (session, json) in snaps {
            pipe.set(self.key(&["snap", session]), json).ignore();
        }
        pipe.query_async::<()>(&mut self.conn()?).await?;
        Ok(())
    }

    pub async fn snapshot(&self, session: &str) -> Result<Option<String>, Error> {
        Ok(self.conn()?.get(self.key(&["snap", session])).await?)
    }

    /// Takes `session` for `node`: false when a live node owns it already.
    pub async fn claim_session(&self, session: &str, node: &str) -> Result<bool, Error> {
        let taken: i64 = self
            .claim
            .key(self.key(&["session", session]))
            .arg(node)
            .arg(self.key(&["node", ""]))
            .arg(session)
            .invoke_async(&mut self.conn()?)
            .await?;
        Ok(taken == 1)
    }

    /// The node owning `session`: (id, url), the url empty when that node is dead.
    pub async fn owner(&self, session: &str) -> Result<Option<(String, String)>, Error> {
        let found: Option<(String, String)> = self
            .owner
            .key(self.key(&["session", session]))
            .arg(self.key(&["node", ""]))
            .invoke_async(&mut self.conn()?)
            .await?;
        Ok(found)
    }

    /// Gives `session` up (it closed), if `node` still owns it.
    pub async fn release_session(&self, session: &str, node: &str) -> Result<(), Error> {
        let _: i64 = self
            .release
            .key(self.key(&["session", session]))
            .key(self.key(&["snap", session]))
            .arg(node)
            .arg(self.key(&["node", ""]))
            .arg(session)
            .invoke_async(&mut self.conn()?)
            .await?;
        Ok(())
    }

    /// A participant joined `session` with private id `rpc` (a reconnecting socket names it).
    pub async fn bind_rpc(&self, rpc: &str, session: &str) -> Result<(), Error> {
        let _: () = self
            .conn()?
            .set_ex(self.key(&["rpc", rpc]), session, RPC_TTL_SECS)
            .await?;
        Ok(())
    }

    pub async fn unbind_rpc(&self, rpc: &str) -> Result<(), Error> {
        let _: () = self.conn()?.del(self.key(&["rpc", rpc])).await?;
        Ok(())
    }

    pub async fn session_of_rpc(&self, rpc: &str) -> Result<Option<String>, Error> {
        Ok(self.conn()?.get(self.key(&["rpc", rpc])).await?)
    }

    /// Takes (or keeps) the turn to read `engine`'s health for `lease`: `Ok(None)`; or, when it
    /// is another node's, `Ok(Some(its last reading, maybe empty))`.
    pub async fn health_turn(
        &self,
        engine: &str,
        node: &str,
        lease: Duration,
    ) -> Result<Option<String>, Error> {
        let (mine, reading): (i64, String) = self
            .turn
            .key(self.key(&["health", engine, "reader"]))
            .key(self.key(&["health", engine]))
            .arg(node)
            .arg(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut self.conn()?)
            .await?;
        Ok((mine == 0).then_some(reading))
    }

    pub async fn put_health(&self, engine: &str, json: &str, ttl: Duration) -> Result<(), Error> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let _: () = self
            .conn()?
            .pset_ex(self.key(&["health", engine]), json, ms)
            .await?;
        Ok(())
    }

    /// The engine pool's runtime changes: (engine id, JSON record).
    pub async fn pool_records(&self) -> Result<Vec<(String, String)>, Error> {
        let all: HashMap<String, String> = self.conn()?.hgetall(self.key(&["pool"])).await?;
        Ok(all.into_iter().collect())
    }

    pub async fn pool_record(&self, engine: &str) -> Result<Option<String>, Error> {
        Ok(self.conn()?.hget(self.key(&["pool"]), engine).await?)
    }

    pub async fn put_pool_record(&self, engine: &str, json: &str) -> Result<(), Error> {
        let _: () = self.conn()?.hset(self.key(&["pool"]), engine, json).await?;
        Ok(())
    }

    /// One cluster-wide smooth weighted round-robin step over `(engine, weight)`: the winner.
    pub async fn swrr_pick(&self, candidates: &[(String, u32)]) -> Result<Option<String>, Error> {
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut inv = self.swrr.key(self.key(&["swrr"]));
        for (engine, weight) in candidates {
            inv.arg(engine).arg(weight.max(&1));
        }
        Ok(inv.invoke_async(&mut self.conn()?).await?)
    }
}
