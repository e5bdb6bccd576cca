//! The self-service flow as the store keeps it: the server-side record bound to one directory
//! object, its typed data, audit events and throttles.
//!
//! The flow is fixed to one directory object at identification (docs/security.md, principle 4): its
//! subject never changes, and every later step reads the user from here, never from the request.
//! Unknown, disabled, unenrolled and out-of-scope accounts get a *decoy* flow that looks the same
//! from outside and can never be verified.

use std::collections::BTreeMap;
use std::time::Duration;

use latchkey_policy::MethodSource;
use latchkey_store::{
    AuditEvent, Flow, FlowPurpose, FlowToken, Limit, Outcome, StoreError, ThrottleDecision,
    ThrottleKey, Verification,
};
use latchkey_types::{MethodKind, ObjectId};
use serde::{Deserialize, Serialize};

use crate::SelfService;

/// Flow state kept in the store (JSON), never in the browser.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FlowData {
    /// This flow can never be verified (no such account, or not eligible). Looks like any other.
    pub decoy: bool,
    /// What the user typed, to show back ("if alex@contoso.com has ..."). Not a directory value.
    pub account: String,
    /// Throttle key for per-account limits: the object id, or for decoys the typed account, so
    /// that an unknown account is throttled exactly like a real one.
    pub throttle_key: String,
    pub policy: Option<String>,
    pub required: usize,
    /// Methods the matched policy allows.
    pub methods: Vec<MethodKind>,
    /// Where the matched policy lets codes go ([`crate::channels`]); flows from before sources
    /// existed used Latchkey enrollments only.
    #[serde(default = "latchkey_only")]
    pub sources: Vec<MethodSource>,
    /// Where the last code of each method went, masked as the page shows it (a decoy's mask for
    /// a flow that sent nothing): the code page and its error pages show it again.
    #[serde(default)]
    pub sent_to: BTreeMap<MethodKind, String>,
    pub display_name: Option<String>,
    /// The user's names as the directory has them (display, given, surname, UPN local part,
    /// on-premises account): a new password may not contain them. Kept here so the reset step
    /// needs no second read of the user.
    pub names: Vec<String>,
    /// The directory mail address: told about a change even when not enrolled.
    pub mail: Option<String>,
    /// Directory values for the attribute method (the answers to a knowledge check), sealed
    /// with the at-rest key and bound to this flow's subject ([`crate::attribute::seal`]); an
    /// empty map for decoys and policies without the method, sealed the same way.
    #[serde(default)]
    pub attributes_sealed: String,
    /// The directory's preferredLanguage; used only after the first verification succeeded.
    pub preferred_language: Option<String>,
    /// The language of the browser session that started (or last switched) the flow: what is
    /// sent during the flow is written in it ([`FlowData::message_language`]).
    #[serde(default)]
    pub language: Option<String>,
    /// Password mastered on-premises (Entra Connect).
    pub synced: bool,
    /// `lastPasswordChangeDateTime` when the flow started: after a password write whose answer
    /// never came, a later value shows the write was applied.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub password_changed_at: Option<time::OffsetDateTime>,
    /// Correlates every audit event and message of this flow.
    pub correlation_id: String,
    /// The matched policy lets a passkey stand for every required method
    /// (`passkey_satisfies = "all"`).
    #[serde(default)]
    pub passkey_alone: bool,
    /// The challenge of the passkey prompt shown last (one at a time, taken by the first answer
    /// that uses it: [`crate::passkey`]).
    #[serde(default)]
    pub passkey_challenge: Option<crate::passkey::IssuedChallenge>,
}

fn latchkey_only() -> Vec<MethodSource> {
    vec![MethodSource::Latchkey]
}

impl FlowData {
    /// The language of messages sent during this flow: the session's, else the directory's.
    pub fn message_language(&self) -> Option<String> {
        self.language
            .clone()
            .or_else(|| self.preferred_language.clone())
    }

