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
pub mod request;
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

use serde_json::{Map, Value};
use std::sync::Arc;

use crate::app::{App, OutTx};
use crate::model::Role;
use request::Request;
use wire::{Code, RpcError};

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
#[derive(Debug, Clone)]
pub struct Me {
    pub session_id: String,
    pub connection_id: String,
    pub role: Role,
}

impl Ctx<'_> {
    /// 803 before `joinRoom`, as OpenVidu. Read from the roster alone: a participant's entry
    /// there and its record change together (one step of its session's owner).
    pub fn me(&self, method: &str) -> Result<Me, RpcError> {
        let reg = self.app.reg.lock();
        let p = reg.roster.get(self.rpc.as_str()).ok_or_else(|| {
            RpcError::new(Code::Transport, format!("No connection found for participant with privateId {}. Method '{method}' cannot be called before 'Session.connect()'", self.rpc))
        })?;
        Ok(Me {
            session_id: p.session_id.clone(),
            connection_id: p.connection_id.clone(),
            role: p.role,
        })
    }
}

/// Routes one request: size limits, then (for methods of a joined participant) who is asking,
/// then the typed params, then its handler.
pub async fn dispatch(
    ctx: &mut Ctx<'_>,
    name: &str,
    p: &Map<String, Value>,
) -> Result<Value, RpcError> {
    crate::limits::check_params(name, p)?;
    let me = match request::needs_participant(name) {
        true => Some(ctx.me(name)?),
        false => None,
    };
    let req = request::decode(name, p)?;
    let me = move || {
        me.ok_or_else(|| RpcError::new(Code::Generic, format!("'{name}' needs a participant")))
    };
    match req {
        Request::Connect { session_id } => connect::handle(ctx, session_id),
        Request::JoinRoom(j) => join_room::handle(ctx, j).await,
        Request::LeaveRoom => leave_room::handle(ctx, me()?).await,
        Request::PublishVideo(p) => publish_video::handle(ctx, me()?, p).await,
        Request::UnpublishVideo => unpublish_video::handle(ctx, me()?).await,
        Request::ReceiveVideoFrom { sender, sdp_offer } => {
            receive_video_from::handle(ctx, me()?, sender, sdp_offer).await
        }
        Request::UnsubscribeFromVideo { sender } => {
            unsubscribe_from_video::handle(ctx, me()?, sender).await
        }
        Request::OnIceCandidate {
            endpoint_name,
            candidate,
        } => on_ice_candidate::handle(ctx, me()?, endpoint_name, candidate).await,
        Request::SendMessage { message } => send_message::handle(ctx, me()?, message).await,
        Request::StreamPropertyChanged {
            stream_id: _,
            property,
            new_value,
            reason,
        } => stream_property_changed::handle(ctx, me()?, property, new_value, reason).await,
        Request::ForceDisconnect { connection_id } => {
            force_disconnect::handle(ctx, me()?, connection_id).await
        }
        Request::ForceUnpublish { stream_id } => {
            force_unpublish::handle(ctx, me()?, stream_id).await
        }
        Request::ReconnectStream { stream, sdp_offer } => {
            reconnect_stream::handle(ctx, me()?, stream, sdp_offer).await
        }
        Request::VideoData => video_data::handle(),
        Request::Echo => echo::handle(),
        Request::Filter { name } => unsupported::filters(&name),
        Request::SpeechToText => unsupported::speech_to_text(),
        Request::PrepareReceiveVideoFrom => unsupported::server_offer(),
    }
}

pub fn empty() -> Value {
    Value::Object(Map::new())
}
