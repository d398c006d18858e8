//! Media workers: a few threads (one per core by default), each owning one UDP socket, the
//! `rtc` peer connections placed on it, a timer heap and the routing tables. A pipeline lives on
//! one worker, so a packet fans out to its subscribers on the thread that received it; a
//! subscriber on another worker (a `connect` across pipelines) gets it through a bounded queue.
//! The control side (JSON-RPC) talks to workers over channels and never blocks their loop.

pub mod conn;
mod event_loop;
pub mod handle;
mod io;
pub mod routes;
pub mod stun;
pub mod timers;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::factory::PcFactory;
use crate::error::Error;
pub use handle::{
    new_credentials, ConnInit, ConnKey, Ctl, Delivery, Op, Reply, SharedSnapshot, Snapshot,
    WorkerHandle, WorkerShared, WorkerStats,
};
pub use io::IoSettings;

/// Packets waiting for another worker's subscribers; beyond this they are dropped (and the
/// subscriber asks for a keyframe).
const CROSS_QUEUE: usize = 4096;

/// Commands waiting for a worker (operations, releases, PLIs). Each JSON-RPC socket has at most
/// one operation in flight and PLIs are rate-limited, so this is only reached by a worker that
/// has fallen far behind; callers then wait (PLIs are dropped).
const CONTROL_QUEUE: usize = 1024;
/// How long a worker may take to build its runtime and register its socket.
const WORKER_START: std::time::Duration = std::time::Duration::from_secs(10);

/// A pipeline's seat on a worker, held for as long as the pipeline lives.
pub struct Placement {
    pub worker: WorkerHandle,
}

impl Drop for Placement {
    fn drop(&mut self) {
        self.worker.0.pipelines.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every worker of the engine.
pub struct Workers {
    pub factory: Arc<PcFactory>,
    workers: Vec<WorkerHandle>,
}

impl Workers {
    /// Binds `count` sockets on `rtc_ip` (ports `udp_port`, `udp_port + 1`, …, or OS-chosen when
    /// `udp_port` is 0) and starts a thread for each.
    pub fn start(
        factory: PcFactory,
        count: usize,
        udp_port: u16,
        io: IoSettings,
        cancel: &CancellationToken,
    ) -> Result<Self, Error> {
        let factory = Arc::new(factory);
        let mut workers = Vec::new();
        for index in 0..count.max(1) {
            let port = if udp_port == 0 {
                0
            } else {
                udp_port.saturating_add(index as u16)
            };
            let bind = SocketAddr::new(factory.rtc_ip, port);
            let socket = UdpSocket::bind(bind).map_err(|e| Error::Bind(bind, e))?;
            let local = socket.local_addr().map_err(|e| Error::Bind(bind, e))?;
            let advertised = SocketAddr::new(factory.public_ip.unwrap_or(local.ip()), local.port());
            let (ctl_tx, ctl_rx) = mpsc::channel(CONTROL_QUEUE);
            let (media_tx, media_rx) = mpsc::channel(CROSS_QUEUE);
            let shared = Arc::new(WorkerShared {
                index,
                local,
                advertised,
                stats: WorkerStats::default(),
                ctl: ctl_tx,
                media: media_tx,
                next_key: AtomicU64::new(1),
                pipelines: AtomicUsize::new(0),
            });
            let handle = WorkerHandle(shared);
            let run = event_loop::Worker::new(handle.clone(), socket, io, ctl_rx, media_rx);
            let cancel = cancel.clone();
            let (started, up) = std::sync::mpsc::sync_channel(1);
            std::thread::Builder::new()
                .name(format!("media-worker-{index}"))
                .spawn(move || run.run(cancel, started))
                .map_err(Error::Thread)?;
            // The engine is ready only with every worker serving: a worker that cannot start
            // stops the engine at start-up instead of leaving its share of pipelines unserved.
            match up.recv_timeout(WORKER_START) {
                Ok(Ok(())) => {}
                Ok(Err(why)) => return Err(Error::WorkerStart(index, why)),
                Err(_) => return Err(Error::WorkerStart(index, "did not start".into())),
            }
            workers.push(handle);
        }
        Ok(Self { factory, workers })
    }

    /// A seat for a new pipeline: the worker with the fewest pipelines.
    pub fn place(&self) -> Placement {
        let worker = self
            .workers
            .iter()
            .min_by_key(|w| {
                (
                    w.0.pipelines.load(Ordering::Relaxed),
                    w.0.stats.connections.load(Ordering::Relaxed),
                )
            })
            .cloned()
            .unwrap_or_else(|| self.workers[0].clone());
        worker.0.pipelines.fetch_add(1, Ordering::Relaxed);
        Placement { worker }
    }

    pub fn all(&self) -> &[WorkerHandle] {
        &self.workers
    }
}

/// Per-worker counters for `/health`.
pub fn health(workers: &[WorkerHandle]) -> serde_json::Value {
    let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
    workers
        .iter()
        .map(|w| {
            let s = &w.0.stats;
            serde_json::json!({
                "index": w.0.index,
                "udpPort": w.0.advertised.port(),
                "connections": s.connections.load(Ordering::Relaxed),
                "pipelines": w.0.pipelines.load(Ordering::Relaxed),
                "datagramsIn": r(&s.datagrams_in),
                "turns": r(&s.turns),
                "timeouts": r(&s.timeouts),
                "panics": r(&s.panics),
                "datagramsOut": r(&s.datagrams_out),
                "bytesIn": r(&s.bytes_in),
                "bytesOut": r(&s.bytes_out),
                "sendCalls": r(&s.send_calls),
                "sendErrors": r(&s.send_errors),
                "unknownSource": r(&s.unknown_source),
                "unknownUfrag": r(&s.unknown_ufrag),
                "refused": r(&s.refused),
                "crossDropped": r(&s.cross_dropped),
                "routeEntries": s.route_entries.load(Ordering::Relaxed),
                "timerEntries": s.timer_entries.load(Ordering::Relaxed),
                "cpuMicros": r(&s.cpu_micros),
            })
        })
        .collect()
}

/// Datagrams that reached no connection or that a connection refused, over every worker.
pub fn bad_datagrams(workers: &[WorkerHandle]) -> u64 {
    workers
        .iter()
        .map(|w| {
            let s = &w.0.stats;
            s.unknown_source.load(Ordering::Relaxed)
                + s.unknown_ufrag.load(Ordering::Relaxed)
                + s.refused.load(Ordering::Relaxed)
        })
        .sum()
}
