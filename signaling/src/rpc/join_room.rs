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
    // Consume the token (or, with the server secret, make a connection on the spot) under one
    // lock, so a token can be used once only.
    let connection_id = {
        let mut reg = ctx.app.reg.lock();
        let Some(s) = reg.sessions.get_mut(&session_id) else {
            return Err(RpcError::new(
                Code::RoomNotFound,
                format!(
                    "Unable to join session {session_id}. Session {session_id} cannot be found"
                ),
            ));
        };
        let by_secret = !secret.is_empty()
            && rtcpool_config::secret::matches(
                secret.as_bytes(),
                ctx.app.settings.openvidu_secret.as_bytes(),
            );
        s.admit(&token, by_secret, active, ids::connection_id)
            .map_err(|_| {
                RpcError::new(
                    Code::UserUnauthorized,
                    format!("Unable to join session {session_id}. Token {token} is not valid"),
                )
            })?
    };
    if let Err(e) = ctx.app.ensure_pipeline(&session_id).await {
        // Give the token back: nothing is half-joined.
        if let Some(s) = ctx.app.reg.lock().sessions.get_mut(&session_id) {
            s.give_back(&connection_id);
        }
        return Err(e.into());
    }
    let (result, joined, hook) = {
        let mut reg = ctx.app.reg.lock();
        let Some(s) = reg.sessions.get(&session_id) else {
            return Err(RpcError::new(
                Code::RoomClosed,
                format!("Session {session_id} was closed"),
            ));
        };
        let Some(me) = s.connections.get(&connection_id) else {
            return Err(RpcError::new(
                Code::RoomClosed,
                format!("Session {session_id} was closed"),
            ));
        };
        let others: Vec<Value> = s
            .active()
            .filter(|c| c.id != connection_id)
            .map(|c| c.remote_json())
            .collect();
        let ice: Vec<Value> = me.props.custom_ice_servers.clone();
        let result = json!({
            "id": me.id,
            "finalUserId": ctx.rpc.chars().take(16).collect::<String>(),
            "createdAt": now,
            "metadata": me.metadata(),
            "value": others,
            "session": session_id,
            "version": OPENVIDU_VERSION,
            "mediaServer": "kurento",
            "videoSimulcast": false,
            "record": me.props.record,
            "role": me.role().as_str(),
            "customIceServers": ice,
        });
        let joined = s.joined(&connection_id);
        let hook = (s.created_at, events::participant(me, None));
        // Requests of one socket run in order, so it cannot have joined since the check above.
        let _ = reg.roster.join(
            ctx.rpc,
            &session_id,
            &connection_id,
            Attached {
                id: ctx.socket,
                tx: ctx.tx.clone(),
            },
        );
        (result, joined, hook)
    };
    ctx.app.cluster.participant_joined(ctx.rpc, &session_id);
    ctx.app.changed(&session_id);
    ctx.app.deliver(joined.as_slice());
    ctx.app
        .webhook
        .emit("participantJoined", Some((&session_id, hook.0)), hook.1);
    ctx.app.metrics.joins.fetch_add(1, Ordering::Relaxed);
    Ok(result)
}
