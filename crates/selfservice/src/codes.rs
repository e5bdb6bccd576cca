//! One-time codes as both flows use them (reset verification and enrollment confirmation):
//! issued with a keyed hash bound to flow, user, method, purpose and destination, stored (newest
//! only), sent through the queue, and checked with one charged try.

use latchkey_notify::{Notice, Notification, Recipient};
use latchkey_store::{Flow, NewCode};
use latchkey_types::{MethodKind, Secret};
use latchkey_verify::{CodeBinding, CodeHash, CodeOutcome, CodePurpose, Destination, IssuedCode};

use crate::SelfService;

fn binding(
    flow: &Flow,
    kind: MethodKind,
    purpose: CodePurpose,
    destination: Destination,
) -> CodeBinding {
    CodeBinding {
        flow: flow.id,
        user: flow.subject,
        method: kind,
        purpose,
        destination,
    }
}

/// How the destination is kept with the stored code (the store treats it as opaque bytes).
fn destination_text(d: &Destination) -> String {
    match d {
        Destination::Email(e) => format!("email:{e}"),
        Destination::Phone(p) => format!("phone:{p}"),
    }
}

fn destination_from_text(s: &str) -> Option<Destination> {
    match s.split_once(':')? {
        ("email", e) => e.parse().ok().map(Destination::Email),
        ("phone", p) => Destination::phone(p).ok(),
        _ => None,
    }
}

/// Where an email or phone enrollment sends codes (`{"address"}` / `{"phone"}` in its data), as
/// enrollment stores them and every flow reads them back.
pub fn enrolled_destination(kind: MethodKind, data: &serde_json::Value) -> Option<Destination> {
    match kind {
        MethodKind::Email => data["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .map(Destination::Email),
        MethodKind::Sms => data["phone"]
            .as_str()
            .and_then(|p| Destination::phone(p).ok()),
        _ => None,
    }
}

/// The recipient a destination is reached at.
pub fn recipient(destination: &Destination) -> Recipient {
    match destination {
        Destination::Email(e) => Recipient::Email(e.clone()),
        Destination::Phone(p) => Recipient::Sms(p.clone()),
    }
}

/// A destination nobody reads, for flows that must do the work of sending without sending:
/// `.invalid` is reserved (RFC 2606) and `+999…` is an unassigned country code.
pub fn nowhere(kind: MethodKind) -> Destination {
    match kind {
        MethodKind::Sms => Destination::Phone(latchkey_types::PhoneNumber::unassigned()),
        _ => Destination::Email(latchkey_types::EmailAddress::unroutable()),
    }
}

/// Why a code could not be issued (logged; the user sees the generic error).
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("cannot issue a code: {0}")]
    Issue(#[from] latchkey_verify::CodeError),
    #[error("cannot store a code: {0}")]
    Store(#[from] latchkey_store::StoreError),
}

/// Issues a code for `flow`/`kind` to `destination` and stores it (voiding older ones). With
/// `send`, the code is queued to the destination; without, it goes nowhere (decoy flows do the
/// same work and send nothing).
#[allow(clippy::too_many_arguments)]
pub async fn issue(
    s: &SelfService,
    flow: &Flow,
    kind: MethodKind,
    purpose: CodePurpose,
    destination: &Destination,
    send: bool,
    lang: Option<String>,
    correlation_id: &str,
) -> Result<(), IssueError> {
    issue_as(
        s,
        flow,
        kind,
        purpose,
        destination,
        send,
        lang,
        correlation_id,
        |code, valid_for| Notice::Code { code, valid_for },
    )
    .await
}

/// [`issue`], sent as the notice `notice` builds from the code and its lifetime (the helpdesk's
/// caller check sends a code the user may read out, with other words than a self-service code).
#[allow(clippy::too_many_arguments)]
pub async fn issue_as(
    s: &SelfService,
    flow: &Flow,
    kind: MethodKind,
    purpose: CodePurpose,
    destination: &Destination,
    send: bool,
    lang: Option<String>,
    correlation_id: &str,
    notice: impl FnOnce(Secret<String>, std::time::Duration) -> Notice,
) -> Result<(), IssueError> {
    let now = s.clock.now();
    let (code, record) = s.codes.issue(
        &binding(flow, kind, purpose, destination.clone()),
        None,
        now,
    )?;
    let lifetime = s.codes.config().lifetime.unsigned_abs();
    let new = NewCode {
        flow: flow.id,
        subject: flow.subject,
        method: kind.as_str().into(),
        code_hash: record.hash.as_bytes().to_vec(),
        binding: destination_text(destination).into_bytes(),
        lifetime,
        tries: u32::from(s.codes.config().tries),
    };
    s.store.issue_code(new, now).await?;
    if send {
        let n = Notification {
            recipient: recipient(destination),
            notice: notice(code, lifetime),
            lang,
            correlation_id: correlation_id.to_string(),
            subject: Some(flow.subject),
        };
        // Queued: the response neither waits for nor reveals the send.
        if let Err(e) = s.notifier.enqueue(n) {
            tracing::error!(error = %e, "cannot queue a code message");
        }
    }
    Ok(())
}

/// One try of `typed` against the newest open code of `flow`/`kind`. With `expected`, the code
/// must also have been sent there (enrollment: the pending address). A match consumes the code.
pub async fn check(
    s: &SelfService,
    flow: &Flow,
    kind: MethodKind,
    purpose: CodePurpose,
    expected: Option<&Destination>,
    typed: &Secret<String>,
) -> bool {
    let now = s.clock.now();
    let Ok(Some(attempt)) = s
        .store
        .take_code_attempt(&flow.id, kind.as_str(), now)
        .await
    else {
        return false;
    };
    let Some(sent_to) = std::str::from_utf8(&attempt.binding)
        .ok()
        .and_then(destination_from_text)
    else {
        return false;
    };
    if expected.is_some_and(|e| *e != sent_to) {
        return false;
    }
    let Ok(hash) = <[u8; 32]>::try_from(attempt.code_hash.as_slice()) else {
        return false;
    };
    // The store already charged the try and checks expiry; this record only carries the hash
    // for the keyed, constant-time comparison.
    let mut record = IssuedCode {
        sequence: 1,
        hash: CodeHash::from_bytes(hash),
        issued_at: now,
        expires_at: attempt.expires_at,
        tries_left: 1,
        consumed: false,
        superseded: false,
    };
    let outcome = s.codes.verify(
        &mut record,
        typed,
        &binding(flow, kind, purpose, sent_to),
        now,
    );
    outcome == CodeOutcome::Ok && s.store.consume_code(attempt.id, now).await.unwrap_or(false)
}
