//! `unpublishVideo`: releases the publisher endpoint, its PassThrough and every subscription to
//! it; the others get `participantUnpublished {reason: "unpublish"}`. Not publishing → 105.

use serde_json::Value;

use super::wire::{Code, Notification, RpcError};
use super::Ctx;

pub async fn handle(ctx: &mut Ctx<'_>) -> Result<Value, RpcError> {
    let me = ctx.me("unpublishVideo")?;
    unpublish(
        ctx.app,
        &me.session_id,
        &me.connection_id,
        "unpublish",
        Some(&me.connection_id),
    )
    .await?;
    Ok(super::empty())
}

/// Shared with `forceUnpublish` and the REST stream deletion. `except`: who is not told.
pub async fn unpublish(
    app: &std::sync::Arc<crate::app::App>,
    session_id: &str,
    publisher: &str,
    reason: &str,
    except: Option<&str>,
) -> Result<(), RpcError> {
    let stream = {
        let mut reg = app.reg.lock();
        let c = reg
            .sessions
            .get_mut(session_id)
            .and_then(|s| s.connections.get_mut(publisher));
        c.and_then(|c| c.publisher.take()).map(|p| p.stream_id)
    };
    let Some(stream) = stream else {
        return Err(RpcError::new(
            Code::UserNotStreaming,
            "The user is not publishing",
        ));
    };
    {
        let mut reg = app.reg.lock();
        if let Some(s) = reg.sessions.get_mut(session_id) {
            for c in s.connections.values_mut() {
                c.subscriptions.retain(|(st, _)| *st != stream);
            }
        }
    }
    let slot = app.media_slot(session_id);
    if let Some(sm) = slot.lock().await.as_mut() {
        sm.unpublish(publisher).await;
    }
    app.broadcast(
        session_id,
        except,
        &Notification::ParticipantUnpublished {
            connection_id: publisher.into(),
            reason: reason.into(),
        },
    );
    Ok(())
}
