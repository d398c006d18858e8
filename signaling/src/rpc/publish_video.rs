//! `publishVideo`: a WebRtcEndpoint feeding a PassThrough answers the browser's offer;
//! `{sdpAnswer, id, createdAt}`; the others get `participantPublished`.

use crate::error::Error;
use serde_json::{json, Value};
use std::sync::Arc;

use super::request::PublishVideo;
use super::wire::{Code, RpcError};
use super::{Ctx, Me};
use crate::ids;
use crate::media::{PublicationPlan, Released, SessionMedia};
use crate::model::{MediaOptions, Publisher};
use crate::webhook::events;

pub async fn handle(ctx: &mut Ctx<'_>, me: Me, p: PublishVideo) -> Result<Value, RpcError> {
    let (offer, has_audio, has_video) = (p.sdp_offer, p.has_audio, p.has_video);
    if !me.role.can_publish() {
        return Err(RpcError::new(
            Code::UserUnauthorized,
            "Unable to publish video. The user does not have a valid token",
        ));
    }
    let media = MediaOptions {
        has_audio,
        has_video,
        audio_active: p.audio_active.unwrap_or(has_audio),
        video_active: p.video_active.unwrap_or(has_video),
        type_of_video: p
            .type_of_video
            .or_else(|| has_video.then(|| "CAMERA".to_string())),
        frame_rate: p.frame_rate,
        video_dimensions: p.video_dimensions,
    };
    let stream_id = ids::stream_id(media.type_of_video.as_deref(), has_video, &me.connection_id);
    let (app, connection, stream) = (
        Arc::downgrade(ctx.app),
        me.connection_id.clone(),
        stream_id.clone(),
    );
    let answer = publish_on_engine(ctx, &me, &offer, move |sm| {
        sm.plan_publication(app, &connection, &stream)
    })
    .await?;
    let created_at = ids::now_ms();
    let (connection, stream) = (me.connection_id.clone(), stream_id.clone());
    let published = ctx
        .app
        .on_session(&me.session_id, move |s| {
            let p = Publisher {
                stream_id: stream,
                created_at,
                media,
            };
            let hook = events::webrtc_connection(&connection, &p, None, created_at, None);
            let notice = s.publish(&connection, p)?;
            Ok((notice, s.created_at, hook))
        })
        .await
        .unwrap_or(Err(Error::NotJoined));
    match published {
        Ok((notice, session_created, hook)) => {
            ctx.app.changed(&me.session_id);
            ctx.app.deliver(&[notice]);
            ctx.app.webhook.emit(
                "webrtcConnectionCreated",
                Some((&me.session_id, session_created)),
                hook,
            );
        }
        Err(_) => return Err(Error::ParticipantLeft.into()),
    }
    Ok(json!({"sdpAnswer": answer, "id": stream_id, "createdAt": created_at}))
}

/// Runs a (re)publication planned by a step of the session's media owner: its engine work
/// outside the owner, then the commit, another step; the endpoint it replaces is released
/// afterwards; a participant that left meanwhile takes it along (the commit checks, in the same
/// step). Returns the SDP answer.
pub(super) async fn publish_on_engine(
    ctx: &Ctx<'_>,
    me: &Me,
    offer: &str,
    plan: impl FnOnce(&mut SessionMedia) -> Result<PublicationPlan, Error> + Send + 'static,
) -> Result<String, RpcError> {
    let owner = ctx.app.session(&me.session_id).ok_or(Error::NoMedia)?;
    let plan = owner.with(plan).await.ok_or(Error::NoMedia)??;
    let (negotiated, answer) = match plan.negotiate(offer, ctx.app.bandwidth()).await {
        Ok(n) => n,
        Err((e, failed)) => {
            owner.with(move |sm| sm.abort_publication(&failed)).await;
            return Err(e.into());
        }
    };
    // Committed only for a participant still joined: one that left meanwhile (its departure
    // released what the session had of it) takes this endpoint along now.
    let connection = me.connection_id.clone();
    let committed = owner
        .slot(true, move |s| {
            let joined = s.record.as_ref().is_some_and(|r| r.has_joined(&connection));
            match s.media.as_mut() {
                Some(sm) if joined => sm.commit_publication(negotiated).map_err(|g| (g, false)),
                _ => Err((Released::from(negotiated), !joined)),
            }
        })
        .await;
    let (old, held, endpoint) = match committed {
        Some(Ok(c)) => c,
        None => return Err(Error::NoMedia.into()),
        Some(Err((gone, left))) => {
            ctx.app.release(&me.session_id, gone).await;
            if left {
                return Err(Error::ParticipantLeft.into());
            }
            return Err(RpcError::new(
                Code::RoomClosed,
                "The session's media moved or the stream ended while publishing",
            ));
        }
    };
    if let Some(old) = old {
        let _ = old.release().await;
    }
    ctx.app.changed(&me.session_id);
    for c in held {
        let _ = endpoint.add_ice_candidate(&c).await;
    }
    Ok(answer)
}
