//! The object graph: pipelines own elements; releasing a pipeline releases its children.

use kms_client::wire::{Class, ErrorCode, ObjectId, RpcError, SessionId};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct ObjectEntry {
    pub class: Class,
    pub parent: Option<ObjectId>,
    /// In creation order (what `getChildren` returns).
    pub children: Vec<ObjectId>,
    pub name: Option<String>,
    /// Insertion-ordered tags.
    pub tags: Vec<(String, String)>,
    pub send_tags_in_events: bool,
    /// Unix seconds.
    pub creation_time: u64,
    /// Sessions that reference the object (KMS ref-counting by session).
    pub sessions: BTreeSet<SessionId>,
    /// Values set through property setters (`setFoo`), read back by getters.
    pub properties: BTreeMap<String, serde_json::Value>,
}

/// Every live object, keyed by id; deterministic iteration.
#[derive(Debug, Default)]
pub struct Objects {
    map: BTreeMap<ObjectId, ObjectEntry>,
    pipelines: usize,
    elements: usize,
}

impl Objects {
    pub fn new(now_unix: u64) -> Self {
        let mut o = Self::default();
        o.map.insert(
            ObjectId::server_manager(),
            entry(Class::ServerManager, None, now_unix),
        );
        o
    }

    pub fn get(&self, id: &str) -> Result<&ObjectEntry, RpcError> {
        self.map
            .get(&ObjectId(id.to_string()))
            .ok_or_else(|| not_found(id))
    }

    pub fn get_mut(&mut self, id: &str) -> Result<&mut ObjectEntry, RpcError> {
        self.map
            .get_mut(&ObjectId(id.to_string()))
            .ok_or_else(|| not_found(id))
    }

    pub fn pipeline_count(&self) -> usize {
        self.pipelines
    }

    pub fn element_count(&self) -> usize {
        self.elements
    }

