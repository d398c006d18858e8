//! MediaFlowIn/OutStateChanged: FLOWING on the first packet, NOT_FLOWING after a quiet spell.

use kms_client::wire::events::{self, name, Event};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use super::MediaKind;

pub type EventTx = mpsc::UnboundedSender<Event>;

const QUIET: Duration = Duration::from_secs(3);

pub struct Flow {
    object: String,
    kind: MediaKind,
    event: &'static str,
    /// Where the state is also kept for `isMediaFlowingIn/Out`.
    shown: Option<crate::media::worker::handle::SharedSnapshot>,
    flowing: bool,
    /// A packet went by since the last tick (no clock read per packet).
    seen: bool,
    /// The last tick that had seen packets.
    last_busy: Instant,
}

impl Flow {
    pub fn new(object: &str, kind: MediaKind, event: &'static str) -> Self {
        Self {
            object: object.to_string(),
            kind,
            event,
            shown: None,
            flowing: false,
            seen: false,
            last_busy: Instant::now(),
        }
    }

    pub fn inbound(object: &str, kind: MediaKind) -> Self {
        Self::new(object, kind, name::MEDIA_FLOW_IN)
    }

    pub fn outbound(object: &str, kind: MediaKind) -> Self {
        Self::new(object, kind, name::MEDIA_FLOW_OUT)
    }

    /// Also keeps the state in `snapshot` (for `isMediaFlowingIn/Out`).
    pub fn shown_in(mut self, snapshot: crate::media::worker::handle::SharedSnapshot) -> Self {
        self.shown = Some(snapshot);
        self
    }

    #[inline]
    pub fn packet(&mut self, tx: &EventTx) {
        self.seen = true;
        if !self.flowing {
            self.flowing = true;
            self.emit("FLOWING", tx);
        }
    }

    /// Called about every second.
    pub fn tick(&mut self, now: Instant, tx: &EventTx) {
        if std::mem::take(&mut self.seen) {
            self.last_busy = now;
        } else if self.flowing && now.duration_since(self.last_busy) >= QUIET {
            self.flowing = false;
            self.emit("NOT_FLOWING", tx);
        }
    }

    fn emit(&self, state: &str, tx: &EventTx) {
        if let Some(s) = &self.shown {
            let mut s = s.lock();
            let slot = if self.event == name::MEDIA_FLOW_IN {
                &mut s.flowing_in
            } else {
                &mut s.flowing_out
            };
            slot[self.kind.index()] = self.flowing;
        }
        let fields =
            json!({"state": state, "padName": "default", "mediaType": self.kind.wire_name()});
        let _ = tx.send(events::build(
            &self.object,
            self.event,
            true,
            now_millis(),
            fields,
        ));
    }
}

pub fn now_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
