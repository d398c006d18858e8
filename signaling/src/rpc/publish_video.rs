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
    let published = ctx
        .app
        .reg
        .lock()
        .sessions
        .get_mut(&me.session_id)
        .ok_or(Error::NotJoined)
        .and_then(|s| {
            let p = Publisher {
                stream_id: stream_id.clone(),
                created_at,
                media,
            };
            let hook = events::webrtc_connection(&me.connection_id, &p, None, created_at, None);
            let notice = s.publish(&me.connection_id, p)?;
            Ok((notice, s.created_at, hook))
        });
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
/// afterwards; a participant that left meanwhile takes it along. Returns the SDP answer.
pub(super) async fn publish_on_engine(
    ctx: &Ctx<'_>,
    me: &Me,
    offer: &str,
    plan: impl FnOnce(&mut SessionMedia) -> Result<PublicationPlan, Error> + Send + 'static,
) -> Result<String, RpcError> {
    let owner = ctx
        .app
        .existing_media(&me.session_id)
        .ok_or(Error::NoMedia)?;
    let plan = owner.with(plan).await.ok_or(Error::NoMedia)??;
    let (negotiated, answer) = match plan.negotiate(offer, ctx.app.bandwidth()).await {
        Ok(n) => n,
        Err((e, failed)) => {
            owner.with(move |sm| sm.abort_publication(&failed)).await;
            return Err(e.into());
        }
    };
    let committed = owner
        .slot(true, move |s| match s.media.as_mut() {
            Some(sm) => sm.commit_publication(negotiated),
            None => Err(Released::from(negotiated)),
        })
        .await;
    let (old, held, endpoint) = match committed {
        Some(Ok(c)) => c,
        None => return Err(Error::NoMedia.into()),
        Some(Err(gone)) => {
            ctx.app.release(&me.session_id, gone).await;
            return Err(RpcError::new(
                Code::RoomClosed,
                "The session's media moved or the stream ended while publishing",
            ));
        }
    };
    if let Some(old) = old {
        let _ = old.release().await;
    }
    if !ctx.app.still_joined(&me.session_id, &me.connection_id) {
        let connection = me.connection_id.clone();
        ctx.app
            .release_detached(&me.session_id, move |sm| {
                Some(sm.detach_publisher(&connection))
            })
            .await;
        return Err(Error::ParticipantLeft.into());
    }
    ctx.app.changed(&me.session_id);
    for c in held {
        let _ = endpoint.add_ice_candidate(&c).await;
    }
    Ok(answer)
}
