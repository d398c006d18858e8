//! The operators' API in OpenVidu Pro's `/openvidu/api/media-nodes` shape: list and inspect the
//! pool, add an engine at runtime, re-weight or drain it (`PATCH`), and delete it with
//! `deletion-strategy=now|if-no-sessions|when-no-sessions`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{flag, no_content, object_body, ok_json, ApiError};
use crate::app::App;
use crate::model::list_json;
use crate::pool::{Engine, Status};

const PATH: &str = "/openvidu/api/media-nodes";

/// The Media Node object (+ rtcpool's health fields).
pub async fn node_json(app: &App, e: &Engine, with_sessions: bool) -> Value {
    let s = e.snapshot();
    let admitted = app.pool.admitted(&s);
    let mut v = json!({
        "id": s.id, "object": "mediaNode", "uri": s.uri, "ip": s.ip, "weight": s.weight,
        "connected": s.connected, "connectionTime": s.connection_time,
        "load": s.stats.as_ref().map(|x| (x.cpu_pct * 100.0).round() / 100.0).unwrap_or(0.0),
        "status": s.status.as_str(),
        "admitted": admitted.is_ok(),
        "sessionCount": s.sessions.len(),
        "labels": e.labels,
        "picks": e.picks.load(std::sync::atomic::Ordering::Relaxed),
        "failures": e.failures.load(std::sync::atomic::Ordering::Relaxed),
    });
    if let Err(why) = admitted {
        v["notAdmittedBecause"] = json!(why);
    }
    if !s.connected {
        v["disconnectionTime"] = json!(s.disconnection_time);
    }
    if let Some(st) = &s.stats {
        v["memory"] = json!(st.memory_kib * 1024);
        v["pipelines"] = json!(st.pipelines);
        v["endpoints"] = json!(st.endpoints);
        v["pingRtt"] = json!((st.rtt_ms * 100.0).round() / 100.0);
        v["statsAge"] = json!(Instant::now().saturating_duration_since(st.at).as_millis() as u64);
    }
    if with_sessions {
        let mut sessions = Vec::with_capacity(s.sessions.len());
        for id in &s.sessions {
            let Some(mut j) = app.on_session(id, |x| x.rest_json(false)).await else {
                continue;
            };
            if app.cluster.enabled() {
                // rtcpool's addition: which signaling node owns the session.
                j["ownerNode"] = json!(app.instance);
            }
            sessions.push(j);
        }
        v["sessions"] = json!(sessions);
    }
    v
}

fn not_found(id: &str) -> Response {
    ApiError::missing(
        StatusCode::NOT_FOUND,
        "Media node",
        id,
        &format!("{PATH}/{id}"),
    )
    .into_response()
}

pub async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let with = flag(&q, "sessions", false);
    let mut content = Vec::new();
    for e in app.pool.all() {
        content.push(node_json(&app, &e, with).await);
    }
    ok_json(list_json(content))
}

pub async fn get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match app.pool.get(&id) {
        Some(e) => ok_json(node_json(&app, &e, flag(&q, "sessions", false)).await),
        None => not_found(&id),
    }
}

/// `POST {uri, weight?, labels?}`: 400 invalid, 409 already in the pool, 404 unreachable
/// (within 5 s; `?wait=false` adds it without waiting).
pub async fn add(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let body = match object_body(&body, PATH) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let Some(uri) = body.get("uri").and_then(Value::as_str).map(str::to_string) else {
        return ApiError::new(StatusCode::BAD_REQUEST, "'uri' is required", PATH).into_response();
    };
    if let Err(e) = rtcpool_config::check_uri("uri", &uri) {
        return ApiError::new(StatusCode::BAD_REQUEST, e.to_string(), PATH).into_response();
    }
    let weight = match body.get("weight") {
        None | Some(Value::Null) => 1,
        Some(v) => match v
            .as_u64()
            .and_then(|w| u32::try_from(w).ok())
            .filter(|w| *w > 0)
        {
            Some(w) => w,
            None => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "'weight' must be a positive integer",
                    PATH,
                )
                .into_response()
            }
        },
    };
    let labels = match body.get("labels") {
        None | Some(Value::Null) => Default::default(),
        Some(v) => match serde_json::from_value(v.clone()) {
            Ok(l) => l,
            Err(_) => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "'labels' must be an object of strings",
                    PATH,
                )
                .into_response()
            }
        },
    };
    let e = match app.pool.add(uri.clone(), weight, labels) {
        Ok(e) => e,
        Err(why) => return ApiError::new(StatusCode::CONFLICT, why, PATH).into_response(),
    };
    if flag(&q, "wait", true) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !e.snapshot().connected {
            if tokio::time::Instant::now() > deadline {
                app.pool.remove(&e.id);
                return ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!(
                        "Media node {} is unreachable (or refused our credentials)",
                        e.uri
                    ),
                    PATH,
                )
                .into_response();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.hook_node_status(&e.snapshot(), "launching", Status::Running.as_str());
    }
    ok_json(node_json(&app, &e, false).await)
}

