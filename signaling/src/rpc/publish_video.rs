//! `publishVideo`: a WebRtcEndpoint feeding a PassThrough answers the browser's offer;
//! `{sdpAnswer, id, createdAt}`; the others get `participantPublished`.

use serde_json::{json, Map, Value};
use std::sync::Arc;

use super::wire::{opt_param, param, Code, RpcError};
use super::Ctx;
use crate::core::Refusal;
use crate::ids;
use crate::model::{MediaOptions, Publisher};

pub async fn handle(ctx: &mut Ctx<'_>, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let m = "publishVideo";
    let me = ctx.me(m)?;
    let offer: String = param(m, p, "sdpOffer")?;
    let has_audio: bool = param(m, p, "hasAudio")?;
    let has_video: bool = param(m, p, "hasVideo")?;
    let _loopback: bool = param(m, p, "doLoopback")?;
    if !me.role.can_publish() {
        return Err(RpcError::new(
            Code::UserUnauthorized,
            "Unable to publish video. The user does not have a valid token",
        ));
    }
    let media = MediaOptions {
        has_audio,
        has_video,
        audio_active: opt_param(p, "audioActive").unwrap_or(has_audio),
        video_active: opt_param(p, "videoActive").unwrap_or(has_video),
        type_of_video: opt_param(p, "typeOfVideo")
            .or_else(|| has_video.then(|| "CAMERA".to_string())),
        frame_rate: opt_param(p, "frameRate"),
        video_dimensions: opt_param(p, "videoDimensions"),
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
