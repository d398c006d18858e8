//! A browser socket whose session lives on another node: from its `joinRoom` (or reconnecting
//! `connect`) on, every frame goes to the owner's `/openvidu` over a socket of our own and every
//! frame from there comes back, untouched. The owner sees an ordinary participant (its address
//! passed as `X-Real-IP`) and keeps every rule of the session: tokens, roles, the ping watchdog,
//! the reconnection window. Either side closing closes the other; the owner's close code and
//! reason reach the browser, and an owner that vanishes closes the browser's socket with 1012
//! (service restart), after which `openvidu-browser` reconnects through the load balancer.

use axum::extract::ws::{CloseFrame, Message};
use futures::{SinkExt, Stream, StreamExt};
use kms_client::outbox::is_message_too_big;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as Upstream;

use crate::app::{App, OutTx, Outgoing};

/// The owner's `/openvidu` for its `http[s]://` URL.
fn socket_url(node_url: &str) -> String {
    let base = node_url.trim_end_matches('/');
    let ws = match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", base.strip_prefix("http://").unwrap_or(base)),
    };
    format!("{ws}/openvidu")
}

fn frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.to_string().into(),
    }
}

/// Relays until either side ends; `first` is the frame that named the session. Returns the
/// close frame for the browser. `Err` when the owner could not be reached at all (the caller
/// answers the request with an error and keeps the socket).
pub async fn run<S>(
    app: &Arc<App>,
    browser: &mut S,
    tx: &OutTx,
    first: String,
    owner_url: &str,
    ip: &str,
) -> Result<CloseFrame, String>
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let url = socket_url(owner_url);
    let headers = [("x-real-ip", ip.to_string())];
    let upstream = kms_client::open_socket(&url, &headers, Duration::from_secs(2))
        .await
        .map_err(|e| e.to_string())?;
    let (mut up_tx, mut up_rx) = upstream.split();
    if up_tx.send(Upstream::Text(first.into())).await.is_err() {
        return Err(format!("{url} closed at once"));
    }
    tracing::debug!(owner = %owner_url, "relaying a participant to its session's node");
    let close = loop {
        tokio::select! {
            m = browser.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if up_tx.send(Upstream::Text(t.as_str().into())).await.is_err() {
                        break frame(1012, "session's node lost");
                    }
                }
                Some(Ok(Message::Binary(b))) => {
                    let t = String::from_utf8_lossy(&b).into_owned();
                    if up_tx.send(Upstream::Text(t.into())).await.is_err() {
                        break frame(1012, "session's node lost");
                    }
                }
                Some(Err(e)) if is_message_too_big(&e) => break frame(1009, "message too big"),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break frame(1000, ""),
                Some(Ok(_)) => {}
            },
            m = up_rx.next() => match m {
                Some(Ok(Upstream::Text(t))) => {
                    let _ = tx.send(Outgoing::Text(t.to_string()));
                }
                Some(Ok(Upstream::Close(Some(c)))) => {
                    break frame(u16::from(c.code), &c.reason);
                }
                Some(Ok(Upstream::Close(None))) => break frame(1000, ""),
                None | Some(Err(_)) => break frame(1012, "session's node lost"),
                Some(Ok(_)) => {}
            },
            _ = tx.overflowed() => break frame(1008, "send queue overflow"),
            _ = app.shutdown.cancelled() => break frame(1001, "server stopping"),
        }
    };
    // The owner learns at once that the participant's socket is gone (its reconnection window
    // starts), unless the owner is the one that closed.
    let bye = tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        up_tx.send(Upstream::Close(Some(bye))),
    )
    .await;
    Ok(close)
}

#[cfg(test)]
mod tests {
    use super::socket_url;

    #[test]
    fn the_owner_socket_url_follows_its_scheme() {
        assert_eq!(
            socket_url("http://10.0.0.2:4443"),
            "ws://10.0.0.2:4443/openvidu"
        );
        assert_eq!(
            socket_url("https://node-b.example:443/"),
            "wss://node-b.example:443/openvidu"
        );
    }
}
