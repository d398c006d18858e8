//! The classes the engine implements: `describe` answers and subscribable event names
//! (reference §1.5 describe, §5.3 item 6; the kmd files of core/elements 7.3).

/// A Kurento class the engine can create or describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    ServerManager,
    MediaPipeline,
    WebRtcEndpoint,
    PassThrough,
}

const MEDIA_OBJECT_EVENTS: &[&str] = &["Error"];
const MEDIA_ELEMENT_EVENTS: &[&str] = &[
    "ElementConnected",
    "ElementDisconnected",
    "MediaFlowInStateChanged",
    "MediaFlowOutStateChanged",
    "MediaTranscodingStateChanged",
];
const SESSION_ENDPOINT_EVENTS: &[&str] = &["MediaSessionStarted", "MediaSessionTerminated"];
const BASE_RTP_EVENTS: &[&str] = &["ConnectionStateChanged", "MediaStateChanged"];
const WEBRTC_EVENTS: &[&str] = &[
    "DataChannelClosed",
    "DataChannelOpened",
    "DtlsConnectionStateChange",
    "IceCandidateFound",
    "IceComponentStateChanged",
    "IceGatheringDone",
    "NewCandidatePairSelected",
];
const SERVER_MANAGER_EVENTS: &[&str] = &["ObjectCreated", "ObjectDestroyed"];

/// Names 6.x clients used; accepted as subscriptions and mapped to the 7.x event (§1.6).
const LEGACY_ALIASES: &[(&str, &str)] = &[
    ("MediaFlowInStateChange", "MediaFlowInStateChanged"),
    ("MediaFlowOutStateChange", "MediaFlowOutStateChanged"),
    (
        "MediaTranscodingStateChange",
        "MediaTranscodingStateChanged",
    ),
    ("IceComponentStateChange", "IceComponentStateChanged"),
    ("OnIceCandidate", "IceCandidateFound"),
    ("OnIceGatheringDone", "IceGatheringDone"),
    ("OnIceComponentStateChanged", "IceComponentStateChanged"),
    ("OnDataChannelOpened", "DataChannelOpened"),
    ("OnDataChannelClosed", "DataChannelClosed"),
    ("DataChannelOpen", "DataChannelOpened"),
    ("DataChannelClose", "DataChannelClosed"),
];

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::ServerManager => "ServerManager",
            Class::MediaPipeline => "MediaPipeline",
            Class::WebRtcEndpoint => "WebRtcEndpoint",
            Class::PassThrough => "PassThrough",
        }
    }

    /// Accepts `WebRtcEndpoint` and `kurento.WebRtcEndpoint`.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.strip_prefix("kurento.").unwrap_or(name);
        [
            Class::ServerManager,
            Class::MediaPipeline,
            Class::WebRtcEndpoint,
            Class::PassThrough,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }

    pub fn qualified_type(self) -> String {
        format!("kurento.{}", self.name())
    }

    /// Parents only, nearest first (what `describe` returns).
    pub fn hierarchy(self) -> &'static [&'static str] {
        match self {
            Class::ServerManager | Class::MediaPipeline => &["kurento.MediaObject"],
            Class::PassThrough => &["kurento.MediaElement", "kurento.MediaObject"],
            Class::WebRtcEndpoint => &[
                "kurento.BaseRtpEndpoint",
                "kurento.SdpEndpoint",
                "kurento.SessionEndpoint",
                "kurento.Endpoint",
                "kurento.MediaElement",
                "kurento.MediaObject",
            ],
        }
    }

    pub fn is_element(self) -> bool {
        matches!(self, Class::WebRtcEndpoint | Class::PassThrough)
    }

    /// Every event a client may subscribe to on this class.
    pub fn events(self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = MEDIA_OBJECT_EVENTS.to_vec();
        match self {
            Class::ServerManager => out.extend_from_slice(SERVER_MANAGER_EVENTS),
            Class::MediaPipeline => {}
            Class::PassThrough => out.extend_from_slice(MEDIA_ELEMENT_EVENTS),
            Class::WebRtcEndpoint => {
                out.extend_from_slice(MEDIA_ELEMENT_EVENTS);
                out.extend_from_slice(SESSION_ENDPOINT_EVENTS);
                out.extend_from_slice(BASE_RTP_EVENTS);
                out.extend_from_slice(WEBRTC_EVENTS);
            }
        }
        out
    }

    /// The 7.x event name a subscription name stands for, if this class has it.
    pub fn resolve_event(self, name: &str) -> Option<&'static str> {
        let events = self.events();
        if let Some(e) = events.iter().find(|e| **e == name) {
            return Some(e);
        }
        let (_, modern) = LEGACY_ALIASES.iter().find(|(old, _)| *old == name)?;
        events.into_iter().find(|e| e == modern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists_follow_the_class_tree() {
        assert!(Class::WebRtcEndpoint
            .resolve_event("IceCandidateFound")
            .is_some());
        assert!(Class::WebRtcEndpoint.resolve_event("Error").is_some());
        assert!(Class::PassThrough
            .resolve_event("IceCandidateFound")
            .is_none());
        assert_eq!(
            Class::WebRtcEndpoint.resolve_event("OnIceCandidate"),
            Some("IceCandidateFound")
        );
        assert!(Class::ServerManager
            .resolve_event("ObjectCreated")
            .is_some());
        assert_eq!(
            Class::from_name("kurento.PassThrough"),
            Some(Class::PassThrough)
        );
        assert_eq!(Class::WebRtcEndpoint.events().len(), 17);
    }
}
