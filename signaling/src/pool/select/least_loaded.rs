//! The admitted engine with the lowest load; ties go to fewer endpoints, then configuration order.

use super::{Candidate, Strategy};

pub struct LeastLoaded;

impl Strategy for LeastLoaded {
    fn pick(&mut self, candidates: &[Candidate]) -> Option<String> {
        candidates
            .iter()
            .enumerate()
            .min_by(|(i, a), (j, b)| {
                a.load
                    .total_cmp(&b.load)
                    .then(a.endpoints.cmp(&b.endpoints))
                    .then(i.cmp(j))
            })
            .map(|(_, c)| c.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_load_then_fewest_endpoints() {
        let c = |id: &str, load: f64, endpoints: u64| Candidate {
            id: id.into(),
            weight: 1,
            load,
            endpoints,
        };
        let mut s = LeastLoaded;
        assert_eq!(
            s.pick(&[c("a", 0.5, 1), c("b", 0.2, 9), c("c", 0.3, 0)])
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            s.pick(&[c("a", 0.2, 5), c("b", 0.2, 3)]).as_deref(),
            Some("b")
        );
        assert_eq!(s.pick(&[]), None);
    }
}
