//! What signaling refuses, as one type. Below the two wire edges — the browsers' JSON-RPC
//! (`rpc/`) and the REST API (`rest/`) — every layer fails with an [`Error`]; each edge writes it
//! in exactly one place: [`Error::code`] (and the message) as an OpenVidu JSON-RPC error through
//! `From<Error> for RpcError`, [`Error::status`] for HTTP. `RpcError` and `rest::ApiError` are
//! the wire shapes those edges write (and the shapes they reject malformed input with while
//! decoding it), not errors of their own.

use axum::http::StatusCode;

use crate::rpc::wire::{Code, RpcError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A session by that id exists (on this node or another).
    #[error("Session {0} already exists")]
    SessionExists(String),
    /// It closed while the caller was waiting for it.
    #[error("Session {0} was closed")]
    SessionClosed(String),
    /// No engine admits new sessions now.
    #[error("There is no available Media Node where to initialize session {0}")]
    NoMediaNode(String),
    /// Every admitted engine failed to open the session's pipeline.
    #[error("Session {0} could not be placed on any media node")]
    NotPlaced(String),
    /// The session has no pipeline (it is being placed, or lost its engine).
    #[error("The session has no media")]
    NoMedia,
    #[error("The user is already publishing")]
    AlreadyPublishing,
    #[error("The user is not publishing")]
    NotPublishing,
    /// A subscription names a connection that does not publish.
    #[error("Connection {0} is not publishing")]
    PublisherNotPublishing(String),
    #[error("A reconnection of this stream is in progress")]
    Reconnecting,
    /// The engine refused an SDP (its cause is logged where it happened).
    #[error("The media server could not process the SDP")]
    MediaSdp,
    /// Any other engine failure (logged where it happened).
    #[error("Media server error")]
    Media,
    /// A token that does not exist in the session, or was used already.
    #[error("the token is not valid")]
    InvalidToken,
    /// The connection is not a joined participant of the session.
    #[error("the participant is not in the session")]
    NotJoined,
    /// The participant is gone (left, or evicted while the call was under way).
    #[error("Participant left")]
    ParticipantLeft,
    /// This socket already holds a participant.
    #[error("this socket has already joined a session")]
    AlreadyJoined,
    /// No participant by that private id.
    #[error("no such participant")]
    UnknownParticipant,
    /// What needs the cluster, while Redis is away (or answered an error) within its time limit.
    #[error("the cluster store (Redis) is unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    /// The OpenVidu error code a browser gets.
    pub fn code(&self) -> Code {
        match self {
            Self::SessionExists(_) | Self::Reconnecting | Self::Unavailable(_) => Code::Generic,
            Self::SessionClosed(_) | Self::NoMedia => Code::RoomClosed,
            Self::NoMediaNode(_) | Self::NotPlaced(_) => Code::RoomCannotBeCreated,
            Self::AlreadyPublishing => Code::UserAlreadyStreaming,
            Self::NotPublishing | Self::PublisherNotPublishing(_) => Code::UserNotStreaming,
            Self::MediaSdp => Code::MediaSdp,
            Self::Media => Code::MediaEndpoint,
            Self::ParticipantLeft | Self::UnknownParticipant | Self::NotJoined => {
                Code::UserNotFound
            }
            Self::InvalidToken => Code::UserUnauthorized,
            Self::AlreadyJoined => Code::Transport,
        }
    }

    /// The HTTP status a REST caller gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SessionExists(_) | Self::AlreadyJoined => StatusCode::CONFLICT,
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::SessionClosed(_)
            | Self::NotJoined
            | Self::ParticipantLeft
            | Self::UnknownParticipant
            | Self::PublisherNotPublishing(_) => StatusCode::NOT_FOUND,
            Self::NotPublishing | Self::AlreadyPublishing | Self::Reconnecting => {
                StatusCode::CONFLICT
            }
            Self::MediaSdp => StatusCode::BAD_REQUEST,
            Self::NoMediaNode(_) | Self::NotPlaced(_) | Self::NoMedia | Self::Media => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<Error> for RpcError {
    fn from(e: Error) -> Self {
        RpcError::new(e.code(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_is_written_once_per_edge() {
        let e = Error::PublisherNotPublishing("con_x".into());
        let rpc = RpcError::from(e.clone());
        assert_eq!(rpc.code, Code::UserNotStreaming as i64);
        assert_eq!(rpc.message, "Connection con_x is not publishing");
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let down = Error::Unavailable("connection refused".into());
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(RpcError::from(down).message.contains("Redis"));
        assert_eq!(Error::MediaSdp.code(), Code::MediaSdp);
    }
}