    pub fn pipelines(&self) -> Vec<ObjectId> {
        self.map
            .iter()
            .filter(|(_, e)| e.class == Class::MediaPipeline)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Adds an object; elements must name an existing pipeline. Limits are checked here so a
    /// refused create changes nothing.
    pub fn create(
        &mut self,
        class: Class,
        pipeline: Option<&str>,
        session: &SessionId,
        limits: (usize, usize),
        now_unix: u64,
    ) -> Result<ObjectId, RpcError> {
        let (max_pipelines, max_elements) = limits;
        let parent = match class {
            Class::MediaPipeline => {
                if self.pipelines >= max_pipelines {
                    return Err(RpcError::new(
                        ErrorCode::NotEnoughResources,
                        format!("Too many pipelines (limit {max_pipelines})"),
                    ));
                }
                None
            }
            Class::WebRtcEndpoint | Class::PassThrough => {
                let Some(p) = pipeline else {
                    return Err(RpcError::new(
                        ErrorCode::MarshallError,
                        "'mediaPipeline' constructor parameter is required",
                    ));
                };
                let entry = self.get(p)?;
                if entry.class != Class::MediaPipeline {
                    return Err(RpcError::new(
                        ErrorCode::MarshallError,
                        format!("'{p}' is not a MediaPipeline"),
                    ));
                }
                if self.elements >= max_elements {
                    return Err(RpcError::new(
                        ErrorCode::NotEnoughResources,
                        format!("Too many endpoints (limit {max_elements})"),
                    ));
                }
                Some(ObjectId(p.to_string()))
            }
            Class::ServerManager => {
                return Err(RpcError::new(
                    ErrorCode::MediaObjectNotAvailable,
                    "Factory 'ServerManager' not found",
                ))
            }
        };
        let id = ObjectId::mint(class, parent.as_ref());
        let mut e = entry(class, parent.clone(), now_unix);
        e.sessions.insert(session.clone());
        if let Some(p) = &parent {
            if let Some(pe) = self.map.get_mut(p) {
                pe.children.push(id.clone());
            }
            self.elements += 1;
        } else {
            self.pipelines += 1;
        }
        self.map.insert(id.clone(), e);
        Ok(id)
    }

    /// Removes an object and (for a pipeline) its children. Returns what was removed, children
    /// first. Unknown ids and the ServerManager remove nothing.
    pub fn release(&mut self, id: &str) -> Vec<(ObjectId, Class)> {
        let key = ObjectId(id.to_string());
        let Some(entry) = self.map.get(&key) else {
            return Vec::new();
        };
        if entry.class == Class::ServerManager {
            return Vec::new();
        }
        let mut out = Vec::new();
        for child in entry.children.clone() {
            out.extend(self.release(child.as_str()));
        }
        if let Some(e) = self.map.remove(&key) {
            if let Some(p) = &e.parent {
                if let Some(pe) = self.map.get_mut(p) {
                    pe.children.retain(|c| c != &key);
                }
                self.elements -= 1;
            } else {
                self.pipelines -= 1;
            }
            out.push((key, e.class));
        }
        out
    }

    /// Records that `session` uses the object (describe/invoke/subscribe do this in KMS).
    pub fn reference(&mut self, id: &str, session: &SessionId) {
        if let Some(e) = self.map.get_mut(&ObjectId(id.to_string())) {
            if e.class != Class::ServerManager {
                e.sessions.insert(session.clone());
            }
        }
    }

    /// Drops `session`'s references; returns the pipelines that no live session references any
    /// more (neither the pipeline nor any of its children), which the shell then releases.
    pub fn unref_session(&mut self, session: &SessionId) -> Vec<ObjectId> {
        for e in self.map.values_mut() {
            e.sessions.remove(session);
        }
        self.map
            .iter()
            .filter(|(_, e)| e.class == Class::MediaPipeline)
            .filter(|(_, e)| {
                e.sessions.is_empty()
                    && e.children
                        .iter()
                        .all(|c| self.map.get(c).is_none_or(|ce| ce.sessions.is_empty()))
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Objects a session references, pipelines last (so children go first).
    pub fn referenced_by(&self, session: &SessionId) -> Vec<ObjectId> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .filter(|(_, e)| e.sessions.contains(session))
            .collect();
        v.sort_by_key(|(_, e)| e.class == Class::MediaPipeline);
        v.into_iter().map(|(k, _)| k.clone()).collect()
    }
}

fn entry(class: Class, parent: Option<ObjectId>, now_unix: u64) -> ObjectEntry {
    ObjectEntry {
        class,
        parent,
        children: Vec::new(),
        name: None,
        tags: Vec::new(),
        send_tags_in_events: false,
        creation_time: now_unix,
        sessions: BTreeSet::new(),
        properties: BTreeMap::new(),
    }
}

pub fn not_found(id: &str) -> RpcError {
    RpcError::new(
        ErrorCode::MediaObjectNotFound,
        format!("Object '{id}' not found"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_cascades_and_counts_follow() {
        let s = SessionId("s".into());
        let mut o = Objects::new(1);
        let p = o
            .create(Class::MediaPipeline, None, &s, (10, 10), 1)
            .map_err(|e| e.message);
        let p = p.unwrap_or_else(|e| panic!("{e}"));
        let a = o.create(Class::WebRtcEndpoint, Some(p.as_str()), &s, (10, 10), 1);
        assert!(a.is_ok());
        let b = o.create(Class::PassThrough, Some(p.as_str()), &s, (10, 10), 1);
        assert!(b.is_ok());
        assert_eq!(o.element_count(), 2);
        assert_eq!(o.get(p.as_str()).map(|e| e.children.len()).ok(), Some(2));
        let gone = o.release(p.as_str());
        assert_eq!(gone.len(), 3);
        assert_eq!(gone.last().map(|g| g.1), Some(Class::MediaPipeline));
        assert_eq!((o.pipeline_count(), o.element_count()), (0, 0));
        assert!(o.release(p.as_str()).is_empty());
        assert!(o.release("manager_ServerManager").is_empty());
    }

    #[test]
    fn limits_refuse_without_side_effects() {
        let s = SessionId("s".into());
        let mut o = Objects::new(1);
        let p = o.create(Class::MediaPipeline, None, &s, (1, 1), 1);
        assert!(p.is_ok());
        let e = o
            .create(Class::MediaPipeline, None, &s, (1, 1), 1)
            .err()
            .map(|e| e.code);
        assert_eq!(e, Some(40009));
        let e = o
            .create(Class::WebRtcEndpoint, Some("nope"), &s, (1, 1), 1)
            .err()
            .map(|e| e.code);
        assert_eq!(e, Some(40101));
        assert_eq!(o.pipeline_count(), 1);
    }

    #[test]
    fn unref_finds_orphaned_pipelines() {
        let (s1, s2) = (SessionId("1".into()), SessionId("2".into()));
        let mut o = Objects::new(1);
        let p1 = o
            .create(Class::MediaPipeline, None, &s1, (9, 9), 1)
            .map_err(|e| e.message);
        let p2 = o
            .create(Class::MediaPipeline, None, &s1, (9, 9), 1)
            .map_err(|e| e.message);
        let (Ok(_p1), Ok(p2)) = (p1, p2) else {
            panic!("create")
        };
        o.reference(p2.as_str(), &s2);
        let orphans = o.unref_session(&s1);
        assert_eq!(orphans.len(), 1);
        assert!(!orphans.contains(&p2));
    }
}
