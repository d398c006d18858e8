//! `streamPropertyChanged {streamId, property, newValue, reason}`: stores audio/video active and
//! video dimensions on the caller's stream and tells the others, with `newValue` as the JSON text
//! of what the client sent (`"true"`, or a double-encoded dimensions string) as OpenVidu does.

use serde_json::{Map, Value};

use super::wire::{param, Code, Notification, RpcError};
use super::Ctx;

pub fn handle(ctx: &mut Ctx<'_>, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let m = "streamPropertyChanged";
    let me = ctx.me(m)?;
    let _stream: String = param(m, p, "streamId")?;
    let property: String = param(m, p, "property")?;
    let reason: String = param(m, p, "reason")?;
    let new_value = p
        .get("newValue")
        .cloned()
        .filter(|v| !v.is_null())
        .ok_or_else(|| {
            RpcError::new(
                Code::MissingParam,
                "Request element 'newValue' is missing in RPC method 'streamPropertyChanged'",
            )
        })?;
    let stream_id = {
        let mut reg = ctx.app.reg.lock();
        let c = reg
            .sessions
            .get_mut(&me.session_id)
            .and_then(|s| s.connections.get_mut(&me.connection_id));
        let Some(pb) = c.and_then(|c| c.publisher.as_mut()) else {
            return Err(RpcError::new(
                Code::UserNotStreaming,
                "The user is not publishing",
            ));
        };
        match property.as_str() {
            "audioActive" => {
                pb.media.audio_active = new_value.as_bool().unwrap_or(pb.media.audio_active)
            }
            "videoActive" => {
                pb.media.video_active = new_value.as_bool().unwrap_or(pb.media.video_active)
            }
            "videoDimensions" => {
                pb.media.video_dimensions = new_value
                    .as_str()
                    .map(str::to_string)
                    .or(pb.media.video_dimensions.take())
            }
            _ => {}
        }
        pb.stream_id.clone()
    };
    let n = Notification::StreamPropertyChanged {
        connection_id: me.connection_id.clone(),
        stream_id,
        property,
        new_value: Value::String(new_value.to_string()),
        reason,
    };
    ctx.app
        .broadcast(&me.session_id, Some(&me.connection_id), &n);
    Ok(super::empty())
}
