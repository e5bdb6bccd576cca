//! A policy's security contacts hear about each completed reset, unlock or Temporary Access Pass
//! under that policy (`[policy.notifications] security_contacts`). This only adds recipients: the
//! user is always told on every known channel (security.md, 8), whatever the policy says.

use latchkey_notify::{ContactAction, Notice, Notification, Recipient};
use latchkey_policy::Policy;
use latchkey_types::ObjectId;

use crate::app::Portal;
use crate::flow::FlowData;

/// Queues the notice for every security contact of `policy` (none: nothing happens). The notice
/// names the user and carries the time and correlation id; never a password, code or pass.
pub fn tell(
    portal: &Portal,
    policy: &Policy,
    action: ContactAction,
    subject: &ObjectId,
    data: &FlowData,
) {
    let contacts = &policy.notifications.security_contacts;
    if contacts.is_empty() {
        return;
    }
    let user = data
        .display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| data.account.clone());
    let at = portal.services.clock.now();
    for address in contacts {
        let n = Notification {
            recipient: Recipient::Email(address.clone()),
            notice: Notice::SecurityContact {
                action,
                user: user.clone(),
                user_id: subject.to_string(),
                at,
                correlation_id: data.correlation_id.clone(),
            },
            // Contacts are not the user: the user's language says nothing about theirs.
            lang: None,
            correlation_id: data.correlation_id.clone(),
            subject: Some(*subject),
        };
        if let Err(e) = portal.services.notifier.enqueue(n) {
            tracing::error!(error = %e, "cannot queue a security contact notice");
        }
    }
}
