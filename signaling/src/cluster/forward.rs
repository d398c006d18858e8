//! The REST API on any node of a cluster (after Basic auth, which every node checks itself):
//!
//! - a call about one session (`/sessions/{id}…`, or `/signal` and `/tokens` naming it in their
//!   body) that another node owns is forwarded to that node and its answer returned as is;
//! - `GET /sessions` merges every live node's sessions;
//! - a change to the engine pool (`POST`/`PATCH`/`DELETE /media-nodes…`) that succeeded here is
//!   made on every other live node too, and reading it (`GET /media-nodes…`) adds up what every
//!   node has placed on each engine (sessions, picks, failures).
//!
//! A forwarded call carries [`HOP`], so it is answered where it lands and never forwarded again;
//! the header grants nothing (the caller's own credentials are passed on and checked there).

use crate::error::Error;
use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

use super::Route;
use crate::app::App;
use crate::rest::{ApiError, MAX_BODY};

/// Marks a call one node makes to another on a client's behalf.
pub const HOP: &str = "x-rtcpool-forwarded";

/// What a REST call is about, for routing.
enum Scope {
    /// One session.
    Session(String),
    /// Every session (the list).
    AllSessions,
    /// A change to the engine pool.
    PoolChange,
    /// Reading the engine pool (per-node figures are added up).
    PoolRead,
    /// Anything else: answered here.
    Here,
}

fn scope(method: &Method, path: &str, body: Option<&Bytes>) -> Scope {
    let rest = path.strip_prefix("/openvidu/api").unwrap_or(path);
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["sessions"] if method == Method::GET => Scope::AllSessions,
        ["sessions", id, ..] if !id.is_empty() => Scope::Session((*id).to_string()),
        ["signal"] | ["tokens"] if method == Method::POST => body
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .and_then(|v| v.get("session").and_then(Value::as_str).map(str::to_string))
            .map_or(Scope::Here, Scope::Session),
        ["media-nodes", ..] if method != Method::GET => Scope::PoolChange,
        ["media-nodes"] | ["media-nodes", _] => Scope::PoolRead,
        _ => Scope::Here,
    }
}

/// Whether `scope` needs the body to be read.
fn needs_body(method: &Method, path: &str) -> bool {
    method == Method::POST && (path.ends_with("/signal") || path.ends_with("/tokens"))
}

