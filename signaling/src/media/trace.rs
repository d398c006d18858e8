//! What signaling saw of one endpoint's negotiation, for the REST API's `webRtcStats=true`
//! (OpenVidu's per-publisher / per-subscriber `clientIceCandidates`, `serverIceCandidates`,
//! `events`): the candidates each side trickled and the endpoint's events, the latest
//! [`KEEP`] of each.

use kms_client::wire::IceCandidate;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;

const KEEP: usize = 32;

#[derive(Debug, Default)]
pub struct Trace {
    pub client_ice: VecDeque<Value>,
    pub server_ice: VecDeque<Value>,
    pub events: VecDeque<Value>,
}

pub type SharedTrace = Arc<Mutex<Trace>>;

fn push<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() >= KEEP {
        q.pop_front();
    }
    q.push_back(v);
}

impl Trace {
    /// A candidate the browser trickled to the endpoint.
    pub fn client_candidate(&mut self, c: &IceCandidate) {
        push(&mut self.client_ice, shown(c));
    }

    /// Candidates the browser sent before the endpoint existed, given to it once it did.
    pub fn client_candidates(&mut self, held: &[IceCandidate]) {
        for c in held {
            self.client_candidate(c);
        }
    }

    /// A candidate the endpoint found (relayed to the browser).
    pub fn server_candidate(&mut self, c: &IceCandidate, at_ms: u64) {
        push(&mut self.server_ice, shown(c));
        push(
            &mut self.events,
            json!({"event": "IceCandidateFound", "timestamp": at_ms, "candidate": c.candidate}),
        );
    }

    pub fn json(&self) -> Value {
        json!({
            "clientIceCandidates": self.client_ice,
            "serverIceCandidates": self.server_ice,
            "events": self.events,
        })
    }
}

/// A candidate as OpenVidu lists them.
fn shown(c: &IceCandidate) -> Value {
    json!({"candidate": c.candidate, "sdpMid": c.sdp_mid, "sdpMLineIndex": c.sdp_m_line_index})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_of_each() {
        let mut t = Trace::default();
        let c = |s: String| IceCandidate {
            candidate: s,
            sdp_mid: "0".into(),
            sdp_m_line_index: 0,
        };
        for i in 0..40 {
            t.client_candidate(&c(format!("c{i}")));
            t.server_candidate(&c(format!("s{i}")), i);
        }
        let j = t.json();
        assert_eq!(
            j["clientIceCandidates"].as_array().map(Vec::len),
            Some(KEEP)
        );
        assert_eq!(j["clientIceCandidates"][0]["candidate"], "c8");
        assert_eq!(j["serverIceCandidates"][KEEP - 1]["candidate"], "s39");
        assert_eq!(j["events"][0]["event"], "IceCandidateFound");
    }
}
