//! Which connection of a worker a datagram belongs to. STUN requests carry the ufrag the engine
//! chose for the connection; everything else is routed by its source address, learned from
//! those requests and from the addresses a connection sends to. Datagrams from unknown sources
//! reach no connection.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;

use super::stun;

/// Remote addresses remembered per connection (a peer trickles a few candidates; a flood of
/// forged ones must not grow the table).
pub const MAX_ADDRS_PER_CONN: usize = 8;

pub struct Routes<K> {
    by_ufrag: HashMap<Box<[u8]>, K>,
    by_addr: HashMap<SocketAddr, K>,
    /// Per connection: its ufrag and the addresses it owns, oldest first.
    owned: HashMap<K, (Box<[u8]>, Vec<SocketAddr>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<K> {
    Conn(K),
    /// STUN naming a ufrag no connection has.
    UnknownUfrag,
    /// Not STUN, from an address no connection knows.
    UnknownSource,
}

impl<K: Copy + Eq + Hash> Default for Routes<K> {
    fn default() -> Self {
        Self {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            owned: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> Routes<K> {
    pub fn add(&mut self, key: K, ufrag: &str) {
        let u: Box<[u8]> = ufrag.as_bytes().into();
        self.by_ufrag.insert(u.clone(), key);
        self.owned.insert(key, (u, Vec::new()));
    }

    pub fn remove(&mut self, key: K) {
        if let Some((ufrag, addrs)) = self.owned.remove(&key) {
            if self.by_ufrag.get(&ufrag) == Some(&key) {
                self.by_ufrag.remove(&ufrag);
            }
            for a in addrs {
                if self.by_addr.get(&a) == Some(&key) {
                    self.by_addr.remove(&a);
                }
            }
        }
    }

    /// `addr` belongs to `key` from now on (the newest owner wins: a port reused by a new
    /// connection of the same peer).
    pub fn learn(&mut self, key: K, addr: SocketAddr) {
        if self.by_addr.get(&addr) == Some(&key) || !self.owned.contains_key(&key) {
            return;
        }
        if let Some(prev) = self.by_addr.insert(addr, key) {
            if let Some((_, theirs)) = self.owned.get_mut(&prev) {
                theirs.retain(|a| *a != addr);
            }
        }
        let mut evicted = None;
        if let Some((_, addrs)) = self.owned.get_mut(&key) {
            addrs.push(addr);
            if addrs.len() > MAX_ADDRS_PER_CONN {
                evicted = Some(addrs.remove(0));
            }
        }
        if let Some(old) = evicted {
            if self.by_addr.get(&old) == Some(&key) {
                self.by_addr.remove(&old);
            }
        }
    }

    pub fn route(&mut self, from: SocketAddr, datagram: &[u8]) -> Route<K> {
        if let Some(ufrag) = stun::target_ufrag(datagram) {
            return match self.by_ufrag.get(ufrag).copied() {
                Some(k) => {
                    self.learn(k, from);
                    Route::Conn(k)
                }
                None => Route::UnknownUfrag,
            };
        }
        match self.by_addr.get(&from) {
            Some(k) => Route::Conn(*k),
            None => Route::UnknownSource,
        }
    }

    /// (connections, ufrag entries, address entries): all zero once every connection is gone.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.owned.len(), self.by_ufrag.len(), self.by_addr.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_for(ufrag: &str) -> Vec<u8> {
        let user = format!("{ufrag}:remote");
        let mut body = vec![0x00, 0x06];
        body.extend_from_slice(&(user.len() as u16).to_be_bytes());
        body.extend_from_slice(user.as_bytes());
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let mut d = vec![0x00, 0x01];
        d.extend_from_slice(&(body.len() as u16).to_be_bytes());
        d.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        d.extend_from_slice(&[1; 12]);
        d.extend_from_slice(&body);
        d
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn stun_by_ufrag_then_media_by_address_and_the_rest_nowhere() {
        let mut r = Routes::default();
        r.add(1u64, "aaaa");
        r.add(2u64, "bbbb");
        let rtp = [0x80u8; 60];
        // Media before any check: the source is unknown.
        assert_eq!(r.route(addr(5000), &rtp), Route::UnknownSource);
        assert_eq!(r.route(addr(5000), &stun_for("bbbb")), Route::Conn(2));
        assert_eq!(r.route(addr(5000), &rtp), Route::Conn(2));
        assert_eq!(r.route(addr(5001), &rtp), Route::UnknownSource);
        assert_eq!(r.route(addr(5001), &stun_for("zzzz")), Route::UnknownUfrag);
        // Sending to an address makes its answers routable (our own checks).
        r.learn(1, addr(6000));
        assert_eq!(r.route(addr(6000), &rtp), Route::Conn(1));
        // A request for another ufrag from a known address moves the address.
        assert_eq!(r.route(addr(6000), &stun_for("bbbb")), Route::Conn(2));
        assert_eq!(r.route(addr(6000), &rtp), Route::Conn(2));
    }

    #[test]
    fn addresses_per_connection_are_bounded_and_removal_leaves_nothing() {
        let mut r = Routes::default();
        r.add(7u64, "cccc");
        for p in 0..100 {
            assert_eq!(r.route(addr(7000 + p), &stun_for("cccc")), Route::Conn(7));
        }
        assert_eq!(r.sizes(), (1, 1, MAX_ADDRS_PER_CONN));
        // The newest addresses are the ones kept.
        assert_eq!(r.route(addr(7099), &[0x80; 20]), Route::Conn(7));
        assert_eq!(r.route(addr(7000), &[0x80; 20]), Route::UnknownSource);
        r.remove(7);
        assert_eq!(r.sizes(), (0, 0, 0));
        assert_eq!(r.route(addr(7099), &[0x80; 20]), Route::UnknownSource);
        // Learning for a connection that is gone does nothing.
        r.learn(7, addr(1));
        assert_eq!(r.sizes(), (0, 0, 0));
    }
}
