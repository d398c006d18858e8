//! `sendMessage {message: "<JSON {to, data, type}>"}`: a signal to the listed connections, or
//! to everyone (sender included) when `to` is empty. Bad JSON → 600; unknown `to` → 601; a
//! recipient listed twice gets it once; oversized `data`/`type` or too many recipients → -32602.

use serde_json::Value;

use super::wire::{Code, Notification, RpcError};
use super::{Ctx, Me};
use crate::core::Notice;
use crate::webhook::events;

pub async fn handle(ctx: &mut Ctx<'_>, me: Me, text: String) -> Result<Value, RpcError> {
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
    let data = msg.get("data").and_then(Value::as_str).map(str::to_string);
    let kind = msg.get("type").and_then(Value::as_str).map(str::to_string);
    check_signal(data.as_deref(), kind.as_deref(), &to)?;
    let n = Notification::SendMessage {
        data,
        kind,
        from: Some(me.connection_id.clone()),
    };
    deliver(ctx.app, &me.session_id, &to, &n).await?;
    Ok(super::empty())
}

/// A signal's `to`: absent or `null` is everyone (empty); otherwise an array of connection ids,
/// each once (in the order first listed).
pub fn recipients(to: Option<&Value>) -> Option<Vec<String>> {
    match to {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a)) => {
            let mut seen = std::collections::HashSet::new();
            let mut out = Vec::new();
            for v in a {
                let id = v.as_str()?;
                if seen.insert(id) {
                    out.push(id.to_string());
                }
            }
            Some(out)
        }
        Some(_) => None,
    }
}

/// A signal's sizes (shared with REST `/signal`).
pub fn check_signal(data: Option<&str>, kind: Option<&str>, to: &[String]) -> Result<(), RpcError> {
    use crate::limits::{too_large, SIGNAL_DATA, SIGNAL_TO, SIGNAL_TYPE};
    if let Some(d) = data.filter(|d| d.len() > SIGNAL_DATA) {
        return Err(too_large("Signal 'data'", d.len(), SIGNAL_DATA));
    }
    if let Some(t) = kind.filter(|t| t.len() > SIGNAL_TYPE) {
        return Err(too_large("Signal 'type'", t.len(), SIGNAL_TYPE));
    }
    if to.len() > SIGNAL_TO {
        return Err(RpcError::new(
            Code::InvalidParams,
            format!(
                "Signal 'to' lists {} connections; at most {SIGNAL_TO}",
                to.len()
            ),
        ));
    }
    Ok(())
}

/// Shared with REST `/signal`: checks every recipient first, so a bad `to` sends nothing. One
/// step of the session's owner finds the recipients' sockets.
pub async fn deliver(
    app: &crate::app::App,
    session_id: &str,
    to: &[String],
    n: &Notification,
) -> Result<(), RpcError> {
    let named = to.to_vec();
    let found = app
        .on_session(session_id, move |s| {
            if named.is_empty() {
                let everyone = s.active().map(|c| c.id.clone()).collect();
                return Ok((s.audience(None), everyone, s.created_at));
            }
            let mut rpcs = Vec::with_capacity(named.len());
            for c in &named {
                match s.connections.get(c).and_then(|c| c.active.as_ref()) {
                    Some(a) => rpcs.push(a.rpc.clone()),
                    None => return Err(c.clone()),
                }
            }
            Ok((rpcs, named, s.created_at))
        })
        .await;
    let (rpcs, everyone, created) = match found {
        Some(Ok(found)) => found,
        Some(Err(bad)) => {
            return Err(RpcError::new(
                Code::SignalToInvalid,
                format!("Signal 'to' names an unknown connection: {bad}"),
            ))
        }
        None => return Ok(()),
    };
    app.deliver(&[Notice {
        to: rpcs,
        n: n.clone(),
    }]);
    hook_signal(app, (session_id, created), &everyone, n);
    Ok(())
}

/// `signalSent` (`to` lists every recipient, also for a signal to everyone).
fn hook_signal(app: &crate::app::App, session: (&str, u64), to: &[String], n: &Notification) {
    let Notification::SendMessage { data, kind, from } = n else {
        return;
    };
    let f = events::signal(from.as_deref(), to, kind.as_deref(), data.as_deref());
    app.webhook.emit("signalSent", Some(session), f);
}
