//! `publishVideo`: a WebRtcEndpoint feeding a PassThrough answers the browser's offer;
//! `{sdpAnswer, id, createdAt}`; the others get `participantPublished`.

use serde_json::{json, Value};
use std::sync::Arc;

use super::request::PublishVideo;
use super::wire::{Code, RpcError};
use super::{Ctx, Me};
use crate::core::Refusal;
use crate::ids;
use crate::model::{MediaOptions, Publisher};

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
    let slot = ctx.app.media_slot(&me.session_id);
    let answer = {
        let mut guard = slot.lock().await;
        let Some(sm) = guard.as_mut() else {
            return Err(RpcError::new(Code::RoomClosed, "The session has no media"));
        };
        sm.publish(
            Arc::downgrade(ctx.app),
            &me.connection_id,
            &stream_id,
            &offer,
            ctx.app.bandwidth(),
        )
        .await?
    };
    let created_at = ids::now_ms();
    let published = ctx
        .app
        .reg
        .lock()
        .sessions
        .get_mut(&me.session_id)
        .ok_or(Refusal::NotJoined)
        .and_then(|s| {
            s.publish(
                &me.connection_id,
                Publisher {
                    stream_id: stream_id.clone(),
                    created_at,
                    media,
                },
            )
        });
    match published {
        Ok(notice) => ctx.app.deliver(&[notice]),
        Err(_) => return Err(RpcError::new(Code::UserNotFound, "Participant left")),
    }
    Ok(json!({"sdpAnswer": answer, "id": stream_id, "createdAt": created_at}))
}
