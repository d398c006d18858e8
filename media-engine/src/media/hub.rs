//! One element's output for one media kind: a broadcast of packets plus the way back for
//! keyframe requests.

use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters;
use std::sync::Arc;
use tokio::sync::{broadcast, watch, Notify};

use super::MediaKind;

/// Per-subscriber queue depth; a subscriber that falls this far behind skips ahead (and asks
/// for a keyframe) instead of slowing everyone.
const HUB_CAPACITY: usize = 1024;

/// What a packet's payload type and extension ids mean at its origin.
#[derive(Debug, Default)]
pub struct SourceParams {
    pub codecs: Vec<RTCRtpCodecParameters>,
    /// (id, uri)
    pub extensions: Vec<(u8, String)>,
}

impl SourceParams {
    pub fn codec(&self, pt: u8) -> Option<&RTCRtpCodecParameters> {
        self.codecs.iter().find(|c| c.payload_type == pt)
    }

    pub fn ext_uri(&self, id: u8) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, u)| u.as_str())
    }
}

/// A packet on its way through the graph, with the meaning of its numbers.
#[derive(Debug)]
pub struct Forwarded {
    pub packet: rtp::Packet,
    pub source: Arc<SourceParams>,
}

pub struct Hub {
    pub kind: MediaKind,
    packets: broadcast::Sender<Arc<Forwarded>>,
    /// Requests for a keyframe travel upstream through this; `notify_one` coalesces bursts.
    pub keyframe: Notify,
}

impl Hub {
    pub fn new(kind: MediaKind) -> Arc<Self> {
        let (packets, _) = broadcast::channel(HUB_CAPACITY);
        Arc::new(Self {
            kind,
            packets,
            keyframe: Notify::new(),
        })
    }

    pub fn send(&self, f: Arc<Forwarded>) {
        // No receiver is normal: nothing is connected yet.
        let _ = self.packets.send(f);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Forwarded>> {
        self.packets.subscribe()
    }

    pub fn request_keyframe(&self) {
        if self.kind == MediaKind::Video {
            self.keyframe.notify_one();
        }
    }
}

/// The element's connection points: outputs it feeds, inputs (the source currently connected
/// to it, per kind) it consumes.
pub struct Ports {
    pub outputs: [Arc<Hub>; 2],
    pub inputs: [watch::Sender<Option<Arc<Hub>>>; 2],
}

impl Ports {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            outputs: [Hub::new(MediaKind::Audio), Hub::new(MediaKind::Video)],
            inputs: [watch::channel(None).0, watch::channel(None).0],
        })
    }

    pub fn output(&self, kind: MediaKind) -> &Arc<Hub> {
        &self.outputs[kind as usize]
    }

    pub fn input(&self, kind: MediaKind) -> &watch::Sender<Option<Arc<Hub>>> {
        &self.inputs[kind as usize]
    }

    /// Connects `source`'s output of `kind` to this element (replacing any previous source).
    pub fn connect_from(&self, source: &Ports, kind: MediaKind) {
        let hub = source.output(kind).clone();
        self.input(kind).send_replace(Some(hub));
    }

    /// Disconnects `source` if it is the current source of `kind`; returns whether it was.
    pub fn disconnect_from(&self, source: &Ports, kind: MediaKind) -> bool {
        let hub = source.output(kind);
        let mut was = false;
        self.input(kind).send_if_modified(|cur| {
            if cur.as_ref().is_some_and(|h| Arc::ptr_eq(h, hub)) {
                *cur = None;
                was = true;
            }
            was
        });
        was
    }

    pub fn is_connected_from(&self, source: &Ports, kind: MediaKind) -> bool {
        self.input(kind)
            .borrow()
            .as_ref()
            .is_some_and(|h| Arc::ptr_eq(h, source.output(kind)))
    }

    /// Drops every input (on release).
    pub fn disconnect_all(&self) {
        for i in &self.inputs {
            i.send_replace(None);
        }
    }
}