pub async fn middleware(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if !app.cluster.enabled() || req.headers().contains_key(HOP) {
        return next.run(req).await;
    }
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().clone(), |o| o.0.clone());
    let method = req.method().clone();
    let (req, body) = if needs_body(&method, path.path()) {
        let (parts, body) = req.into_parts();
        match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => (Request::from_parts(parts, Body::from(b.clone())), Some(b)),
            Err(_) => {
                return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Body too large", path.path())
                    .into_response()
            }
        }
    } else {
        (req, None)
    };
    match scope(&method, path.path(), body.as_ref()) {
        Scope::Here => next.run(req).await,
        Scope::Session(id) => {
            if app.reg.lock().sessions.contains_key(&id) {
                return next.run(req).await;
            }
            let route = app.route_or_adopt(&id).await;
            let (node, url) = match route {
                Ok(Route::Remote { node, url }) => (node, url),
                Ok(_) => return next.run(req).await,
                Err(e) => return unavailable(e, path.path()),
            };
            let headers = req.headers().clone();
            let body = match body {
                Some(b) => b,
                None => axum::body::to_bytes(req.into_body(), MAX_BODY)
                    .await
                    .unwrap_or_default(),
            };
            match call(
                &app,
                method.clone(),
                &join(&url, &path),
                &headers,
                body.clone(),
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    // The owner did not answer: dead once it also missed its heartbeats; then
                    // its session is adopted and the call answered here.
                    tracing::warn!(owner = %node, %e, "the session's node cannot be reached");
                    let retry = match app.reroute_after_failure(&id, &node).await {
                        Ok(Route::Remote { url, .. }) => {
                            call(
                                &app,
                                method.clone(),
                                &join(&url, &path),
                                &headers,
                                body.clone(),
                            )
                            .await
                        }
                        Ok(_) => {
                            let mut local = Request::new(Body::from(body));
                            *local.method_mut() = method;
                            *local.uri_mut() = path.clone();
                            *local.headers_mut() = headers;
                            return app_router_call(&app, local).await;
                        }
                        Err(e) => return unavailable(e, path.path()),
                    };
                    retry.unwrap_or_else(|e| {
                        ApiError::new(StatusCode::BAD_GATEWAY, e, path.path()).into_response()
                    })
                }
            }
        }
        Scope::AllSessions => {
            let headers = req.headers().clone();
            let local = next.run(req).await;
            merge(&app, local, &path, &headers, add_sessions).await
        }
        Scope::PoolRead => {
            let headers = req.headers().clone();
            let local = next.run(req).await;
            merge(&app, local, &path, &headers, add_engine_figures).await
        }
        Scope::PoolChange => {
            let headers = req.headers().clone();
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, MAX_BODY)
                .await
                .unwrap_or_default();
            let local = next
                .run(Request::from_parts(parts, Body::from(body.clone())))
                .await;
            if !local.status().is_success() {
                return local;
            }
            let (parts, answer) = local.into_parts();
            let answer = axum::body::to_bytes(answer, usize::MAX)
                .await
                .unwrap_or_default();
            let local = Response::from_parts(parts, Body::from(answer.clone()));
            // Recorded for nodes that start later: the engine's id is in the path, or in the
            // answer of a POST.
            let id = match path.path().rsplit_once("/media-nodes/") {
                Some((_, id)) => id.to_string(),
                None => serde_json::from_slice::<Value>(&answer)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string))
                    .unwrap_or_default(),
            };
            let call_body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
            if !id.is_empty() {
                if let Err(e) = app
                    .cluster
                    .record_pool_call(&id, method.as_str(), &call_body)
                    .await
                {
                    tracing::warn!(engine = %id, %e, "engine pool change not recorded for later nodes");
                }
            }
            for n in app.cluster.others() {
                let target = join(&n.url, &path);
                if let Err(e) = call(&app, method.clone(), &target, &headers, body.clone()).await {
                    tracing::warn!(node = %n.id, %e, "engine pool change not applied on a node");
                }
            }
            local
        }
    }
}

fn unavailable(e: Error, path: &str) -> Response {
    ApiError::of(e, path).into_response()
}

/// Answers a request here through the whole REST router (the middleware's `next` was spent on
/// the forwarding attempt), marked so that it is not forwarded again.
async fn app_router_call(app: &Arc<App>, mut req: Request) -> Response {
    use tower::ServiceExt;
    if let Ok(v) = HeaderValue::from_str(&app.cluster.node) {
        req.headers_mut().insert(HOP, v);
    }
    match crate::rest::router(app.clone()).oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

fn join(node_url: &str, path: &axum::http::Uri) -> String {
    let pq = path.path_and_query().map_or("/", |p| p.as_str());
    format!("{}{pq}", node_url.trim_end_matches('/'))
}

/// One call to another node on the client's behalf: its answer, status and body as they are.
async fn call(
    app: &App,
    method: Method,
    target: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, String> {
    let mut rb = app
        .cluster
        .http
        .request(method, target)
        .header(HOP, app.cluster.node.as_str())
        .body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(v) = headers.get(&name) {
            rb = rb.header(name, v);
        }
    }
    if let Some(v) = headers.get("x-real-ip") {
        rb = rb.header("x-real-ip", v);
    }
    let r = rb
        .send()
        .await
        .map_err(|e| format!("node unreachable: {e}"))?;
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out_headers = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::WWW_AUTHENTICATE] {
        if let Some(v) = r.headers().get(name.as_str()) {
            if let Ok(v) = HeaderValue::from_bytes(v.as_bytes()) {
                out_headers.insert(name, v);
            }
        }
    }
    let bytes = r
        .bytes()
        .await
        .map_err(|e| format!("node answer lost: {e}"))?;
    Ok((status, out_headers, bytes).into_response())
}

