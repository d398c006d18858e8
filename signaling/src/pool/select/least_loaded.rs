//! The admitted engine with the lowest load; ties go to fewer endpoints, then configuration order.

use super::{Candidate, Strategy};

pub struct LeastLoaded;

impl Strategy for LeastLoaded {
    fn pick(&mut self, candidates: &[Candidate<'_>]) -> Option<usize> {
        candidates
            .iter()
            .enumerate()
            .min_by(|(i, a), (j, b)| {
                a.load
                    .total_cmp(&b.load)
                    .then(a.endpoints.cmp(&b.endpoints))
                    .then(i.cmp(j))
            })
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_load_then_fewest_endpoints() {
        let c = |id: &'static str, load: f64, endpoints: u64| Candidate {
            id,
            slot: 0,
            weight: 1,
            load,
            endpoints,
        };
        let mut s = LeastLoaded;
        assert_eq!(
            s.pick(&[c("a", 0.5, 1), c("b", 0.2, 9), c("c", 0.3, 0)]),
            Some(1)
        );
        assert_eq!(s.pick(&[c("a", 0.2, 5), c("b", 0.2, 3)]), Some(1));
        assert_eq!(s.pick(&[]), None);
    }
}
