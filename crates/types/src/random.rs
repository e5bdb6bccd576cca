//! The one source of randomness: the operating system's CSPRNG, through ring's `SystemRandom`
//! (no user-space state to seed, reseed or fork). Every token, id, nonce, key, salt and code in
//! Latchkey comes from here; `clippy.toml` forbids the generators anywhere else. A generator that
//! fails is an error, never a zero or otherwise predictable value.

use ring::rand::{SecureRandom, SystemRandom};

/// The system's random number generator failed (it practically never does; callers fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct NoRandomness;

/// The generator itself, for APIs that take one (ring's signing and key generation, code and
/// seed generators that keep it).
#[allow(clippy::disallowed_methods)] // the seam
pub fn generator() -> SystemRandom {
    SystemRandom::new()
}

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), NoRandomness> {
    generator().fill(buf).map_err(|_| NoRandomness)
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], NoRandomness> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

/// A random (version 4) UUID.
pub fn uuid() -> Result<uuid::Uuid, NoRandomness> {
    Ok(uuid::Builder::from_random_bytes(bytes::<16>()?).into_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let (a, b) = (uuid().unwrap(), uuid().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
        assert_ne!(bytes::<32>().unwrap(), [0u8; 32]);
    }
}
