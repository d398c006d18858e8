//! SDP as the engine reads it: its own section reader and transport check, then webrtc-rs's
//! parser (what `processOffer` / `processAnswer` hand the offer to).
#![no_main]
use libfuzzer_sys::fuzz_target;
use media_engine::media::sdp::{missing_transport, sections};
use webrtc::peer_connection::RTCSessionDescription;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = sections(text);
    let _ = missing_transport(text);
    if let Ok(d) = RTCSessionDescription::offer(text.to_string()) {
        let _ = d.unmarshal();
    }
});
