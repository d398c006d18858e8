//! `unsubscribeFromVideo {sender: connectionId}`: releases this participant's subscriber
//! endpoint for that publisher → `{}`; unknown → 102.

use serde_json::Value;

use super::wire::{Code, RpcError};
use super::{Ctx, Me};

pub async fn handle(ctx: &mut Ctx<'_>, me: Me, sender: String) -> Result<Value, RpcError> {
    // Browsers send the publisher's connection id; accept a stream id too.
    let publisher = crate::ids::connection_of_stream(&sender)
        .unwrap_or(&sender)
        .to_string();
    let slot = ctx.app.media_slot(&me.session_id);
    let gone = slot
        .lock()
        .await
        .as_mut()
        .and_then(|sm| sm.detach_subscription(&me.connection_id, &publisher));
    let Some(gone) = gone else {
        return Err(RpcError::new(
            Code::UserNotFound,
            format!("Not subscribed to {sender}"),
        ));
    };
    gone.release().await;
    let mut reg = ctx.app.reg.lock();
    if let Some(c) = reg
        .sessions
        .get_mut(&me.session_id)
        .and_then(|s| s.connections.get_mut(&me.connection_id))
    {
        c.subscriptions
            .retain(|(s, _)| crate::ids::connection_of_stream(s) != Some(publisher.as_str()));
    }
    Ok(super::empty())
}