    /// The name a contact or a page calls the user by: the directory's display name, else what
    /// they typed.
    pub fn user_name(&self) -> String {
        self.display_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.account.clone())
    }
}

/// A live self-service flow: the token the browser holds, the stored record and its data.
pub struct Current {
    pub token: FlowToken,
    pub flow: Flow,
    pub data: FlowData,
}

impl Current {
    /// The live self-service flow of `token`; `Ok(None)` when there is none (expired, ended, or
    /// a flow of another purpose). A store error is an error, never "no flow".
    pub async fn load(s: &SelfService, token: FlowToken) -> Result<Option<Current>, StoreError> {
        let now = s.clock.now();
        let Some(flow) = s.store.flow(&token, now).await? else {
            return Ok(None);
        };
        if flow.purpose != FlowPurpose::SelfService {
            return Ok(None);
        }
        // Data that does not read back (a row from an incompatible version, or corrupted) is no
        // flow at all: never a flow with default values standing in for the ones it had.
        let data = match serde_json::from_value(flow.data.clone()) {
            Ok(data) => data,
            Err(e) => {
                // The category only: serde's message may quote the value (an account, a name).
                tracing::error!(category = ?e.classify(), flow = %flow.id, "a self-service flow's data does not read back; treated as ended");
                return Ok(None);
            }
        };
        Ok(Some(Current { token, flow, data }))
    }

    /// The methods proven so far.
    pub fn verified(&self) -> Vec<MethodKind> {
        verified_kinds(&self.flow)
    }

    /// Whether enough methods are proven for the flow's policy (never for a decoy).
    pub fn is_complete(&self) -> bool {
        is_complete(&self.flow, &self.data)
    }

    /// Audits an event of this flow (decoy flows are recorded without a subject: it is random).
    pub async fn audit(
        &self,
        s: &SelfService,
        event_type: &str,
        method: Option<MethodKind>,
        outcome: Outcome,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let subject = (!self.data.decoy).then_some(self.flow.subject);
        audit(
            s,
            &self.data.correlation_id,
            subject,
            event_type,
            method,
            outcome,
            reason,
        )
        .await
    }
}

/// The verified methods of a flow, as kinds.
pub fn verified_kinds(flow: &Flow) -> Vec<MethodKind> {
    flow.verified
        .iter()
        .filter_map(|v| match v {
            Verification::Method(kind) => Some(*kind),
            Verification::Caller => None,
        })
        .collect()
}

/// Whether the flow has proven enough methods for its policy.
pub fn is_complete(flow: &Flow, data: &FlowData) -> bool {
    !data.decoy && enough(data.required, data.passkey_alone, &verified_kinds(flow))
}

/// Whether a passkey alone completes verification under `policy` for this account: where the
/// policy says `passkey_satisfies = "all"`, and never for privileged accounts, which always prove
/// who they are twice (docs/security.md: a policy that allows them requires 2 methods).
pub fn passkey_alone(policy: &latchkey_policy::Policy, privileged: bool) -> bool {
    policy.passkey_satisfies == latchkey_policy::PasskeySatisfies::All && !privileged
}

/// Whether the methods verified in a flow still satisfy `policy` now (right before a change):
/// only methods the policy lists count, under its current rules.
pub fn still_enough(
    policy: &latchkey_policy::Policy,
    privileged: bool,
    verified: &[MethodKind],
) -> bool {
    let counted: Vec<MethodKind> = verified
        .iter()
        .copied()
        .filter(|k| policy.methods.contains(k))
        .collect();
    enough(
        policy.methods_required,
        passkey_alone(policy, privileged),
        &counted,
    )
}

