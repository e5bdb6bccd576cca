//! Throttle policy as pure functions over counters the store keeps.
//!
//! `security.md` limits (defaults of [`ThrottlePolicy`]):
//!
//! | what | key | limit |
//! |---|---|---|
//! | codes sent | user object id + channel | 5 per hour and 10 per day |
//! | failed verifications | user object id + method | 5 per hour, growing waits between failures, 100 in a row disables the method |
//! | flow starts | client address | 20 per 10 minutes |
//! | verification attempts | client address | 60 per hour |
//!
//! Users are keyed on the directory object id, never on what was typed; client addresses on the
//! address the trusted proxy reports, IPv6 reduced to its /64 (one subscriber usually holds a
//! whole /64) — see [`ThrottleKey`].
//!
//! ## Model: fixed windows with timestamps
//! A [`WindowCounter`] is `(window_start, count)`. A window opens at the first event after the
//! previous one closed and lasts [`Limit::window`]; within it at most [`Limit::max`] events are
//! allowed. A denial says when the window closes (`retry_after`). Two plain columns per limit,
//! and expiry is implicit (an old window is simply replaced), so nothing needs sweeping for
//! correctness. The price: across a window boundary up to `2 × max − 1` events can fall within
//! one window length. That is why limits come in pairs (5 per hour *and* 10 per day) and why
//! failures also have growing waits, which a boundary does not reset.
//!
//! ## Failures: pessimistic accounting
//! [`FailurePolicy::begin_attempt`] counts the attempt as a failure *before* the answer is
//! checked; [`FailurePolicy::record_success`] takes it back when the answer was right. Checking
//! first and counting after would let 50 parallel guesses all pass a check that saw 4 failures.
//!
//! ## Store contract
//! Checking and consuming is one atomic step (`security.md`, principle 2) and counters are shared
//! by every instance, so they live in the database. For every key:
//! 1. read the row (absent: [`Default`] state);
//! 2. call the pure function ([`Throttle::consume`], [`FailurePolicy::begin_attempt`],
//!    [`FailurePolicy::record_success`]) at `now`;
//! 3. if it changed the state, write it back *conditionally* in one statement, e.g.
//!    `UPDATE throttle SET state = :new, version = version + 1 WHERE key = :key AND version = :read_version`
//!    (`INSERT ... ON CONFLICT (key) DO NOTHING` for a new key). Zero rows written means another
//!    instance got there first: go back to 1 (a few times, then treat as denied).
//!
//! This works unchanged on SQLite and PostgreSQL. For a single [`Limit`], an equivalent
//! one-statement upsert exists and may be used instead:
//! ```sql
//! INSERT INTO throttle (key, window_start, count) VALUES (:key, :now, 1)
//! ON CONFLICT (key) DO UPDATE SET
//!   count        = CASE WHEN throttle.window_start <= :now - :window THEN 1 ELSE throttle.count + 1 END,
//!   window_start = CASE WHEN throttle.window_start <= :now - :window THEN :now ELSE throttle.window_start END
//! WHERE throttle.window_start <= :now - :window OR throttle.count < :max
//! RETURNING count;  -- no row returned: denied, retry after window_start + window - now
//! ```
//! Throttles expire by themselves; a helpdesk reset of a disabled method or a re-enrollment
//! writes [`FailureCounter::default()`].

use std::net::IpAddr;

use latchkey_types::ObjectId;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::method::{Channel, MethodKind};

/// At most `max` events per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// Events allowed per window (0 denies everything).
    pub max: u32,
    /// The window's length.
    pub window: Duration,
}

/// Whether an event may happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead (the event has been counted).
    Allowed,
    /// Not now; try again after `retry_after` (for a `Retry-After` header, round up).
    Denied {
        /// How long until the event would be allowed.
        retry_after: Duration,
    },
    /// The method is disabled for this user until helpdesk or re-enrollment (failures only).
    Disabled,
}

impl Decision {
    /// Whether the event may happen.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed)
    }
}

