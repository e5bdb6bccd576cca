//! Constant-time equality for values of any length.
//!
//! ring's public API offers constant-time comparison only through `hmac::verify`, so both sides
//! go through HMAC with a random per-instance key: the tag of `expected` is compared with the tag
//! of `given` in constant time. Besides timing, this hides the lengths (both tags are 32 bytes).

use ring::hmac;
use ring::rand::SystemRandom;

use crate::rng::{self, RngError};

/// Compares byte strings without revealing, through timing, where they differ or how long they are.
pub(crate) struct CtEq {
    key: hmac::Key,
}

impl CtEq {
    pub(crate) fn new(rng: &SystemRandom) -> Result<Self, RngError> {
        let mut key = [0u8; 32];
        rng::fill(rng, &mut key)?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        })
    }

    /// `true` when `expected == given`.
    pub(crate) fn eq(&self, expected: &[u8], given: &[u8]) -> bool {
        let tag = hmac::sign(&self.key, expected);
        hmac::verify(&self.key, given, tag.as_ref()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_values_of_any_length() {
        let ct = CtEq::new(&SystemRandom::new()).unwrap();
        assert!(ct.eq(b"E12345", b"E12345"));
        assert!(ct.eq(b"", b""));
        assert!(!ct.eq(b"E12345", b"E1234"));
        assert!(!ct.eq(b"E12345", b"E12346"));
    }
}
