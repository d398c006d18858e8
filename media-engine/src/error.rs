//! What the engine fails with, as one type: starting (certificate, sockets, worker threads) and
//! building its peer connections. Kurento clients never see it: what they are refused is the
//! protocol's JSON-RPC error (`kms_client::wire::RpcError`, the wire shape), written where the
//! request is answered.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rtc: {0}")]
    Rtc(#[from] rtc::shared::error::Error),
    #[error("DTLS certificate: {0}")]
    Certificate(String),
    #[error("crypto provider: {0}")]
    Crypto(String),
    #[error("cannot bind the media worker's UDP socket on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("cannot start a media worker: {0}")]
    Thread(std::io::Error),
    #[error("media worker {0} did not start: {1}")]
    WorkerStart(usize, String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