/// `PATCH {status?, weight?}`: 200 changed, 204 unchanged, 400 invalid, 404 unknown.
pub async fn patch(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> Response {
    let p = format!("{PATH}/{id}");
    let Some(e) = app.pool.get(&id) else {
        return not_found(&id);
    };
    let body = match object_body(&body, &p) {
        Ok(b) => b,
        Err(err) => return err.into_response(),
    };
    let before = e.snapshot();
    let status = match body.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "running" => Some(Status::Running),
        Some(Value::String(s)) if s == "waiting-idle-to-terminate" => Some(Status::Draining),
        Some(v) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "Invalid status transition from {} to {v}",
                    before.status.as_str()
                ),
                &p,
            )
            .into_response()
        }
    };
    let weight = match body.get("weight") {
        None | Some(Value::Null) => None,
        Some(v) => match v
            .as_u64()
            .and_then(|w| u32::try_from(w).ok())
            .filter(|w| *w > 0)
        {
            Some(w) => Some(w),
            None => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "'weight' must be a positive integer",
                    &p,
                )
                .into_response()
            }
        },
    };
    let mut changed = false;
    if let Some(st) = status.filter(|s| *s != before.status) {
        e.set_status(st);
        app.hook_node_status(&e.snapshot(), before.status.as_str(), st.as_str());
        changed = true;
    }
    if let Some(w) = weight.filter(|w| *w != before.weight) {
        e.set_weight(w);
        changed = true;
    }
    if changed {
        ok_json(node_json(&app, &e, false).await)
    } else {
        no_content()
    }
}

/// `DELETE ?deletion-strategy=`: `if-no-sessions` (default) 409 while it hosts sessions, else 204;
/// `when-no-sessions` 202 (drains, leaves when idle) or 204; `now` 204 at once, its sessions moved
/// to other engines (closed with `mediaServerDisconnect` when none can take them).
pub async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = format!("{PATH}/{id}");
    let Some(e) = app.pool.get(&id) else {
        return not_found(&id);
    };
    let busy = !e.snapshot().sessions.is_empty();
    match q
        .get("deletion-strategy")
        .map(String::as_str)
        .unwrap_or("if-no-sessions")
    {
        "if-no-sessions" if busy => ApiError::new(
            StatusCode::CONFLICT,
            format!("Media node {id} hosts sessions"),
            &p,
        )
        .into_response(),
        "when-no-sessions" if busy => {
            let before = e.snapshot().status;
            e.remove_when_idle();
            if before != Status::Draining {
                app.hook_node_status(&e.snapshot(), before.as_str(), Status::Draining.as_str());
            }
            StatusCode::ACCEPTED.into_response()
        }
        "now" if busy => {
            let before = e.snapshot().status;
            e.set_status(Status::Draining);
            app.rehome_engine_now(&id, "mediaServerDisconnect").await;
            app.pool.remove(&id);
            app.hook_node_status(&e.snapshot(), before.as_str(), "terminated");
            no_content()
        }
        "if-no-sessions" | "when-no-sessions" | "now" => {
            app.pool.remove(&id);
            app.hook_node_status(&e.snapshot(), e.snapshot().status.as_str(), "terminated");
            no_content()
        }
        other => ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Unknown deletion-strategy '{other}'"),
            &p,
        )
        .into_response(),
    }
}
