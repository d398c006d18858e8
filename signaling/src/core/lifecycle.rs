//! A session's lifecycle rules as plain state changes: admitting a participant with its token,
//! leaving and eviction, publishing, unpublishing, stream properties, closing. Each change returns
//! the notifications it causes, addressed to participants' rpc session ids; the shell delivers
//! them (and does the engine work) after the change. Wall-clock stamps (`now_ms`) are passed in.

use serde_json::Value;

use crate::error::Error;
use crate::model::{Active, Connection, ConnectionProps, Publisher, Role, Session};
use crate::rpc::wire::Notification;

/// A notification and the participants (rpc session ids) it goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub to: Vec<String>,
    pub n: Notification,
}

/// What a participant's departure did.
#[derive(Debug, Clone, PartialEq)]
pub struct Departure {
    /// Its rpc session id, when it was joined (to drop it from the roster).
    pub rpc: Option<String>,
    /// In order: `participantEvicted` (to everyone, the evicted one included) when evicted, then
    /// `participantLeft` to those who stay.
    pub notices: Vec<Notice>,
    /// Nobody is left: the session and its media go.
    pub empty: bool,
    /// The connection as it was (its publication and subscriptions, for the webhook).
    pub gone: Connection,
    /// The other participants' subscriptions to its stream that went with it: (subscriber,
    /// subscribed at).
    pub cut: Vec<(String, u64)>,
}

/// What an unpublication did.
#[derive(Debug, Clone, PartialEq)]
pub struct Unpublished {
    pub publisher: Publisher,
    /// Subscriptions to the stream that went with it: (subscriber, subscribed at).
    pub cut: Vec<(String, u64)>,
    pub notice: Notice,
}

impl Session {
    /// The rpc session ids of the joined participants, except connection `except`.
    pub fn audience(&self, except: Option<&str>) -> Vec<String> {
        self.active()
            .filter(|c| Some(c.id.as_str()) != except)
            .filter_map(|c| c.active.as_ref().map(|a| a.rpc.clone()))
            .collect()
    }

    /// `joinRoom`: the connection whose `token` this is becomes active (a token is used once);
    /// with the server secret (`by_secret`) a moderator connection `new_id` is made on the spot.
    /// Returns the connection id.
    pub fn admit(
        &mut self,
        token: &str,
        by_secret: bool,
        active: Active,
        new_id: impl FnOnce() -> String,
    ) -> Result<String, Error> {
        let id = if by_secret {
            let c = Connection {
                id: new_id(),
                token: token.to_string(),
                props: ConnectionProps {
                    kind: "WEBRTC".into(),
                    data: String::new(),
                    record: false,
                    role: Role::Moderator,
                    kurento_options: None,
                    custom_ice_servers: Vec::new(),
                },
                created_at: active.active_at,
                active: None,
                publisher: None,
                subscriptions: Vec::new(),
            };
            let id = c.id.clone();
            self.add(c);
            id
        } else {
            self.by_token(token)
                .filter(|c| c.active.is_none())
                .map(|c| c.id.clone())
                .ok_or(Error::InvalidToken)?
        };
        if let Some(c) = self.connections.get_mut(&id) {
            c.active = Some(active);
        }
        Ok(id)
    }

    /// A join that could not complete: the token may be used again.
    pub fn give_back(&mut self, connection_id: &str) {
        if let Some(c) = self.connections.get_mut(connection_id) {
            c.active = None;
        }
    }

    /// The join completed: the others hear `participantJoined`.
    pub fn joined(&self, connection_id: &str) -> Option<Notice> {
        let c = self.connections.get(connection_id)?;
        let a = c.active.as_ref()?;
        Some(Notice {
            to: self.audience(Some(connection_id)),
            n: Notification::ParticipantJoined {
                id: c.id.clone(),
                created_at: a.active_at,
                metadata: c.metadata(),
            },
        })
    }

