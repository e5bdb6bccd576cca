//! Step 2 of self-service: the user proves who they are with the methods they enrolled.
//!
//! Every answer here is the same for real and decoy flows until a code or TOTP is accepted: the
//! same outcomes, the same throttles (keyed on the object id, or on the typed account for
//! decoys), the same work (a decoy gets a code issued to nowhere and a TOTP check against a seed
//! nobody holds). Codes are bound to flow, user, method and destination, single use, newest only;
//! TOTP steps are never accepted twice.
//!
//! Security questions (when a policy lists them) are only ever an additional method: they never
//! count toward the methods required ([`MethodKind::counts_toward_required`], enforced by
//! [`latchkey_verify::requirement_met`]), so answering them never completes a flow on its own.
//! Before a verification succeeds nothing reveals whether the account has questions enrolled:
//! decoys and accounts without an enrollment are asked questions chosen from the catalogue by a
//! keyed HMAC of the typed account (always the same ones for that account) and are checked
//! against the hasher's dummy hash, so the questions and the time taken are the same.

use latchkey_store::{
    EnrollmentState, FlowStep, FlowToken, FlowUpdate, Outcome, StoreError, Verification,
};
use latchkey_types::{MethodKind, Secret};
use latchkey_verify::{
    CodePurpose, Destination, EnrolledAnswer, HashError, PhcHash, QuestionId, QuestionOutcome,
    TotpEnrollment, TotpOutcome, TotpSeed,
};

use crate::SelfService;
use crate::attribute::AttributeAnswers;
use crate::codes;
use crate::flow::{self, Current, Refusal, Unrecorded as _};

/// A method proven: the flow's new token (the old one stopped working) and whether the flow is
/// now verified enough to act.
#[derive(Debug)]
pub struct Verified {
    pub token: FlowToken,
    pub complete: bool,
}

/// Why a step of verification did not succeed. Each is audited where it says so.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Nothing was typed: not charged, not audited.
    #[error("nothing typed")]
    Missing,
    /// What was typed cannot be a code (too long, or not digits): not charged, not audited.
    #[error("not a code")]
    Malformed,
    /// Too many attempts, or the store could not count this one (audited as throttled).
    #[error("refused by a throttle")]
    Refused(Refusal),
    /// Wrong or expired (audited as a failure); how many more tries the account has before it
    /// must wait (the same count for every kind of account: decoys are throttled alike).
    #[error("wrong or expired")]
    Wrong { tries_left: u32 },
    /// Every hashing thread is busy: try again in a few seconds (not charged).
    #[error("busy")]
    Busy,
    /// The flow's token was used by another request first, or the flow is acting on its one
    /// change: start over.
    #[error("the flow moved on")]
    Gone,
    /// The store failed (the flow is kept: try again shortly).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Something else failed (logged; nothing was proven).
    #[error("{0}")]
    Fault(String),
}

/// More digits than any code the portal sends or an authenticator shows (codes are 6 to 10
/// digits, authenticator codes 6 or 8).
const MAX_CODE_DIGITS: usize = 12;

/// Whether what was typed can be a code at all, before a try is charged: nothing typed is
/// [`VerifyError::Missing`]; longer than any code or not digits is [`VerifyError::Malformed`] (a
/// slip, not a guess: every code and authenticator code is digits only).
pub fn code_shape(typed: &Secret<String>) -> Result<(), VerifyError> {
    let normalized = latchkey_verify::normalize_typed_code(typed.expose());
    if normalized.is_empty() {
        return Err(VerifyError::Missing);
    }
    if normalized.len() > MAX_CODE_DIGITS || !normalized.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::Malformed);
    }
    Ok(())
}

/// Parses a method name the portal offers; `None` for anything else.
pub fn offered(s: &SelfService, raw: &str) -> Option<MethodKind> {
    raw.parse::<MethodKind>()
        .ok()
        .filter(|k| s.offered_methods().contains(k))
}

