//! A headless OpenVidu participant: the browser protocol over a WebSocket (ping, joinRoom,
//! publishVideo, receiveVideoFrom, onIceCandidate, …) with webrtc-rs peers for media. Responses
//! are matched by id; notifications are kept; `iceCandidate` notifications go straight to the
//! peer connection they belong to (by `senderConnectionId`, as the browser routes them).

use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit};

use crate::peer::TestPeer;

/// Unread notifications a bot keeps at most.
pub const MAX_QUEUED_NOTIFICATIONS: usize = 65_536;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;
type Peers = Arc<Mutex<HashMap<String, Arc<dyn PeerConnection>>>>;

pub struct Bot {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    peers: Peers,
    next_id: u64,
    notifications: mpsc::Receiver<Value>,
    /// Notifications dropped because [`MAX_QUEUED_NOTIFICATIONS`] were waiting unread.
    pub dropped_notifications: Arc<std::sync::atomic::AtomicU64>,
    /// Notifications seen so far (by `wait_for`).
    pub seen: Vec<Value>,
    pub connection_id: String,
    pub rpc_session: String,
    pub session: String,
    reader: tokio::task::JoinHandle<()>,
    pinger: Option<tokio::task::JoinHandle<()>>,
}

/// `ws://host:port/openvidu?sessionId=…` from a token, as openvidu-browser derives it.
pub fn ws_url(token: &str) -> anyhow::Result<String> {
    let (scheme, rest) = token
        .split_once("://")
        .ok_or_else(|| anyhow::anyhow!("token not valid"))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let session = rest
        .split("sessionId=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap_or_default();
    Ok(format!("{scheme}://{host}/openvidu?sessionId={session}"))
}

impl Bot {
    /// Opens the socket for `token` (does not join).
    pub async fn open(token: &str) -> anyhow::Result<Self> {
        Self::open_url(&ws_url(token)?).await
    }

    pub async fn open_url(url: &str) -> anyhow::Result<Self> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        // Bounded: a bot that stops reading its notifications (or a server flooding it) costs at
        // most this many; the rest are counted and dropped, while responses keep flowing.
        let (note_tx, notifications) = mpsc::channel(MAX_QUEUED_NOTIFICATIONS);
        let dropped_notifications = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let dropped = dropped_notifications.clone();
        let pending: Pending = Arc::default();
        let peers: Peers = Arc::default();
        tokio::spawn(async move {
            while let Some(t) = out_rx.recv().await {
                if sink.send(Message::Text(t.into())).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let (p, pr) = (pending.clone(), peers.clone());
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(t) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&t) else {
                    continue;
                };
                if v.get("method").is_some() {
                    if v["method"] == "iceCandidate" {
                        let pc = v["params"]["senderConnectionId"]
                            .as_str()
                            .and_then(|s| pr.lock().get(s).cloned());
                        if let Some(pc) = pc {
                            let c = RTCIceCandidateInit {
                                candidate: v["params"]["candidate"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .into(),
                                sdp_mid: v["params"]["sdpMid"].as_str().map(str::to_string),
                                sdp_mline_index: v["params"]["sdpMLineIndex"]
                                    .as_u64()
                                    .map(|n| n as u16),
                                ..Default::default()
                            };
                            tokio::spawn(async move {
                                let _ = pc.add_ice_candidate(c).await;
                            });
                        }
                    }
                    if let Err(mpsc::error::TrySendError::Full(_)) = note_tx.try_send(v) {
                        dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                } else if let Some(id) = v["id"].as_u64() {
                    if let Some(tx) = p.lock().remove(&id) {
                        let _ = tx.send(v);
                    }
                }
            }
        });
        Ok(Self {
            out,
            pending,
            peers,
            next_id: 0,
            notifications,
            dropped_notifications,
            seen: Vec::new(),
            connection_id: String::new(),
            rpc_session: String::new(),
            session: String::new(),
            reader,
            pinger: None,
        })
    }

    /// The whole response frame.
    pub async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let mut frame = json!({"jsonrpc": "2.0", "method": method, "id": id});
        if !params.is_null() {
            frame["params"] = params;
        }
        self.out.send(frame.to_string())?;
        Ok(tokio::time::timeout(Duration::from_secs(15), rx).await??)
    }

    /// `result` of a call that must succeed.
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let r = self.request(method, params.clone()).await?;
        anyhow::ensure!(r.get("error").is_none(), "{method} failed: {r}");
        Ok(r["result"].clone())
    }

    /// `error.code` of a call that must fail.
    pub async fn fails(&mut self, method: &str, params: Value) -> anyhow::Result<i64> {
        let r = self.request(method, params.clone()).await?;
        r["error"]["code"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("{method} {params} did not fail: {r}"))
    }

    /// Sends pings every 5 s as the browser does (the first with the interval).
    pub fn start_pinging(&mut self) {
        let out = self.out.clone();
        self.pinger = Some(tokio::spawn(async move {
            let mut n = 1_000_000u64;
            let _ = out.send(
                json!({"jsonrpc":"2.0","method":"ping","params":{"interval":5000},"id":n})
                    .to_string(),
            );
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                n += 1;
                if out
                    .send(json!({"jsonrpc":"2.0","method":"ping","id":n}).to_string())
                    .is_err()
                {
                    break;
                }
            }
        }));
    }

    /// `joinRoom` with the token (as openvidu-browser sends it).
    pub async fn join(&mut self, token: &str, name: &str) -> anyhow::Result<Value> {
        let session = token
            .split("sessionId=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .unwrap_or_default()
            .to_string();
        let r = self
            .call(
                "joinRoom",
                json!({"token": token, "session": session, "platform": "rtcpool-bot", "metadata": json!({"clientData": name}).to_string(), "secret": "", "sdkVersion": "2.32.2", "recorder": false, "stt": false}),
            )
            .await?;
        self.connection_id = r["id"].as_str().unwrap_or_default().to_string();
        self.rpc_session = r["sessionId"].as_str().unwrap_or_default().to_string();
        self.session = session;
        Ok(r)
    }

    /// Publishes synthetic VP8 + Opus; returns the peer and the stream id.
    pub async fn publish(&mut self) -> anyhow::Result<(TestPeer, String)> {
        let peer = TestPeer::publisher().await?;
        self.peers
            .lock()
            .insert(self.connection_id.clone(), peer.pc.clone());
        self.trickle(&peer, self.connection_id.clone());
        let offer = peer.create_offer().await?;
        let r = self
            .call(
                "publishVideo",
                json!({"sdpOffer": offer, "hasAudio": true, "hasVideo": true, "doLoopback": false, "audioActive": true, "videoActive": true, "typeOfVideo": "CAMERA", "frameRate": 30, "videoDimensions": "{\"width\":640,\"height\":480}"}),
            )
            .await?;
        peer.set_answer(r["sdpAnswer"].as_str().unwrap_or_default())
            .await?;
        Ok((peer, r["id"].as_str().unwrap_or_default().to_string()))
    }

    /// Subscribes to `stream_id` (client offer); returns the receiving peer.
    pub async fn subscribe(&mut self, stream_id: &str) -> anyhow::Result<TestPeer> {
        self.receive("receiveVideoFrom", json!({"sender": stream_id}), stream_id)
            .await
    }

    /// `reconnectStream` of someone else's stream with a fresh receiving peer.
    pub async fn resubscribe(&mut self, stream_id: &str) -> anyhow::Result<TestPeer> {
        self.receive("reconnectStream", json!({"stream": stream_id}), stream_id)
            .await
    }

    /// `reconnectStream` of our own stream with a fresh publishing peer (openvidu-browser sends
    /// the offer as `sdpString` when its publisher's ICE fails).
    pub async fn republish(&mut self, stream_id: &str) -> anyhow::Result<TestPeer> {
        let peer = TestPeer::publisher().await?;
        let r = self
            .negotiate(
                &peer,
                self.connection_id.clone(),
                "reconnectStream",
                json!({"stream": stream_id}),
                "sdpString",
            )
            .await?;
        anyhow::ensure!(
            r["id"] == json!(stream_id),
            "publisher reconnection answers with the same stream: {r}"
        );
        Ok(peer)
    }

    /// A receiving peer for `stream_id` negotiated through `method` (client offer).
    async fn receive(
        &mut self,
        method: &str,
        params: Value,
        stream_id: &str,
    ) -> anyhow::Result<TestPeer> {
        let publisher = stream_id
            .rfind("con_")
            .map(|i| stream_id[i..].to_string())
            .unwrap_or_default();
        let peer = TestPeer::subscriber().await?;
        self.negotiate(&peer, publisher, method, params, "sdpOffer")
            .await?;
        Ok(peer)
    }

    /// Routes `peer`'s ICE as `endpoint_name`, sends its offer in `params[offer_key]` with
    /// `method`, applies the answer; returns the result.
    async fn negotiate(
        &mut self,
        peer: &TestPeer,
        endpoint_name: String,
        method: &str,
        mut params: Value,
        offer_key: &str,
    ) -> anyhow::Result<Value> {
        self.peers
            .lock()
            .insert(endpoint_name.clone(), peer.pc.clone());
        self.trickle(peer, endpoint_name);
        params[offer_key] = Value::from(peer.create_offer().await?);
        let _ = peer.stats.requested.set(std::time::Instant::now());
        let r = self.call(method, params).await?;
        let _ = peer.stats.answered.set(std::time::Instant::now());
        peer.set_answer(r["sdpAnswer"].as_str().unwrap_or_default())
            .await?;
        Ok(r)
    }

    /// Sends this peer's candidates as `onIceCandidate {endpointName}`.
    fn trickle(&self, peer: &TestPeer, endpoint_name: String) {
        trickle_to(&self.out, peer, endpoint_name);
    }

    /// Waits for a notification `method` whose params satisfy `f`.
    pub async fn wait_for(
        &mut self,
        method: &str,
        f: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        if let Some(v) = self
            .seen
            .iter()
            .find(|v| v["method"] == method && f(&v["params"]))
        {
            return Ok(v.clone());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let v = tokio::time::timeout_at(deadline, self.notifications.recv())
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "no {method} notification; saw {:?}",
                        self.seen
                            .iter()
                            .map(|v| v["method"].clone())
                            .collect::<Vec<_>>()
                    )
                })?
                .ok_or_else(|| anyhow::anyhow!("socket closed"))?;
            self.seen.push(v.clone());
            if v["method"] == method && f(&v["params"]) {
                return Ok(v);
            }
        }
    }

    /// `reconnectStream` of someone else's stream, in the background: the bot goes on meanwhile
    /// (signaling holds the request until the stream's publisher is back, as openvidu-browser's
    /// concurrent reconnections expect).
    pub fn spawn_resubscribe(
        &self,
        stream_id: &str,
    ) -> tokio::task::JoinHandle<anyhow::Result<TestPeer>> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(5_000_000);
        let (out, pending, peers) = (self.out.clone(), self.pending.clone(), self.peers.clone());
        let stream_id = stream_id.to_string();
        tokio::spawn(async move {
            let publisher = stream_id
                .rfind("con_")
                .map(|i| stream_id[i..].to_string())
                .unwrap_or_default();
            let peer = TestPeer::subscriber().await?;
            peers.lock().insert(publisher.clone(), peer.pc.clone());
            trickle_to(&out, &peer, publisher);
            let offer = peer.create_offer().await?;
            let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            pending.lock().insert(id, tx);
            let frame = json!({"jsonrpc": "2.0", "method": "reconnectStream", "id": id, "params": {"stream": stream_id, "sdpOffer": offer}});
            out.send(frame.to_string())?;
            let r = tokio::time::timeout(Duration::from_secs(20), rx).await??;
            anyhow::ensure!(r.get("error").is_none(), "reconnectStream failed: {r}");
            peer.set_answer(r["result"]["sdpAnswer"].as_str().unwrap_or_default())
                .await?;
            Ok(peer)
        })
    }

    /// Whether the socket closed (the server closed it, or it dropped).
    pub fn is_closed(&self) -> bool {
        self.reader.is_finished()
    }

    /// Whether a notification `method` has arrived (reads what is queued).
    pub fn seen_method(&mut self, method: &str) -> bool {
        while let Ok(v) = self.notifications.try_recv() {
            self.seen.push(v);
        }
        self.seen.iter().any(|v| v["method"] == method)
    }

    /// The next notification, if one arrives within `within`.
    pub async fn next_notification(&mut self, within: Duration) -> Option<Value> {
        tokio::time::timeout(within, self.notifications.recv())
            .await
            .ok()?
    }

    /// Stops reading the socket but keeps it open (a client that no longer reads).
    pub fn stop_reading(&mut self) {
        self.reader.abort();
        if let Some(p) = self.pinger.take() {
            p.abort();
        }
    }

    /// Drops the socket without leaving (a network failure).
    pub fn drop_socket(&mut self) {
        self.reader.abort();
        if let Some(p) = self.pinger.take() {
            p.abort();
        }
        let (dead, _) = mpsc::unbounded_channel();
        self.out = dead;
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(p) = self.pinger.take() {
            p.abort();
        }
    }
}

fn rand_u16() -> u16 {
    let b = *uuid::Uuid::new_v4().as_bytes();
    u16::from_le_bytes([b[0], b[1]])
}

/// Sends `peer`'s candidates on `out` as `onIceCandidate {endpointName}`.
fn trickle_to(out: &mpsc::UnboundedSender<String>, peer: &TestPeer, endpoint_name: String) {
    let Some(mut rx) = peer.candidates.lock().take() else {
        return;
    };
    let out = out.clone();
    tokio::spawn(async move {
        let mut n = 2_000_000u64 + u64::from(rand_u16());
        while let Some(c) = rx.recv().await {
            n += 1;
            let f = json!({"jsonrpc":"2.0","method":"onIceCandidate","id":n,"params":{"endpointName": endpoint_name, "candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_mline_index}});
            if out.send(f.to_string()).is_err() {
                break;
            }
        }
    });
}
