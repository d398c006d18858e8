//! `describe {object}` → `type`, `qualifiedType`, `hierarchy` (unknown → 40101).

use kms_client::wire::{RpcError, SessionId};
use serde_json::Value;
use std::sync::Arc;

use super::Handled;
use crate::engine::Engine;

pub fn handle(engine: &Arc<Engine>, session: &SessionId, object: &str) -> Handled {
    let mut st = engine.state.lock();
    let class = st.objects.get(object)?.class;
    st.objects.reference(object, session);
    let mut f = super::Fields::new();
    f.insert("type".into(), Value::from(class.name()));
    f.insert("qualifiedType".into(), Value::from(class.qualified_type()));
    f.insert("hierarchy".into(), Value::from(class.hierarchy().to_vec()));
    Ok::<_, RpcError>(f)
}
