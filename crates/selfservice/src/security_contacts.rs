//! A policy's security contacts hear about each completed reset, unlock or Temporary Access Pass
//! under that policy (`[policy.notifications] security_contacts`), self-service or issued by
//! the helpdesk (then naming the member). This only adds recipients: the
//! user is always told on every known channel (docs/security.md, 8), whatever the policy says.

use latchkey_notify::{ContactAction, Notice, Notification, Recipient};
use latchkey_policy::Policy;
use latchkey_types::ObjectId;

use crate::SelfService;
use crate::flow::FlowData;

/// Queues the notice for every security contact of `policy` (none: nothing happens). The notice
/// names the user and carries the time and correlation id; never a password, code or pass.
pub async fn tell(
    s: &SelfService,
    policy: &Policy,
    action: ContactAction,
    subject: &ObjectId,
    data: &FlowData,
) {
    let user = data
        .display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| data.account.clone());
    tell_about(
        s,
        policy,
        Told {
            action,
            subject,
            user: &user,
            correlation_id: &data.correlation_id,
            by: None,
        },
    )
    .await;
}

/// What a contact is told: the action, the user, where to find it in the audit log, and who
/// acted when it was not the user.
pub struct Told<'a> {
    pub action: ContactAction,
    pub subject: &'a ObjectId,
    /// The user's display name (or the account when the directory has none).
    pub user: &'a str,
    pub correlation_id: &'a str,
    /// The helpdesk member who acted (display name and UPN); `None` for self-service.
    pub by: Option<String>,
}

/// [`tell`] for actions that do not come from a self-service flow (the helpdesk's).
pub async fn tell_about(s: &SelfService, policy: &Policy, told: Told<'_>) {
    let contacts = &policy.notifications.security_contacts;
    if contacts.is_empty() {
        return;
    }
    let at = s.clock.now();
    for address in contacts {
        let n = Notification {
            recipient: Recipient::Email(address.clone()),
            notice: Notice::SecurityContact {
                action: told.action,
                user: told.user.to_string(),
                user_id: told.subject.to_string(),
                at,
                correlation_id: told.correlation_id.to_string(),
                by: told.by.clone(),
            },
            // Contacts are not the user: the user's language says nothing about theirs.
            lang: None,
            correlation_id: told.correlation_id.to_string(),
            subject: Some(*told.subject),
        };
        s.outbox.send(n).await;
    }
}
