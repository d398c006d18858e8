//! A worker's loop: wait for a datagram, a command, a packet from another worker or a timer;
//! then route and feed datagrams (fan-out happens as each RTP packet is read), write each
//! subscriber's batch of packets, run due timers, drain every touched connection once, and send
//! everything with as few system calls as the destinations allow.

use bytes::BytesMut;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::conn::Conn;
use super::handle::{take_pending, PENDING};
use super::handle::{ConnKey, Ctl, Delivery, Op, WorkerHandle};
use super::io::{Io, IoSettings};
use super::routes::{Route, Routes};
use super::timers::Timers;
use crate::media::COUNTERS;
use kms_client::wire::{ErrorCode, RpcError};

/// Receive batches per loop turn before the rest of the turn runs.
const READS_PER_TURN: usize = 8;
/// Packets taken from the cross-worker queue per loop turn.
const CROSS_PER_TURN: usize = 1024;
const HOUSEKEEPING: Duration = Duration::from_secs(1);

pub struct Worker {
    handle: WorkerHandle,
    socket: std::net::UdpSocket,
    io: IoSettings,
    ctl: mpsc::Receiver<Ctl>,
    media: mpsc::Receiver<Delivery>,
}

struct State {
    handle: WorkerHandle,
    /// Boxed: a connection is about 9 KB (most of it `rtc`'s), and a table of them inline
    /// would keep its spare buckets, and both tables while it grows, at that size.
    conns: HashMap<ConnKey, Box<Conn>>,
    routes: Routes<ConnKey>,
    timers: Timers<ConnKey>,
    dirty: Vec<ConnKey>,
    out: Vec<(SocketAddr, BytesMut)>,
}

impl Worker {
    pub fn new(
        handle: WorkerHandle,
        socket: std::net::UdpSocket,
        io: IoSettings,
        ctl: mpsc::Receiver<Ctl>,
        media: mpsc::Receiver<Delivery>,
    ) -> Self {
        Self {
            handle,
            socket,
            io,
            ctl,
            media,
        }
    }

    /// Runs on the worker's own thread until `cancel`; `started` hears once its runtime and
    /// socket are up (or why they are not).
    pub fn run(
        self,
        cancel: CancellationToken,
        started: std::sync::mpsc::SyncSender<Result<(), String>>,
    ) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = started.send(Err(format!("runtime: {e}")));
                return;
            }
        };
        rt.block_on(self.serve(cancel, started));
    }

    async fn serve(
        self,
        cancel: CancellationToken,
        started: std::sync::mpsc::SyncSender<Result<(), String>>,
    ) {
        let Self {
            handle,
            socket,
            io: settings,
            mut ctl,
            mut media,
        } = self;
        let mut io = match Io::new(socket, settings.gso) {
            Ok(io) => io,
            Err(e) => {
                let _ = started.send(Err(format!("socket: {e}")));
                return;
            }
        };
        let _ = started.send(Ok(()));
        tracing::debug!(
            worker = handle.index(),
            addr = %handle.0.local,
            gso = io.gso_segments(),
            "media worker started"
        );
        PENDING.with(|p| *p.borrow_mut() = Some((handle.index(), Vec::new())));
        let mut st = State {
            handle: handle.clone(),
            conns: HashMap::new(),
            routes: Routes::default(),
            timers: Timers::default(),
            dirty: Vec::new(),
            out: Vec::new(),
        };
        let mut housekeeping = Instant::now() + HOUSEKEEPING;
        loop {
            let deadline = st
                .timers
                .next_deadline()
                .map_or(housekeeping, |t| t.min(housekeeping));
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                c = ctl.recv() => match c {
                    Some(c) => {
                        st.on_ctl(c);
                        while let Ok(c) = ctl.try_recv() {
                            st.on_ctl(c);
                        }
                    }
                    None => break,
                },
                r = io.socket.readable() => {
                    if let Err(e) = r {
                        tracing::error!(%e, "media worker socket");
                        break;
                    }
                    let now = Instant::now();
                    for _ in 0..READS_PER_TURN {
                        match io.recv_batch(|from, d| st.on_datagram(now, from, d)) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e) => {
                                tracing::debug!(%e, "recv");
                                break;
                            }
                        }
                    }
                }
                Some(d) = media.recv() => {
                    let mut batch = vec![d];
                    while batch.len() < CROSS_PER_TURN {
                        match media.try_recv() {
                            Ok(d) => batch.push(d),
                            Err(_) => break,
                        }
                    }
                    PENDING.with(|p| {
                        if let Some((_, q)) = p.borrow_mut().as_mut() {
                            q.extend(batch);
                        }
                    });
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            let now = Instant::now();
            st.turn(now, &mut io);
            handle.0.stats.turns.fetch_add(1, Ordering::Relaxed);
            if now >= housekeeping {
                st.housekeeping(now);
                st.send(&mut io);
                housekeeping = now + HOUSEKEEPING;
            }
        }
        let keys: Vec<ConnKey> = st.conns.keys().copied().collect();
        let now = Instant::now();
        for k in keys {
            st.close(k, now);
        }
        st.send(&mut io);
        PENDING.with(|p| *p.borrow_mut() = None);
    }
}