/// The state of one [`Limit`] for one key: plain fields for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WindowCounter {
    /// When the current window opened (`None`: no event yet).
    pub window_start: Option<OffsetDateTime>,
    /// Events counted in the current window.
    pub count: u32,
}

impl Limit {
    /// `max` events per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }

    /// Whether one more event would be allowed at `now`, without counting it.
    pub fn check(&self, counter: &WindowCounter, now: OffsetDateTime) -> Decision {
        match counter.window_start {
            Some(start) if now < start + self.window => {
                if counter.count < self.max {
                    Decision::Allowed
                } else {
                    // Capped at one window in case another instance's clock ran ahead.
                    let retry_after = (start + self.window - now).min(self.window);
                    Decision::Denied { retry_after }
                }
            }
            _ if self.max == 0 => Decision::Denied {
                retry_after: self.window,
            },
            _ => Decision::Allowed,
        }
    }

    /// Checks and, when allowed, counts one event.
    pub fn consume(&self, counter: &mut WindowCounter, now: OffsetDateTime) -> Decision {
        let decision = self.check(counter, now);
        if decision.is_allowed() {
            self.record(counter, now);
        }
        decision
    }

    fn record(&self, counter: &mut WindowCounter, now: OffsetDateTime) {
        match counter.window_start {
            Some(start) if now < start + self.window => {
                counter.count = counter.count.saturating_add(1)
            }
            _ => {
                *counter = WindowCounter {
                    window_start: Some(now),
                    count: 1,
                }
            }
        }
    }
}

/// Several limits on one key, all of which must allow an event (e.g. 5 per hour and 10 per day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// The limits.
    pub limits: Vec<Limit>,
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(limits: Vec<Limit>) -> Self {
        Self { limits }
    }

    /// Checks every limit and counts the event in all of them only if all allow it. `counters`
    /// holds one counter per limit, in the same order (missing ones are added, extra ones dropped,
    /// so a configuration change resets rather than breaks). On denial `retry_after` is the
    /// longest wait among the limits that deny.
    pub fn consume(&self, counters: &mut Vec<WindowCounter>, now: OffsetDateTime) -> Decision {
        counters.resize(self.limits.len(), WindowCounter::default());
        let mut wait: Option<Duration> = None;
        for (limit, counter) in self.limits.iter().zip(counters.iter()) {
            if let Decision::Denied { retry_after } = limit.check(counter, now) {
                wait = Some(wait.map_or(retry_after, |w| w.max(retry_after)));
            }
        }
        if let Some(retry_after) = wait {
            return Decision::Denied { retry_after };
        }
        for (limit, counter) in self.limits.iter().zip(counters.iter_mut()) {
            limit.record(counter, now);
        }
        Decision::Allowed
    }
}

/// Failed verifications per user and method: a window limit, growing waits, and a disable point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailurePolicy {
    /// Failures allowed per window (default 5 per hour).
    pub limit: Limit,
    /// Consecutive failures allowed without any wait (default 2: typos happen).
    pub free_failures: u32,
    /// The wait after the first failure beyond the free ones; it doubles with each further one
    /// (default 15 s).
    pub first_wait: Duration,
    /// The longest wait (default 1 hour).
    pub max_wait: Duration,
    /// Consecutive failures that disable the method (default 100).
    pub disable_after: u32,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        Self {
            limit: Limit::new(5, Duration::HOUR),
            free_failures: 2,
            first_wait: Duration::seconds(15),
            max_wait: Duration::HOUR,
            disable_after: 100,
        }
    }
}

/// Failure state for one (user, method): plain fields for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailureCounter {
    /// Failures in the current window.
    pub window: WindowCounter,
    /// Failures since the last success (never expires: "100 in a row").
    pub consecutive: u32,
    /// When the last failure (or provisional failure) was counted.
    pub last_failure: Option<OffsetDateTime>,
}

