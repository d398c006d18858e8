//! Which engines may take a new session, and why the others may not. Pure: the caller passes
//! `now` and what it knows of each engine.

use std::time::{Duration, Instant};

use super::Candidate;

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub at: Instant,
    pub cpu_pct: f64,
    pub memory_kib: u64,
    pub endpoints: u64,
    pub pipelines: u64,
    pub rtt_ms: f64,
}

/// What admission looks at.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub id: &'a str,
    pub slot: usize,
    pub weight: u32,
    pub connected: bool,
    pub running: bool,
    pub stats: Option<&'a Stats>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub stale_after: Duration,
    /// `now - stale_after`, set by [`Limits::at`] once per decision.
    pub fresh_since: Option<Instant>,
    pub cpu_pct: f64,
    pub max_endpoints: u64,
}

impl Limits {
    /// These limits as they apply at `now`.
    pub fn at(mut self, now: Instant) -> Self {
        self.fresh_since = now.checked_sub(self.stale_after);
        self
    }
}

/// Why an engine is not admitted; formatted only when someone reads it (a decision must not
/// allocate for every refused engine).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal<'a> {
    Disconnected(&'a str),
    Draining(&'a str),
    NoStats(&'a str),
    Stale(&'a str, Duration),
    Cpu(&'a str, f64, f64),
    Endpoints(&'a str, u64, u64),
}

impl std::fmt::Display for Refusal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Disconnected(id) => write!(f, "{id} is not connected"),
            Refusal::Draining(id) => write!(f, "{id} is draining"),
            Refusal::NoStats(id) => write!(f, "{id} has no health data yet"),
            Refusal::Stale(id, age) => {
                write!(f, "{id}'s health data is {:.1} s old", age.as_secs_f64())
            }
            Refusal::Cpu(id, cpu, limit) => {
                write!(f, "{id} is at {cpu:.0}% CPU (limit {limit:.0}%)")
            }
            Refusal::Endpoints(id, n, limit) => write!(f, "{id} has {n} endpoints (limit {limit})"),
        }
    }
}

/// `Ok(candidate)` or the reason the engine is not admitted.
#[inline]
pub fn admit<'a>(v: &View<'a>, now: Instant, l: &Limits) -> Result<Candidate<'a>, Refusal<'a>> {
    if !v.connected {
        return Err(Refusal::Disconnected(v.id));
    }
    if !v.running {
        return Err(Refusal::Draining(v.id));
    }
    let Some(s) = v.stats else {
        return Err(Refusal::NoStats(v.id));
    };
    // Compare against the cutoff computed once per decision rather than each engine's age: this
    // runs for every engine on every placement.
    if l.fresh_since.is_some_and(|cutoff| s.at < cutoff) {
        return Err(Refusal::Stale(v.id, now.saturating_duration_since(s.at)));
    }
    if s.cpu_pct >= l.cpu_pct {
        return Err(Refusal::Cpu(v.id, s.cpu_pct, l.cpu_pct));
    }
    if s.endpoints >= l.max_endpoints {
        return Err(Refusal::Endpoints(v.id, s.endpoints, l.max_endpoints));
    }
    Ok(Candidate {
        id: v.id,
        slot: v.slot,
        weight: v.weight,
        load: s.cpu_pct / 100.0,
        endpoints: s.endpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason() {
        let now = Instant::now();
        let l = Limits {
            stale_after: Duration::from_secs(5),
            fresh_since: None,
            cpu_pct: 90.0,
            max_endpoints: 10,
        }
        .at(now);
        let fresh = Stats {
            at: now,
            cpu_pct: 10.0,
            memory_kib: 1,
            endpoints: 2,
            pipelines: 1,
            rtt_ms: 1.0,
        };
        let v = |connected, running, stats| View {
            slot: 0,
            id: "e",
            weight: 2,
            connected,
            running,
            stats,
        };
        assert!(admit(&v(true, true, Some(&fresh)), now, &l)
            .is_ok_and(|c| c.weight == 2 && (c.load - 0.1).abs() < 1e-9));
        assert!(admit(&v(false, true, Some(&fresh)), now, &l)
            .is_err_and(|e| e.to_string().contains("not connected")));
        assert!(admit(&v(true, false, Some(&fresh)), now, &l)
            .is_err_and(|e| e.to_string().contains("draining")));
        assert!(admit(&v(true, true, None), now, &l)
            .is_err_and(|e| e.to_string().contains("no health")));
        let old = Stats {
            at: now - Duration::from_secs(6),
            ..fresh.clone()
        };
        assert!(admit(&v(true, true, Some(&old)), now, &l)
            .is_err_and(|e| e.to_string().contains("old")));
        let hot = Stats {
            cpu_pct: 95.0,
            ..fresh.clone()
        };
        assert!(admit(&v(true, true, Some(&hot)), now, &l)
            .is_err_and(|e| e.to_string().contains("CPU")));
        let full = Stats {
            endpoints: 10,
            ..fresh
        };
        assert!(admit(&v(true, true, Some(&full)), now, &l)
            .is_err_and(|e| e.to_string().contains("endpoints")));
    }
}