/// Where a code for `kind` goes for this flow: the first of the policy's sources with a
/// destination ([`crate::channels`]) — or, for decoys and for methods the account has no
/// destination for or its policy does not allow, nowhere (the code is issued and never sent, so
/// the work and the answer are the same). A source that cannot be read is an error: the user
/// must not wait for a code that was never sent without being told.
async fn destination(
    s: &SelfService,
    current: &Current,
    kind: MethodKind,
) -> Result<Option<Destination>, VerifyError> {
    let (flow, data) = (&current.flow, &current.data);
    if data.decoy || !data.methods.contains(&kind) {
        return Ok(None);
    }
    crate::channels::destination(s, &flow.subject, kind, &data.sources)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading where a code goes");
            match e {
                crate::channels::SourceError::Store(e) => VerifyError::Store(e),
                crate::channels::SourceError::Directory(_) => {
                    VerifyError::Fault("cannot read the account's methods".into())
                }
            }
        })
}

/// Sends a code for `kind` (email or text) to the account's destination, or to nowhere after
/// the same work; returns where it went, masked as the page shows it (a plausible mask derived
/// from the typed account when nothing was sent). Throttled per account and channel.
pub async fn send_code(
    s: &SelfService,
    current: &Current,
    kind: MethodKind,
) -> Result<String, VerifyError> {
    // Before a verification every answer takes the same time: reading where a real account's
    // code goes (the store, Entra's methods) must not show next to a decoy's nothing.
    crate::identify::within_deadline(s.deadline, send_code_now(s, current, kind)).await
}

async fn send_code_now(
    s: &SelfService,
    current: &Current,
    kind: MethodKind,
) -> Result<String, VerifyError> {
    let data = &current.data;
    let scope = format!("send:{kind}");
    flow::hit(s, &scope, &data.throttle_key, &s.limits.sends())
        .await
        .map_err(VerifyError::Refused)?;
    let found = destination(s, current, kind).await?;
    let deliver = found.is_some();
    let (dest, masked) = match found {
        Some(d) => {
            let masked = crate::channels::mask(&d);
            (d, masked)
        }
        None => (
            codes::nowhere(kind),
            crate::channels::decoy_mask(s, &data.throttle_key, kind),
        ),
    };
    let issued = codes::issue(
        s,
        &current.flow,
        kind,
        CodePurpose::Verification,
        &dest,
        deliver,
        data.message_language(),
        &data.correlation_id,
    )
    .await;
    if let Err(e) = issued {
        tracing::error!(error = %e, "verification code");
        return Err(VerifyError::Fault("cannot issue a code".into()));
    }
    // Kept with the flow so the code page (and its error pages) show it again.
    let mut kept = data.clone();
    kept.sent_to.insert(kind, masked.clone());
    let update = FlowUpdate {
        step: None,
        data: Some(serde_json::to_value(&kept).map_err(|e| VerifyError::Fault(e.to_string()))?),
    };
    s.store
        .update_flow(&current.token, update, s.clock.now())
        .await?;
    let (outcome, reason) = if deliver {
        (Outcome::Success, None)
    } else {
        (
            Outcome::Denied,
            Some("no destination from the policy's sources"),
        )
    };
    current
        .audit(s, "code.send", Some(kind), outcome, reason)
        .await?;
    Ok(masked)
}

/// One try of a typed code (email, text) or authenticator code (`totp`), charged before it is
/// checked.
pub async fn check_code(
    s: &SelfService,
    current: &Current,
    kind: MethodKind,
    typed: &Secret<String>,
    client: &str,
) -> Result<Verified, VerifyError> {
    code_shape(typed)?;
    let left = charge(s, current, kind, client).await?;
    let accepted = match kind {
        MethodKind::Totp => check_totp(s, current, typed).await,
        _ => {
            codes::check(
                s,
                &current.flow,
                kind,
                CodePurpose::Verification,
                None,
                typed,
            )
            .await
        }
    };
    if !accepted {
        return Err(failed(s, current, kind, "wrong or expired", left).await);
    }
    succeed(s, current, kind).await
}

