//! Random numbers for codes, seeds and salts. One source for all of them: ring's `SystemRandom`
//! (the operating system's CSPRNG, no user-space state to reseed or fork).

use ring::rand::{SecureRandom, SystemRandom};

/// The operating system's random number generator failed (it practically never does; callers
/// fail closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RngError;

/// Fills `buf` with random bytes.
pub(crate) fn fill(rng: &SystemRandom, buf: &mut [u8]) -> Result<(), RngError> {
    rng.fill(buf).map_err(|_| RngError)
}

/// A uniformly distributed integer in `0..bound` (`bound > 0`).
///
/// Rejection sampling: a raw `u64 % bound` would favour small values whenever `bound` does not
/// divide 2^64, so draws from the incomplete top "zone" are thrown away and redrawn. For the
/// bounds used here (10^6..10^10) a redraw happens with probability < 10^-9.
pub(crate) fn uniform_below(rng: &SystemRandom, bound: u64) -> Result<u64, RngError> {
    if bound == 0 {
        return Err(RngError);
    }
    // Largest multiple of `bound` that fits; values at or above it are rejected.
    let zone = u64::MAX - (u64::MAX % bound);
    // Bounded loop: with bound ≤ 2^63 each draw is accepted with probability ≥ 1/2, so 64 failed
    // draws in a row means the generator is broken, not unlucky.
    for _ in 0..64 {
        let mut bytes = [0u8; 8];
        fill(rng, &mut bytes)?;
        let x = u64::from_le_bytes(bytes);
        if x < zone {
            return Ok(x % bound);
        }
    }
    Err(RngError)
}

/// `n` uniformly random decimal digits (leading zeros included), `1 ≤ n ≤ 19`.
pub(crate) fn digits(rng: &SystemRandom, n: u8) -> Result<String, RngError> {
    let bound = 10u64.checked_pow(u32::from(n)).ok_or(RngError)?;
    let value = uniform_below(rng, bound)?;
    Ok(format!("{value:0width$}", width = usize::from(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_have_the_requested_length_and_keep_leading_zeros() {
        let rng = SystemRandom::new();
        for n in [6u8, 8, 10] {
            for _ in 0..200 {
                let d = digits(&rng, n).unwrap();
                assert_eq!(d.len(), usize::from(n));
                assert!(d.bytes().all(|b| b.is_ascii_digit()));
            }
        }
        // Over 2,000 six-digit codes, ~10% start with 0: they must not be dropped or shortened.
        let zeros = (0..2000)
            .filter(|_| digits(&rng, 6).unwrap().starts_with('0'))
            .count();
        assert!(zeros > 100, "only {zeros} codes started with 0");
    }

    /// Chi-square test on every digit position of 8-digit codes. With 9 degrees of freedom the
    /// 99.99th percentile is 33.7: a correct generator fails this about once in 10,000 runs;
    /// a modulo-biased or position-dependent one fails it every time.
    #[test]
    fn digits_are_uniform_in_every_position() {
        let rng = SystemRandom::new();
        let samples = 20_000;
        let mut counts = [[0u32; 10]; 8];
        for _ in 0..samples {
            for (pos, b) in digits(&rng, 8).unwrap().bytes().enumerate() {
                counts[pos][usize::from(b - b'0')] += 1;
            }
        }
        let expected = f64::from(samples) / 10.0;
        for (pos, row) in counts.iter().enumerate() {
            let chi2: f64 = row
                .iter()
                .map(|&c| (f64::from(c) - expected).powi(2) / expected)
                .sum();
            assert!(
                chi2 < 33.7,
                "position {pos}: chi2 = {chi2:.1}, counts {row:?}"
            );
        }
    }

    #[test]
    fn uniform_below_stays_in_range() {
        let rng = SystemRandom::new();
        assert!(uniform_below(&rng, 0).is_err());
        assert_eq!(uniform_below(&rng, 1).unwrap(), 0);
        let mut seen = [false; 3];
        for _ in 0..200 {
            seen[uniform_below(&rng, 3).unwrap() as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