    /// A participant leaves (`leaveRoom`, a lapsed reconnection window) or is evicted
    /// (`forceDisconnect`, REST): its connection and every subscription to its stream go.
    pub fn depart(
        &mut self,
        connection_id: &str,
        reason: &str,
        evicted: bool,
    ) -> Option<Departure> {
        let rpc = self
            .connections
            .get(connection_id)?
            .active
            .as_ref()
            .map(|a| a.rpc.clone());
        let mut notices = Vec::new();
        if evicted {
            notices.push(Notice {
                to: self.audience(None),
                n: Notification::ParticipantEvicted {
                    connection_id: connection_id.into(),
                    reason: reason.into(),
                },
            });
        }
        let gone = self.remove(connection_id)?;
        let cut = self
            .cut_subscriptions(|st| crate::ids::connection_of_stream(st) == Some(connection_id));
        notices.push(Notice {
            to: self.audience(None),
            n: Notification::ParticipantLeft {
                connection_id: connection_id.into(),
                reason: reason.into(),
            },
        });
        Some(Departure {
            rpc,
            notices,
            empty: self.active().next().is_none(),
            gone,
            cut,
        })
    }

    /// Drops every subscription to a stream `ended` says is gone; returns them as (subscriber,
    /// subscribed at).
    fn cut_subscriptions(&mut self, ended: impl Fn(&str) -> bool) -> Vec<(String, u64)> {
        let mut cut = Vec::new();
        for c in self.connections.values_mut() {
            c.subscriptions.retain(|(st, at)| {
                let gone = ended(st);
                if gone {
                    cut.push((c.id.clone(), *at));
                }
                !gone
            });
        }
        cut
    }

    /// The participant's stream is live on the engine: recorded, and the others hear
    /// `participantPublished`.
    pub fn publish(&mut self, connection_id: &str, publisher: Publisher) -> Result<Notice, Error> {
        let c = self
            .connections
            .get_mut(connection_id)
            .filter(|c| c.active.is_some())
            .ok_or(Error::NotJoined)?;
        c.publisher = Some(publisher);
        let streams = c.stream_json().into_iter().collect();
        Ok(Notice {
            to: self.audience(Some(connection_id)),
            n: Notification::ParticipantPublished {
                id: connection_id.into(),
                streams,
            },
        })
    }

    /// The participant's stream ends: it and every subscription to it are dropped; everyone but
    /// `except` hears `participantUnpublished`.
    pub fn unpublish(
        &mut self,
        connection_id: &str,
        reason: &str,
        except: Option<&str>,
    ) -> Result<Unpublished, Error> {
        let publisher = self
            .connections
            .get_mut(connection_id)
            .and_then(|c| c.publisher.take())
            .ok_or(Error::NotPublishing)?;
        let cut = self.cut_subscriptions(|st| *st == publisher.stream_id);
        let notice = Notice {
            to: self.audience(except),
            n: Notification::ParticipantUnpublished {
                connection_id: connection_id.into(),
                reason: reason.into(),
            },
        };
        Ok(Unpublished {
            publisher,
            cut,
            notice,
        })
    }

    /// `streamPropertyChanged`: audio/video active and the video dimensions are kept on the
    /// stream; the others hear the change with `newValue` as the JSON text the client sent.
    pub fn change_stream_property(
        &mut self,
        connection_id: &str,
        property: &str,
        new_value: &Value,
        reason: &str,
    ) -> Result<Notice, Error> {
        let pb = self
            .connections
            .get_mut(connection_id)
            .and_then(|c| c.publisher.as_mut())
            .ok_or(Error::NotPublishing)?;
        match property {
            "audioActive" => {
                pb.media.audio_active = new_value.as_bool().unwrap_or(pb.media.audio_active)
            }
            "videoActive" => {
                pb.media.video_active = new_value.as_bool().unwrap_or(pb.media.video_active)
            }
            "videoDimensions" => {
                if let Some(d) = new_value.as_str() {
                    pb.media.video_dimensions = Some(d.to_string());
                }
            }
            _ => {}
        }
        let stream_id = pb.stream_id.clone();
        Ok(Notice {
            to: self.audience(Some(connection_id)),
            n: Notification::StreamPropertyChanged {
                connection_id: connection_id.into(),
                stream_id,
                property: property.into(),
                new_value: Value::String(new_value.to_string()),
                reason: reason.into(),
            },
        })
    }

