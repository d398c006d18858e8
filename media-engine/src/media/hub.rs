//! One element's output for one media kind: the consumers packets are handed to, plus the way
//! back for keyframe requests.
//!
//! Delivery is a direct call on the sending task (the publisher's track reader): each attached
//! [`Tap`] rewrites and queues the packet for its own peer connection, or relays it to another
//! hub. Forwarding through per-subscriber tasks cost a task wake-up per packet per subscriber,
//! which profiles showed as a sixth of the engine's CPU.

use parking_lot::RwLock;
use rtc::rtp;
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters;
use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{watch, Notify};

use super::{MediaKind, COUNTERS};

/// How many hubs one packet may pass through on a single delivery. PassThroughs may be wired
/// into a loop; with one input per element and kind no packet can enter one today, but should a
/// graph ever let one in, it is dropped at this depth instead of recursing forever.
const MAX_HOPS: u8 = 8;

thread_local! {
    static HOPS: Cell<u8> = const { Cell::new(0) };
}

/// A consumer of a hub's packets. `deliver` runs on the sender's task, so it must not block.
pub trait Tap: Send + Sync {
    fn deliver(&self, from: &Hub, f: &Arc<Forwarded>);
}

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
    /// When it arrived (read once for every subscriber's rewrite).
    pub at: std::time::Instant,
}

pub struct Hub {
    pub kind: MediaKind,
    taps: RwLock<Vec<Arc<dyn Tap>>>,
    /// Requests for a keyframe travel upstream through this; `notify_one` coalesces bursts.
    pub keyframe: Notify,
}

impl Hub {
    pub fn new(kind: MediaKind) -> Arc<Self> {
        Arc::new(Self {
            kind,
            taps: RwLock::new(Vec::new()),
            keyframe: Notify::new(),
        })
    }

    /// Hands `f` to every attached tap (none attached is normal: nothing is connected yet).
    pub fn send(&self, f: Arc<Forwarded>) {
        let hops = HOPS.with(Cell::get);
        if hops >= MAX_HOPS {
            return;
        }
        HOPS.with(|h| h.set(hops + 1));
        // Recursive read: a PassThrough looped back onto itself re-enters this hub.
        for tap in self.taps.read_recursive().iter() {
            tap.deliver(self, &f);
        }
        HOPS.with(|h| h.set(hops));
    }

    pub fn attach(&self, tap: Arc<dyn Tap>) {
        self.taps.write().push(tap);
        COUNTERS.taps.fetch_add(1, Ordering::Relaxed);
    }

    pub fn detach(&self, tap: &Arc<dyn Tap>) {
        let mut taps = self.taps.write();
        let before = taps.len();
        taps.retain(|t| !Arc::ptr_eq(t, tap));
        let gone = (before - taps.len()) as u64;
        COUNTERS.taps.fetch_sub(gone, Ordering::Relaxed);
    }

    #[cfg(test)]
    fn tap_count(&self) -> usize {
        self.taps.read().len()
    }

    pub fn request_keyframe(&self) {
        if self.kind == MediaKind::Video {
            self.keyframe.notify_one();
        }
    }
}

/// A tap attached to whichever hub an element's input currently points at: follows
/// reconnections and detaches when dropped, so a released element leaves nothing behind on a
/// source that lives on.
pub struct Attachment {
    tap: Arc<dyn Tap>,
    hub: Option<Arc<Hub>>,
}

impl Attachment {
    pub fn new(tap: Arc<dyn Tap>) -> Self {
        Self { tap, hub: None }
    }

    /// Moves the tap to `hub` (or nowhere); returns the new hub.
    pub fn follow(&mut self, hub: Option<Arc<Hub>>) -> Option<&Arc<Hub>> {
        if let Some(old) = self.hub.take() {
            old.detach(&self.tap);
        }
        if let Some(h) = &hub {
            h.attach(self.tap.clone());
        }
        self.hub = hub;
        self.hub.as_ref()
    }

    pub fn hub(&self) -> Option<&Arc<Hub>> {
        self.hub.as_ref()
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.follow(None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Tap for Count {
        fn deliver(&self, _from: &Hub, _f: &Arc<Forwarded>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Re-sends into a hub, as a PassThrough does.
    struct Loop(Arc<Hub>);

    impl Tap for Loop {
        fn deliver(&self, _from: &Hub, f: &Arc<Forwarded>) {
            self.0.send(f.clone());
        }
    }

    fn packet() -> Arc<Forwarded> {
        Arc::new(Forwarded {
            packet: rtp::Packet::default(),
            source: Arc::new(SourceParams::default()),
            at: std::time::Instant::now(),
        })
    }

    #[test]
    fn an_attachment_follows_its_input_and_detaches_when_dropped() {
        let (a, b) = (Hub::new(MediaKind::Video), Hub::new(MediaKind::Video));
        let count = Arc::new(Count::default());
        let mut att = Attachment::new(count.clone());
        att.follow(Some(a.clone()));
        a.send(packet());
        att.follow(Some(b.clone()));
        a.send(packet());
        b.send(packet());
        assert_eq!((a.tap_count(), b.tap_count()), (0, 1));
        drop(att);
        b.send(packet());
        assert_eq!(b.tap_count(), 0);
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_loop_of_hubs_stops_after_max_hops() {
        let (a, b) = (Hub::new(MediaKind::Audio), Hub::new(MediaKind::Audio));
        let count = Arc::new(Count::default());
        let _ab = {
            let mut t = Attachment::new(Arc::new(Loop(b.clone())));
            t.follow(Some(a.clone()));
            t
        };
        let _ba = {
            let mut t = Attachment::new(Arc::new(Loop(a.clone())));
            t.follow(Some(b.clone()));
            t
        };
        let mut seen = Attachment::new(count.clone());
        seen.follow(Some(a.clone()));
        a.send(packet());
        // a, b, a, b, … : `a` is entered on hops 1, 3, 5, 7.
        assert_eq!(count.0.load(Ordering::Relaxed), usize::from(MAX_HOPS) / 2);
        // The depth is restored: the next packet travels the same way.
        a.send(packet());
        assert_eq!(count.0.load(Ordering::Relaxed), usize::from(MAX_HOPS));
    }
}