/// A GET answered here, combined with the same GET on every other live node by `add(ours,
/// theirs)`.
async fn merge(
    app: &App,
    local: Response,
    path: &axum::http::Uri,
    headers: &HeaderMap,
    add: fn(&mut Value, &Value),
) -> Response {
    if !local.status().is_success() {
        return local;
    }
    let (parts, body) = local.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let Ok(mut ours) = serde_json::from_slice::<Value>(&bytes) else {
        return (parts, bytes).into_response();
    };
    let calls = app.cluster.others().into_iter().map(|n| {
        let target = join(&n.url, path);
        async move { call(app, Method::GET, &target, headers, Bytes::new()).await }
    });
    for answer in futures::future::join_all(calls).await {
        let Ok(r) = answer else { continue };
        let b = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        if let Ok(theirs) = serde_json::from_slice::<Value>(&b) {
            add(&mut ours, &theirs);
        }
    }
    (parts.status, axum::Json(ours)).into_response()
}

/// `GET /sessions`: every node's sessions in one list.
fn add_sessions(ours: &mut Value, theirs: &Value) {
    let more = theirs["content"].as_array().cloned().unwrap_or_default();
    if let Some(content) = ours["content"].as_array_mut() {
        content.extend(more);
        let n = content.len();
        ours["numberOfElements"] = Value::from(n);
    }
}

/// `GET /media-nodes[/{id}]`: an engine's sessions, picks and failures over every node (its
/// health figures are the engine's own, the same from any node).
fn add_engine_figures(ours: &mut Value, theirs: &Value) {
    fn one(o: &mut Value, t: &Value) {
        for k in ["sessionCount", "picks", "failures"] {
            let sum = o[k].as_u64().unwrap_or(0) + t[k].as_u64().unwrap_or(0);
            o[k] = Value::from(sum);
        }
        if let (Some(list), Some(more)) = (o["sessions"].as_array_mut(), t["sessions"].as_array()) {
            list.extend(more.iter().cloned());
        }
    }
    if let Some(engines) = ours["content"].as_array_mut() {
        for t in theirs["content"].as_array().into_iter().flatten() {
            if let Some(o) = engines.iter_mut().find(|o| o["id"] == t["id"]) {
                one(o, t);
            }
        }
    } else if ours["id"] == theirs["id"] {
        one(ours, theirs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn which(method: Method, path: &str, body: &str) -> String {
        let b = Bytes::from(body.to_string());
        match scope(&method, path, Some(&b)) {
            Scope::Session(id) => format!("session {id}"),
            Scope::AllSessions => "all".into(),
            Scope::PoolChange => "pool".into(),
            Scope::PoolRead => "pool read".into(),
            Scope::Here => "here".into(),
        }
    }

    #[test]
    fn calls_are_routed_by_what_they_are_about() {
        let api = "/openvidu/api";
        assert_eq!(which(Method::GET, &format!("{api}/sessions"), ""), "all");
        assert_eq!(which(Method::POST, &format!("{api}/sessions"), ""), "here");
        assert_eq!(
            which(Method::GET, &format!("{api}/sessions/s1"), ""),
            "session s1"
        );
        assert_eq!(
            which(
                Method::DELETE,
                &format!("{api}/sessions/s1/connection/c"),
                ""
            ),
            "session s1"
        );
        assert_eq!(
            which(
                Method::POST,
                &format!("{api}/signal"),
                r#"{"session":"s2"}"#
            ),
            "session s2"
        );
        assert_eq!(
            which(Method::POST, &format!("{api}/signal"), "not json"),
            "here"
        );
        assert_eq!(
            which(Method::POST, &format!("{api}/media-nodes"), ""),
            "pool"
        );
        assert_eq!(
            which(Method::PATCH, &format!("{api}/media-nodes/m"), ""),
            "pool"
        );
        assert_eq!(
            which(Method::GET, &format!("{api}/media-nodes"), ""),
            "pool read"
        );
        assert_eq!(
            which(Method::GET, &format!("{api}/media-nodes/m"), ""),
            "pool read"
        );
        assert_eq!(which(Method::GET, &format!("{api}/config"), ""), "here");
    }
}
