//! One owner per session: a task that holds the session's record and its media and applies
//! every change to them in turn, so no lock guards them and nothing waits on one across an
//! engine round trip.
//!
//! Callers hold an [`Owner`] handle (a cheap clone) and send it *steps*: plain functions on the
//! state that return at once. Engine work runs outside the task: a caller plans under a step,
//! negotiates with the engine on its own, and commits under another step. The owner's own
//! engine work — placing the session's pipeline, moving it to another engine — is a
//! *transition*: the owner starts it as a child task and goes on serving; when the work ends its
//! result is applied as one more step. Meanwhile steps that depend on which pipeline is current
//! ([`Owner::with`], and further transitions) wait for it, in order; reads of the media
//! ([`Owner::peek`]) and every step on the record ([`Owner::record`]: joins, tokens, notices)
//! do not.
//!
//! A step may take the node-wide roster lock for a moment (a participant's record and its
//! socket change together); nothing holding that lock ever waits for an owner.

use futures::future::BoxFuture;
use std::collections::VecDeque;
use tokio::sync::{mpsc, oneshot};

/// The state a step sees: the session's record (none once the session is closed: work
/// finishing after that releases what it made) and its media (none before placement).
pub struct Slot<R, M> {
    pub record: Option<R>,
    pub media: Option<M>,
}

impl<R, M> Slot<R, M> {
    /// Closes the session: takes its record and media out (even while a transition runs, whose
    /// result then finds the slot closed); later steps see neither. `None` when it was closed
    /// already.
    pub fn close(&mut self) -> Option<(R, Option<M>)> {
        Some((self.record.take()?, self.media.take()))
    }
}

/// A change applied by the owner, with the state to itself.
pub type Step<R, M> = Box<dyn FnOnce(&mut Slot<R, M>) + Send>;
/// A transition's engine work; its output is applied when it ends.
pub type Work<R, M> = BoxFuture<'static, Step<R, M>>;
/// Starts a transition: looks at the state and returns the work, or nothing to do.
pub type Start<R, M> = Box<dyn FnOnce(&mut Slot<R, M>) -> Option<Work<R, M>> + Send>;

enum Command<R, M> {
    Step {
        step: Step<R, M>,
        settled: bool,
    },
    Begin {
        start: Start<R, M>,
        done: oneshot::Sender<()>,
    },
    Done(Step<R, M>),
}

/// How many commands may wait for one owner before senders wait.
const QUEUE: usize = 256;

/// A handle to a session's owner task. The task ends when every handle is gone and no
/// transition is running.
pub struct Owner<R, M> {
    tx: mpsc::Sender<Command<R, M>>,
}

impl<R, M> Clone for Owner<R, M> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<R: Send + 'static, M: Send + 'static> Owner<R, M> {
    /// Starts the owner of a session's `record` and `media` (none until placed).
    pub fn spawn(record: R, media: Option<M>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let slot = Slot {
            record: Some(record),
            media,
        };
        tokio::spawn(run(slot, rx, tx.downgrade()));
        Self { tx }
    }

    /// Whether two handles reach the same owner.
    pub fn same(&self, other: &Self) -> bool {
        self.tx.same_channel(&other.tx)
    }

    /// Runs `f` on the media once no transition is running; `None` when there is no media (not
    /// placed, or closed).
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut M) -> T + Send + 'static,
    ) -> Option<T> {
        self.on_media(true, f).await
    }

    /// Runs `f` on the media now, even while a transition runs (reads: snapshots, statistics).
    pub async fn peek<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut M) -> T + Send + 'static,
    ) -> Option<T> {
        self.on_media(false, f).await
    }

    async fn on_media<T: Send + 'static>(
        &self,
        settled: bool,
        f: impl FnOnce(&mut M) -> T + Send + 'static,
    ) -> Option<T> {
        self.slot(settled, move |s| s.media.as_mut().map(f))
            .await
            .flatten()
    }

    /// Runs `f` on the whole state (`settled`: after any running transition); `None` when the
    /// owner is gone.
    pub async fn slot<T: Send + 'static>(
        &self,
        settled: bool,
        f: impl FnOnce(&mut Slot<R, M>) -> T + Send + 'static,
    ) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        let step: Step<R, M> = Box::new(move |s| {
            let _ = reply.send(f(s));
        });
        self.tx.send(Command::Step { step, settled }).await.ok()?;
        answer.await.ok()
    }

    /// Runs `f` on the session's record now, even while a transition runs; `None` once the
    /// session is closed.
    pub async fn record<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut R) -> T + Send + 'static,
    ) -> Option<T> {
        self.slot(false, move |s| s.record.as_mut().map(f))
            .await
            .flatten()
    }

    /// Starts a transition once no other one runs, and returns when it has ended (at once when
    /// `start` finds nothing to do).
    pub async fn transition(
        &self,
        start: impl FnOnce(&mut Slot<R, M>) -> Option<Work<R, M>> + Send + 'static,
    ) {
        let (done, ended) = oneshot::channel();
        let begin = Command::Begin {
            start: Box::new(start),
            done,
        };
        if self.tx.send(begin).await.is_ok() {
            let _ = ended.await;
        }
    }
}

