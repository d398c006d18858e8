//! `receiveVideoFrom {sender: streamId, sdpOffer}`: a subscriber endpoint fed from the
//! publisher's PassThrough answers the browser's offer → `{sdpAnswer}`.

use crate::error::Error;
use serde_json::{json, Value};
use std::sync::Arc;

use super::wire::{Code, RpcError};
use super::{Ctx, Me};
use crate::ids;
use crate::media::{PublisherState, Released};
use crate::webhook::events;

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
    let plan = loop {
        let ready = {
            let mut guard = slot.lock().await;
            let Some(sm) = guard.as_mut() else {
                return Err(Error::NoMedia.into());
            };
            if sm.publisher_state(&publisher) != PublisherState::Stale {
                // Its own engine, or another one fed through a relay when that one is full.
                let far = ctx.app.subscriber_site(sm, &publisher);
                break sm.plan_subscription(Arc::downgrade(ctx.app), me, &publisher, far)?;
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
    // The engine work runs without the session's lock: other participants' subscriptions and
    // candidates go on meanwhile.
    let (negotiated, answer) = match plan.negotiate(offer, ctx.app.bandwidth()).await {
        Ok(n) => n,
        Err((e, failed)) => {
            ctx.app
                .release_detached(session_id, |sm| Some(sm.abort_subscription(&failed)))
                .await;
            return Err(e.into());
        }
    };
    let committed = match slot.lock().await.as_mut() {
        Some(sm) => sm.commit_subscription(negotiated),
        None => Err(Released::from(negotiated)),
    };
    let (old, held, endpoint) = match committed {
        Ok(c) => c,
        Err(gone) => {
            ctx.app.release(session_id, gone).await;
            return Err(RpcError::new(
                Code::UserNotStreaming,
                format!("Stream {stream_id} moved or ended while subscribing"),
            ));
        }
    };
    ctx.app.release(session_id, old).await;
    // The subscriber may have left while its endpoint was being made (its objects were released
    // before this one joined them): then this one goes too.
    if !ctx.app.still_joined(session_id, me) {
        ctx.app
            .release_detached(session_id, |sm| sm.detach_subscription(me, &publisher))
            .await;
        return Err(Error::ParticipantLeft.into());
    }
    for c in held {
        let _ = endpoint.add_ice_candidate(&c).await;
    }
    let now = ids::now_ms();
    let hook = {
        let mut reg = ctx.app.reg.lock();
        let Some(s) = reg.sessions.get_mut(session_id) else {
            return Ok(answer);
        };
        if let Some(c) = s.connections.get_mut(me) {
            c.subscriptions.retain(|(s, _)| s != stream_id);
            c.subscriptions.push((stream_id.to_string(), now));
        }
        let p = s
            .connections
            .get(&publisher)
            .and_then(|c| c.publisher.as_ref());
        p.map(|p| {
            let f = events::webrtc_connection(&publisher, p, Some(me), now, None);
            (s.created_at, f)
        })
    };
    ctx.app.changed(session_id);
    if let Some((created, f)) = hook {
        ctx.app
            .webhook
            .emit("webrtcConnectionCreated", Some((session_id, created)), f);
    }
    Ok(answer)
}