impl FailurePolicy {
    /// The wait imposed before the next attempt after `consecutive` failures in a row:
    /// none up to `free_failures`, then `first_wait`, doubling, capped at `max_wait`
    /// (defaults: 0, 0, 15 s, 30 s, 1 min, 2 min, ... 32 min, 1 h).
    pub fn wait_after(&self, consecutive: u32) -> Duration {
        if consecutive <= self.free_failures {
            return Duration::ZERO;
        }
        let doublings = consecutive - self.free_failures - 1;
        let factor = 2i32.checked_pow(doublings).unwrap_or(i32::MAX);
        self.first_wait
            .checked_mul(factor)
            .unwrap_or(self.max_wait)
            .min(self.max_wait)
    }

    /// Whether the method is disabled for this user.
    pub fn is_disabled(&self, counter: &FailureCounter) -> bool {
        counter.consecutive >= self.disable_after
    }

    /// Before checking an answer: decides whether the attempt may happen and, if so, counts it
    /// as a failure (taken back by [`record_success`](Self::record_success)).
    pub fn begin_attempt(&self, counter: &mut FailureCounter, now: OffsetDateTime) -> Decision {
        if self.is_disabled(counter) {
            return Decision::Disabled;
        }
        let mut wait: Option<Duration> = None;
        if let Some(last) = counter.last_failure {
            let until = last + self.wait_after(counter.consecutive);
            if now < until {
                wait = Some((until - now).min(self.max_wait));
            }
        }
        if let Decision::Denied { retry_after } = self.limit.check(&counter.window, now) {
            wait = Some(wait.map_or(retry_after, |w| w.max(retry_after)));
        }
        if let Some(retry_after) = wait {
            return Decision::Denied { retry_after };
        }
        self.limit.record(&mut counter.window, now);
        counter.consecutive = counter.consecutive.saturating_add(1);
        counter.last_failure = Some(now);
        Decision::Allowed
    }

    /// After a right answer: takes back the provisional failure and ends the run of failures.
    pub fn record_success(&self, counter: &mut FailureCounter) {
        counter.window.count = counter.window.count.saturating_sub(1);
        counter.consecutive = 0;
        counter.last_failure = None;
    }
}

/// All the limits of `security.md`, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottlePolicy {
    /// Codes sent per user per channel (default 5 per hour, 10 per day).
    pub sends_per_channel: Throttle,
    /// Failed verifications per user per method.
    pub failures_per_method: FailurePolicy,
    /// Flow starts per client address (default 20 per 10 minutes).
    pub flow_starts_per_client: Throttle,
    /// Verification attempts per client address (default 60 per hour).
    pub verifications_per_client: Throttle,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            sends_per_channel: Throttle::new(vec![
                Limit::new(5, Duration::HOUR),
                Limit::new(10, Duration::DAY),
            ]),
            failures_per_method: FailurePolicy::default(),
            flow_starts_per_client: Throttle::new(vec![Limit::new(20, Duration::minutes(10))]),
            verifications_per_client: Throttle::new(vec![Limit::new(60, Duration::HOUR)]),
        }
    }
}

/// What a counter is keyed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// Codes sent to a user on a channel.
    Sends {
        /// The user.
        user: ObjectId,
        /// The channel.
        channel: Channel,
    },
    /// Failed verifications of a user with a method.
    Failures {
        /// The user.
        user: ObjectId,
        /// The method.
        method: MethodKind,
    },
    /// Flow starts from a client address.
    FlowStarts {
        /// The client address (from the trusted proxy).
        client: IpAddr,
    },
    /// Verification attempts from a client address.
    Verifications {
        /// The client address (from the trusted proxy).
        client: IpAddr,
    },
}

impl ThrottleKey {
    /// A stable string key for the store, e.g. `sends:email:<object id>`,
    /// `client-starts:2001:db8:1:2::/64`.
    pub fn storage_key(&self) -> String {
        match self {
            ThrottleKey::Sends { user, channel } => format!("sends:{channel}:{user}"),
            ThrottleKey::Failures { user, method } => format!("failures:{method}:{user}"),
            ThrottleKey::FlowStarts { client } => {
                format!("client-starts:{}", client_prefix(*client))
            }
            ThrottleKey::Verifications { client } => {
                format!("client-verifications:{}", client_prefix(*client))
            }
        }
    }
}

