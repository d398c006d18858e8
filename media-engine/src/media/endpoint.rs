//! WebRtcEndpoint's control-side handle: the peer connection itself lives on a media worker
//! (`worker/conn.rs`); operations travel there over the worker's channel and wait for the reply.

use kms_client::wire::complex::{IceCandidate, OfferOptions};
use kms_client::wire::{ErrorCode, RpcError};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::factory::{PcFactory, Role};
use super::flow::EventTx;
use super::hub::Ports;
use super::worker::handle::{
    new_credentials, ConnInit, ConnKey, Ctl, Op, Reply, SharedSnapshot, WorkerHandle,
};

pub use super::worker::Snapshot;

#[derive(Clone)]
pub struct EndpointHandle {
    worker: WorkerHandle,
    key: ConnKey,
    pub ports: Arc<Ports>,
    pub snapshot: SharedSnapshot,
}

impl EndpointHandle {
    /// Builds the peer connection and hands it to `worker`.
    pub fn spawn(
        id: String,
        factory: Arc<PcFactory>,
        worker: WorkerHandle,
        events: EventTx,
        parent: &CancellationToken,
    ) -> Result<Self, RpcError> {
        let ports = Ports::new();
        let snapshot = SharedSnapshot::default();
        let key = worker.new_key();
        let (ufrag, pwd) = new_credentials();
        // Built here, on the control side: the worker's loop only takes it over.
        let pc = factory
            .build(&ufrag, &pwd, Role::Both)
            .map_err(|e| {
                tracing::warn!(%e, "peer connection could not be built");
                RpcError::new(
                    ErrorCode::NotEnoughResources,
                    "Could not create the WebRTC endpoint",
                )
            })?
            .pc;
        let init = ConnInit {
            key,
            id,
            pc,
            ufrag,
            pwd,
            factory,
            worker: worker.clone(),
            ports: ports.clone(),
            events,
            snapshot: snapshot.clone(),
            cancel: parent.child_token(),
        };
        if !worker.try_send(Ctl::Add(Box::new(init))) {
            return Err(RpcError::new(
                ErrorCode::NotEnoughResources,
                "Media worker busy: could not create the WebRTC endpoint",
            ));
        }
        Ok(Self {
            worker,
            key,
            ports,
            snapshot,
        })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Op) -> Result<T, RpcError> {
        let (tx, rx) = oneshot::channel();
        if !self.worker.send(Ctl::Op(self.key, make(tx))).await {
            return Err(gone());
        }
        rx.await.map_err(|_| gone())?
    }

    pub async fn process_offer(&self, offer: String) -> Result<String, RpcError> {
        self.ask(|r| Op::ProcessOffer(offer, r)).await
    }

    pub async fn generate_offer(&self, o: OfferOptions) -> Result<String, RpcError> {
        self.ask(|r| Op::GenerateOffer(o, r)).await
    }

    pub async fn process_answer(&self, answer: String) -> Result<String, RpcError> {
        self.ask(|r| Op::ProcessAnswer(answer, r)).await
    }

    pub async fn gather_candidates(&self) -> Result<(), RpcError> {
        self.ask(Op::GatherCandidates).await
    }

    pub async fn add_ice_candidate(&self, c: IceCandidate) -> Result<(), RpcError> {
        self.ask(|r| Op::AddIceCandidate(c, r)).await
    }

    /// Kurento's `getStats`: the connection's RTP streams, candidate pair and transport.
    pub async fn stats(
        &self,
        kind: Option<super::MediaKind>,
    ) -> Result<serde_json::Value, RpcError> {
        self.ask(|r| Op::Stats(kind, r)).await
    }

    /// Closes the peer connection and ends every task of the endpoint; waits for it.
    pub async fn close(&self) {
        self.ports.disconnect_all();
        let (tx, rx) = oneshot::channel();
        if self.worker.send(Ctl::Close(self.key, tx)).await {
            let _ = rx.await;
        }
    }
}

fn gone() -> RpcError {
    RpcError::new(ErrorCode::MediaObjectNotFound, "Endpoint has been released")
}
