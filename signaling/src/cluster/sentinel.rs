//! A Redis behind Sentinel: `REDIS_URL=redis+sentinel://[[user]:password@]host:port[,host:port…]/service[/db]`.
//! The sentinels are asked which server is the service's primary (the client checks that server
//! agrees with `ROLE`); the store talks to it, and asks again at the next heartbeat after any
//! failed call, so that after a failover (the old primary dead, or demoted: its writes fail
//! with READONLY) it follows the promoted replica within a beat. The password (and user, db) are the
//! data servers'; the sentinels are reached without one.

use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::ConnectionAddr;
use std::time::Duration;

pub const SCHEME: &str = "redis+sentinel://";

/// What a `redis+sentinel://` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub sentinels: Vec<(String, u16)>,
    pub service: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db: i64,
}

/// Parses a `redis+sentinel://` URL; `None` for another scheme, an error for a malformed one.
pub fn parse(url: &str) -> Option<Result<Target, String>> {
    let rest = url.strip_prefix(SCHEME)?;
    Some(parse_rest(rest))
}

fn parse_rest(rest: &str) -> Result<Target, String> {
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((a, r)) => (Some(a), r),
        None => (None, rest),
    };
    let (user, password) = match auth {
        None => (None, None),
        Some(a) => match a.split_once(':') {
            Some((u, p)) => ((!u.is_empty()).then(|| u.to_owned()), Some(p.to_owned())),
            None => (Some(a.to_owned()), None),
        },
    };
    let mut parts = rest.splitn(3, '/');
    let hosts = parts.next().unwrap_or_default();
    let service = parts
        .next()
        .filter(|s| !s.is_empty())
        .ok_or("no service name (redis+sentinel://host:port/service)")?
        .to_owned();
    let db = match parts.next().filter(|d| !d.is_empty()) {
        Some(d) => d.parse().map_err(|_| format!("db '{d}' is not a number"))?,
        None => 0,
    };
    let sentinels = hosts
        .split(',')
        .map(|h| {
            let (host, port) = h
                .rsplit_once(':')
                .map_or((h, Ok(26379)), |(h, p)| (h, p.parse::<u16>()));
            match (host.trim_matches(['[', ']']), port) {
                ("", _) => Err(format!("sentinel '{h}' has no host")),
                (_, Err(_)) => Err(format!("sentinel '{h}' has no valid port")),
                (host, Ok(port)) => Ok((host.to_owned(), port)),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Target {
        sentinels,
        service,
        user,
        password,
        db,
    })
}

/// The sentinels of one service, asked for its primary, and the primary's address last found
/// (`host:port`).
pub struct Primary {
    state: tokio::sync::Mutex<(SentinelClient, Option<String>)>,
}

impl Primary {
    pub fn new(t: &Target) -> redis::RedisResult<Self> {
        let addrs = t
            .sentinels
            .iter()
            .map(|(h, p)| ConnectionAddr::Tcp(h.clone(), *p));
        let mut b = SentinelClientBuilder::new(addrs, &t.service, SentinelServerType::Master)?
            .set_client_to_redis_db(t.db);
        if let Some(u) = &t.user {
            b = b.set_client_to_redis_username(u);
        }
        if let Some(p) = &t.password {
            b = b.set_client_to_redis_password(p);
        }
        Ok(Self {
            state: tokio::sync::Mutex::new((b.build()?, None)),
        })
    }

    /// A client for the primary when it is not the one last found (`None`: unchanged).
    pub async fn changed(&self, limit: Duration) -> Result<Option<redis::Client>, String> {
        let mut state = self.state.lock().await;
        let (sentinel, current) = &mut *state;
        let client = tokio::time::timeout(limit, sentinel.async_get_client())
            .await
            .map_err(|_| "the sentinels did not answer in time".to_owned())?
            .map_err(|e| e.to_string())?;
        let addr = client.get_connection_info().addr().to_string();
        if current.as_deref() == Some(addr.as_str()) {
            return Ok(None);
        }
        tracing::info!(primary = %addr, "the Redis primary (Sentinel)");
        *current = Some(addr);
        Ok(Some(client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sentinels_service_auth_and_db() {
        assert_eq!(parse("redis://h:1"), None);
        let t = parse("redis+sentinel://:s3cret@a:26379,b:26380/mymaster/2");
        assert_eq!(
            t,
            Some(Ok(Target {
                sentinels: vec![("a".into(), 26379), ("b".into(), 26380)],
                service: "mymaster".into(),
                user: None,
                password: Some("s3cret".into()),
                db: 2,
            }))
        );
        let t = parse("redis+sentinel://u:p@s/m");
        assert!(
            matches!(t, Some(Ok(ref t)) if t.sentinels == [("s".to_owned(), 26379)]
            && t.user.as_deref() == Some("u") && t.db == 0)
        );
        for bad in [
            "redis+sentinel://a:1",
            "redis+sentinel://a:1/",
            "redis+sentinel://a:x/m",
            "redis+sentinel://:1/m",
            "redis+sentinel://a:1/m/z",
        ] {
            assert!(matches!(parse(bad), Some(Err(_))), "{bad}");
        }
    }
}