/// The security questions a flow is asked, and what the answers are checked against.
pub struct Asked {
    /// In the order they are shown.
    pub questions: Vec<QuestionId>,
    /// The enrolled answers; `None`: checked against the dummy hash (the same work).
    enrolled: Option<Vec<EnrolledAnswer>>,
}

/// The questions this flow is asked and, for an account with an active enrollment its policy
/// allows, the stored answers. Everybody else (decoys, no enrollment, questions not allowed)
/// gets the account's HMAC-chosen questions, checked against the dummy hash. Read once per
/// request: the page shown again after a wrong answer asks the same questions.
pub async fn asked_questions(s: &SelfService, current: &Current) -> Asked {
    let (flow, data) = (&current.flow, &current.data);
    let ask = s.questions.config().ask_count;
    if !data.decoy && data.methods.contains(&MethodKind::Questions) {
        let enrolled = s
            .store
            .enrollment(
                &flow.subject,
                MethodKind::Questions.as_str(),
                EnrollmentState::Active,
            )
            .await
            .ok()
            .flatten()
            .and_then(|e| {
                let ids: Vec<QuestionId> = e.data["questions"]
                    .as_array()?
                    .iter()
                    .filter_map(|v| v.as_str().and_then(|id| QuestionId::new(id).ok()))
                    .collect();
                let secret = e.secret?;
                let hashes: Vec<String> = serde_json::from_slice(secret.expose()).ok()?;
                let answers: Vec<EnrolledAnswer> = ids
                    .iter()
                    .zip(&hashes)
                    .filter_map(|(question, h)| {
                        Some(EnrolledAnswer {
                            question: question.clone(),
                            hash: PhcHash::parse(h.as_str()).ok()?,
                        })
                    })
                    .collect();
                (answers.len() == hashes.len() && answers.len() >= ask).then_some(answers)
            });
        if let Some(answers) = enrolled {
            let questions = answers
                .iter()
                .take(ask)
                .map(|a| a.question.clone())
                .collect();
            return Asked {
                questions,
                enrolled: Some(answers),
            };
        }
    }
    Asked {
        questions: s.decoy_questions(&data.throttle_key, ask),
        enrolled: None,
    }
}

/// Checks the answers to the asked questions, in order (always `ask_count` argon2 runs, against
/// the enrolled hashes or the dummy). Success records an additional method; it never completes
/// the flow by itself.
pub async fn check_questions(
    s: &SelfService,
    current: &Current,
    asked: &Asked,
    answers: &[&str],
    client: &str,
) -> Result<Verified, VerifyError> {
    let kind = MethodKind::Questions;
    let method = &s.questions;
    let (enrolled, asked) = (&asked.enrolled, &asked.questions);
    let typed: Vec<String> = answers
        .iter()
        .take(asked.len())
        .map(|a| a.chars().take(256).collect())
        .collect();
    if typed.len() < asked.len() || typed.iter().any(|a| a.trim().is_empty()) {
        return Err(VerifyError::Missing);
    }
    // A hashing permit first: when every hashing thread is taken the answer is "busy, try
    // again" and the attempt is not charged (a loaded server must not throttle its users).
    let reservation = method.reserve().await.map_err(hash_error)?;
    let left = charge(s, current, kind, client).await?;
    let given = asked
        .iter()
        .cloned()
        .zip(typed.into_iter().map(Secret::new))
        .collect();
    let outcome = method
        .check_reserved(reservation, enrolled.as_deref(), given)
        .await
        .map_err(hash_error)?;
    if outcome != QuestionOutcome::Ok {
        return Err(failed(s, current, kind, "wrong", left).await);
    }
    succeed(s, current, kind).await
}

/// Checks the directory attributes the user typed against the flow's sealed values.
pub async fn check_attribute(
    s: &SelfService,
    current: &Current,
    given: AttributeAnswers,
    client: &str,
) -> Result<Verified, VerifyError> {
    let kind = MethodKind::Attribute;
    let left = charge(s, current, kind, client).await?;
    if let Err(reason) = crate::attribute::check(s, current, given) {
        return Err(failed(s, current, kind, reason, left).await);
    }
    succeed(s, current, kind).await
}

