//! The Kurento JSON-RPC decoder the engine and kms-client share: a frame, then its typed method.
#![no_main]
use kms_client::wire::{Frame, Method};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Frame::Request(req)) = Frame::parse(text) {
        if let Ok(m) = Method::parse(&req.method, req.params) {
            let _ = (m.name(), m.params(), m.session_id());
        }
    }
});
