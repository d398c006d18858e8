//! `unpublishVideo`: releases the publisher endpoint, its PassThrough and every subscription to
//! it; the others get `participantUnpublished {reason: "unpublish"}`. Not publishing → 105.

use crate::error::Error;
use serde_json::Value;

use super::wire::{Code, RpcError};
use super::{Ctx, Me};

pub async fn handle(ctx: &mut Ctx<'_>, me: Me) -> Result<Value, RpcError> {
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
    let (who, why, except) = (
        publisher.to_string(),
        reason.to_string(),
        except.map(str::to_string),
    );
    let unpublished = app
        .on_session(session_id, move |s| {
            s.unpublish(&who, &why, except.as_deref())
                .map(|u| (u, s.created_at))
        })
        .await
        .unwrap_or(Err(Error::NotPublishing));
    let Ok((u, session_created)) = unpublished else {
        return Err(RpcError::new(
            Code::UserNotStreaming,
            "The user is not publishing",
        ));
    };
    let connection = publisher.to_string();
    app.release_detached(session_id, move |sm| Some(sm.detach_publisher(&connection)))
        .await;
    app.deliver(&[u.notice]);
    app.webhook.stream_ended(
        (session_id, session_created),
        publisher,
        &u.publisher,
        &u.cut,
        reason,
    );
    Ok(())
}
