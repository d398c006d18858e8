//! A set of keyed deadlines: what falls due when. Scheduling a key again replaces its deadline;
//! entries made stale by that are skipped when they surface. Time is passed in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

pub struct Deadlines<K> {
    heap: BinaryHeap<Reverse<(Instant, u64, K)>>,
    /// The one deadline that counts per key (with the generation that set it).
    live: HashMap<K, (Instant, u64)>,
    generation: u64,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            generation: 0,
        }
    }
}

impl<K: Clone + Eq + Hash + Ord> Deadlines<K> {
    /// `key` falls due at `at` (replacing any deadline it had).
    pub fn schedule(&mut self, key: K, at: Instant) {
        self.generation += 1;
        self.live.insert(key.clone(), (at, self.generation));
        self.heap.push(Reverse((at, self.generation, key)));
        self.compact();
    }

    pub fn cancel(&mut self, key: &K) {
        self.live.remove(key);
        self.compact();
    }

    pub fn contains(&self, key: &K) -> bool {
        self.live.contains_key(key)
    }

    /// The earliest live deadline.
    pub fn earliest(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, g, k))) = self.heap.peek() {
            if self.live.get(k) == Some(&(*at, *g)) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns a key whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let at = self.earliest()?;
        if at > now {
            return None;
        }
        let Reverse((_, _, k)) = self.heap.pop()?;
        self.live.remove(&k);
        Some(k)
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Keeps the heap from growing with stale entries when keys are rescheduled often.
    fn compact(&mut self) {
        if self.heap.len() > 64 && self.heap.len() > 2 * self.live.len() {
            let live = &self.live;
            self.heap
                .retain(|Reverse((at, g, k))| live.get(k) == Some(&(*at, *g)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_in_order_rescheduled_and_cancelled_keys_do_not_fire() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = Deadlines::default();
        d.schedule("b", t0 + 2 * s);
        d.schedule("a", t0 + s);
        d.schedule("c", t0 + 3 * s);
        d.schedule("b", t0 + 5 * s); // moved later
        d.cancel(&"c");
        assert_eq!(d.earliest(), Some(t0 + s));
        assert_eq!(d.pop_due(t0), None);
        assert_eq!(d.pop_due(t0 + 4 * s), Some("a"));
        assert_eq!(d.pop_due(t0 + 4 * s), None, "b moved to 5 s, c cancelled");
        assert_eq!(d.pop_due(t0 + 5 * s), Some("b"));
        assert!(d.is_empty());
        assert_eq!(d.earliest(), None);
    }

    #[test]
    fn rescheduling_many_times_keeps_the_heap_small() {
        let t0 = Instant::now();
        let mut d = Deadlines::default();
        for i in 0..10_000u64 {
            d.schedule(i % 3, t0 + Duration::from_millis(i));
        }
        assert_eq!(d.len(), 3);
        assert!(d.heap.len() <= 130, "{}", d.heap.len());
    }
}
