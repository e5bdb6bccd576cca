//! Self-service flows: server-side state bound to one directory user.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_types::ObjectId;
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use crate::error::StoreError;

/// The bearer token the browser holds for a flow (in a `__Host-` cookie): 256 random bits,
/// URL-safe base64 without padding (43 characters). Only its SHA-256 is stored. A new token is
/// issued after every verified step ([`crate::Store::record_verification`]); the old one stops
/// working at that moment.
#[derive(Clone, PartialEq, Eq)]
pub struct FlowToken(String);

impl FlowToken {
    const RAW_LEN: usize = 32;
    const TEXT_LEN: usize = 43;

    pub(crate) fn generate() -> Result<Self, StoreError> {
        let mut raw = [0u8; Self::RAW_LEN];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| StoreError::Invalid("no system randomness"))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Accepts only the exact shape this crate issues, so garbage from a cookie never reaches a
    /// query. `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == Self::TEXT_LEN
            && URL_SAFE_NO_PAD
                .decode(text.as_bytes())
                .is_ok_and(|b| b.len() == Self::RAW_LEN);
        ok.then(|| Self(text.to_string()))
    }

    /// The value to put in the cookie. Greppable on purpose: it is a bearer secret.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database stores and looks up.
    pub(crate) fn hash(&self) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, self.0.as_bytes())
            .as_ref()
            .to_vec()
    }
}

impl fmt::Debug for FlowToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlowToken([redacted])")
    }
}

/// A flow's stable id: not a secret (it appears in audit details and binds codes to the flow) and
/// unchanged when the token rotates. The type is shared with `latchkey-verify`'s code bindings.
pub use latchkey_types::FlowId;

/// How long a flow lives. The security bar's defaults: 15 minutes absolute, 5 minutes idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowLifetime {
    /// From creation; never extended.
    pub absolute: Duration,
    /// Since the last request that found the flow.
    pub idle: Duration,
}

impl Default for FlowLifetime {
    fn default() -> Self {
        Self {
            absolute: Duration::from_secs(15 * 60),
            idle: Duration::from_secs(5 * 60),
        }
    }
}

/// What [`crate::Store::create_flow`] needs. `purpose`, `step` and `data` are the flow code's
/// vocabulary; the store only keeps them.
#[derive(Clone, Debug)]
pub struct NewFlow {
    /// The user being verified, fixed for the flow's whole life.
    pub subject: ObjectId,
    /// E.g. `"reset"`, `"unlock"`, `"enroll"`.
    pub purpose: String,
    /// The first step, e.g. `"choose-method"`.
    pub step: String,
    /// Flow-defined JSON object (language, chosen method, ...). Never secrets.
    pub data: serde_json::Value,
    pub lifetime: FlowLifetime,
}

/// A live flow as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    pub id: FlowId,
    pub subject: ObjectId,
    pub purpose: String,
    pub step: String,
    /// Methods verified in this flow, in the order they were verified, without repeats.
    pub verified: Vec<String>,
    pub data: serde_json::Value,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// Absolute deadline.
    pub expires_at: OffsetDateTime,
    pub idle_timeout: Duration,
}

impl Flow {
    /// When the flow dies if no request touches it before.
    pub fn idle_deadline(&self) -> OffsetDateTime {
        (self.last_seen_at + self.idle_timeout).min(self.expires_at)
    }
}

/// A change to a flow that is not a verification (no token rotation). `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct FlowUpdate {
    pub step: Option<String>,
    pub data: Option<serde_json::Value>,
}
