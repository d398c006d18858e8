//! PassThrough: whatever its input carries goes to its output, unchanged; keyframe requests
//! from its subscribers go on to its current source. Packets cross it by direct call (a tap on
//! the source's hub that re-sends into its own output); one control task per media kind follows
//! reconnections and relays keyframe requests.

use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::hub::{Attachment, Forwarded, Hub, Ports, Tap};
use super::{MediaKind, TaskGuard};

pub struct PassThroughMedia {
    pub ports: Arc<Ports>,
    cancel: CancellationToken,
}

impl PassThroughMedia {
    pub fn spawn(parent: &CancellationToken) -> Self {
        let ports = Ports::new();
        let cancel = parent.child_token();
        for kind in MediaKind::ALL {
            tokio::spawn(relay(ports.clone(), kind, cancel.clone()));
        }
        Self { ports, cancel }
    }

    pub fn release(&self) {
        self.ports.disconnect_all();
        self.cancel.cancel();
    }
}

/// Re-sends what its source's hub delivers into the PassThrough's own output.
struct Relay(Arc<Hub>);

impl Tap for Relay {
    fn deliver(&self, _from: &Hub, f: &Arc<Forwarded>) {
        self.0.send(f.clone());
    }
}

async fn relay(ports: Arc<Ports>, kind: MediaKind, cancel: CancellationToken) {
    let _guard = TaskGuard::new();
    let out = ports.output(kind).clone();
    let mut input = ports.input(kind).subscribe();
    let mut attached = Attachment::new(Arc::new(Relay(out.clone())));
    attached.follow(input.borrow_and_update().clone());
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = input.changed() => {
                if r.is_err() { break; }
                let hub = input.borrow_and_update().clone();
                if let Some(h) = attached.follow(hub) { h.request_keyframe(); }
            }
            _ = out.keyframe.notified() => {
                if let Some(h) = attached.hub() { h.request_keyframe(); }
            }
        }
    }
}
