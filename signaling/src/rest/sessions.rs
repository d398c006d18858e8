//! `POST/GET /sessions`, `GET/DELETE /sessions/{id}`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

use super::{flag, no_content, object_body, ok_json, ApiError};
use crate::app::App;
use crate::error::Error;
use crate::media::stats::add_to_session;
use crate::model::{list_json, SessionProps};

const PATH: &str = "/openvidu/api/sessions";

pub async fn create(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let body = match object_body(&body, PATH) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let props = match SessionProps::parse(&body) {
        Ok(p) => p,
        Err(msg) => return ApiError::new(StatusCode::BAD_REQUEST, msg, PATH).into_response(),
    };
    // Pro's manual placement: the named engine must exist (404) and be able to take the session
    // now (400, with the reason).
    if let Some(node) = &props.media_node {
        let Some(e) = app.pool.get(node) else {
            return ApiError::missing(StatusCode::NOT_FOUND, "Media node", node, PATH)
                .into_response();
        };
        if let Err(why) = app.pool.admitted(&e.snapshot()) {
            let msg = format!("Media node {node} cannot take new sessions: {why}");
            return ApiError::new(StatusCode::BAD_REQUEST, msg, PATH).into_response();
        }
    }
    match app.create_session(props).await {
        Ok(json) => ok_json(json),
        // OpenVidu answers an existing id with a bare 409.
        Err(Error::SessionExists(_)) => StatusCode::CONFLICT.into_response(),
        Err(e) => ApiError::of(e, PATH).into_response(),
    }
}

pub async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let pending = flag(&q, "pendingConnections", false);
    let mut figures = HashMap::new();
    if flag(&q, "webRtcStats", false) {
        for (id, _) in app.sessions() {
            let f = app.webrtc_figures(&id).await;
            figures.insert(id, f);
        }
    }
    let mut content = Vec::new();
    for (id, owner) in app.sessions() {
        let Some((v, engine)) = owner
            .record(move |s| (s.rest_json(pending), s.engine.clone()))
            .await
        else {
            continue;
        };
        let mut v = with_span(&app, &id, engine.as_deref(), v);
        if let Some(f) = figures.get(&id) {
            add_to_session(&mut v, f);
        }
        content.push(v);
    }
    ok_json(list_json(content))
}

pub async fn get(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let pending = flag(&q, "pendingConnections", false);
    let figures = match flag(&q, "webRtcStats", false) {
        true => app.webrtc_figures(&id).await,
        false => Default::default(),
    };
    let found = app
        .on_session(&id, move |s| (s.rest_json(pending), s.engine.clone()))
        .await;
    match found {
        Some((v, engine)) => {
            let mut v = with_span(&app, &id, engine.as_deref(), v);
            add_to_session(&mut v, &figures);
            ok_json(v)
        }
        None => ApiError::missing(
            StatusCode::NOT_FOUND,
            "Session",
            &id,
            &format!("{PATH}/{id}"),
        )
        .into_response(),
    }
}

pub async fn close(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    if app.close_session(&id, "sessionClosedByServer").await {
        no_content()
    } else {
        ApiError::missing(
            StatusCode::NOT_FOUND,
            "Session",
            &id,
            &format!("{PATH}/{id}"),
        )
        .into_response()
    }
}

/// Where the session's media is (OpenVidu Pro's `mediaNodeId`) and, when it spans engines, every
/// engine it uses (`mediaNodeIds`, its own first) and its relays.
fn with_span(app: &App, id: &str, engine: Option<&str>, mut v: Value) -> Value {
    let Some(engine) = engine else {
        return v;
    };
    let relays = app
        .relay_views
        .lock()
        .get(id)
        .map(|r| r.lock().clone())
        .unwrap_or_default();
    let mut nodes = vec![engine.to_string()];
    for r in &relays {
        if !nodes.contains(&r.to_media_node_id) {
            nodes.push(r.to_media_node_id.clone());
        }
    }
    v["mediaNodeId"] = Value::from(engine);
    v["mediaNodeIds"] = serde_json::json!(nodes);
    v["relays"] = Value::Array(relays.iter().map(|r| r.json()).collect());
    v
}
