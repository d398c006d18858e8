//! Comparing a secret someone presented with ours, in time that does not depend on how much of
//! it was right (`subtle`), so timing reveals nothing. Used by both servers: the engine's secret,
//! signaling's REST Basic credentials and the server secret in `joinRoom`.

use subtle::ConstantTimeEq;

/// Whether `given` is `ours`. Lengths may differ (then false); only the length of `ours` is
/// revealed.
pub fn matches(given: &[u8], ours: &[u8]) -> bool {
    given.ct_eq(ours).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_equal() {
        assert!(matches(b"abc", b"abc"));
        assert!(!matches(b"abc", b"abd") && !matches(b"abc", b"ab"));
        assert!(!matches(b"", b"a") && !matches(b"abc", b"abcd"));
    }
}
