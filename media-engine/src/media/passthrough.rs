//! PassThrough: whatever its input carries goes to its output, unchanged; keyframe requests
//! from its subscribers go on to its current source. One relay task per media kind.

use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::hub::Ports;
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

async fn relay(ports: Arc<Ports>, kind: MediaKind, cancel: CancellationToken) {
    let _guard = TaskGuard::new();
    let out = ports.output(kind).clone();
    let mut input = ports.input(kind).subscribe();
    let mut rx = input.borrow_and_update().as_ref().map(|h| h.subscribe());
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = input.changed() => {
                if r.is_err() { break; }
                let hub = input.borrow_and_update().clone();
                rx = hub.as_ref().map(|h| h.subscribe());
                if let Some(h) = hub { h.request_keyframe(); }
            }
            r = async { match &mut rx { Some(r) => r.recv().await, None => std::future::pending().await } } => match r {
                Ok(f) => out.send(f),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if let Some(h) = input.borrow().as_ref() { h.request_keyframe(); }
                }
                Err(broadcast::error::RecvError::Closed) => rx = None,
            },
            _ = out.keyframe.notified() => {
                if let Some(h) = input.borrow().as_ref() { h.request_keyframe(); }
            }
        }
    }
}