/// Whether `kinds` satisfy a requirement of `required` methods
/// ([`latchkey_verify::requirement_met`]), or include a passkey where the policy lets one stand
/// for all of them (`passkey_alone`): the one rule for "verified", "can be verified" and reports.
pub fn enough(required: usize, passkey_alone: bool, kinds: &[MethodKind]) -> bool {
    latchkey_verify::requirement_met(required, kinds)
        || (passkey_alone && required > 0 && kinds.contains(&MethodKind::Passkey))
}

/// Records an audit event of the user's own flow (`actor` "self"). Called before the answer is
/// given; a failure to record fails the step (an unaudited change must not happen).
pub async fn audit(
    s: &SelfService,
    correlation_id: &str,
    subject: Option<ObjectId>,
    event_type: &str,
    method: Option<MethodKind>,
    outcome: Outcome,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let event = AuditEvent {
        at: s.clock.now(),
        correlation_id: correlation_id.to_string(),
        actor: "self".into(),
        subject,
        event_type: event_type.to_string(),
        method: method.map(|m| m.as_str().to_string()),
        outcome,
        reason: reason.map(str::to_string),
        details: serde_json::Value::Null,
    };
    s.store.append_audit(&event).await.map(|_| ())
}

/// For the result of recording something that changes nothing if it is lost: the audit event of
/// a refusal or a failure (the refusal stands either way), or a clean-up the next request
/// repeats. Never dropped silently: a failure is logged loudly.
pub trait Unrecorded {
    fn or_log(self);
}

impl<T> Unrecorded for Result<T, StoreError> {
    fn or_log(self) {
        if let Err(e) = self {
            tracing::error!(error = %e, "could not record an event of a refused or failed request");
        }
    }
}

/// Throttle limits (docs/security.md "Numbers"), set in the configuration's `[limits]` within
/// [`Limits::check`]'s bounds; the defaults are the numbers docs/security.md gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Flow starts per client address in 10 minutes (an office behind one NAT address, or a
    /// shared kiosk, needs more).
    pub starts_per_client: u32,
    /// Verification attempts per client address in an hour.
    pub verifications_per_client: u32,
    /// Codes sent per account and channel in an hour, and in a day.
    pub codes_per_hour: u32,
    pub codes_per_day: u32,
    /// Failed verifications per account and method since the last success, in 5 minutes and in
    /// an hour (and 100 in a row, fixed: only a success or the helpdesk resets that).
    pub failures_per_5_minutes: u32,
    pub failures_per_hour: u32,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

impl Default for Limits {
    fn default() -> Self {
        Self {
            starts_per_client: 20,
            verifications_per_client: 60,
            codes_per_hour: 5,
            codes_per_day: 10,
            failures_per_5_minutes: 3,
            failures_per_hour: 5,
        }
    }
}

