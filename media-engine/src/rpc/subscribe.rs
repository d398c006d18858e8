//! `subscribe {object, type}` → a subscription id. Any event of the class's list is accepted
//! (even ones never emitted); an event the class lacks is 40106.

use kms_client::wire::{ErrorCode, ObjectId, RpcError, SessionId};
use std::sync::Arc;

use super::{value, Handled};
use crate::engine::Engine;

pub fn handle(engine: &Arc<Engine>, session: &SessionId, object: &str, event: &str) -> Handled {
    let mut st = engine.state.lock();
    let class = st.objects.get(object)?.class;
    let Some(event) = class.resolve_event(event) else {
        return Err(RpcError::new(
            ErrorCode::MediaObjectEventNotSupported,
            format!("Event '{event}' not supported"),
        ));
    };
    st.objects.reference(object, session);
    let id = st
        .sessions
        .subscribe(session, &ObjectId(object.to_string()), event);
    Ok(value(id))
}
