//! Interactive sign-in with smart lockout (howto-password-smart-lockout.md).
//!
//! Order of checks, and why: a locked account is refused first (AADSTS50053, even with the right
//! password, as Entra does while the lockout lasts); then the password (AADSTS50126, counted
//! toward the lockout); only a caller who knows the password learns that the account is disabled
//! (AADSTS50057). An unknown name is AADSTS50034.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::State;

/// Result of a simulated interactive sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SignInOutcome {
    Success,
    /// AADSTS50126
    InvalidPassword,
    /// AADSTS50053
    Locked,
    /// AADSTS50057
    Disabled,
    /// AADSTS50034
    NotFound,
}

impl SignInOutcome {
    pub fn aadsts(self) -> Option<u32> {
        match self {
            SignInOutcome::Success => None,
            SignInOutcome::InvalidPassword => Some(50126),
            SignInOutcome::Locked => Some(50053),
            SignInOutcome::Disabled => Some(50057),
            SignInOutcome::NotFound => Some(50034),
        }
    }

    /// The sign-in page text for a failure.
    pub fn message(self) -> &'static str {
        match self {
            SignInOutcome::Success => "",
            SignInOutcome::InvalidPassword => {
                "AADSTS50126: Error validating credentials due to invalid username or password."
            }
            SignInOutcome::Locked => {
                "AADSTS50053: Your account is temporarily locked to prevent unauthorized use. Try again later, and if you still have trouble, contact your admin."
            }
            SignInOutcome::Disabled => {
                "AADSTS50057: The user account is disabled. The account has been disabled by an administrator."
            }
            SignInOutcome::NotFound => {
                "AADSTS50034: The user account does not exist in this directory. To sign into this application, the account must be added to the directory."
            }
        }
    }
}

fn fingerprint(password: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, password.as_bytes())
        .as_ref()
        .to_vec()
}

impl State {
    pub fn sign_in(&mut self, upn: &str, password: &str, now: OffsetDateTime) -> SignInOutcome {
        let threshold = self.smart_lockout.threshold.max(1);
        let base = Duration::seconds(self.smart_lockout.duration_seconds as i64);
        let Some(i) = self
            .users
            .iter()
            .position(|u| u.upn.eq_ignore_ascii_case(upn.trim()))
        else {
            return SignInOutcome::NotFound;
        };
        let user = &mut self.users[i];
        if user.lockout.locked_until.is_some_and(|t| now < t) {
            return SignInOutcome::Locked;
        }
        if user.password.expose() != password {
            let fp = fingerprint(password);
            if user.lockout.recent_bad.contains(&fp) {
                // The same wrong password again does not count (smart lockout keeps the last 3).
                return SignInOutcome::InvalidPassword;
            }
            user.lockout.recent_bad.push(fp);
            if user.lockout.recent_bad.len() > 3 {
                user.lockout.recent_bad.remove(0);
            }
            user.lockout.failures += 1;
            if user.lockout.failures >= threshold {
                // Each further lockout lasts longer.
                user.lockout.lockouts += 1;
                user.lockout.failures = 0;
                user.lockout.locked_until = Some(now + base * user.lockout.lockouts as i32);
                return SignInOutcome::Locked;
            }
            return SignInOutcome::InvalidPassword;
        }
        if !user.account_enabled {
            return SignInOutcome::Disabled;
        }
        user.lockout.failures = 0;
        user.lockout.recent_bad.clear();
        SignInOutcome::Success
    }
}
