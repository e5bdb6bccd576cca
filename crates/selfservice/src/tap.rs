//! A Temporary Access Pass for a fully verified, claimed flow (and for the helpdesk, which
//! issues one after verifying a caller): one-time, the tenant's default lifetime. The pass is in
//! the outcome only this once; it is never stored, logged or audited.

use latchkey_graph::{GraphError, TapRequest, TemporaryAccessPass};
use latchkey_notify::{ContactAction, Notice, Notification, Recipient};
use latchkey_store::Outcome;
use latchkey_types::ObjectId;

use crate::SelfService;
use crate::act::{Acting, Recorded};
use crate::after_change::known_channels;

/// Why a pass could not be issued (the reason goes to the audit trail, never the pass).
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The tenant refused it: the TAP method is disabled or does not target the user, or the
    /// app lacks the permission.
    #[error("the tenant refused a Temporary Access Pass ({0})")]
    Refused(String),
    #[error("Graph is unavailable: {0}")]
    Unavailable(#[from] GraphError),
}

impl TapError {
    /// A short reason for the audit trail.
    pub fn reason(&self) -> String {
        match self {
            TapError::Refused(why) => format!("refused: {why}"),
            TapError::Unavailable(e) => format!("graph: {}", e.code().unwrap_or("unavailable")),
        }
    }
}

/// What became of a self-service pass.
#[derive(Debug)]
pub enum TapOutcome {
    /// Ended: the pass, to show this once.
    Issued(TemporaryAccessPass),
    /// Released: Graph made no pass (throttled, unavailable, never reached), or the intent could
    /// not be recorded.
    TryAgain(Recorded),
    /// Ended: refused by the tenant, or no answer (a pass may exist that nobody saw).
    Failed(TapError),
}

/// Issues a one-time pass for `user` with the tenant's default lifetime.
pub async fn issue(s: &SelfService, user: &ObjectId) -> Result<TemporaryAccessPass, TapError> {
    let request = TapRequest {
        is_usable_once: Some(true),
        ..TapRequest::default()
    };
    match s
        .directory
        .create_temporary_access_pass(user, &request)
        .await
    {
        Ok(tap) => Ok(tap),
        // 400: disabled by policy / lifetime or usage not allowed; 403: not permitted.
        Err(e) if matches!(e.status(), Some(400 | 403)) => Err(TapError::Refused(
            e.code().unwrap_or("refused").chars().take(80).collect(),
        )),
        Err(e) => Err(TapError::Unavailable(e)),
    }
}

/// Tells every channel in `channels` that a pass was issued (stored first: see crate::notices).
pub async fn notify(
    s: &SelfService,
    user: &ObjectId,
    channels: Vec<Recipient>,
    lang: Option<String>,
    correlation_id: &str,
) {
    let now = s.clock.now();
    for recipient in channels {
        let n = Notification {
            recipient,
            notice: Notice::TemporaryAccessPassIssued { at: now },
            lang: lang.clone(),
            correlation_id: correlation_id.to_string(),
            subject: Some(*user),
        };
        s.outbox.send(n).await;
    }
}

/// Issues the pass of a claimed flow; settles the claim.
pub async fn tap(s: &SelfService, acting: Acting) -> TapOutcome {
    // Once claimed, the change and the steps after it get a Graph budget of their own.
    latchkey_graph::deadline::fresh(s.graph_budget, tap_claimed(s, acting)).await
}

async fn tap_claimed(s: &SelfService, acting: Acting) -> TapOutcome {
    let user = acting.subject();
    let channels = known_channels(s, &user, acting.mail().as_ref()).await;
    let started = acting
        .audit(s, Outcome::Started, "one-time pass requested")
        .await;
    if started.is_err() {
        return TapOutcome::TryAgain(acting.try_again(s, started).await);
    }
    let tap = match issue(s, &user).await {
        Ok(t) => t,
        Err(e) => {
            if !matches!(e, TapError::Refused(_)) {
                tracing::error!(error = %e, "self-service TAP");
            }
            let recorded = acting.audit(s, Outcome::Error, &e.reason()).await;
            // Graph said it made no pass: the user may try again without verifying again.
            if let TapError::Unavailable(g) = &e
                && g.not_applied()
            {
                return TapOutcome::TryAgain(acting.try_again(s, recorded).await);
            }
            // No answer: a pass may exist that nobody saw. This verification is spent (a retry
            // could become a different change); the attempt is on record.
            acting.finish(s).await;
            return TapOutcome::Failed(e);
        }
    };
    let minutes = tap.lifetime_in_minutes.unwrap_or(60);
    let reason = format!("one-time, {minutes} minutes");
    if let Err(e) = acting.audit(s, Outcome::Success, &reason).await {
        // The `started` event is on record; the pass exists, so the user gets it.
        tracing::error!(error = %e, "TAP issued but the success event could not be written");
    }
    let data = &acting.current.data;
    notify(
        s,
        &user,
        channels,
        data.message_language(),
        &data.correlation_id,
    )
    .await;
    acting
        .tell_contacts(s, ContactAction::TemporaryAccessPass)
        .await;
    // The flow is done: its token and codes go.
    acting.finish(s).await;
    TapOutcome::Issued(tap)
}
