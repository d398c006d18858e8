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
    let owner = ctx.app.existing_media(session_id).ok_or(Error::NoMedia)?;
    // After an engine loss the publisher reconnects first; a subscriber asking before that waits
    // for it (bounded), outside the session's media owner.
    let deadline = tokio::time::Instant::now() + PUBLISHER_WAIT;
    let plan = loop {
        let (app, subscriber, from) = (ctx.app.clone(), me.to_string(), publisher.clone());
        let step = owner.with(move |sm| {
            if sm.publisher_state(&from) == PublisherState::Stale {
                return Ok(Err(sm.ready.clone()));
            }
            // Its own engine, or another one fed through a relay when that one is full.
            let far = app.subscriber_site(sm, &from);
            sm.plan_subscription(Arc::downgrade(&app), &subscriber, &from, far)
                .map(Ok)
        });
        let ready = match step.await.ok_or(Error::NoMedia)?? {
            Ok(plan) => break plan,
            Err(ready) => ready,
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
    // The engine work runs outside the session's media owner: other participants'
    // subscriptions and candidates go on meanwhile.
    let (negotiated, answer) = match plan.negotiate(offer, ctx.app.bandwidth()).await {
        Ok(n) => n,
        Err((e, failed)) => {
            ctx.app
                .release_detached(session_id, move |sm| Some(sm.abort_subscription(&failed)))
                .await;
            return Err(e.into());
        }
    };
    let committed = owner
        .slot(true, move |s| match s.media.as_mut() {
            Some(sm) => sm.commit_subscription(negotiated),
            None => Err(Released::from(negotiated)),
        })
        .await;
    let (old, held, endpoint) = match committed {
        Some(Ok(c)) => c,
        None => return Err(Error::NoMedia.into()),
        Some(Err(gone)) => {
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
        let (me, from) = (me.to_string(), publisher.clone());
        ctx.app
            .release_detached(session_id, move |sm| sm.detach_subscription(&me, &from))
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
