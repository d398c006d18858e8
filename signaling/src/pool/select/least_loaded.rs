//! The admitted engine with the lowest load; ties go to fewer endpoints, then configuration order.

use super::{Row, Strategy};

pub struct LeastLoaded;

impl Strategy for LeastLoaded {
    fn pick(&mut self, rows: &[Row], now: u64) -> Option<usize> {
        let mut best: Option<(usize, &Row)> = None;
        for (slot, r) in rows.iter().enumerate() {
            if !r.admitted(now) {
                continue;
            }
            let better = best.is_none_or(|(_, b)| {
                r.load
                    .total_cmp(&b.load)
                    .then(r.endpoints.cmp(&b.endpoints))
                    .is_lt()
            });
            if better {
                best = Some((slot, r));
            }
        }
        best.map(|(slot, _)| slot)
    }
}

#[cfg(test)]
mod tests {
    use super::super::swrr::tests::rows;
    use super::*;

    #[test]
    fn lowest_load_then_fewest_endpoints() {
        let mut r = rows(&[('a', 1), ('b', 1), ('c', 1)]);
        (r[0].load, r[0].endpoints) = (0.5, 1);
        (r[1].load, r[1].endpoints) = (0.2, 9);
        (r[2].load, r[2].endpoints) = (0.3, 0);
        let mut s = LeastLoaded;
        assert_eq!(s.pick(&r, 1), Some(1));
        (r[0].load, r[0].endpoints) = (0.2, 5);
        (r[1].load, r[1].endpoints) = (0.2, 3);
        assert_eq!(s.pick(&r, 1), Some(1));
        assert_eq!(s.pick(&rows(&[]), 1), None);
    }
}
