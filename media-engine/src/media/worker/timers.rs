//! The worker's timer heap: when each connection next wants `handle_timeout`. Asking every
//! connection for `poll_timeout` on every loop turn costs ~60 ns each; the heap answers "what is
//! due" in O(log n). Entries made stale by a later reschedule are skipped when they surface.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

pub struct Timers<K> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
    /// The one deadline that counts per connection.
    due: HashMap<K, Instant>,
}

impl<K: Copy + Eq + Hash + Ord> Default for Timers<K> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            due: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash + Ord> Timers<K> {
    /// `key` wants a timeout at `at`; an earlier deadline already set stays (waking early is
    /// harmless: the connection is asked again afterwards).
    pub fn schedule(&mut self, key: K, at: Instant) {
        match self.due.get(&key) {
            Some(cur) if *cur <= at => {}
            _ => {
                self.due.insert(key, at);
                self.heap.push(Reverse((at, key)));
                self.compact();
            }
        }
    }

    pub fn cancel(&mut self, key: K) {
        self.due.remove(&key);
        self.compact();
    }

    /// The earliest live deadline.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, k))) = self.heap.peek().copied() {
            if self.due.get(&k) == Some(&at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// A connection whose deadline is at or before `now` (its deadline is cleared: reschedule
    /// after handling it).
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let at = self.next_deadline()?;
        if at > now {
            return None;
        }
        let Reverse((_, k)) = self.heap.pop()?;
        self.due.remove(&k);
        Some(k)
    }

    /// (live deadlines, heap entries).
    pub fn sizes(&self) -> (usize, usize) {
        (self.due.len(), self.heap.len())
    }

    /// Stale entries may pile up when deadlines keep moving earlier; rebuild past a bound.
    fn compact(&mut self) {
        if self.heap.len() > 64 + 4 * self.due.len() {
            self.heap = self.due.iter().map(|(k, at)| Reverse((*at, *k))).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_stale_entries_skipped_and_cancel_forgets() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut t = Timers::default();
        t.schedule(1u64, ms(50));
        t.schedule(2u64, ms(20));
        t.schedule(1u64, ms(10)); // earlier: replaces
        t.schedule(2u64, ms(90)); // later: the earlier deadline stays
        assert_eq!(t.next_deadline(), Some(ms(10)));
        assert_eq!(t.pop_due(ms(5)), None);
        assert_eq!(t.pop_due(ms(30)), Some(1));
        assert_eq!(t.pop_due(ms(30)), Some(2));
        assert_eq!(t.pop_due(ms(1000)), None); // 1's stale ms(50) entry is skipped
        t.schedule(3u64, ms(40));
        t.cancel(3);
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.sizes().0, 0);
    }

    #[test]
    fn stale_entries_do_not_grow_without_bound() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        for i in 0..10_000u64 {
            t.schedule(1u64, t0 + Duration::from_secs(100_000 - i));
        }
        assert!(t.sizes().1 <= 64 + 4, "{:?}", t.sizes());
        assert_eq!(t.pop_due(t0 + Duration::from_secs(100_000)), Some(1));
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.sizes(), (0, 0));
    }
}