/// The part of a client address that identifies one client: IPv4 as is (IPv4-mapped IPv6 too),
/// IPv6 reduced to its /64, since one subscriber usually controls a whole /64.
pub fn client_prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-21 09:00 UTC);

    #[test]
    fn window_allows_max_then_denies_until_it_closes() {
        let limit = Limit::new(5, Duration::HOUR);
        let mut c = WindowCounter::default();
        for i in 0..5 {
            assert_eq!(
                limit.consume(&mut c, T0 + Duration::minutes(i)),
                Decision::Allowed
            );
        }
        assert_eq!(
            limit.consume(&mut c, T0 + Duration::minutes(20)),
            Decision::Denied {
                retry_after: Duration::minutes(40)
            }
        );
        assert_eq!(c.count, 5, "a denial is not counted");
        assert_eq!(
            limit.consume(&mut c, T0 + Duration::HOUR - Duration::SECOND),
            Decision::Denied {
                retry_after: Duration::SECOND
            }
        );
        // The window closes an hour after it opened; a new one opens at the next event.
        assert_eq!(
            limit.consume(&mut c, T0 + Duration::HOUR),
            Decision::Allowed
        );
        assert_eq!(
            c,
            WindowCounter {
                window_start: Some(T0 + Duration::HOUR),
                count: 1
            }
        );
        assert!(
            !Limit::new(0, Duration::HOUR)
                .consume(&mut WindowCounter::default(), T0)
                .is_allowed()
        );
    }

    #[test]
    fn sends_are_limited_per_hour_and_per_day() {
        let policy = ThrottlePolicy::default();
        let sends = &policy.sends_per_channel;
        let mut counters = Vec::new();
        for i in 0..5 {
            assert!(
                sends
                    .consume(&mut counters, T0 + Duration::minutes(i))
                    .is_allowed()
            );
        }
        assert_eq!(counters.len(), 2);
        assert_eq!(
            sends.consume(&mut counters, T0 + Duration::minutes(30)),
            Decision::Denied {
                retry_after: Duration::minutes(30)
            }
        );
        // Next hour: 5 more, which reaches the daily 10.
        for i in 0..5 {
            assert!(
                sends
                    .consume(&mut counters, T0 + Duration::HOUR + Duration::minutes(i))
                    .is_allowed()
            );
        }
        // Third hour: the hourly window is fresh, but the day is used up until T0 + 24 h.
        assert_eq!(
            sends.consume(&mut counters, T0 + Duration::hours(3)),
            Decision::Denied {
                retry_after: Duration::hours(21)
            }
        );
        assert!(
            sends
                .consume(&mut counters, T0 + Duration::DAY)
                .is_allowed()
        );
    }

    #[test]
    fn client_limits() {
        let policy = ThrottlePolicy::default();
        let mut starts = Vec::new();
        for i in 0..20 {
            assert!(
                policy
                    .flow_starts_per_client
                    .consume(&mut starts, T0 + Duration::seconds(i))
                    .is_allowed()
            );
        }
        assert!(
            !policy
                .flow_starts_per_client
                .consume(&mut starts, T0 + Duration::minutes(9))
                .is_allowed()
        );
        assert!(
            policy
                .flow_starts_per_client
                .consume(&mut starts, T0 + Duration::minutes(10))
                .is_allowed()
        );
        let mut attempts = Vec::new();
        for i in 0..60 {
            assert!(
                policy
                    .verifications_per_client
                    .consume(&mut attempts, T0 + Duration::seconds(i))
                    .is_allowed()
            );
        }
        assert_eq!(
            policy
                .verifications_per_client
                .consume(&mut attempts, T0 + Duration::minutes(59)),
            Decision::Denied {
                retry_after: Duration::minutes(1)
            }
        );
    }

    #[test]
    fn waits_grow_after_the_free_failures() {
        let p = FailurePolicy::default();
        let waits: Vec<i64> = (0..14).map(|n| p.wait_after(n).whole_seconds()).collect();
        assert_eq!(
            waits,
            [
                0, 0, 0, 15, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600
            ]
        );
        assert_eq!(p.wait_after(u32::MAX), Duration::HOUR);
    }

    #[test]
    fn failures_are_counted_before_checking_and_refunded_on_success() {
        let p = FailurePolicy::default();
        let mut c = FailureCounter::default();
        let mut t = T0;
        // Two free failures.
        assert!(p.begin_attempt(&mut c, t).is_allowed());
        assert!(p.begin_attempt(&mut c, t).is_allowed());
        // Third attempt right away: allowed (wait_after(2) = 0), then a wait of 15 s.
        assert!(p.begin_attempt(&mut c, t).is_allowed());
        assert_eq!(
            p.begin_attempt(&mut c, t + Duration::seconds(5)),
            Decision::Denied {
                retry_after: Duration::seconds(10)
            }
        );
        t += Duration::seconds(15);
        assert!(p.begin_attempt(&mut c, t).is_allowed());
        assert_eq!(
            p.begin_attempt(&mut c, t + Duration::seconds(29)),
            Decision::Denied {
                retry_after: Duration::SECOND
            }
        );
        t += Duration::seconds(30);
        // That was the 5th failure within the hour: the window now denies as well.
        assert!(p.begin_attempt(&mut c, t).is_allowed());
        assert_eq!(c.window.count, 5);
        assert_eq!(
            p.begin_attempt(&mut c, t + Duration::minutes(2)),
            Decision::Denied {
                retry_after: Duration::minutes(57) + Duration::seconds(15)
            }
        );
        // A success takes back its own provisional failure and ends the run.
        p.record_success(&mut c);
        assert_eq!(
            (c.window.count, c.consecutive, c.last_failure),
            (4, 0, None)
        );
        assert!(
            p.begin_attempt(&mut c, t + Duration::minutes(2))
                .is_allowed()
        );
    }

    #[test]
    fn a_hundred_failures_in_a_row_disable_the_method() {
        let p = FailurePolicy::default();
        let mut c = FailureCounter::default();
        let mut t = T0;
        let mut failures = 0;
        while failures < 100 {
            match p.begin_attempt(&mut c, t) {
                Decision::Allowed => failures += 1,
                Decision::Denied { retry_after } => t += retry_after,
                Decision::Disabled => panic!("disabled after {failures}"),
            }
        }
        assert_eq!(
            p.begin_attempt(&mut c, t + Duration::days(30)),
            Decision::Disabled
        );
        assert!(p.is_disabled(&c));
        // 100 failures at 5 per hour with growing waits take days, not minutes.
        assert!(t - T0 > Duration::days(3), "{}", t - T0);
        // Helpdesk or re-enrollment resets the counter.
        let mut c = FailureCounter::default();
        assert!(p.begin_attempt(&mut c, t).is_allowed());
    }

    #[test]
    fn keys_are_stable_and_ipv6_uses_the_slash_64() {
        let user: ObjectId = "87d349ed-44d7-43e1-9a83-5f2406dee5bd".parse().unwrap();
        assert_eq!(
            ThrottleKey::Sends {
                user,
                channel: Channel::Email
            }
            .storage_key(),
            "sends:email:87d349ed-44d7-43e1-9a83-5f2406dee5bd"
        );
        assert_eq!(
            ThrottleKey::Failures {
                user,
                method: MethodKind::Totp
            }
            .storage_key(),
            "failures:totp:87d349ed-44d7-43e1-9a83-5f2406dee5bd"
        );
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(
            ThrottleKey::FlowStarts { client: a }.storage_key(),
            "client-starts:2001:db8:1:2::/64"
        );
        assert_eq!(
            ThrottleKey::FlowStarts { client: a }.storage_key(),
            ThrottleKey::FlowStarts { client: b }.storage_key()
        );
        assert_eq!(
            client_prefix("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7"
        );
        assert_eq!(
            ThrottleKey::Verifications {
                client: "192.0.2.7".parse().unwrap()
            }
            .storage_key(),
            "client-verifications:192.0.2.7"
        );
    }
}
