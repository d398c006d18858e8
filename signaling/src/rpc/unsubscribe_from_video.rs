//! `unsubscribeFromVideo {sender: connectionId}`: releases this participant's subscriber
//! endpoint for that publisher → `{}`; unknown → 102.

use serde_json::Value;

use super::wire::{Code, RpcError};
use super::{Ctx, Me};
use crate::webhook::events;

pub async fn handle(ctx: &mut Ctx<'_>, me: Me, sender: String) -> Result<Value, RpcError> {
    // Browsers send the publisher's connection id; accept a stream id too.
    let publisher = crate::ids::connection_of_stream(&sender)
        .unwrap_or(&sender)
        .to_string();
    let gone = match ctx.app.session(&me.session_id) {
        Some(owner) => {
            let (me, publisher) = (me.connection_id.clone(), publisher.clone());
            owner
                .with(move |sm| sm.detach_subscription(&me, &publisher))
                .await
                .flatten()
        }
        None => None,
    };
    // Not through `release_detached`: "not subscribed" is an error here.
    let Some(gone) = gone else {
        return Err(RpcError::new(
            Code::UserNotFound,
            format!("Not subscribed to {sender}"),
        ));
    };
    ctx.app.changed(&me.session_id);
    ctx.app.release(&me.session_id, gone).await;
    let connection = me.connection_id.clone();
    let hooks = ctx.app.on_session(&me.session_id, move |s| {
        let mut ended = Vec::new();
        if let Some(c) = s.connections.get_mut(&connection) {
            c.subscriptions.retain(|(st, at)| {
                let keep = crate::ids::connection_of_stream(st) != Some(publisher.as_str());
                if !keep {
                    ended.push(*at);
                }
                keep
            });
        }
        let now = crate::ids::now_ms();
        let p = s
            .connections
            .get(&publisher)
            .and_then(|c| c.publisher.as_ref());
        let hooks: Vec<_> = p
            .map(|p| {
                ended
                    .iter()
                    .map(|since| {
                        events::webrtc_connection(
                            &publisher,
                            p,
                            Some(&connection),
                            *since,
                            Some(("unsubscribe", now)),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        (s.created_at, hooks)
    });
    let Some(hooks) = hooks.await else {
        return Ok(super::empty());
    };
    for f in hooks.1 {
        ctx.app.webhook.emit(
            "webrtcConnectionDestroyed",
            Some((&me.session_id, hooks.0)),
            f,
        );
    }
    Ok(super::empty())
}
