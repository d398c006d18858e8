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
    let stream = stream_id.to_string();
    let publisher = ctx
        .app
        .on_session(session_id, move |s| {
            s.by_stream(&stream).map(|c| c.id.clone())
        })
        .await
        .flatten();
    let Some(publisher) = publisher else {
        return Err(RpcError::new(
            Code::UserNotStreaming,
            format!("Stream {stream_id} does not exist"),
        ));
    };
    let owner = ctx.app.session(session_id).ok_or(Error::NoMedia)?;
    // After an engine loss the publisher reconnects first; a subscriber asking before that waits
    // for it (bounded), outside the session's media owner.
    let deadline = tokio::time::Instant::now() + PUBLISHER_WAIT;
    let plan = loop {
        let (app, subscriber, from) = (ctx.app.clone(), me.to_string(), publisher.clone());
        let step = owner.slot(true, move |slot| {
            let (Some(s), Some(sm)) = (slot.record.as_ref(), slot.media.as_mut()) else {
                return None;
            };
            if sm.publisher_state(&from) == PublisherState::Stale {
                return Some(Ok(Err(sm.ready.clone())));
            }
            // Its own engine, or another one fed through a relay when that one is full.
            let far = app.subscriber_site(sm, s.props.steer(), &from);
            let plan = sm.plan_subscription(Arc::downgrade(&app), &subscriber, &from, far);
            Some(plan.map(Ok))
        });
        let ready = match step.await.flatten().ok_or(Error::NoMedia)?? {
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
    // One step commits the endpoint and records the subscription, only for a subscriber still
    // joined: one that left while its endpoint was being made (its departure released what the
    // session had of it) takes this endpoint along now.
    let now = ids::now_ms();
    let (subscriber, stream) = (me.to_string(), stream_id.to_string());
    let committed = owner
        .slot(true, move |slot| {
            let (Some(s), Some(sm)) = (slot.record.as_mut(), slot.media.as_mut()) else {
                return Err((Released::from(negotiated), false));
            };
            let Some(c) = s
                .connections
                .get_mut(&subscriber)
                .filter(|c| c.active.is_some())
            else {
                return Err((Released::from(negotiated), true));
            };
            let committed = sm.commit_subscription(negotiated).map_err(|g| (g, false))?;
            c.subscriptions.retain(|(s, _)| *s != stream);
            c.subscriptions.push((stream, now));
            let p = s
                .connections
                .get(&publisher)
                .and_then(|c| c.publisher.as_ref());
            let hook = p.map(|p| {
                let f = events::webrtc_connection(&publisher, p, Some(&subscriber), now, None);
                (s.created_at, f)
            });
            Ok((committed, hook))
        })
        .await;
    let ((old, held, endpoint), hook) = match committed {
        Some(Ok(c)) => c,
        None => return Err(Error::NoMedia.into()),
        Some(Err((gone, left))) => {
            ctx.app.release(session_id, gone).await;
            if left {
                return Err(Error::ParticipantLeft.into());
            }
            return Err(RpcError::new(
                Code::UserNotStreaming,
                format!("Stream {stream_id} moved or ended while subscribing"),
            ));
        }
    };
    ctx.app.release(session_id, old).await;
    for c in held {
        let _ = endpoint.add_ice_candidate(&c).await;
    }
    ctx.app.changed(session_id);
    if let Some((created, f)) = hook {
        ctx.app
            .webhook
            .emit("webrtcConnectionCreated", Some((session_id, created)), f);
    }
    Ok(answer)
}
