//! `ping` → `{"value":"pong"}` (plus `sessionId` when the socket has a live one).

use super::{value, Fields};

pub fn handle() -> Fields {
    value("pong")
}
