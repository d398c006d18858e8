//! OpenVidu's webhook: lifecycle events POSTed as flat JSON (`event`, `sessionId`,
//! `uniqueSessionId`, `timestamp` and the event's fields, `events.rs`) to
//! `OPENVIDU_WEBHOOK_ENDPOINT` with `OPENVIDU_WEBHOOK_HEADERS`. Delivery never blocks or slows a
//! session: events go into a bounded queue (`WEBHOOK_QUEUE`; beyond it they are dropped), one
//! task sends them in order, each attempt limited to `WEBHOOK_TIMEOUT_MS`, three attempts with
//! backoff (OpenVidu makes one). Every outcome is counted (`/metrics`).

pub mod cdr;
pub mod events;
mod session;

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use rtcpool_config::SignalingSettings;

/// Attempts per event, and the wait before the second and third.
const BACKOFF: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(1000)];

#[derive(Default)]
pub struct WebhookStats {
    /// Delivered (a 2xx answer).
    pub sent: AtomicU64,
    /// Given up after every attempt failed (error, timeout or a non-2xx answer).
    pub failed: AtomicU64,
    /// Not queued: the queue was full.
    pub dropped: AtomicU64,
    /// Attempts beyond the first.
    pub retries: AtomicU64,
    /// CDR lines not written (queue full or a write error).
    pub cdr_failed: AtomicU64,
}

/// A cheap handle to queue events; a disabled webhook takes them and does nothing.
#[derive(Clone)]
pub struct Webhook {
    tx: Option<mpsc::Sender<Value>>,
    /// OpenVidu's CDR file (every event, whatever the webhook's filter).
    cdr: Option<mpsc::Sender<Value>>,
    wanted: Arc<BTreeSet<String>>,
    pub stats: Arc<WebhookStats>,
}

impl Webhook {
    /// Starts the sender task when `openvidu_webhook` is on, the CDR writer when `openvidu_cdr`
    /// is.
    pub fn start(s: &SignalingSettings, cancel: CancellationToken) -> Self {
        let stats = Arc::new(WebhookStats::default());
        let cdr = s.openvidu_cdr.then(|| {
            cdr::start(
                s.openvidu_cdr_path.clone(),
                s.webhook_queue,
                stats.clone(),
                cancel.clone(),
            )
        });
        let cdr = cdr.flatten();
        if !s.openvidu_webhook {
            return Self {
                tx: None,
                cdr,
                wanted: Arc::new(BTreeSet::new()),
                stats,
            };
        }
        let (tx, rx) = mpsc::channel(s.webhook_queue);
        let sender = Sender {
            endpoint: s.openvidu_webhook_endpoint.clone(),
            headers: s.webhook_headers(),
            timeout: Duration::from_millis(s.webhook_timeout_ms),
            stats: stats.clone(),
        };
        tokio::spawn(sender.run(rx, cancel));
        Self {
            tx: Some(tx),
            cdr,
            wanted: Arc::new(s.webhook_events()),
            stats,
        }
    }

    /// Whether events go anywhere (webhook or CDR): callers skip building them otherwise.
    pub fn enabled(&self) -> bool {
        self.tx.is_some() || self.cdr.is_some()
    }

    /// Queues `event` of `session_id` (created at `session_created_ms`) with `fields`, if it is
    /// one of the events asked for.
    pub fn emit(&self, event: &str, session: Option<(&str, u64)>, fields: Map<String, Value>) {
        if !self.enabled() {
            return;
        }
        let body = events::body(event, session, fields, crate::ids::now_ms());
        if let Some(cdr) = &self.cdr {
            if cdr.try_send(body.clone()).is_err() {
                self.stats.cdr_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Some(tx) = &self.tx else { return };
        if self.wanted.contains(event) && tx.try_send(body).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Sender {
    endpoint: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
    stats: Arc<WebhookStats>,
}

impl Sender {
    async fn run(self, mut rx: mpsc::Receiver<Value>, cancel: CancellationToken) {
        let client = match reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(%e, "webhook client could not start; events are dropped");
                return;
            }
        };
        loop {
            let body = tokio::select! {
                b = rx.recv() => match b { Some(b) => b, None => return },
                _ = cancel.cancelled() => return,
            };
            self.deliver(&client, &body).await;
        }
    }

    async fn deliver(&self, client: &reqwest::Client, body: &Value) {
        let mut last = String::new();
        for attempt in 0..=BACKOFF.len() {
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(BACKOFF[attempt - 1]).await;
            }
            let mut req = client.post(&self.endpoint).json(body);
            for (n, v) in &self.headers {
                req = req.header(n.as_str(), v.as_str());
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(r) => last = format!("answered {}", r.status().as_u16()),
                // Without the URL: the error's text would name the endpoint.
                Err(e) => last = describe(&e),
            }
        }
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        let event = body.get("event").and_then(Value::as_str).unwrap_or("");
        tracing::warn!(%event, cause = %last, "webhook event not delivered after 3 attempts");
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}
