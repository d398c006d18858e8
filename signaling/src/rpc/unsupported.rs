//! Methods this server does not offer, each with a clear error: Kurento filters (no filter
//! elements in our engines), speech-to-text (Pro only, 997 as CE answers), and the server-offer
//! subscription path (mediasoup only; `joinRoom` says `mediaServer: "kurento"`).

use serde_json::Value;

use super::wire::{Code, RpcError};

pub fn filters(method: &str) -> Result<Value, RpcError> {
    Err(RpcError::new(
        Code::ServiceNotEnabled,
        format!("'{method}': media filters are not available on this server"),
    ))
}

pub fn speech_to_text() -> Result<Value, RpcError> {
    Err(RpcError::new(
        Code::WrongEdition,
        "Speech to Text is not available in this edition",
    ))
}

pub fn server_offer() -> Result<Value, RpcError> {
    Err(RpcError::new(
        Code::ServiceNotEnabled,
        "'prepareReceiveVideoFrom' is only used with mediasoup; subscribe with an sdpOffer",
    ))
}
