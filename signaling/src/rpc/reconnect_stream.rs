//! `reconnectStream {stream, sdpOffer | sdpString}`: the browser's answer to a dead media path. Its own
//! stream → a new publisher endpoint on the same PassThrough (subscribers keep their
//! endpoints), answered like `publishVideo`; another stream → a new subscriber endpoint.

use serde_json::{json, Value};
use std::sync::Arc;

use super::publish_video::publish_on_engine;
use super::receive_video_from::subscribe;
use super::wire::RpcError;
use super::{Ctx, Me};

pub async fn handle(
    ctx: &mut Ctx<'_>,
    me: Me,
    stream: String,
    offer: String,
) -> Result<Value, RpcError> {
    let (connection, id) = (me.connection_id.clone(), stream.clone());
    let mine = ctx
        .app
        .on_session(&me.session_id, move |s| {
            let c = s.connections.get(&connection)?;
            let pb = c.publisher.as_ref().filter(|pb| pb.stream_id == id)?;
            Some(pb.created_at)
        })
        .await
        .flatten();
    if let Some(created_at) = mine {
        // The publisher's own stream: on the same engine a new endpoint on the same PassThrough;
        // after an engine loss, a fresh publication on the session's new engine.
        let (app, connection) = (Arc::downgrade(ctx.app), me.connection_id.clone());
        let answer = publish_on_engine(ctx, &me, &offer, move |sm| {
            sm.plan_republication(app, &connection)
        })
        .await?;
        return Ok(json!({"sdpAnswer": answer, "id": stream, "createdAt": created_at}));
    }
    let answer = subscribe(ctx, &me.session_id, &me.connection_id, &stream, &offer).await?;
    Ok(json!({"sdpAnswer": answer}))
}
