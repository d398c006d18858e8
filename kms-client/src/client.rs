//! The cheap, cloneable handle applications hold.

use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::connection::{self, Command};
use crate::events::KmsEvent;
use crate::objects::{MediaPipeline, ServerManager};
use crate::wire::method::{
    CreateParams, InvokeParams, ObjectParams, SubscribeParams, UnsubscribeParams,
};
use crate::wire::{Method, RpcError};

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per-request timeout (the JS client uses 20 s, Java/OpenVidu 10 s).
    pub request_timeout: Duration,
    /// Interval of keepalive `ping`s.
    pub ping_interval: Duration,
    /// A ping unanswered for this long drops the socket (and starts reconnection).
    pub ping_timeout: Duration,
    /// How long to wait for the WebSocket to open.
    pub connect_timeout: Duration,
    /// Reconnection attempts after a drop before giving up (`None`: forever).
    pub max_reconnect_attempts: Option<u32>,
    /// First and largest delay between reconnection attempts (doubling in between).
    pub backoff: (Duration, Duration),
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_reconnect_attempts: None,
            backoff: (Duration::from_millis(100), Duration::from_secs(2)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Connected,
    Reconnecting,
    Closed,
}

/// What the owner hears about the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// The socket dropped; the client is reconnecting.
    Disconnected,
    /// A new socket is up. `same_session`: the server resumed our session and every object is
    /// still there; `false`: the server did not know it (restarted, or the session expired), so
    /// every object handle is dead and a fresh session was started.
    Reconnected {
        same_session: bool,
        server_id: String,
    },
    /// Gave up reconnecting, or `close()` was called.
    Closed,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ClientError {
    /// The URI is shown without its secret.
    #[error("could not connect to {0}")]
    Connect(String),
    /// The server answered the upgrade with 401: missing or wrong secret.
    #[error("{0} refused our credentials (HTTP 401): check the secret in the engine URI")]
    Unauthorized(String),
    #[error("request timed out")]
    Timeout,
    #[error("connection lost before the answer arrived")]
    Disconnected,
    #[error("client is closed")]
    Closed,
    #[error("server error {}: {}", .0.code, .0.message)]
    Server(RpcError),
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The Kurento/JSON-RPC error code, when the server answered with an error.
    pub fn code(&self) -> Option<i64> {
        match self {
            ClientError::Server(e) => Some(e.code),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct KurentoClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) state: watch::Receiver<ConnectionState>,
    pub(crate) conn_events: broadcast::Sender<ConnectionEvent>,
    pub(crate) events: broadcast::Sender<Arc<KmsEvent>>,
    pub(crate) session: watch::Receiver<Option<String>>,
    pub(crate) options: ClientOptions,
}

impl KurentoClient {
    /// Opens the WebSocket (`ws://host:port/kurento`) and starts the connection task. A secret
    /// written as the URI's user-info (`ws://user:SECRET@host:port/kurento`) is sent as HTTP
    /// Basic credentials on the upgrade, as browsers and Node's `ws` do; it never appears in
    /// errors or logs.
    pub async fn connect(uri: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let inner = connection::start(uri.to_string(), options).await?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Sends one request and returns its `result` object (without interpretation).
    pub async fn call(&self, method: Method) -> Result<Map<String, Value>, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .send(Command::Call(method, tx))
            .await
            .map_err(|_| ClientError::Closed)?;
        match tokio::time::timeout(self.inner.options.request_timeout, rx).await {
            Err(_) => Err(ClientError::Timeout),
            Ok(Err(_)) => Err(ClientError::Disconnected),
            Ok(Ok(r)) => r,
        }
    }

    pub fn session_id(&self) -> Option<String> {
        self.inner.session.borrow().clone()
    }

    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.clone()
    }

    pub fn connection_events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.inner.conn_events.subscribe()
    }

    /// Closes the socket; the server keeps the session's objects for its reconnection window.
    pub async fn close(&self) {
        let _ = self.inner.commands.send(Command::Close).await;
    }

    /// Drops the socket without closing the session (tests use this to exercise resume).
    pub async fn drop_connection(&self) {
        let _ = self.inner.commands.send(Command::DropSocket).await;
    }

    pub fn server_manager(&self) -> ServerManager {
        ServerManager::new(self.clone())
    }

    pub async fn create_pipeline(&self) -> Result<MediaPipeline, ClientError> {
        let id = self.create("MediaPipeline", Map::new()).await?;
        Ok(MediaPipeline::new(self.clone(), id))
    }

    pub(crate) async fn create(
        &self,
        kind: &str,
        constructor: Map<String, Value>,
    ) -> Result<String, ClientError> {
        let r = self
            .call(Method::Create(CreateParams {
                kind: kind.into(),
                constructor_params: Some(constructor),
                properties: Some(Map::new()),
                session_id: None,
            }))
            .await?;
        string_value(&r)
    }

    pub(crate) async fn invoke(
        &self,
        object: &str,
        operation: &str,
        params: Option<Map<String, Value>>,
    ) -> Result<Option<Value>, ClientError> {
        let r = self
            .call(Method::Invoke(InvokeParams {
                object: object.into(),
                operation: operation.into(),
                operation_params: params,
                session_id: None,
            }))
            .await?;
        Ok(r.get("value").cloned())
    }

    pub(crate) async fn release(&self, object: &str) -> Result<(), ClientError> {
        self.call(Method::Release(ObjectParams {
            object: object.into(),
            session_id: None,
        }))
        .await
        .map(|_| ())
    }

    pub(crate) async fn subscribe_raw(
        &self,
        object: &str,
        kind: &str,
    ) -> Result<String, ClientError> {
        let r = self
            .call(Method::Subscribe(SubscribeParams {
                object: object.into(),
                kind: kind.into(),
                session_id: None,
            }))
            .await?;
        string_value(&r)
    }

    pub(crate) async fn unsubscribe_raw(
        &self,
        object: &str,
        subscription: &str,
    ) -> Result<(), ClientError> {
        self.call(Method::Unsubscribe(UnsubscribeParams {
            object: object.into(),
            subscription: subscription.into(),
            session_id: None,
        }))
        .await
        .map(|_| ())
    }
}

pub(crate) fn string_value(r: &Map<String, Value>) -> Result<String, ClientError> {
    r.get("value")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ClientError::Protocol("expected a string `value`".into()))
}
