//! `closeSession {sessionId, release?}`: `release:true` releases every object the session
//! uses; otherwise only objects no other session references go. Result `null`, as in KMS.

use kms_client::wire::SessionId;
use std::sync::Arc;

use crate::engine::Engine;

pub async fn handle(engine: &Arc<Engine>, session: Option<SessionId>, release: bool) {
    let Some(session) = session else { return };
    let doomed = {
        let mut st = engine.state.lock();
        let doomed = if release {
            st.objects.referenced_by(&session)
        } else {
            st.objects.unref_session(&session)
        };
        st.sessions.remove(&session);
        doomed
    };
    engine.release(&doomed).await;
}
