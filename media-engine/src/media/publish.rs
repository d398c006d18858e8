//! Publisher side helpers: keyframe requests from the hub become PLIs to the publisher (at most
//! one per 500 ms), and duplicate packets are caught by sequence number.

use rtc::rtp_transceiver::RTCRtpReceiverId;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::hub::Hub;
use super::worker::handle::{ConnKey, Ctl, WorkerHandle};
use super::TaskGuard;

pub const PLI_MIN_INTERVAL: Duration = Duration::from_millis(500);

/// Turns the hub's keyframe requests into PLIs for one publisher track, rate-limited.
pub async fn limit_plis(
    hub: Arc<Hub>,
    worker: WorkerHandle,
    conn: ConnKey,
    receiver: RTCRtpReceiverId,
    media_ssrc: u32,
    cancel: CancellationToken,
) {
    let _guard = TaskGuard::new();
    let mut last_pli: Option<Instant> = None;
    let mut deferred: Option<Instant> = None;
    // Never waits: a PLI that finds the worker's queue full is dropped (another follows).
    let send = || worker.try_send(Ctl::Pli(conn, receiver, media_ssrc));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = hub.keyframe.notified() => {
                let now = Instant::now();
                match last_pli {
                    Some(t) if now.duration_since(t) < PLI_MIN_INTERVAL => {
                        deferred.get_or_insert(t + PLI_MIN_INTERVAL);
                    }
                    _ => {
                        send();
                        last_pli = Some(now);
                    }
                }
            }
            _ = sleep_until(deferred.unwrap_or_else(Instant::now)), if deferred.is_some() => {
                deferred = None;
                send();
                last_pli = Some(Instant::now());
            }
        }
    }
}

/// Remembers the last 1024 sequence numbers, so a packet delivered twice (a retransmission of
/// something that had arrived after all) is forwarded once.
#[derive(Default)]
pub struct SeqWindow {
    bits: [u64; 16],
    highest: Option<u16>,
}

impl SeqWindow {
    const SIZE: u16 = 1024;

    /// True when `seq` is new.
    pub fn insert(&mut self, seq: u16) -> bool {
        let Some(high) = self.highest else {
            self.highest = Some(seq);
            self.set(seq);
            return true;
        };
        let ahead = seq.wrapping_sub(high);
        if ahead != 0 && ahead < 0x8000 {
            let steps = ahead.min(Self::SIZE);
            for i in 1..=steps {
                self.clear(high.wrapping_add(i));
            }
            self.highest = Some(seq);
            self.set(seq);
            return true;
        }
        let behind = high.wrapping_sub(seq);
        if behind >= Self::SIZE {
            // Far behind: a restarted stream rather than a duplicate.
            self.bits = [0; 16];
            self.highest = Some(seq);
            self.set(seq);
            return true;
        }
        if self.get(seq) {
            return false;
        }
        self.set(seq);
        true
    }

    fn idx(seq: u16) -> (usize, u64) {
        let i = usize::from(seq % Self::SIZE);
        (i / 64, 1u64 << (i % 64))
    }

    fn set(&mut self, seq: u16) {
        let (w, b) = Self::idx(seq);
        self.bits[w] |= b;
    }

    fn clear(&mut self, seq: u16) {
        let (w, b) = Self::idx(seq);
        self.bits[w] &= !b;
    }

    fn get(&self, seq: u16) -> bool {
        let (w, b) = Self::idx(seq);
        self.bits[w] & b != 0
    }
}

#[cfg(test)]
mod tests {
    use super::SeqWindow;

    #[test]
    fn duplicates_are_caught_across_wrap() {
        let mut w = SeqWindow::default();
        assert!(w.insert(65530));
        for s in 65531..=65535u16 {
            assert!(w.insert(s));
        }
        assert!(w.insert(0));
        assert!(w.insert(2));
        assert!(!w.insert(65533));
        assert!(w.insert(1)); // late, not a duplicate
        assert!(!w.insert(1));
        assert!(w.insert(30000)); // jump ahead
        assert!(!w.insert(30000));
    }
}
