//! `joinRoom`: consume the token, place the session on an engine at its first join, answer
//! with the local connection and every remote one, tell the others `participantJoined`.

use serde_json::{json, Value};
use std::sync::atomic::Ordering;

use super::request::JoinRoom;
use super::wire::{Code, RpcError};
use super::Ctx;
use crate::core::Attached;
use crate::ids;
use crate::model::Active;
use crate::webhook::events;

/// The OpenVidu version we speak (openvidu-browser checks it as semver).
pub const OPENVIDU_VERSION: &str = "2.32.2";

pub async fn handle(ctx: &mut Ctx<'_>, j: JoinRoom) -> Result<Value, RpcError> {
    let JoinRoom {
        token,
        session: session_id,
        platform,
        metadata,
        secret,
    } = j;
    if ctx.app.reg.lock().roster.get(ctx.rpc.as_str()).is_some() {
        return Err(RpcError::new(
            Code::Generic,
            "This socket has already joined a session",
        ));
    }
    let now = ids::now_ms();
    let active = Active {
        active_at: now,
        platform,
        client_data: metadata,
        ip: ctx.ip.to_string(),
        rpc: ctx.rpc.clone(),
    };
    let not_found = || {
        RpcError::new(
            Code::RoomNotFound,
            format!("Unable to join session {session_id}. Session {session_id} cannot be found"),
        )
    };
    let closed = || RpcError::new(Code::RoomClosed, format!("Session {session_id} was closed"));
    let owner = ctx.app.session(&session_id).ok_or_else(not_found)?;
    // Consume the token (or, with the server secret, make a connection on the spot) in one step
    // of the session's owner, so a token can be used once only.
    let by_secret = !secret.is_empty()
        && rtcpool_config::secret::matches(
            secret.as_bytes(),
            ctx.app.settings.openvidu_secret.as_bytes(),
        );
    let presented = token.clone();
    let connection_id = owner
        .record(move |s| s.admit(&presented, by_secret, active, ids::connection_id))
        .await
        .ok_or_else(not_found)?
        .map_err(|_| {
            RpcError::new(
                Code::UserUnauthorized,
                format!("Unable to join session {session_id}. Token {token} is not valid"),
            )
        })?;
    if let Err(e) = ctx.app.ensure_pipeline(&session_id).await {
        // Give the token back: nothing is half-joined.
        let c = connection_id.clone();
        owner.record(move |s| s.give_back(&c)).await;
        return Err(e.into());
    }
    // The answer, the others' notice and the roster entry in one step: a departure (an
    // eviction by REST, say) comes wholly before or after.
    let (reg, cid, sid) = (
        ctx.app.reg.clone(),
        connection_id.clone(),
        session_id.clone(),
    );
    let (rpc, final_user) = (
        ctx.rpc.clone(),
        ctx.rpc.chars().take(16).collect::<String>(),
    );
    let attached = Attached {
        id: ctx.socket,
        tx: ctx.tx.clone(),
    };
    let joined = owner.record(move |s| {
        let me = s.connections.get(&cid)?;
        let others: Vec<Value> = s
            .active()
            .filter(|c| c.id != cid)
            .map(|c| c.remote_json())
            .collect();
        let result = json!({
            "id": me.id,
            "finalUserId": final_user,
            "createdAt": now,
            "metadata": me.metadata(),
            "value": others,
            "session": sid,
            "version": OPENVIDU_VERSION,
            "mediaServer": "kurento",
            "videoSimulcast": false,
            "record": me.props.record,
            "role": me.role().as_str(),
            "customIceServers": me.props.custom_ice_servers,
        });
        let hook = (s.created_at, events::participant(me, None));
        let role = me.role();
        let notice = s.joined(&cid);
        // Requests of one socket run in order, so it cannot have joined since the check above.
        let _ = reg.lock().roster.join(&rpc, &sid, &cid, role, attached);
        Some((result, notice, hook))
    });
    let (result, joined, hook) = joined.await.flatten().ok_or_else(closed)?;
    ctx.app.cluster.participant_joined(ctx.rpc, &session_id);
    ctx.app.changed(&session_id);
    ctx.app.deliver(joined.as_slice());
    ctx.app
        .webhook
        .emit("participantJoined", Some((&session_id, hook.0)), hook.1);
    ctx.app.metrics.joins.fetch_add(1, Ordering::Relaxed);
    Ok(result)
}
