//! Throttles: sliding-window counters keyed on (scope, key), e.g. `("send:email", object id)` or
//! `("ip:start", client address)`.

use std::time::Duration;

/// What a counter is about. `scope` names the limit family (`"send:email"`, `"verify:totp"`,
/// `"ip:start"`); `key` is the thing counted (a directory object id, never what the user typed;
/// or a client address as seen through the trusted proxy).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThrottleKey {
    pub scope: String,
    pub key: String,
}

impl ThrottleKey {
    pub fn new(scope: impl Into<String>, key: impl ToString) -> Self {
        Self {
            scope: scope.into(),
            key: key.to_string(),
        }
    }
}

/// At most `max` allowed attempts in any window of length `window` (sliding, not calendar).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }
}

/// The answer of [`crate::Store::hit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// The attempt was recorded. `remaining` is how many more the tightest limit allows now.
    Allowed { remaining: u32 },
    /// Nothing was recorded. Trying again after `retry_after` will be allowed unless other
    /// attempts are recorded meanwhile.
    Denied { retry_after: Duration },
}

impl ThrottleDecision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}