    /// The session closes (`DELETE`, no engine can take it, shutdown): every participant hears
    /// every participant's `participantEvicted`. Returns them with the rpc ids to drop.
    pub fn close(&self, reason: &str) -> (Vec<Notice>, Vec<String>) {
        let everyone = self.audience(None);
        let notices = self
            .active()
            .map(|c| Notice {
                to: everyone.clone(),
                n: Notification::ParticipantEvicted {
                    connection_id: c.id.clone(),
                    reason: reason.into(),
                },
            })
            .collect();
        (notices, everyone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MediaOptions, SessionProps};

    fn session() -> Session {
        let mut s = Session::new("ses".into(), SessionProps::demo("ses".into()), 1);
        for (id, role) in [
            ("con_A", Role::Publisher),
            ("con_B", Role::Subscriber),
            ("con_C", Role::Moderator),
        ] {
            s.add(Connection {
                id: id.into(),
                token: format!("tok_{id}"),
                props: ConnectionProps {
                    kind: "WEBRTC".into(),
                    data: String::new(),
                    record: false,
                    role,
                    kurento_options: None,
                    custom_ice_servers: Vec::new(),
                },
                created_at: 1,
                active: None,
                publisher: None,
                subscriptions: Vec::new(),
            });
        }
        s
    }

    fn active(rpc: &str) -> Active {
        Active {
            active_at: 5,
            platform: "test".into(),
            client_data: String::new(),
            ip: "127.0.0.1".into(),
            rpc: rpc.into(),
        }
    }

    fn publisher(stream: &str) -> Publisher {
        Publisher {
            stream_id: stream.into(),
            created_at: 6,
            media: MediaOptions {
                has_audio: true,
                has_video: true,
                audio_active: true,
                video_active: true,
                type_of_video: Some("CAMERA".into()),
                frame_rate: Some(30),
                video_dimensions: None,
            },
        }
    }

    fn all_joined() -> Session {
        let mut s = session();
        for (t, r) in [
            ("tok_con_A", "rA"),
            ("tok_con_B", "rB"),
            ("tok_con_C", "rC"),
        ] {
            assert!(s.admit(t, false, active(r), String::new).is_ok());
        }
        s
    }

    #[test]
    fn a_token_admits_once_and_can_be_given_back() {
        let mut s = session();
        assert_eq!(
            s.admit("tok_con_A", false, active("r1"), String::new),
            Ok("con_A".into())
        );
        assert_eq!(
            s.admit("tok_con_A", false, active("r2"), String::new),
            Err(Error::InvalidToken)
        );
        assert_eq!(
            s.admit("tok_nope", false, active("r2"), String::new),
            Err(Error::InvalidToken)
        );
        s.give_back("con_A");
        assert_eq!(
            s.admit("tok_con_A", false, active("r2"), String::new),
            Ok("con_A".into())
        );
        assert_eq!(s.audience(None), vec!["r2".to_string()]);
    }

    #[test]
    fn the_server_secret_makes_a_moderator_on_the_spot() {
        let mut s = session();
        let id = s.admit("anything", true, active("r9"), || "con_Z".into());
        assert_eq!(id, Ok("con_Z".into()));
        assert_eq!(
            s.connections.get("con_Z").map(|c| c.role()),
            Some(Role::Moderator)
        );
    }

    #[test]
    fn joining_is_announced_to_the_others_only() {
        let s = all_joined();
        let n = s.joined("con_B");
        assert_eq!(
            n.as_ref().map(|n| n.to.clone()),
            Some(vec!["rA".to_string(), "rC".to_string()])
        );
        assert!(
            matches!(n.map(|n| n.n), Some(Notification::ParticipantJoined { id, .. }) if id == "con_B")
        );
    }

    #[test]
    fn eviction_tells_everyone_then_leaving_tells_who_stays_and_subscriptions_to_it_go() {
        let mut s = all_joined();
        assert!(s.publish("con_A", publisher("str_CAM_x_con_A")).is_ok());
        if let Some(b) = s.connections.get_mut("con_B") {
            b.subscriptions.push(("str_CAM_x_con_A".into(), 7));
        }
        let d = s.depart("con_A", "forceDisconnectByUser", true);
        let Some(d) = d else {
            panic!("con_A was there")
        };
        assert_eq!(d.rpc.as_deref(), Some("rA"));
        assert_eq!(d.notices.len(), 2);
        assert_eq!(d.notices[0].to, vec!["rA", "rB", "rC"]);
        assert!(matches!(
            d.notices[0].n,
            Notification::ParticipantEvicted { .. }
        ));
        assert_eq!(d.notices[1].to, vec!["rB", "rC"]);
        assert!(!d.empty);
        assert_eq!(d.cut, vec![("con_B".to_string(), 7)]);
        assert_eq!(d.gone.id, "con_A");
        assert!(s
            .connections
            .get("con_B")
            .is_some_and(|b| b.subscriptions.is_empty()));
        assert!(s.depart("con_A", "again", false).is_none());
        assert!(s
            .depart("con_B", "disconnect", false)
            .is_some_and(|d| d.notices.len() == 1 && !d.empty));
        assert!(s
            .depart("con_C", "disconnect", false)
            .is_some_and(|d| d.empty && d.notices[0].to.is_empty()));
    }

    #[test]
    fn publishing_and_unpublishing_are_announced_and_subscriptions_follow() {
        let mut s = all_joined();
        assert_eq!(s.publish("con_nope", publisher("x")), Err(Error::NotJoined));
        let n = s.publish("con_A", publisher("str_CAM_x_con_A"));
        assert_eq!(
            n.map(|n| n.to),
            Ok(vec!["rB".to_string(), "rC".to_string()])
        );
        if let Some(c) = s.connections.get_mut("con_C") {
            c.subscriptions.push(("str_CAM_x_con_A".into(), 7));
        }
        let r = s.unpublish("con_A", "forceUnpublishByUser", None);
        let Ok(u) = r else { panic!("was publishing") };
        assert_eq!(u.publisher.stream_id, "str_CAM_x_con_A");
        assert_eq!(u.cut, vec![("con_C".to_string(), 7)]);
        assert_eq!(u.notice.to, vec!["rA", "rB", "rC"]);
        assert!(s
            .connections
            .get("con_C")
            .is_some_and(|c| c.subscriptions.is_empty()));
        assert_eq!(
            s.unpublish("con_A", "unpublish", Some("con_A")).err(),
            Some(Error::NotPublishing)
        );
    }

    #[test]
    fn stream_properties_are_kept_and_sent_as_json_text() {
        let mut s = all_joined();
        assert_eq!(
            s.change_stream_property("con_A", "audioActive", &Value::Bool(false), "publishAudio")
                .err(),
            Some(Error::NotPublishing)
        );
        assert!(s.publish("con_A", publisher("str_CAM_x_con_A")).is_ok());
        let n =
            s.change_stream_property("con_A", "audioActive", &Value::Bool(false), "publishAudio");
        assert!(
            matches!(n.map(|n| n.n), Ok(Notification::StreamPropertyChanged { new_value, .. }) if new_value == "false")
        );
        let media = s
            .connections
            .get("con_A")
            .and_then(|c| c.publisher.clone())
            .map(|p| p.media);
        assert_eq!(media.map(|m| m.audio_active), Some(false));
    }

    #[test]
    fn closing_evicts_every_participant_before_everyone() {
        let s = all_joined();
        let (notices, rpcs) = s.close("sessionClosedByServer");
        assert_eq!(notices.len(), 3);
        assert!(notices.iter().all(|n| n.to == rpcs));
        assert_eq!(rpcs, vec!["rA", "rB", "rC"]);
    }
}
