//! Time as a parameter.
//!
//! Every function in this crate that depends on time takes `now: OffsetDateTime`; none reads the
//! system clock. The flows hold a [`Clock`] and pass `clock.now()` down, so tests (and the demo)
//! can move time forward without sleeping.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// A source of the current time (UTC).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock: the one place where the real time is read.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the clock seam
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told to (tests, simulations).
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock by `by` (may be negative, to simulate a server whose clock is behind).
    pub fn advance(&self, by: Duration) {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *t += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        assert_eq!(c.now(), datetime!(2026-01-01 00:00 UTC));
        c.advance(Duration::minutes(10));
        assert_eq!(c.now(), datetime!(2026-01-01 00:10 UTC));
        c.set(datetime!(2027-01-01 00:00 UTC));
        assert_eq!(c.now(), datetime!(2027-01-01 00:00 UTC));
        assert!(SystemClock.now() > datetime!(2020-01-01 00:00 UTC));
    }
}
