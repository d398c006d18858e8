//! Reads one remote track of a WebRtcEndpoint into the endpoint's output hub, and answers the
//! hub's keyframe requests with a PLI to the publisher (at most one per 500 ms).

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{interval, sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::flow::{EventTx, Flow};
use super::hub::{Forwarded, Hub, SourceParams};
use super::{bump, MediaKind, TaskGuard, COUNTERS};

pub const PLI_MIN_INTERVAL: Duration = Duration::from_millis(500);

pub async fn read_remote_track(
    track: Arc<dyn TrackRemote>,
    kind: MediaKind,
    source: Arc<SourceParams>,
    hub: Arc<Hub>,
    object: String,
    events: EventTx,
    cancel: CancellationToken,
) {
    let _guard = TaskGuard::new();
    let media_ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
    let mut seen = SeqWindow::default();
    let mut flow = Flow::inbound(&object, kind);
    let mut tick = interval(Duration::from_secs(1));
    let mut last_pli: Option<Instant> = None;
    let mut deferred: Option<Instant> = None;
    // A publisher whose first packets arrive before anyone asked still owes subscribers a
    // keyframe once they connect; they ask through the hub.
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            ev = track.poll() => match ev {
                Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                    if !seen.insert(packet.header.sequence_number) {
                        bump(&COUNTERS.duplicates);
                        continue;
                    }
                    bump(&COUNTERS.rtp_in);
                    flow.packet(&events);
                    hub.send(Arc::new(Forwarded { packet, source: source.clone() }));
                }
                Some(TrackRemoteEvent::OnEnded) | None => break,
                Some(_) => {}
            },
            _ = hub.keyframe.notified(), if kind == MediaKind::Video => {
                let now = Instant::now();
                match last_pli {
                    Some(t) if now.duration_since(t) < PLI_MIN_INTERVAL => {
                        deferred.get_or_insert(t + PLI_MIN_INTERVAL);
                    }
                    _ => {
                        send_pli(&track, media_ssrc).await;
                        last_pli = Some(now);
                    }
                }
            }
            _ = sleep_until(deferred.unwrap_or_else(Instant::now)), if deferred.is_some() => {
                deferred = None;
                send_pli(&track, media_ssrc).await;
                last_pli = Some(Instant::now());
            }
            _ = tick.tick() => flow.tick(std::time::Instant::now(), &events),
        }
    }
}

async fn send_pli(track: &Arc<dyn TrackRemote>, media_ssrc: u32) {
    let pli = PictureLossIndication {
        sender_ssrc: 0,
        media_ssrc,
    };
    if track.write_rtcp(vec![Box::new(pli)]).await.is_ok() {
        bump(&COUNTERS.plis_sent);
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
