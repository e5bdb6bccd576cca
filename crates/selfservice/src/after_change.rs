//! The one step after a change of a user's password, whichever path made it (app-only, writeback,
//! a gateway job, reported late): void every open flow and code of the user, tell every channel
//! known before the change (through the notice outbox), and sign the user out everywhere when
//! the policy says so (docs/security.md, principle 8).

use latchkey_notify::{Notice, Notification, Recipient};
use latchkey_store::{EnrollmentState, Flow};
use latchkey_types::{EmailAddress, MethodKind, ObjectId};

use crate::SelfService;
use crate::flow::FlowData;

/// Every address the user had before the change: enrolled email and phone, and the directory mail.
pub async fn known_channels(
    s: &SelfService,
    user: &ObjectId,
    mail: Option<&EmailAddress>,
) -> Vec<Recipient> {
    let mut out: Vec<Recipient> = Vec::new();
    if let Some(m) = mail {
        out.push(Recipient::Email(m.clone()));
    }
    if let Ok(list) = s.store.enrollments(user).await {
        for e in list.iter().filter(|e| e.state == EnrollmentState::Active) {
            let r = e
                .method
                .parse::<MethodKind>()
                .ok()
                .and_then(|kind| crate::codes::enrolled_destination(kind, &e.data))
                .map(|d| crate::codes::recipient(&d));
            if let Some(r) = r
                && !out.contains(&r)
            {
                out.push(r);
            }
        }
    }
    out
}

/// After a password change: void every open flow and code of the user, notify every channel, and
/// sign the user out everywhere when `revoke_sessions` (the policy's setting) is on.
pub async fn after_change(
    s: &SelfService,
    flow: &Flow,
    data: &FlowData,
    channels: Vec<Recipient>,
    revoke_sessions: bool,
) -> crate::signout::SignOut {
    after_change_of(
        s,
        &flow.subject,
        &data.correlation_id,
        data.message_language(),
        channels,
        revoke_sessions,
    )
    .await
}

/// [`after_change`] without a flow at hand: for a change the on-premises gateway reported after
/// the page had stopped waiting (the job carries the subject, correlation id and what to do).
pub async fn after_change_of(
    s: &SelfService,
    subject: &ObjectId,
    correlation_id: &str,
    lang: Option<String>,
    channels: Vec<Recipient>,
    revoke_sessions: bool,
) -> crate::signout::SignOut {
    let now = s.clock.now();
    if let Err(e) = s.store.void_codes_of(subject, now).await {
        tracing::error!(error = %e, "cannot void codes after a change");
    }
    if let Err(e) = s.store.end_flows_of(subject).await {
        tracing::error!(error = %e, "cannot end flows after a change");
    }
    for recipient in channels {
        let n = Notification {
            recipient,
            notice: Notice::PasswordChanged { at: now },
            lang: lang.clone(),
            correlation_id: correlation_id.to_string(),
            subject: Some(*subject),
        };
        // Stored before the page says "changed": a crash now loses no notice.
        s.outbox.send(n).await;
    }
    crate::signout::revoke(s, subject, correlation_id, revoke_sessions).await
}
