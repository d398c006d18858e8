//! `reconnectStream {stream, sdpOffer | sdpString}`: the browser's answer to a dead media path. Its own
//! stream → a new publisher endpoint on the same PassThrough (subscribers keep their
//! endpoints), answered like `publishVideo`; another stream → a new subscriber endpoint.

use serde_json::{json, Map, Value};
use std::sync::Arc;

use super::receive_video_from::subscribe;
use super::wire::{opt_param, param, Code, RpcError};
use super::Ctx;

pub async fn handle(ctx: &mut Ctx<'_>, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let m = "reconnectStream";
    let me = ctx.me(m)?;
    let stream: String = param(m, p, "stream")?;
    // openvidu-browser sends a publisher's new offer as `sdpString`; a subscriber's as `sdpOffer`.
    let Some(offer) =
        opt_param::<String>(p, "sdpOffer").or_else(|| opt_param::<String>(p, "sdpString"))
    else {
        return Err(RpcError::new(
            Code::MissingParam,
            "Request element 'sdpOffer' is missing in RPC method 'reconnectStream'",
        ));
    };
    let mine = {
        let reg = ctx.app.reg.lock();
        reg.sessions
            .get(&me.session_id)
            .and_then(|s| s.connections.get(&me.connection_id))
            .and_then(|c| c.publisher.as_ref())
            .filter(|pb| pb.stream_id == stream)
            .map(|pb| pb.created_at)
    };
    if let Some(created_at) = mine {
        // The publisher's own stream: on the same engine a new endpoint on the same PassThrough;
        // after an engine loss, a fresh publication on the session's new engine.
        let slot = ctx.app.media_slot(&me.session_id);
        let mut guard = slot.lock().await;
        let Some(sm) = guard.as_mut() else {
            return Err(RpcError::new(Code::RoomClosed, "The session has no media"));
        };
        let answer = sm
            .republish(
                Arc::downgrade(ctx.app),
                &me.connection_id,
                &offer,
                ctx.app.bandwidth(),
            )
            .await?;
        return Ok(json!({"sdpAnswer": answer, "id": stream, "createdAt": created_at}));
    }
    let answer = subscribe(ctx, &me.session_id, &me.connection_id, &stream, &offer).await?;
    Ok(json!({"sdpAnswer": answer}))
}
