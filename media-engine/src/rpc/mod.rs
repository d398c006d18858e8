//! One Kurento method per file. Each handler parses nothing itself (params arrive typed), does
//! the work and returns the result's fields; [`dispatch`] adds `sessionId`, binds the socket to
//! the session and builds the frame.

mod close_session;
mod connect;
mod create;
mod describe;
mod invoke;
mod keep_alive;
mod ping;
mod reference;
mod release;
mod subscribe;
mod transaction;
mod unsubscribe;

use kms_client::wire::{Method, Request, Response, RpcError, SessionId};
use serde_json::{Map, Value};
use std::sync::Arc;

use crate::core::SocketId;
use crate::engine::Engine;

pub type Fields = Map<String, Value>;
pub type Handled = Result<Fields, RpcError>;

/// The connection a request arrived on.
pub struct Conn<'a> {
    pub engine: &'a Arc<Engine>,
    pub socket: SocketId,
    /// The session this socket currently carries.
    pub bound: &'a mut Option<SessionId>,
}

pub async fn dispatch(conn: &mut Conn<'_>, req: Request) -> Response {
    let id = req.id.clone();
    let method = match Method::parse(&req.method, req.params) {
        Ok(m) => m,
        Err(e) => return Response::err(id, e),
    };
    // KMS injects the socket's session into requests that carry none.
    let requested = method
        .session_id()
        .map(|s| SessionId(s.to_string()))
        .or_else(|| conn.bound.clone());
    let outcome = match method {
        Method::Ping(_) => Ok((
            ping::handle(),
            requested.filter(|s| conn.engine.session_exists(s)),
        )),
        Method::Connect(_) => connect::handle(conn.engine, requested).map(|(f, s)| (f, Some(s))),
        Method::KeepAlive(_) => {
            keep_alive::handle(conn.engine, requested).map(|s| (Fields::new(), Some(s)))
        }
        Method::CloseSession(p) => {
            close_session::handle(conn.engine, requested, p.release.unwrap_or(false)).await;
            *conn.bound = None;
            return Response::null_result(id);
        }
        other => {
            let session = requested.unwrap_or_else(SessionId::mint);
            conn.engine.bind(&session, conn.socket);
            let r = match other {
                Method::Describe(p) => describe::handle(conn.engine, &session, &p.object),
                Method::Create(p) => create::handle(conn.engine, &session, p).await,
                Method::Invoke(p) => invoke::handle(conn.engine, &session, p).await,
                Method::Subscribe(p) => {
                    subscribe::handle(conn.engine, &session, &p.object, &p.kind)
                }
                Method::Unsubscribe(p) => Ok(unsubscribe::handle(conn.engine, &p.subscription)),
                Method::Release(p) => Ok(release::handle(conn.engine, &p.object).await),
                Method::Transaction(_) => transaction::handle(),
                Method::Ref(p) => reference::add(conn.engine, &session, &p.object),
                Method::Unref(p) => reference::remove(conn.engine, &session, &p.object).await,
                _ => unreachable_method(),
            };
            r.map(|f| (f, Some(session)))
        }
    };
    match outcome {
        Ok((mut fields, session)) => {
            if let Some(s) = session {
                conn.engine.bind(&s, conn.socket);
                fields.insert("sessionId".into(), Value::from(s.0.clone()));
                *conn.bound = Some(s);
            }
            Response::ok(id, fields)
        }
        Err(e) => Response::err(id, e),
    }
}

fn unreachable_method() -> Handled {
    Err(RpcError::new(
        kms_client::wire::ErrorCode::InternalError,
        "Internal error",
    ))
}

/// `{"value": v}`.
pub fn value(v: impl Into<Value>) -> Fields {
    let mut m = Fields::new();
    m.insert("value".into(), v.into());
    m
}
