//! The ping watchdog of one browser socket: a client that announced an interval and then stops
//! pinging for three intervals is gone (OpenVidu's rule). Time is passed in.

use std::time::{Duration, Instant};

/// Used until the client announces its ping interval (OpenVidu's default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(20);
/// The announced interval is taken within these bounds.
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct PingWatch {
    last: Instant,
    interval: Duration,
}

impl PingWatch {
    pub fn new(now: Instant) -> Self {
        Self {
            last: now,
            interval: DEFAULT_INTERVAL,
        }
    }

    /// A ping arrived, perhaps announcing its interval in milliseconds.
    pub fn on_ping(&mut self, now: Instant, interval_ms: Option<u64>) {
        self.last = now;
        if let Some(ms) = interval_ms {
            self.interval = Duration::from_millis(ms).clamp(MIN_INTERVAL, MAX_INTERVAL);
        }
    }

    /// When the socket is to be closed if no ping comes first.
    pub fn deadline(&self) -> Instant {
        self.last + 3 * self.interval
    }

    /// At the deadline itself, so a shell that sleeps until `deadline()` finds it expired.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_missed_intervals_close_the_socket() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = PingWatch::new(t0);
        assert_eq!(w.deadline(), t0 + 3 * DEFAULT_INTERVAL);
        w.on_ping(t0 + ms(100), Some(1_000));
        assert_eq!(w.deadline(), t0 + ms(3_100));
        assert!(!w.expired(t0 + ms(3_099)));
        assert!(w.expired(t0 + ms(3_100)));
        // A ping without an interval keeps the announced one.
        w.on_ping(t0 + ms(3_000), None);
        assert!(!w.expired(t0 + ms(5_900)));
    }

    #[test]
    fn announced_intervals_are_bounded() {
        let t0 = Instant::now();
        let mut w = PingWatch::new(t0);
        w.on_ping(t0, Some(1));
        assert_eq!(w.deadline(), t0 + 3 * MIN_INTERVAL);
        w.on_ping(t0, Some(u64::MAX));
        assert_eq!(w.deadline(), t0 + 3 * MAX_INTERVAL);
    }
}
