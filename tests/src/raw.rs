//! A raw Kurento JSON-RPC socket for protocol tests: exact frames out, every frame in.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct RawSocket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Notifications that arrived while waiting for a response.
    pub events: Vec<Value>,
}

impl RawSocket {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
        Ok(Self {
            ws,
            next_id: 0,
            events: Vec::new(),
        })
    }

    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.ws.send(Message::Text(text.to_string().into())).await?;
        Ok(())
    }

    /// The next frame that is not an event (events are kept in `self.events`).
    pub async fn next_response(&mut self) -> anyhow::Result<Value> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("socket closed"))??;
            let Message::Text(t) = msg else { continue };
            let v: Value = serde_json::from_str(&t)?;
            if v.get("method").is_some() {
                self.events.push(v);
            } else {
                return Ok(v);
            }
        }
    }

    /// Sends `{"jsonrpc":"2.0","method":m,"params":p,"id":n}` and returns the whole response.
    pub async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({"jsonrpc": "2.0", "method": method, "id": id});
        if !params.is_null() {
            req["params"] = params;
        }
        self.send_text(&req.to_string()).await?;
        let r = self.next_response().await?;
        anyhow::ensure!(
            r["id"] == json!(id),
            "response id {} for request {id}",
            r["id"]
        );
        Ok(r)
    }

    /// `result` of a request that must succeed.
    pub async fn ok(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let r = self.request(method, params.clone()).await?;
        anyhow::ensure!(r.get("error").is_none(), "{method} {params} failed: {r}");
        Ok(r["result"].clone())
    }

    /// Creates an element of `kind` in `pipeline`; returns its id.
    pub async fn create_element(&mut self, kind: &str, pipeline: &Value) -> anyhow::Result<Value> {
        let params = json!({"type": kind, "constructorParams": {"mediaPipeline": pipeline}});
        Ok(self.ok("create", params).await?["value"].clone())
    }

    /// `error.code` of a request that must fail.
    pub async fn err_code(&mut self, method: &str, params: Value) -> anyhow::Result<i64> {
        let r = self.request(method, params.clone()).await?;
        r["error"]["code"]
            .as_i64()
            .ok_or_else(|| anyhow::anyhow!("{method} {params} did not fail: {r}"))
    }

    /// Waits until an event of `kind` on `object` has arrived.
    pub async fn wait_event(&mut self, object: &str, kind: &str) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.events.iter().position(|e| {
                e["params"]["value"]["object"] == json!(object)
                    && e["params"]["value"]["type"] == json!(kind)
            }) {
                return Ok(self.events.remove(i));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            anyhow::ensure!(!left.is_zero(), "no {kind} event on {object}");
            if let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(left, self.ws.next()).await
            {
                let v: Value = serde_json::from_str(&t)?;
                if v.get("method").is_some() {
                    self.events.push(v);
                }
            }
        }
    }

    /// Reads (and drops) frames until the server closes; returns its close code (`None` when the
    /// socket ended without a close frame, or nothing ended within `within`).
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(f)))) => return f.map(|f| u16::from(f.code)),
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    /// Sends one frame of `n` bytes of text (to hit size limits).
    pub async fn send_big(&mut self, n: usize) -> anyhow::Result<()> {
        self.send_text(&"x".repeat(n)).await
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
