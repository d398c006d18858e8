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
    pub weight: u32,
    pub connected: bool,
    pub running: bool,
    pub stats: Option<&'a Stats>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub stale_after: Duration,
    pub cpu_pct: f64,
    pub max_endpoints: u64,
}

/// `Ok(candidate)` or the reason the engine is not admitted.
pub fn admit(v: &View<'_>, now: Instant, l: &Limits) -> Result<Candidate, String> {
    if !v.connected {
        return Err(format!("{} is not connected", v.id));
    }
    if !v.running {
        return Err(format!("{} is draining", v.id));
    }
    let Some(s) = v.stats else {
        return Err(format!("{} has no health data yet", v.id));
    };
    let age = now.saturating_duration_since(s.at);
    if age > l.stale_after {
        return Err(format!(
            "{}'s health data is {:.1} s old",
            v.id,
            age.as_secs_f64()
        ));
    }
    if s.cpu_pct >= l.cpu_pct {
        return Err(format!(
            "{} is at {:.0}% CPU (limit {:.0}%)",
            v.id, s.cpu_pct, l.cpu_pct
        ));
    }
    if s.endpoints >= l.max_endpoints {
        return Err(format!(
            "{} has {} endpoints (limit {})",
            v.id, s.endpoints, l.max_endpoints
        ));
    }
    Ok(Candidate {
        id: v.id.to_string(),
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
            cpu_pct: 90.0,
            max_endpoints: 10,
        };
        let fresh = Stats {
            at: now,
            cpu_pct: 10.0,
            memory_kib: 1,
            endpoints: 2,
            pipelines: 1,
            rtt_ms: 1.0,
        };
        let v = |connected, running, stats| View {
            id: "e",
            weight: 2,
            connected,
            running,
            stats,
        };
        assert!(admit(&v(true, true, Some(&fresh)), now, &l)
            .is_ok_and(|c| c.weight == 2 && (c.load - 0.1).abs() < 1e-9));
        assert!(admit(&v(false, true, Some(&fresh)), now, &l)
            .is_err_and(|e| e.contains("not connected")));
        assert!(
            admit(&v(true, false, Some(&fresh)), now, &l).is_err_and(|e| e.contains("draining"))
        );
        assert!(admit(&v(true, true, None), now, &l).is_err_and(|e| e.contains("no health")));
        let old = Stats {
            at: now - Duration::from_secs(6),
            ..fresh.clone()
        };
        assert!(admit(&v(true, true, Some(&old)), now, &l).is_err_and(|e| e.contains("old")));
        let hot = Stats {
            cpu_pct: 95.0,
            ..fresh.clone()
        };
        assert!(admit(&v(true, true, Some(&hot)), now, &l).is_err_and(|e| e.contains("CPU")));
        let full = Stats {
            endpoints: 10,
            ..fresh
        };
        assert!(admit(&v(true, true, Some(&full)), now, &l).is_err_and(|e| e.contains("endpoints")));
    }
}
