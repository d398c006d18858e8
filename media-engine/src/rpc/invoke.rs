//! `invoke {object, operation, operationParams?}`: routes to the operations of the object's
//! class (`ops/`). Unknown operations get KMS's 40008 "Method 'X' with N parameters not found".

use kms_client::wire::method::InvokeParams;
use kms_client::wire::{Class, SessionId};
use std::sync::Arc;

use super::Handled;
use crate::engine::Engine;
use crate::ops::{self, Invocation};

pub async fn handle(engine: &Arc<Engine>, session: &SessionId, p: InvokeParams) -> Handled {
    let class = {
        let mut st = engine.state.lock();
        let class = st.objects.get(&p.object)?.class;
        st.objects.reference(&p.object, session);
        class
    };
    let inv = Invocation {
        engine,
        object: &p.object,
        class,
        params: p.operation_params.unwrap_or_default(),
    };
    let op = p.operation.as_str();
    if let Some(r) = ops::media_object::invoke(&inv, op) {
        return r;
    }
    let routed = match class {
        Class::ServerManager => ops::server_manager::invoke(&inv, op).await,
        Class::MediaPipeline => None,
        Class::PassThrough => ops::element::invoke(&inv, op).await,
        Class::WebRtcEndpoint => match ops::element::invoke(&inv, op).await {
            Some(r) => Some(r),
            None => ops::webrtc::invoke(&inv, op).await,
        },
    };
    match routed {
        Some(r) => r,
        None => match ops::properties::invoke(&inv, op) {
            Some(r) => r,
            None => Err(ops::unknown_operation(op, &inv.params)),
        },
    }
}
