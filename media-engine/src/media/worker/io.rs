//! The worker's socket: batched receive (`recvmmsg`, and GRO where the kernel coalesces) and
//! batched send (UDP GSO for runs of equal-sized datagrams to one destination), both through
//! `quinn-udp`.

use bytes::BytesMut;
use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use std::io::IoSliceMut;
use std::net::SocketAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// How a worker uses its socket.
#[derive(Debug, Clone, Copy)]
pub struct IoSettings {
    /// UDP GSO for runs of datagrams to one destination.
    pub gso: bool,
}

/// Datagrams per receive call.
pub const BATCH: usize = 32;
/// Room per received datagram (or per GRO-coalesced train of them).
const SLOT: usize = 65_536;
/// Largest GSO payload the kernel takes in one call.
const GSO_MAX_BYTES: usize = 64_000;
/// Socket buffers asked for (the kernel may cap them at `rmem_max`/`wmem_max`).
const SOCKET_BUFFER: usize = 8 << 20;

pub struct Io {
    pub socket: UdpSocket,
    state: UdpSocketState,
    bufs: Vec<u8>,
    metas: Vec<RecvMeta>,
    gso: Vec<u8>,
    /// GSO off by configuration (to measure what it saves).
    gso_enabled: bool,
}

pub struct SendReport {
    pub datagrams: u64,
    pub calls: u64,
    pub errors: u64,
}

impl Io {
    pub fn new(socket: std::net::UdpSocket, gso_enabled: bool) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        let state = UdpSocketState::new((&socket).into())?;
        let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER);
        let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER);
        Ok(Self {
            socket: UdpSocket::from_std(socket)?,
            state,
            bufs: vec![0; BATCH * SLOT],
            metas: vec![RecvMeta::default(); BATCH],
            gso: Vec::with_capacity(GSO_MAX_BYTES),
            gso_enabled,
        })
    }

    /// Datagrams one GSO send may carry (1: no GSO). The kernel's answer can drop to 1 at the
    /// first send a device refuses.
    pub fn gso_segments(&self) -> usize {
        if self.gso_enabled {
            self.state.max_gso_segments()
        } else {
            1
        }
    }

    /// One batch of datagrams: calls `each(from, datagram)` for every one (GRO trains are split
    /// at their stride). `Ok(0)` when nothing is waiting.
    pub fn recv_batch(
        &mut self,
        mut each: impl FnMut(SocketAddr, &[u8]),
    ) -> std::io::Result<usize> {
        let Self {
            socket,
            state,
            bufs,
            metas,
            ..
        } = self;
        let n = match socket.try_io(Interest::READABLE, || {
            let mut iovs: Vec<IoSliceMut<'_>> =
                bufs.chunks_mut(SLOT).map(IoSliceMut::new).collect();
            state.recv((&*socket).into(), &mut iovs, metas)
        }) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut count = 0;
        for (i, meta) in metas.iter().take(n).enumerate() {
            let start = i * SLOT;
            let data = &bufs[start..start + meta.len.min(SLOT)];
            let stride = if meta.stride == 0 {
                data.len().max(1)
            } else {
                meta.stride
            };
            for d in data.chunks(stride) {
                each(meta.addr, d);
                count += 1;
            }
        }
        Ok(count.max(1))
    }

    /// Sends everything in `out` (in order), GSO-batching consecutive equal-sized datagrams to
    /// the same destination; empties `out`. A full socket buffer drops what does not fit.
    pub fn send_all(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>) -> SendReport {
        let mut report = SendReport {
            datagrams: 0,
            calls: 0,
            errors: 0,
        };
        let max_segments = self.gso_segments();
        let mut i = 0;
        while i < out.len() {
            let (dest, first) = &out[i];
            let size = first.len();
            let mut j = i + 1;
            if max_segments > 1 && size > 0 {
                let mut total = size;
                while j < out.len()
                    && j - i < max_segments
                    && out[j].0 == *dest
                    && out[j].1.len() <= size
                    && total + out[j].1.len() <= GSO_MAX_BYTES
                {
                    total += out[j].1.len();
                    let shorter = out[j].1.len() < size;
                    j += 1;
                    if shorter {
                        break; // only the last segment may be shorter
                    }
                }
            }
            let result = if j - i == 1 {
                self.state.try_send(
                    (&self.socket).into(),
                    &Transmit {
                        destination: *dest,
                        ecn: None,
                        contents: first,
                        segment_size: None,
                        src_ip: None,
                    },
                )
            } else {
                self.gso.clear();
                for (_, d) in &out[i..j] {
                    self.gso.extend_from_slice(d);
                }
                self.state.try_send(
                    (&self.socket).into(),
                    &Transmit {
                        destination: *dest,
                        ecn: None,
                        contents: &self.gso,
                        segment_size: Some(size),
                        src_ip: None,
                    },
                )
            };
            report.calls += 1;
            match result {
                Ok(()) => report.datagrams += (j - i) as u64,
                Err(_) => report.errors += (j - i) as u64,
            }
            i = j;
        }
        out.clear();
        report
    }
}
