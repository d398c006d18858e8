//! `sendMessage {message: "<JSON {to, data, type}>"}`: a signal to the listed connections, or
//! to everyone (sender included) when `to` is empty. Bad JSON → 600; unknown `to` → 601.

use serde_json::{Map, Value};

use super::wire::{param, Code, Notification, RpcError};
use super::Ctx;

pub fn handle(ctx: &mut Ctx<'_>, p: &Map<String, Value>) -> Result<Value, RpcError> {
    let me = ctx.me("sendMessage")?;
    let text: String = param("sendMessage", p, "message")?;
    let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(&text) else {
        return Err(RpcError::new(
            Code::SignalFormatInvalid,
            "Signal message must be a JSON object",
        ));
    };
    let Some(to) = recipients(msg.get("to")) else {
        return Err(RpcError::new(
            Code::SignalFormatInvalid,
            "Signal 'to' must be an array of connection ids",
        ));
    };
    let n = Notification::SendMessage {
        data: msg.get("data").and_then(Value::as_str).map(str::to_string),
        kind: msg.get("type").and_then(Value::as_str).map(str::to_string),
        from: Some(me.connection_id.clone()),
    };
    deliver(ctx.app, &me.session_id, &to, &n)?;
    Ok(super::empty())
}

/// A signal's `to`: absent or `null` is everyone (empty); otherwise an array of connection ids.
pub fn recipients(to: Option<&Value>) -> Option<Vec<String>> {
    match to {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map(str::to_string)).collect(),
        Some(_) => None,
    }
}

/// Shared with REST `/signal`: checks every recipient first, so a bad `to` sends nothing.
pub fn deliver(
    app: &crate::app::App,
    session_id: &str,
    to: &[String],
    n: &Notification,
) -> Result<(), RpcError> {
    if to.is_empty() {
        app.broadcast(session_id, None, n);
        return Ok(());
    }
    {
        let reg = app.reg.lock();
        let s = reg.sessions.get(session_id);
        if let Some(bad) = to.iter().find(|c| {
            s.and_then(|s| s.connections.get(*c))
                .and_then(|c| c.active.as_ref())
                .is_none()
        }) {
            return Err(RpcError::new(
                Code::SignalToInvalid,
                format!("Signal 'to' names an unknown connection: {bad}"),
            ));
        }
    }
    for c in to {
        app.send_to(session_id, c, n);
    }
    Ok(())
}