fn hash_error(e: HashError) -> VerifyError {
    match e {
        HashError::Busy => VerifyError::Busy,
        e => {
            tracing::error!(error = %e, "security questions");
            VerifyError::Fault("security questions".into())
        }
    }
}

/// Charges one attempt of `kind` (per client and per account) before the answer is checked; a
/// refusal is audited. `Ok`: the tries the account has left after this one.
pub(crate) async fn charge(
    s: &SelfService,
    current: &Current,
    kind: MethodKind,
    client: &str,
) -> Result<u32, VerifyError> {
    let failures = format!("fail:{kind}");
    match flow::charge_attempt(s, client, &failures, &current.data.throttle_key).await {
        Ok(left) => Ok(left),
        Err(refusal) => {
            current
                .audit(s, "verify.throttled", Some(kind), Outcome::Denied, None)
                .await
                .or_log();
            Err(VerifyError::Refused(refusal))
        }
    }
}

/// A wrong answer, audited: [`VerifyError::Wrong`], or the store's error when even that record
/// failed.
pub(crate) async fn failed(
    s: &SelfService,
    current: &Current,
    kind: MethodKind,
    reason: &str,
    tries_left: u32,
) -> VerifyError {
    match current
        .audit(s, "verify", Some(kind), Outcome::Failure, Some(reason))
        .await
    {
        Ok(()) => VerifyError::Wrong { tries_left },
        Err(e) => VerifyError::Store(e),
    }
}

/// Records a verified method: rotates the flow token, resets the failure streak, audits.
pub(crate) async fn succeed(
    s: &SelfService,
    current: &Current,
    kind: MethodKind,
) -> Result<Verified, VerifyError> {
    let mut verified = current.verified();
    verified.push(kind);
    // A passkey is phishing-resistant and, with user verification, two factors in itself: a
    // policy may let it stand for all of them.
    let complete = flow::enough(current.data.required, current.data.passkey_alone, &verified);
    let next = if complete {
        FlowStep::Verified
    } else {
        FlowStep::Verify
    };
    let now = s.clock.now();
    let rotated = s
        .store
        .record_verification(&current.token, Verification::Method(kind), next, now)
        .await?;
    // Someone else used this token first (a replayed request), or the flow is acting on its
    // one change.
    let Some((token, _)) = rotated else {
        return Err(VerifyError::Gone);
    };
    flow::reset_throttle(s, &format!("fail:{kind}"), &current.data.throttle_key).await;
    current
        .audit(s, "verify", Some(kind), Outcome::Success, None)
        .await?;
    Ok(Verified { token, complete })
}

/// A TOTP check against the enrolled seed (or, for decoys, a seed nobody holds), with the replay
/// guard applied atomically by the store.
async fn check_totp(s: &SelfService, current: &Current, typed: &Secret<String>) -> bool {
    let (flow, data) = (&current.flow, &current.data);
    let now = s.clock.now();
    let enrolled = if data.decoy || !data.methods.contains(&MethodKind::Totp) {
        None
    } else {
        s.store
            .enrollment(
                &flow.subject,
                MethodKind::Totp.as_str(),
                EnrollmentState::Active,
            )
            .await
            .ok()
            .flatten()
    };
    let seed = enrolled
        .as_ref()
        .and_then(|e| e.secret.clone())
        .and_then(|b| TotpSeed::from_bytes(b).ok());
    let real = seed.is_some();
    let mut enrollment = match seed {
        Some(seed) => TotpEnrollment {
            seed,
            last_step: enrolled
                .as_ref()
                .and_then(|e| e.last_used_step)
                .and_then(|s| u64::try_from(s).ok()),
        },
        None => match s.totp.decoy_enrollment() {
            Ok(d) => d,
            Err(_) => return false,
        },
    };
    match s.totp.check(&mut enrollment, typed, now) {
        Ok(TotpOutcome::Ok { step }) if real => {
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            s.store
                .mark_used(&flow.subject, MethodKind::Totp.as_str(), Some(step), now)
                .await
                .unwrap_or(false)
        }
        _ => false,
    }
}