impl State {
    fn touch(&mut self, key: ConnKey) {
        if let Some(c) = self.conns.get_mut(&key) {
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    fn on_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let stats = &self.handle.0.stats;
        stats.datagrams_in.fetch_add(1, Ordering::Relaxed);
        stats
            .bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        match self.routes.route(from, data) {
            Route::Conn(k) => {
                match guarded(&mut self.conns, k, |c| c.handle_datagram(now, from, data)) {
                    Ok(Some(accepted)) => {
                        if !accepted {
                            stats.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        self.touch(k);
                    }
                    Ok(None) => {}
                    Err(k) => self.fail(k),
                }
            }
            Route::UnknownUfrag => {
                stats.unknown_ufrag.fetch_add(1, Ordering::Relaxed);
            }
            Route::UnknownSource => {
                stats.unknown_source.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn on_ctl(&mut self, c: Ctl) {
        let now = Instant::now();
        match c {
            Ctl::Add(init) => {
                let conn = Box::new(Conn::new(*init));
                let key = conn.key;
                self.routes.add(key, &conn.ufrag);
                self.conns.insert(key, conn);
                self.handle
                    .0
                    .stats
                    .connections
                    .fetch_add(1, Ordering::Relaxed);
                COUNTERS.peer_connections.fetch_add(1, Ordering::Relaxed);
                self.touch(key);
            }
            Ctl::Op(key, op) => {
                if !self.conns.contains_key(&key) {
                    refuse(op);
                } else if guarded(&mut self.conns, key, |c| c.handle_op(op, now)).is_err() {
                    self.fail(key);
                } else {
                    self.touch(key);
                }
            }
            Ctl::Close(key, done) => {
                self.close(key, now);
                let _ = done.send(());
            }
            Ctl::Pli(key, receiver, ssrc) => {
                match guarded(&mut self.conns, key, |c| c.send_pli(now, receiver, ssrc)) {
                    Ok(Some(())) => self.touch(key),
                    Ok(None) => {}
                    Err(k) => self.fail(k),
                }
            }
        }
    }

    fn close(&mut self, key: ConnKey, now: Instant) {
        let Some(mut c) = self.conns.remove(&key) else {
            return;
        };
        let out = &mut self.out;
        if catch_unwind(AssertUnwindSafe(|| {
            c.close(now);
            c.drain_writes(out);
        }))
        .is_err()
        {
            self.handle.0.stats.panics.fetch_add(1, Ordering::Relaxed);
        }
        self.forget(key);
    }

    /// A connection whose code panicked: it alone is dropped (its endpoint reports an error and
    /// answers no more operations); every other connection of the worker carries on.
    fn fail(&mut self, key: ConnKey) {
        self.handle.0.stats.panics.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            worker = self.handle.index(),
            "a peer connection failed; dropped"
        );
        if let Some(mut c) = self.conns.remove(&key) {
            let _ = catch_unwind(AssertUnwindSafe(|| c.fail()));
        }
        self.forget(key);
    }

    /// Removes what the worker keeps for a connection that is gone.
    fn forget(&mut self, key: ConnKey) {
        self.routes.remove(key);
        self.timers.cancel(key);
        self.dirty.retain(|k| *k != key);
        self.handle
            .0
            .stats
            .connections
            .fetch_sub(1, Ordering::Relaxed);
        COUNTERS.peer_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Everything a loop turn owes: deliveries, timers, draining, sending.
    fn turn(&mut self, now: Instant, io: &mut Io) {
        for _ in 0..4 {
            let mut pending = take_pending();
            if !pending.is_empty() {
                // One subscriber's packets back to back: written together, drained once.
                pending.sort_by_key(|d| d.conn);
                for d in pending {
                    let key = d.conn;
                    let out = &mut self.out;
                    let start = out.len();
                    match guarded(&mut self.conns, key, |c| {
                        c.write_rtp(now, d.sender, d.packet, out)
                    }) {
                        Ok(Some(true)) => self.touch(key),
                        Ok(_) => {}
                        Err(k) => {
                            self.out.truncate(start);
                            self.fail(k);
                        }
                    }
                }
            }
            while let Some(k) = self.timers.pop_due(now) {
                self.handle.0.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                match guarded(&mut self.conns, k, |c| c.handle_timeout(now)) {
                    Ok(Some(())) => self.touch(k),
                    Ok(None) => {}
                    Err(k) => self.fail(k),
                }
            }
            if self.dirty.is_empty() {
                break;
            }
            for k in std::mem::take(&mut self.dirty) {
                let start = self.out.len();
                let out = &mut self.out;
                let drained = guarded(&mut self.conns, k, |c| {
                    c.dirty = false;
                    c.drain(now);
                    c.drain_writes(out);
                    c.poll_timeout()
                });
                match drained {
                    Ok(Some(Some(at))) => self.timers.schedule(k, at),
                    Ok(_) => {}
                    Err(k) => {
                        self.out.truncate(start);
                        self.fail(k);
                        continue;
                    }
                }
                // Whatever we send to is a source we accept from (answers to our checks).
                let mut last = None;
                for (dest, _) in &self.out[start..] {
                    if last != Some(*dest) {
                        self.routes.learn(k, *dest);
                        last = Some(*dest);
                    }
                }
            }
            self.send(io);
        }
    }

    fn send(&mut self, io: &mut Io) {
        if self.out.is_empty() {
            return;
        }
        let bytes: u64 = self.out.iter().map(|(_, b)| b.len() as u64).sum();
        let r = io.send_all(&mut self.out);
        let stats = &self.handle.0.stats;
        stats.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        stats
            .datagrams_out
            .fetch_add(r.datagrams, Ordering::Relaxed);
        stats.send_calls.fetch_add(r.calls, Ordering::Relaxed);
        stats.send_errors.fetch_add(r.errors, Ordering::Relaxed);
    }

    fn housekeeping(&mut self, now: Instant) {
        for c in self.conns.values_mut() {
            c.tick(now, &mut self.out);
        }
        let stats = &self.handle.0.stats;
        let (_, ufrags, addrs) = self.routes.sizes();
        stats.route_entries.store(ufrags + addrs, Ordering::Relaxed);
        stats
            .timer_entries
            .store(self.timers.sizes().0, Ordering::Relaxed);
        if let Some(us) = thread_cpu_micros() {
            stats.cpu_micros.store(us, Ordering::Relaxed);
        }
    }
}

/// Runs `f` on connection `key`: `Ok(None)` when it is gone, `Err(key)` when `f` panicked (a
/// malformed packet tripping an assertion deep in the stack must not take the worker down).
fn guarded<C, R>(
    conns: &mut HashMap<ConnKey, C>,
    key: ConnKey,
    f: impl FnOnce(&mut C) -> R,
) -> Result<Option<R>, ConnKey> {
    let Some(c) = conns.get_mut(&key) else {
        return Ok(None);
    };
    catch_unwind(AssertUnwindSafe(|| f(c)))
        .map(Some)
        .map_err(|_| key)
}

/// Answers an operation for a connection that is gone.
fn refuse(op: Op) {
    let gone = || RpcError::new(ErrorCode::MediaObjectNotFound, "Endpoint has been released");
    match op {
        Op::ProcessOffer(_, r) | Op::GenerateOffer(_, r) | Op::ProcessAnswer(_, r) => {
            let _ = r.send(Err(gone()));
        }
        Op::GatherCandidates(r) | Op::AddIceCandidate(_, r) => {
            let _ = r.send(Err(gone()));
        }
        Op::Stats(_, r) => {
            let _ = r.send(Err(gone()));
        }
    }
}

/// This thread's CPU time (from the scheduler's own accounting).
fn thread_cpu_micros() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_connection_is_reported_and_the_others_are_untouched() {
        let mut conns: HashMap<ConnKey, u32> = HashMap::from([(1, 10), (2, 20)]);
        assert_eq!(guarded(&mut conns, 1, |c| *c + 1), Ok(Some(11)));
        assert_eq!(guarded(&mut conns, 9, |c| *c), Ok(None));
        let r = guarded(&mut conns, 2, |c| -> u32 {
            if *c == 20 {
                panic!("malformed packet");
            }
            *c
        });
        assert_eq!(r, Err(2));
        assert_eq!(guarded(&mut conns, 1, |c| *c), Ok(Some(10)));
    }
}