/// The owner task: applies steps in arrival order, parks settled ones during a transition.
async fn run<R: Send + 'static, M: Send + 'static>(
    mut slot: Slot<R, M>,
    mut rx: mpsc::Receiver<Command<R, M>>,
    me: mpsc::WeakSender<Command<R, M>>,
) {
    // The transition running now (its caller waits for `done`) and what waits for it.
    let mut moving: Option<oneshot::Sender<()>> = None;
    let mut parked: VecDeque<Command<R, M>> = VecDeque::new();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Done(step) => {
                step(&mut slot);
                if let Some(done) = moving.take() {
                    let _ = done.send(());
                }
                while moving.is_none() {
                    let Some(next) = parked.pop_front() else {
                        break;
                    };
                    moving = apply(&mut slot, next, &me);
                }
            }
            Command::Step { settled: true, .. } | Command::Begin { .. } if moving.is_some() => {
                parked.push_back(cmd);
            }
            // A read while a transition runs: applied without touching the transition.
            Command::Step { step, .. } => step(&mut slot),
            begin => moving = apply(&mut slot, begin, &me),
        }
    }
}

/// Applies a step or starts a transition; returns the transition's `done` when one started.
fn apply<R: Send + 'static, M: Send + 'static>(
    slot: &mut Slot<R, M>,
    cmd: Command<R, M>,
    me: &mpsc::WeakSender<Command<R, M>>,
) -> Option<oneshot::Sender<()>> {
    match cmd {
        Command::Step { step, .. } | Command::Done(step) => {
            step(slot);
            None
        }
        Command::Begin { start, done } => {
            let work = start(slot)?;
            // The work holds a sender until it reports, so the owner outlives it.
            let tx = me.upgrade()?;
            tokio::spawn(async move {
                let step = work.await;
                let _ = tx.send(Command::Done(step)).await;
            });
            Some(done)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::{sleep, Instant};

    fn placing(value: u32, after: Duration) -> Work<u8, Vec<u32>> {
        Box::pin(async move {
            sleep(after).await;
            let step: Step<u8, Vec<u32>> = Box::new(move |s| {
                if s.record.is_none() {
                    return;
                }
                s.media.get_or_insert_with(Vec::new).push(value);
            });
            step
        })
    }

    /// Starts a transition placing `value` after `after` and returns once it began, with the
    /// task waiting for it (its output: when the transition ended).
    async fn begin_placing(
        owner: &Owner<u8, Vec<u32>>,
        value: u32,
        after: Duration,
    ) -> tokio::task::JoinHandle<Instant> {
        let mover = owner.clone();
        let (began, started) = oneshot::channel();
        let moved = tokio::spawn(async move {
            mover
                .transition(move |_| {
                    let _ = began.send(());
                    Some(placing(value, after))
                })
                .await;
            Instant::now()
        });
        assert!(started.await.is_ok());
        moved
    }

    #[tokio::test(start_paused = true)]
    async fn steps_wait_for_a_transition_and_reads_do_not() {
        let owner = Owner::<u8, Vec<u32>>::spawn(0, Some(vec![1]));
        let t0 = Instant::now();
        let moved = begin_placing(&owner, 2, Duration::from_secs(1)).await;
        // A read answers at once, from the state before the transition ends, and so does a
        // change of the record.
        assert_eq!(owner.peek(|m| m.clone()).await, Some(vec![1]));
        assert_eq!(
            owner
                .record(|r| {
                    *r += 1;
                    *r
                })
                .await,
            Some(1)
        );
        assert_eq!(Instant::now() - t0, Duration::ZERO);
        // A step waits and sees the transition's result.
        assert_eq!(owner.with(|m| m.clone()).await, Some(vec![1, 2]));
        assert_eq!(Instant::now() - t0, Duration::from_secs(1));
        assert_eq!(moved.await.ok(), Some(t0 + Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn transitions_run_one_at_a_time_and_in_order() {
        let owner = Owner::<u8, Vec<u32>>::spawn(0, None);
        let mut waits = Vec::new();
        for v in 0..3 {
            let o = owner.clone();
            waits.push(tokio::spawn(async move {
                o.transition(move |s| {
                    // Only the first finds nothing placed.
                    if s.media.is_some() && v > 0 {
                        return None;
                    }
                    Some(placing(v, Duration::from_millis(100)))
                })
                .await
            }));
            tokio::task::yield_now().await;
        }
        for w in waits {
            assert!(w.await.is_ok());
        }
        assert_eq!(owner.with(|m| m.clone()).await, Some(vec![0]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_close_during_a_transition_is_seen_by_its_result() {
        let owner = Owner::<u8, Vec<u32>>::spawn(0, None);
        let moved = begin_placing(&owner, 7, Duration::from_secs(1)).await;
        assert_eq!(
            owner.slot(false, Slot::close).await.flatten(),
            Some((0, None))
        );
        assert!(moved.await.is_ok());
        let after = owner
            .slot(true, |s| (s.record.is_none(), s.media.clone()))
            .await;
        assert_eq!(after, Some((true, None)));
        // Nothing more of the session is seen; a second close finds nothing.
        assert_eq!(owner.record(|r| *r).await, None);
        assert_eq!(owner.slot(false, Slot::close).await.flatten(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transition_reports_after_the_last_handle_is_gone() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let owner = Owner::<u8, Vec<u32>>::spawn(0, None);
        let applied = Arc::new(AtomicBool::new(false));
        let seen = applied.clone();
        let (began, started) = oneshot::channel();
        let start = move |_: &mut Slot<u8, Vec<u32>>| -> Option<Work<u8, Vec<u32>>> {
            let _ = began.send(());
            Some(Box::pin(async move {
                sleep(Duration::from_secs(1)).await;
                let step: Step<u8, Vec<u32>> =
                    Box::new(move |_| seen.store(true, Ordering::SeqCst));
                step
            }))
        };
        let mover = owner.clone();
        let moved = tokio::spawn(async move { mover.transition(start).await });
        assert!(started.await.is_ok());
        // The caller gives up and every handle goes.
        moved.abort();
        drop(owner);
        sleep(Duration::from_secs(2)).await;
        // Its result was applied by the owner (work releasing what it made relies on it).
        assert!(applied.load(Ordering::SeqCst));
    }
}
