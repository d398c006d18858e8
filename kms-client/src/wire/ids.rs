//! Newtype ids. Object ids follow KMS exactly (clients parse them, reference §2.1):
//! `<uuid>_kurento.MediaPipeline`, `<pipeline id>/<uuid>_kurento.WebRtcEndpoint`.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::classes::Class;

/// The fixed id of the one ServerManager.
pub const SERVER_MANAGER_ID: &str = "manager_ServerManager";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectId(pub String);

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl ObjectId {
    pub fn server_manager() -> Self {
        Self(SERVER_MANAGER_ID.into())
    }

    /// A new id for an object of `class`, nested under `parent` when it has one.
    pub fn mint(class: Class, parent: Option<&ObjectId>) -> Self {
        let uuid = uuid::Uuid::new_v4();
        match parent {
            Some(p) => Self(format!("{}/{}_kurento.{}", p.0, uuid, class.name())),
            None => Self(format!("{}_kurento.{}", uuid, class.name())),
        }
    }

    /// The class named by the id's suffix (what the Java client does instead of `describe`).
    pub fn class(&self) -> Option<Class> {
        if self.0 == SERVER_MANAGER_ID {
            return Some(Class::ServerManager);
        }
        let (_, suffix) = self.0.rsplit_once('_')?;
        let name = suffix.strip_prefix("kurento.")?;
        Class::from_name(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl SessionId {
    pub fn mint() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_kms_shape() {
        let p = ObjectId::mint(Class::MediaPipeline, None);
        assert!(p.0.ends_with("_kurento.MediaPipeline"));
        let e = ObjectId::mint(Class::WebRtcEndpoint, Some(&p));
        assert!(e.0.starts_with(&format!("{}/", p.0)));
        assert_eq!(e.class(), Some(Class::WebRtcEndpoint));
        assert_eq!(
            ObjectId::server_manager().class(),
            Some(Class::ServerManager)
        );
        assert_eq!(ObjectId("nonsense".into()).class(), None);
    }
}