impl Limits {
    /// Each setting's bounds: per-address limits may grow a lot (many people behind one
    /// address), per-account limits only a little (they are what stops guessing).
    pub const BOUNDS: [(&'static str, u32, u32); 6] = [
        ("starts_per_client", 5, 10_000),
        ("verifications_per_client", 10, 100_000),
        ("codes_per_hour", 1, 10),
        ("codes_per_day", 1, 30),
        ("failures_per_5_minutes", 1, 5),
        ("failures_per_hour", 1, 10),
    ];

    /// Every value within its bounds, and the hour/day pairs in order; the offending key
    /// otherwise.
    pub fn check(&self) -> Result<(), String> {
        let values = [
            self.starts_per_client,
            self.verifications_per_client,
            self.codes_per_hour,
            self.codes_per_day,
            self.failures_per_5_minutes,
            self.failures_per_hour,
        ];
        for ((key, lo, hi), v) in Self::BOUNDS.iter().zip(values) {
            if !(*lo..=*hi).contains(&v) {
                return Err(format!("`limits.{key}` must be between {lo} and {hi}"));
            }
        }
        if self.codes_per_day < self.codes_per_hour {
            return Err("`limits.codes_per_day` must be at least `limits.codes_per_hour`".into());
        }
        if self.failures_per_hour < self.failures_per_5_minutes {
            return Err(
                "`limits.failures_per_hour` must be at least `limits.failures_per_5_minutes`"
                    .into(),
            );
        }
        Ok(())
    }

    /// Flow starts per client address.
    pub fn starts(&self) -> [Limit; 1] {
        [Limit::new(self.starts_per_client, 10 * MINUTE)]
    }

    /// Verification attempts per client address.
    pub fn verifications(&self) -> [Limit; 1] {
        [Limit::new(self.verifications_per_client, HOUR)]
    }

    /// Codes sent per account and channel.
    pub fn sends(&self) -> [Limit; 2] {
        [
            Limit::new(self.codes_per_hour, HOUR),
            Limit::new(self.codes_per_day, DAY),
        ]
    }

    /// Failed verifications per account and method since the last success: a short burst, an
    /// hour, and 100 in a row (about ten years' window).
    pub fn failures(&self) -> [Limit; 3] {
        [
            Limit::new(self.failures_per_5_minutes, 5 * MINUTE),
            Limit::new(self.failures_per_hour, HOUR),
            Limit::new(100, 3650 * DAY),
        ]
    }

    /// Password submissions per flow (each is checked, and re-checks the policy in Graph).
    /// Not configurable: a person choosing a password needs a handful.
    pub fn reset_attempts(&self) -> [Limit; 1] {
        [Limit::new(20, HOUR)]
    }

    /// Unlock requests per flow (a cloud unlock changes nothing and may be asked again).
    pub fn unlock_attempts(&self) -> [Limit; 1] {
        [Limit::new(5, HOUR)]
    }

    /// Live checks of a new password while it is typed, per flow (debounced in the browser:
    /// about one per pause in typing). Not configurable: it protects the portal, not an account.
    pub fn password_previews(&self) -> [Limit; 1] {
        [Limit::new(120, HOUR)]
    }
}

/// Why a throttled attempt may not go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many attempts: wait this long.
    Throttled(Duration),
    /// The store could not count the attempt: denied (fail closed), but it is an outage, not
    /// the user's fault, and is said so.
    Unavailable,
}

/// Checks and records one attempt against `limits` for `(scope, key)`; `Ok` says how many more
/// the tightest limit allows now. A store error denies (fail closed) as [`Refusal::Unavailable`].
pub async fn hit(
    s: &SelfService,
    scope: &str,
    key: &str,
    limits: &[Limit],
) -> Result<u32, Refusal> {
    let k = ThrottleKey::new(scope, key);
    match s.store.hit(&k, limits, s.clock.now()).await {
        Ok(ThrottleDecision::Allowed { remaining }) => Ok(remaining),
        Ok(ThrottleDecision::Denied { retry_after }) => Err(Refusal::Throttled(retry_after)),
        Err(e) => {
            tracing::error!(error = %e, scope, "throttle check failed; denying");
            Err(Refusal::Unavailable)
        }
    }
}

/// Charges one verification attempt *before* the answer is checked, so a guess costs an attempt
/// whatever its result: per client address, and per account under `failure_scope` (reset after a
/// success). `Ok` says how many more tries the account has before it must wait (the page says
/// so after a wrong answer); `Err` says why not: too many attempts, or the store could not count
/// it.
pub async fn charge_attempt(
    s: &SelfService,
    client: &str,
    failure_scope: &str,
    account_key: &str,
) -> Result<u32, Refusal> {
    hit(s, "verify:client", client, &s.limits.verifications()).await?;
    hit(s, failure_scope, account_key, &s.limits.failures()).await
}

/// Forgets the attempts of `(scope, key)` (after a success).
pub async fn reset_throttle(s: &SelfService, scope: &str, key: &str) {
    if let Err(e) = s.store.reset(&ThrottleKey::new(scope, key)).await {
        tracing::warn!(error = %e, scope, "could not reset a throttle");
    }
}
