//! Self-service flows: server-side state bound to one directory user.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_types::{MethodKind, ObjectId};
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
        let raw = latchkey_types::random::bytes::<{ Self::RAW_LEN }>()?;
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

/// Where a flow stands. Stored as text (the names below); a row with any other value is corrupt.
///
/// The self-service steps form the state machine that makes one verification authorize exactly
/// one change (docs/architecture.md, "The flow state machine"):
///
/// ```text
/// Verify --(enough methods proven)--> Verified --claim_flow--> Acting --+--> done (flow ended)
///                                        ^                              +--> failed (flow ended)
///                                        +------- Retry <--release_flow-+   (nothing changed)
/// ```
///
/// Only [`crate::Store::claim_flow`] enters `Acting`, in one conditional update: of concurrent
/// claims of one flow exactly one wins. No other method moves a flow out of `Acting`, except
/// [`crate::Store::release_flow`] to `Retry` (the change certainly did not happen) and ending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowStep {
    /// Self-service: proving methods.
    Verify,
    /// Self-service: enough methods proven; one change may be claimed.
    Verified,
    /// Claimed for one change, which is under way.
    Acting,
    /// The claimed change failed before anything changed (a transient fault): the verification
    /// still holds, so the user may try once more without verifying again while the flow lives.
    Retry,
    /// An Entra sign-in (authorization code + PKCE) in progress: enrollment and consoles.
    Authorize,
    /// A signed-in enrollment session.
    Manage,
    /// A signed-in console session (admin, helpdesk).
    Console,
    /// Helpdesk: a pre-filled reset link issued, not opened yet.
    Issued,
    /// Helpdesk: a verification code sent to a caller.
    CodeSent,
}

impl FlowStep {
    const ALL: [FlowStep; 9] = [
        FlowStep::Verify,
        FlowStep::Verified,
        FlowStep::Acting,
        FlowStep::Retry,
        FlowStep::Authorize,
        FlowStep::Manage,
        FlowStep::Console,
        FlowStep::Issued,
        FlowStep::CodeSent,
    ];

    /// The stored name (unchanged from the text values earlier versions wrote).
    pub fn as_str(self) -> &'static str {
        match self {
            FlowStep::Verify => "verify",
            FlowStep::Verified => "verified",
            FlowStep::Acting => "acting",
            FlowStep::Retry => "retry",
            FlowStep::Authorize => "authorize",
            FlowStep::Manage => "manage",
            FlowStep::Console => "console",
            FlowStep::Issued => "issued",
            FlowStep::CodeSent => "code-sent",
        }
    }

    /// Parses a stored name; `None` for anything else.
    pub fn parse(s: &str) -> Option<FlowStep> {
        Self::ALL.into_iter().find(|step| step.as_str() == s)
    }

    /// Whether a change may be claimed from this step.
    pub fn may_act(self) -> bool {
        matches!(self, FlowStep::Verified | FlowStep::Retry)
    }
}

/// Refuses [`FlowStep::Acting`] where only a claim may enter it.
pub(crate) fn not_acting(step: FlowStep) -> Result<FlowStep, StoreError> {
    if step == FlowStep::Acting {
        return Err(StoreError::Invalid("only a claim enters the acting step"));
    }
    Ok(step)
}

impl fmt::Display for FlowStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a flow is for. Stored as text (the names below, unchanged from the text values earlier
/// versions wrote); a row with any other value is corrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowPurpose {
    /// Self-service: identify, verify, one change.
    SelfService,
    /// An Entra sign-in (authorization code + PKCE) on its way to an enrollment session.
    EnrollSignIn,
    /// A signed-in enrollment session.
    Enrollment,
    /// An Entra sign-in on its way to a console session.
    ConsoleSignIn,
    /// A signed-in admin console session.
    AdminSession,
    /// A signed-in helpdesk console session.
    HelpdeskSession,
    /// The helpdesk verifying a caller.
    HelpdeskCase,
    /// A pre-filled reset link the helpdesk issued.
    HelpdeskLink,
}

impl FlowPurpose {
    const ALL: [FlowPurpose; 8] = [
        FlowPurpose::SelfService,
        FlowPurpose::EnrollSignIn,
        FlowPurpose::Enrollment,
        FlowPurpose::ConsoleSignIn,
        FlowPurpose::AdminSession,
        FlowPurpose::HelpdeskSession,
        FlowPurpose::HelpdeskCase,
        FlowPurpose::HelpdeskLink,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlowPurpose::SelfService => "self-service",
            FlowPurpose::EnrollSignIn => "signin",
            FlowPurpose::Enrollment => "enroll",
            FlowPurpose::ConsoleSignIn => "console-signin",
            FlowPurpose::AdminSession => "admin",
            FlowPurpose::HelpdeskSession => "helpdesk",
            FlowPurpose::HelpdeskCase => "helpdesk-case",
            FlowPurpose::HelpdeskLink => "helpdesk-link",
        }
    }

    /// Parses a stored name; `None` for anything else.
    pub fn parse(s: &str) -> Option<FlowPurpose> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for FlowPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One proof a flow has recorded ([`crate::Store::record_verification`]). Stored as text: the
/// method's name, or `caller`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verification {
    /// The user proved a method (self-service).
    Method(MethodKind),
    /// The helpdesk verified a caller (the code they read back).
    Caller,
}

impl Verification {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Method(kind) => kind.as_str(),
            Verification::Caller => "caller",
        }
    }

    /// Parses a stored name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Verification> {
        match s {
            "caller" => Some(Verification::Caller),
            other => other.parse().ok().map(Verification::Method),
        }
    }
}

/// What [`crate::Store::create_flow`] needs. `data` is the flow code's vocabulary; the store only
/// keeps it.
#[derive(Clone, Debug)]
pub struct NewFlow {
    /// The user being verified, fixed for the flow's whole life.
    pub subject: ObjectId,
    pub purpose: FlowPurpose,
    /// The first step. [`FlowStep::Acting`] is refused: only a claim enters it.
    pub step: FlowStep,
    /// Flow-defined JSON object (language, chosen method, ...). Never secrets.
    pub data: serde_json::Value,
    pub lifetime: FlowLifetime,
}

/// A live flow as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    pub id: FlowId,
    pub subject: ObjectId,
    pub purpose: FlowPurpose,
    pub step: FlowStep,
    /// What this flow has proven, in the order it was proven, without repeats.
    pub verified: Vec<Verification>,
    pub data: serde_json::Value,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// Absolute deadline.
    pub expires_at: OffsetDateTime,
    pub idle_timeout: Duration,
}

impl Flow {
    /// Whether a change may be claimed from this flow's step.
    pub fn may_act(&self) -> bool {
        self.step.may_act()
    }

    /// When the flow dies if no request touches it before.
    pub fn idle_deadline(&self) -> OffsetDateTime {
        (self.last_seen_at + self.idle_timeout).min(self.expires_at)
    }
}

/// A change to a flow that is not a verification (no token rotation). `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct FlowUpdate {
    /// A new step. An acting flow's step never changes this way, and [`FlowStep::Acting`] is
    /// refused: only [`crate::Store::claim_flow`] enters it.
    pub step: Option<FlowStep>,
    pub data: Option<serde_json::Value>,
}
