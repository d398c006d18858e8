//! Placement that operators steer: a session may name its engine (OpenVidu Pro's `mediaNode`) or
//! ask for engines carrying labels (rtcpool's `mediaNodeLabels`, e.g. `{"region": "eu"}`). This
//! decides which engines a session may be placed on; admission and the strategy then choose among
//! them as usual.

use std::collections::BTreeMap;

/// What a session asks of its engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steer {
    /// Exactly this engine.
    pub node: Option<String>,
    /// Engines carrying all of these labels.
    pub labels: BTreeMap<String, String>,
}

/// When no engine carries the labels a session asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelFallback {
    /// Any engine takes it.
    Any,
    /// It is not placed.
    None,
}

/// Which engines a session may go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    Any,
    /// These slots only (possibly none).
    Only(Vec<usize>),
}

/// An engine as steering sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub id: &'a str,
    pub slot: usize,
    pub labels: &'a BTreeMap<String, String>,
}

impl Steer {
    pub fn is_free(&self) -> bool {
        self.node.is_none() && self.labels.is_empty()
    }

    /// The engines this session may be placed on.
    pub fn allowed(&self, engines: &[Candidate<'_>], fallback: LabelFallback) -> Allowed {
        if let Some(node) = &self.node {
            return Allowed::Only(
                engines
                    .iter()
                    .filter(|e| e.id == node)
                    .map(|e| e.slot)
                    .collect(),
            );
        }
        if self.labels.is_empty() {
            return Allowed::Any;
        }
        let matching: Vec<usize> = engines
            .iter()
            .filter(|e| self.labels.iter().all(|(k, v)| e.labels.get(k) == Some(v)))
            .map(|e| e.slot)
            .collect();
        match (matching.is_empty(), fallback) {
            (true, LabelFallback::Any) => Allowed::Any,
            _ => Allowed::Only(matching),
        }
    }
}

impl Allowed {
    pub fn admits(&self, slot: usize) -> bool {
        match self {
            Allowed::Any => true,
            Allowed::Only(s) => s.contains(&slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_named_engine_then_labels_then_anything() {
        let (eu, us, none) = (
            labels(&[("region", "eu"), ("tier", "gold")]),
            labels(&[("region", "us")]),
            labels(&[]),
        );
        let engines = [
            Candidate {
                id: "media_A",
                slot: 0,
                labels: &eu,
            },
            Candidate {
                id: "media_B",
                slot: 1,
                labels: &us,
            },
            Candidate {
                id: "media_C",
                slot: 2,
                labels: &none,
            },
        ];
        let free = Steer::default();
        assert!(free.is_free());
        assert_eq!(free.allowed(&engines, LabelFallback::None), Allowed::Any);
        let named = Steer {
            node: Some("media_B".into()),
            labels: labels(&[("region", "eu")]),
        };
        assert_eq!(
            named.allowed(&engines, LabelFallback::Any),
            Allowed::Only(vec![1]),
            "the node wins over labels"
        );
        let gone = Steer {
            node: Some("media_Z".into()),
            ..Steer::default()
        };
        assert_eq!(
            gone.allowed(&engines, LabelFallback::Any),
            Allowed::Only(vec![])
        );
        let eu_only = Steer {
            node: None,
            labels: labels(&[("region", "eu")]),
        };
        assert_eq!(
            eu_only.allowed(&engines, LabelFallback::None),
            Allowed::Only(vec![0])
        );
        let all_of = Steer {
            node: None,
            labels: labels(&[("region", "eu"), ("tier", "silver")]),
        };
        assert_eq!(
            all_of.allowed(&engines, LabelFallback::None),
            Allowed::Only(vec![]),
            "every label must match"
        );
        assert_eq!(
            all_of.allowed(&engines, LabelFallback::Any),
            Allowed::Any,
            "falling back as configured"
        );
        assert!(Allowed::Only(vec![0, 2]).admits(2) && !Allowed::Only(vec![0]).admits(1));
    }
}
