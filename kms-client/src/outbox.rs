//! A socket's outgoing queue, bounded in bytes. Both servers queue responses and notifications
//! for a socket's writer task; a client that stops reading must not make the server hold an
//! unbounded backlog for it. When a send would pass the limit the queue is marked overflowed:
//! nothing more is queued, the writer drops what is left and closes the socket, and the
//! reader stops. Nobody else shares the queue, so nobody else is affected. The bound is the
//! limit plus one item (a single item larger than the limit goes when the queue is empty).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// Bytes an item costs in the queue.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// What every queued item costs besides its bytes, so floods of tiny items are bounded too.
const PER_ITEM: usize = 64;

struct Shared {
    queued: AtomicUsize,
    limit: usize,
    overflowed: std::sync::atomic::AtomicBool,
    wake: Notify,
}

/// The sending half; cheap to clone.
pub struct Outbox<T> {
    tx: mpsc::UnboundedSender<T>,
    shared: Arc<Shared>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// The writer's half.
pub struct OutboxRx<T> {
    rx: mpsc::UnboundedReceiver<T>,
    shared: Arc<Shared>,
}

/// The item was not queued: the queue overflowed (now or before) or the writer is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotQueued;

/// A queue that holds at most `limit` bytes (plus a small per-item cost).
pub fn outbox<T: Weigh>(limit: usize) -> (Outbox<T>, OutboxRx<T>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        limit,
        overflowed: Default::default(),
        wake: Notify::new(),
    });
    (
        Outbox {
            tx,
            shared: shared.clone(),
        },
        OutboxRx { rx, shared },
    )
}

impl<T: Weigh> Outbox<T> {
    pub fn send(&self, item: T) -> Result<(), NotQueued> {
        if self.is_overflowed() {
            return Err(NotQueued);
        }
        let w = item.weight() + PER_ITEM;
        let before = self.shared.queued.fetch_add(w, Ordering::AcqRel);
        // One item larger than the whole limit (a join answer listing a big room) still goes
        // when nothing else is waiting: the bound is the limit plus one item.
        if before > 0 && before + w > self.shared.limit {
            self.shared.queued.fetch_sub(w, Ordering::AcqRel);
            self.shared.overflowed.store(true, Ordering::Release);
            self.shared.wake.notify_waiters();
            return Err(NotQueued);
        }
        self.tx.send(item).map_err(|_| {
            self.shared.queued.fetch_sub(w, Ordering::AcqRel);
            NotQueued
        })
    }

    pub fn is_overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }

    /// Resolves once the queue has overflowed (the reader stops on it).
    pub async fn overflowed(&self) {
        wait_overflow(&self.shared).await
    }
}

impl<T: Weigh> OutboxRx<T> {
    /// The next item; `None` when every sender is gone or the queue overflowed (what is left
    /// is dropped at once).
    pub async fn recv(&mut self) -> Option<T> {
        if self.is_overflowed() {
            self.drain();
            return None;
        }
        let item = tokio::select! {
            i = self.rx.recv() => i?,
            _ = wait_overflow(&self.shared) => {
                self.drain();
                return None;
            }
        };
        self.shared
            .queued
            .fetch_sub(item.weight() + PER_ITEM, Ordering::AcqRel);
        Some(item)
    }

    pub fn is_overflowed(&self) -> bool {
        self.shared.overflowed.load(Ordering::Acquire)
    }

    /// Resolves once the queue has overflowed (the writer gives up a blocked write on it).
    pub async fn overflowed(&self) {
        wait_overflow(&self.shared).await
    }

    /// Bytes currently queued (tests, metrics).
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    fn drain(&mut self) {
        self.rx.close();
        while self.rx.try_recv().is_ok() {}
        self.shared.queued.store(0, Ordering::Release);
    }
}

/// Whether a WebSocket read failed because a frame or message passed the size limit (the
/// socket is then closed with 1009). Looks through wrappers such as `axum::Error`.
pub fn is_message_too_big(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            return matches!(t, tokio_tungstenite::tungstenite::Error::Capacity(_));
        }
        cur = err.source();
    }
    false
}

async fn wait_overflow(shared: &Shared) {
    loop {
        let notified = shared.wake.notified();
        if shared.overflowed.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overflow_stops_queueing_and_frees_the_backlog() {
        let (tx, mut rx) = outbox::<String>(1000);
        assert!(tx.send("a".repeat(400)).is_ok());
        assert!(tx.send("b".repeat(400)).is_ok());
        assert_eq!(rx.queued_bytes(), 800 + 2 * PER_ITEM);
        assert_eq!(rx.recv().await.map(|s| s.len()), Some(400));
        assert!(tx.send("c".repeat(300)).is_ok());
        // 400 + 300 + 2 items queued; 400 more would pass 1000.
        assert_eq!(tx.send("d".repeat(400)), Err(NotQueued));
        assert!(tx.is_overflowed());
        assert_eq!(tx.send("e".into()), Err(NotQueued));
        tx.overflowed().await;
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn one_item_larger_than_the_limit_goes_when_the_queue_is_empty() {
        let (tx, mut rx) = outbox::<String>(1000);
        assert!(tx.send("a".repeat(5000)).is_ok());
        assert_eq!(tx.send("b".into()), Err(NotQueued));
        assert_eq!(rx.recv().await, None);
    }
}
