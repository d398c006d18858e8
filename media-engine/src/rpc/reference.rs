//! `ref` / `unref {object, sessionId}`: share an object with another session, or stop using it
//! (an object no session uses any more is released).

use kms_client::wire::SessionId;
use std::sync::Arc;

use super::{Fields, Handled};
use crate::engine::Engine;

pub fn add(engine: &Arc<Engine>, session: &SessionId, object: &str) -> Handled {
    let mut st = engine.state.lock();
    st.objects.get(object)?;
    st.objects.reference(object, session);
    Ok(Fields::new())
}

pub async fn remove(engine: &Arc<Engine>, session: &SessionId, object: &str) -> Handled {
    let orphans = {
        let mut st = engine.state.lock();
        let e = st.objects.get_mut(object)?;
        e.sessions.remove(session);
        if e.sessions.is_empty() && e.parent.is_none() {
            vec![kms_client::wire::ObjectId(object.to_string())]
        } else {
            Vec::new()
        }
    };
    engine.release(&orphans).await;
    Ok(Fields::new())
}
