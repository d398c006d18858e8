//! `streamPropertyChanged {streamId, property, newValue, reason}`: stores audio/video active and
//! video dimensions on the caller's stream and tells the others, with `newValue` as the JSON text
//! of what the client sent (`"true"`, or a double-encoded dimensions string) as OpenVidu does.

use crate::error::Error;
use serde_json::Value;

use super::wire::{Code, RpcError};
use super::{Ctx, Me};

pub async fn handle(
    ctx: &mut Ctx<'_>,
    me: Me,
    property: String,
    new_value: Value,
    reason: String,
) -> Result<Value, RpcError> {
    let connection = me.connection_id.clone();
    let changed = ctx
        .app
        .on_session(&me.session_id, move |s| {
            s.change_stream_property(&connection, &property, &new_value, &reason)
        })
        .await
        .unwrap_or(Err(Error::NotPublishing));
    match changed {
        Ok(notice) => {
            ctx.app.changed(&me.session_id);
            ctx.app.deliver(&[notice]);
        }
        Err(_) => {
            return Err(RpcError::new(
                Code::UserNotStreaming,
                "The user is not publishing",
            ))
        }
    }
    Ok(super::empty())
}
