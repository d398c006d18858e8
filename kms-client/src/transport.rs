//! Opening the WebSocket to an engine: `ws://` over TCP, `wss://` over TLS (rustls with the
//! ring provider; roots from the system store, which honours `SSL_CERT_FILE`/`SSL_CERT_DIR` for a
//! private CA), the secret from the URI's user-info as HTTP Basic credentials, Nagle off.

use base64::Engine as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::WebSocketStream;

use crate::client::ClientError;

/// A byte stream to the engine, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open WebSocket, plain or TLS.
pub type Ws = WebSocketStream<Box<dyn Io>>;

/// Connects, (for `wss://`) handshakes TLS, and upgrades, all within `timeout`.
pub(crate) async fn open(uri: &str, timeout: Duration) -> Result<Ws, ClientError> {
    open_with_headers(uri, &[], timeout).await
}

/// [`open`] with extra request headers (signaling's node-to-node sockets use it too).
pub async fn open_with_headers(
    uri: &str,
    headers: &[(&'static str, String)],
    timeout: Duration,
) -> Result<Ws, ClientError> {
    let (clean, credentials) = crate::uri::credentials(uri);
    match tokio::time::timeout(timeout, upgrade(&clean, credentials, headers)).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Connect(clean)),
    }
}

async fn upgrade(
    clean: &str,
    credentials: Option<(String, String)>,
    headers: &[(&'static str, String)],
) -> Result<Ws, ClientError> {
    let refused = || ClientError::Connect(clean.to_string());
    let mut request = clean.into_client_request().map_err(|_| refused())?;
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).map_err(|_| refused())?;
        request.headers_mut().insert(*name, value);
    }
    if let Some((user, pass)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let value = HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| refused())?;
        request.headers_mut().insert("authorization", value);
    }
    let tls = request.uri().scheme_str() == Some("wss");
    let host = request.uri().host().ok_or_else(refused)?.to_string();
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if tls { 443 } else { 80 });
    let host = host.trim_matches(['[', ']']).to_string();
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|_| refused())?;
    // Requests are small frames written back to back: with Nagle on, each one after the first
    // waits for the engine's delayed ACK.
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if tls {
        let name = rustls::pki_types::ServerName::try_from(host).map_err(|_| refused())?;
        let connector = tokio_rustls::TlsConnector::from(tls_config().ok_or_else(refused)?);
        Box::new(connector.connect(name, tcp).await.map_err(|e| {
            tracing::warn!(uri = %clean, %e, "TLS handshake with the engine failed");
            refused()
        })?)
    } else {
        Box::new(tcp)
    };
    // tungstenite reserves 128 KiB per socket for reading by default; these sockets carry small
    // JSON-RPC frames (messages still grow as needed), and a signaling node in a cluster opens
    // one per participant it relays.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024);
    match tokio_tungstenite::client_async_with_config(request, io, Some(config)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status().as_u16() == 401 => {
            Err(ClientError::Unauthorized(clean.to_string()))
        }
        Err(_) => Err(refused()),
    }
}

/// One client configuration per process: loading the root store is not free. `None` only if
/// rustls refused the configuration (logged once).
fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(%e, "could not load some root certificates");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "TLS roots for wss:// engines");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            match rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
            {
                Ok(b) => Some(Arc::new(
                    b.with_root_certificates(roots).with_no_client_auth(),
                )),
                Err(e) => {
                    tracing::error!(%e, "no TLS configuration for wss:// engines");
                    None
                }
            }
        })
        .clone()
}
