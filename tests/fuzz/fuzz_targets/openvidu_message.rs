//! The OpenVidu browser-protocol decoder, the size limits checked before any handler, the
//! signal recipients, and the REST bodies of sessions and connections.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use signaling::model::{ConnectionProps, SessionProps};
use signaling::rpc::wire::{parse, Incoming};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Incoming::Request { method, params, .. } = parse(text) {
        let _ = signaling::limits::check_params(&method, &params);
        if let Some(Value::String(m)) = params.get("message") {
            if let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(m) {
                let _ = signaling::rpc::signal_recipients(msg.get("to"));
            }
        }
    }
    if let Ok(Value::Object(body)) = serde_json::from_str::<Value>(text) {
        let _ = SessionProps::parse(&body);
        let _ = ConnectionProps::parse(&body, &[]);
    }
});
