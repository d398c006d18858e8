//! `unsubscribe {object, subscription}` → `{}`; never fails (clients send it after `release`).

use std::sync::Arc;

use super::Fields;
use crate::engine::Engine;

pub fn handle(engine: &Arc<Engine>, subscription: &str) -> Fields {
    engine.state.lock().sessions.unsubscribe(subscription);
    Fields::new()
}
