//! `receiveVideoFrom {sender: streamId, sdpOffer}`: a subscriber endpoint fed from the
//! publisher's PassThrough answers the browser's offer → `{sdpAnswer}`.

use serde_json::{json, Value};
use std::sync::Arc;

use super::wire::{Code, RpcError};
use super::{Ctx, Me};
use crate::ids;
use crate::media::PublisherState;

/// How long a subscriber's (re)subscription waits for its publisher to come back after an engine
/// loss.
const PUBLISHER_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

pub async fn handle(
    ctx: &mut Ctx<'_>,
    me: Me,
    sender: String,
    offer: String,
) -> Result<Value, RpcError> {
    let answer = subscribe(ctx, &me.session_id, &me.connection_id, &sender, &offer).await?;
    Ok(json!({"sdpAnswer": answer}))
}

/// Shared with `reconnectStream`: (re)creates the subscription and records it.
pub async fn subscribe(
    ctx: &Ctx<'_>,
    session_id: &str,
    me: &str,
    stream_id: &str,
    offer: &str,
) -> Result<String, RpcError> {
    let publisher = {
        let reg = ctx.app.reg.lock();
        reg.sessions
            .get(session_id)
            .and_then(|s| s.by_stream(stream_id))
            .map(|c| c.id.clone())
    };
    let Some(publisher) = publisher else {
        return Err(RpcError::new(
            Code::UserNotStreaming,
            format!("Stream {stream_id} does not exist"),
        ));
    };
    let slot = ctx.app.media_slot(session_id);
    // After an engine loss the publisher reconnects first; a subscriber asking before that waits
    // for it (bounded), without holding the session's media lock.
    let deadline = tokio::time::Instant::now() + PUBLISHER_WAIT;
    let answer = loop {
        let ready = {
            let mut guard = slot.lock().await;
            let Some(sm) = guard.as_mut() else {
                return Err(RpcError::new(Code::RoomClosed, "The session has no media"));
            };
            if sm.publisher_state(&publisher) != PublisherState::Stale {
                break sm
                    .subscribe(
                        Arc::downgrade(ctx.app),
                        me,
                        &publisher,
                        offer,
                        ctx.app.bandwidth(),
                    )
                    .await?;
            }
            sm.ready.clone()
        };
        if tokio::time::timeout_at(deadline, ready.notified())
            .await
            .is_err()
        {
            return Err(RpcError::new(
                Code::UserNotStreaming,
                format!("Stream {stream_id} has not reconnected yet"),
            ));
        }
    };
    let mut reg = ctx.app.reg.lock();
    if let Some(c) = reg
        .sessions
        .get_mut(session_id)
        .and_then(|s| s.connections.get_mut(me))
    {
        c.subscriptions.retain(|(s, _)| s != stream_id);
        c.subscriptions.push((stream_id.to_string(), ids::now_ms()));
    }
    Ok(answer)
}
