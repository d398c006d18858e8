//! `release {object}` → `{}`; releasing a pipeline releases its children; unknown or already
//! released ids succeed silently.

use kms_client::wire::ObjectId;
use std::sync::Arc;

use super::Fields;
use crate::engine::Engine;

pub async fn handle(engine: &Arc<Engine>, object: &str) -> Fields {
    engine.release(&[ObjectId(object.to_string())]).await;
    Fields::new()
}
