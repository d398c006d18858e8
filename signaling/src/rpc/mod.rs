//! The browser protocol at `/openvidu`: one method per file; each handler takes typed params
//! and returns the result value or an OpenVidu error; [`dispatch`] routes and the socket loop
//! (`socket.rs`) writes, injecting the rpc `sessionId`.

mod connect;
mod echo;
mod force_disconnect;
mod force_unpublish;
mod join_room;
mod leave_room;
mod on_ice_candidate;
mod publish_video;
mod receive_video_from;
mod reconnect_stream;
mod send_message;
pub mod socket;
mod stream_property_changed;
mod unpublish_video;
mod unsubscribe_from_video;
mod unsupported;
mod video_data;
pub mod wire;

pub use join_room::OPENVIDU_VERSION;
pub use send_message::{check_signal, deliver as deliver_signal, recipients as signal_recipients};
pub use unpublish_video::unpublish;

use serde_json::{Map, Value};
use std::sync::Arc;

use crate::app::{App, OutTx};
use crate::model::Role;
use wire::{method, Code, RpcError};

/// The socket a request came on, and the participant it carries (once joined).
pub struct Ctx<'a> {
    pub app: &'a Arc<App>,
    /// The private rpc session id of this socket (the participant's, after `connect`).
    pub rpc: &'a mut String,
    pub socket: u64,
    pub tx: &'a OutTx,
    pub ip: &'a str,
}

/// The joined participant behind a request.
pub struct Me {
    pub session_id: String,
    pub connection_id: String,
    pub role: Role,
}

impl Ctx<'_> {
    /// 803 before `joinRoom`, as OpenVidu.
    pub fn me(&self, method: &str) -> Result<Me, RpcError> {
        let reg = self.app.reg.lock();
        let p = reg.roster.get(self.rpc.as_str()).ok_or_else(|| {
            RpcError::new(Code::Transport, format!("No connection found for participant with privateId {}. Method '{method}' cannot be called before 'Session.connect()'", self.rpc))
        })?;
        let role = reg
            .sessions
            .get(&p.session_id)
            .and_then(|s| s.connections.get(&p.connection_id))
            .map(|c| c.role())
            .ok_or_else(|| {
                RpcError::new(
                    Code::UserNotFound,
                    "Participant is no longer in the session",
                )
            })?;
        Ok(Me {
            session_id: p.session_id.clone(),
            connection_id: p.connection_id.clone(),
            role,
        })
    }
}

pub async fn dispatch(
    ctx: &mut Ctx<'_>,
    name: &str,
    p: &Map<String, Value>,
) -> Result<Value, RpcError> {
    crate::limits::check_params(name, p)?;
    match name {
        method::CONNECT => connect::handle(ctx, p),
        method::JOIN_ROOM => join_room::handle(ctx, p).await,
        method::LEAVE_ROOM => leave_room::handle(ctx).await,
        method::PUBLISH_VIDEO => publish_video::handle(ctx, p).await,
        method::UNPUBLISH_VIDEO => unpublish_video::handle(ctx).await,
        method::RECEIVE_VIDEO_FROM => receive_video_from::handle(ctx, p).await,
        method::UNSUBSCRIBE_FROM_VIDEO => unsubscribe_from_video::handle(ctx, p).await,
        method::ON_ICE_CANDIDATE => on_ice_candidate::handle(ctx, p).await,
        method::SEND_MESSAGE => send_message::handle(ctx, p),
        method::STREAM_PROPERTY_CHANGED => stream_property_changed::handle(ctx, p),
        method::FORCE_DISCONNECT => force_disconnect::handle(ctx, p).await,
        method::FORCE_UNPUBLISH => force_unpublish::handle(ctx, p).await,
        method::RECONNECT_STREAM => reconnect_stream::handle(ctx, p).await,
        method::VIDEO_DATA => video_data::handle(ctx, p),
        method::ECHO => echo::handle(),
        method::APPLY_FILTER
        | method::EXEC_FILTER_METHOD
        | method::REMOVE_FILTER
        | method::ADD_FILTER_EVENT_LISTENER
        | method::REMOVE_FILTER_EVENT_LISTENER => unsupported::filters(ctx, name),
        method::SUBSCRIBE_TO_STT | method::UNSUBSCRIBE_FROM_STT => unsupported::speech_to_text(),
        method::PREPARE_RECEIVE_VIDEO_FROM => unsupported::server_offer(),
        _ => Err(RpcError::new(
            Code::MethodNotFound,
            format!("Method '{name}' not found"),
        )),
    }
}

pub fn empty() -> Value {
    Value::Object(Map::new())
}
