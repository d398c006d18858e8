//! MediaObject operations every object has: name, children, parent/pipeline, creation time,
//! tags.

use kms_client::wire::complex::tag;
use kms_client::wire::{ErrorCode, RpcError};
use serde_json::Value;

use super::Invocation;
use crate::rpc::{value, Fields, Handled};

pub fn invoke(inv: &Invocation<'_>, op: &str) -> Option<Handled> {
    let mut st = inv.engine.state.lock();
    let Ok(e) = st.objects.get_mut(inv.object) else {
        return Some(Err(crate::core::not_found_error(inv.object)));
    };
    let r = match op {
        "getId" => Ok(value(inv.object)),
        "getName" => Ok(value(
            e.name.clone().unwrap_or_else(|| inv.object.to_string()),
        )),
        "setName" => inv.arg::<String>("name").map(|n| {
            e.name = Some(n);
            Fields::new()
        }),
        "getChildren" | "getChilds" => Ok(value(
            e.children.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
        )),
        "getParent" => Ok(value(
            e.parent
                .as_ref()
                .map(|p| p.0.clone())
                .map(Value::from)
                .unwrap_or(Value::Null),
        )),
        "getMediaPipeline" => Ok(value(
            e.parent
                .as_ref()
                .map(|p| p.0.clone())
                .unwrap_or_else(|| inv.object.to_string()),
        )),
        "getCreationTime" => Ok(value(e.creation_time)),
        "getSendTagsInEvents" => Ok(value(e.send_tags_in_events)),
        "setSendTagsInEvents" => inv.arg::<bool>("sendTagsInEvents").map(|b| {
            e.send_tags_in_events = b;
            Fields::new()
        }),
        "getTags" => Ok(value(
            e.tags.iter().map(|(k, v)| tag(k, v)).collect::<Vec<_>>(),
        )),
        "addTag" => (|| {
            let key: String = inv.arg("key")?;
            let val: String = inv.arg("value")?;
            match e.tags.iter_mut().find(|(k, _)| *k == key) {
                Some(t) => t.1 = val,
                None => e.tags.push((key, val)),
            }
            Ok(Fields::new())
        })(),
        "removeTag" => inv.arg::<String>("key").map(|key| {
            e.tags.retain(|(k, _)| *k != key);
            Fields::new()
        }),
        "getTag" => inv.arg::<String>("key").and_then(|key| {
            e.tags
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| value(v.clone()))
                .ok_or_else(|| {
                    RpcError::new(
                        ErrorCode::TagKeyNotFound,
                        format!("Tag key '{key}' not found"),
                    )
                })
        }),
        _ => return None,
    };
    Some(r)
}
