//! Notices that security depends on go through the store's outbox (`latchkey_store`'s
//! `notice_outbox`): "your password was changed", "a Temporary Access Pass was issued", "your
//! methods changed", "a reset link was issued", and the security contacts' notices. They are
//! written to the store before the user is told the action succeeded, and delivered from there
//! by whichever portal instance claims them first, so a crash, a `kill -9` or a restart between
//! the action and the send loses none (delivered at least once).
//!
//! Codes, caller codes and reset links are not stored: they are secrets, useful only for minutes,
//! and go straight to the in-memory send queue.
//!
//! The deliverer ([`Outbox::spawn`]) claims due notices for a lease and hands them to the
//! in-memory queue (which retries); the queue's delivery report ([`Outbox::delivered`]) deletes
//! the row, or gives it back when the queue stopped. A lease that lapses (the instance died)
//! makes the notice due again for any instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_notify::{
    ContactAction, DeliveryOutcome, MessageId, MethodChange, Notice, Notification, Notifier,
    NotifyError, Recipient,
};
use latchkey_store::{NewNotice, NoticeOutcome, QueuedNotice, Store};
use latchkey_types::{EmailAddress, PhoneNumber};
use latchkey_verify::Clock;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How long a claimed notice is left to its deliverer before another instance may take it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);
/// How often the deliverer looks for due notices when nobody woke it.
const POLL: Duration = Duration::from_millis(500);
/// When a notice the queue could not take is due again.
const RETRY_AFTER: Duration = Duration::from_secs(15);
/// When a notice whose sends all failed for a temporary reason (provider down) is due again.
const RESEND_AFTER: Duration = Duration::from_secs(300);
/// Claims of one notice before a temporary failure is taken as final (about an hour of
/// outage at [`RESEND_AFTER`]); the delivery reports in the audit trail say why.
const MAX_CLAIMS: u32 = 12;
/// Notices claimed at once.
const BATCH: u32 = 32;
/// Stored notices handed to the send queue and not yet reported: no more are claimed while
/// this many are in flight, so an outage cannot fill the queue that codes go through too.
const MAX_IN_FLIGHT: usize = 64;

/// A recipient as stored: typed, never a `"email:…"` string.
#[derive(Serialize, Deserialize)]
#[serde(tag = "channel", content = "to", rename_all = "snake_case")]
enum StoredRecipient {
    Email(String),
    Sms(String),
}

/// The notices that are stored (none of them carries a secret).
#[derive(Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
enum StoredNotice {
    PasswordChanged {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    TemporaryAccessPassIssued {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    ResetLinkIssued {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    MethodsChanged {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        changes: Vec<MethodChange>,
    },
    SecurityContact {
        action: ContactAction,
        user: String,
        user_id: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        correlation_id: String,
        by: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
struct Stored {
    recipient: StoredRecipient,
    notice: StoredNotice,
    lang: Option<String>,
}

impl Stored {
    /// The stored form of `n`; `None` for notices that are never stored (codes, links).
    fn of(n: &Notification) -> Option<Stored> {
        let notice = match &n.notice {
            Notice::PasswordChanged { at } => StoredNotice::PasswordChanged { at: *at },
            Notice::TemporaryAccessPassIssued { at } => {
                StoredNotice::TemporaryAccessPassIssued { at: *at }
            }
            Notice::ResetLinkIssued { at } => StoredNotice::ResetLinkIssued { at: *at },
            Notice::MethodsChanged { at, changes } => StoredNotice::MethodsChanged {
                at: *at,
                changes: changes.clone(),
            },
            Notice::SecurityContact {
                action,
                user,
                user_id,
                at,
                correlation_id,
                by,
            } => StoredNotice::SecurityContact {
                action: *action,
                user: user.clone(),
                user_id: user_id.clone(),
                at: *at,
                correlation_id: correlation_id.clone(),
                by: by.clone(),
            },
            Notice::Code { .. } | Notice::CallerCode { .. } | Notice::ResetLink { .. } => {
                return None;
            }
        };
        let recipient = match &n.recipient {
            Recipient::Email(e) => StoredRecipient::Email(e.as_str().to_string()),
            Recipient::Sms(p) => StoredRecipient::Sms(p.to_string()),
        };
        Some(Stored {
            recipient,
            notice,
            lang: n.lang.clone(),
        })
    }

    /// Back to a notification; `None` for a row this version cannot read (it is dropped and
    /// logged: retrying would not help).
    fn into_notification(self, q: &QueuedNotice) -> Option<Notification> {
        let recipient = match self.recipient {
            StoredRecipient::Email(e) => Recipient::Email(e.parse::<EmailAddress>().ok()?),
            StoredRecipient::Sms(p) => Recipient::Sms(p.parse::<PhoneNumber>().ok()?),
        };
        let notice = match self.notice {
            StoredNotice::PasswordChanged { at } => Notice::PasswordChanged { at },
            StoredNotice::TemporaryAccessPassIssued { at } => {
                Notice::TemporaryAccessPassIssued { at }
            }
            StoredNotice::ResetLinkIssued { at } => Notice::ResetLinkIssued { at },
            StoredNotice::MethodsChanged { at, changes } => Notice::MethodsChanged { at, changes },
            StoredNotice::SecurityContact {
                action,
                user,
                user_id,
                at,
                correlation_id,
                by,
            } => Notice::SecurityContact {
                action,
                user,
                user_id,
                at,
                correlation_id,
                by,
            },
        };
        Some(Notification {
            recipient,
            notice,
            lang: self.lang,
            correlation_id: q.correlation_id.clone(),
            subject: q.subject,
        })
    }
}

/// A stored notice in the send queue: its row and how often it was claimed.
struct InFlight {
    row: String,
    claims: u32,
}

/// Stored notices handed to the in-memory queue, by its message id: what a delivery report
/// finishes. Shared by the deliverer and the queue's delivery observer.
#[derive(Default)]
pub struct Pending(Mutex<HashMap<MessageId, InFlight>>);

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, InFlight>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called with every delivery report: finishes the stored notice it delivered, if any.
    pub async fn delivered(
        &self,
        store: &dyn Store,
        id: MessageId,
        outcome: &DeliveryOutcome,
        now: OffsetDateTime,
    ) {
        let Some(InFlight { row, claims }) = self.lock().remove(&id) else {
            return;
        };
        let finish = match outcome {
            DeliveryOutcome::Delivered => NoticeOutcome::Done,
            // The provider was down for all of the queue's retries: again in a while, from
            // any instance, until MAX_CLAIMS.
            DeliveryOutcome::Failed {
                retryable: true, ..
            } if claims < MAX_CLAIMS => NoticeOutcome::RetryAt(now + RESEND_AFTER),
            // Refused for good (bad address), or an outage longer than MAX_CLAIMS allow: the
            // delivery reports in the audit trail say so.
            DeliveryOutcome::Failed { .. } => {
                tracing::error!(row = %row, claims, "a stored notice could not be delivered; given up");
                NoticeOutcome::Done
            }
            DeliveryOutcome::Abandoned => NoticeOutcome::RetryAt(now),
        };
        if let Err(e) = store.finish_notice(&row, finish).await {
            // The lease lapses and the notice goes out again: at least once.
            tracing::error!(error = %e, "cannot finish a stored notice");
        }
    }
}

/// The outbox as the portal uses it.
pub struct Outbox {
    store: Arc<dyn Store>,
    notifier: Notifier,
    pending: Arc<Pending>,
    clock: Arc<dyn Clock>,
    lease: Duration,
    kick: tokio::sync::Notify,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn Store>,
        notifier: Notifier,
        pending: Arc<Pending>,
        clock: Arc<dyn Clock>,
        lease: Duration,
    ) -> Arc<Outbox> {
        Arc::new(Outbox {
            store,
            notifier,
            pending,
            clock,
            lease,
            kick: tokio::sync::Notify::new(),
        })
    }

    /// Sends `n`: stored first when it is a notice security depends on (then delivered from
    /// the store, at least once), straight to the send queue otherwise. A store that cannot
    /// take it falls back to the send queue, logged: the notice still goes if this process
    /// lives.
    pub async fn send(&self, n: Notification) {
        if let Some(stored) = Stored::of(&n) {
            let payload = match serde_json::to_value(&stored) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a notice");
                    return self.send_now(n);
                }
            };
            let new = NewNotice {
                subject: n.subject,
                correlation_id: n.correlation_id.clone(),
                kind: n.notice.kind().to_string(),
                payload,
            };
            match self.store.enqueue_notice(new, self.clock.now()).await {
                Ok(_) => {
                    self.kick.notify_one();
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot store a notice; sending it from memory");
                }
            }
        }
        self.send_now(n);
    }

    fn send_now(&self, n: Notification) {
        if let Err(e) = self.notifier.enqueue(n) {
            tracing::error!(error = %e, "cannot queue a notice");
        }
    }

    /// Runs the deliverer until the process ends.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                // Woken by a new notice, or every POLL to catch what other instances queued or
                // what is due again: both end the wait the same way.
                if tokio::time::timeout(POLL, me.kick.notified())
                    .await
                    .is_err()
                {
                    tracing::trace!("outbox poll");
                }
                me.deliver_due().await;
            }
        })
    }

    /// Claims what is due and hands it to the send queue.
    async fn deliver_due(&self) {
        if self.pending.lock().len() >= MAX_IN_FLIGHT {
            return;
        }
        let now = self.clock.now();
        let due = match self.store.claim_notices(now, self.lease, BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the notice outbox; trying again shortly");
                return;
            }
        };
        for q in due {
            // Still in this instance's send queue (retrying): the claim just renewed its lease;
            // a second copy is not queued.
            if self.pending.lock().values().any(|f| f.row == q.id) {
                continue;
            }
            let stored = serde_json::from_value::<Stored>(q.payload.clone()).ok();
            let Some(n) = stored.and_then(|s| s.into_notification(&q)) else {
                tracing::error!(id = %q.id, kind = %q.kind, "a stored notice cannot be read; dropped");
                self.finish(&q.id, NoticeOutcome::Done).await;
                continue;
            };
            // The lock is held across the hand-over, so a report that comes back at once finds
            // the id.
            let handed = {
                let mut pending = self.pending.lock();
                self.notifier.enqueue(n).map(|id| {
                    let f = InFlight {
                        row: q.id.clone(),
                        claims: q.attempts,
                    };
                    pending.insert(id, f)
                })
            };
            match handed {
                Ok(_) => {}
                // Busy or stopping: due again shortly, here or on another instance.
                Err(e @ (NotifyError::QueueFull | NotifyError::Stopped)) => {
                    tracing::warn!(error = %e, "the send queue cannot take a stored notice now");
                    let again = now + RETRY_AFTER;
                    self.finish(&q.id, NoticeOutcome::RetryAt(again)).await;
                }
                // No such channel configured, or a template that cannot render: no retry helps.
                Err(e) => {
                    tracing::error!(error = %e, kind = %q.kind, "a stored notice cannot be sent; dropped");
                    self.finish(&q.id, NoticeOutcome::Done).await;
                }
            }
        }
    }

    async fn finish(&self, id: &str, outcome: NoticeOutcome) {
        if let Err(e) = self.store.finish_notice(id, outcome).await {
            tracing::error!(error = %e, "cannot finish a stored notice");
        }
    }
}

/// Writes every delivery outcome to the audit trail ("send" events), and finishes the stored
/// notice a delivery was for ([`crate::notices`]).
pub struct AuditObserver {
    pub store: Arc<dyn Store>,
    pub pending: Arc<Pending>,
    pub clock: Arc<dyn Clock>,
}

impl latchkey_notify::DeliveryObserver for AuditObserver {
    fn report(
        &self,
        report: latchkey_notify::DeliveryReport,
    ) -> latchkey_notify::BoxFuture<'_, ()> {
        Box::pin(async move {
            let (outcome, reason) = match &report.outcome {
                latchkey_notify::DeliveryOutcome::Delivered => {
                    (latchkey_store::Outcome::Success, None)
                }
                latchkey_notify::DeliveryOutcome::Failed { reason, .. } => {
                    (latchkey_store::Outcome::Error, Some(reason.clone()))
                }
                latchkey_notify::DeliveryOutcome::Abandoned => (
                    latchkey_store::Outcome::Error,
                    Some("abandoned at shutdown".into()),
                ),
            };
            let event = latchkey_store::AuditEvent {
                at: self.clock.now(),
                correlation_id: report.correlation_id.clone(),
                actor: "system".into(),
                subject: report.subject,
                event_type: format!("notify.{}", report.kind),
                method: Some(report.channel.as_str().to_string()),
                outcome,
                reason,
                // Masked recipient only: full addresses stay out of the audit trail.
                details: serde_json::json!({ "to": report.recipient_masked, "attempts": report.attempts }),
            };
            let audited = self.store.append_audit(&event).await;
            self.pending
                .delivered(&*self.store, report.id, &report.outcome, event.at)
                .await;
            if let Err(e) = audited {
                tracing::error!(error = %e, "cannot audit a delivery");
            }
        })
    }
}

/// Starts the notification queue with the given transports, auditing every delivery: the send queue and the outbox in front of it (its deliverer starts with the portal).
pub fn start_notifier(
    store: Arc<dyn Store>,
    branding: latchkey_notify::Branding,
    channels: latchkey_notify::Channels,
    clock: Arc<dyn Clock>,
    lease: Duration,
) -> Result<(Notifier, latchkey_notify::NotifierHandle, Arc<Outbox>), NotifyError> {
    let renderer = latchkey_notify::Renderer::new(branding)?;
    let pending = Arc::new(Pending::default());
    let (notifier, handle) = Notifier::start(
        renderer,
        channels,
        Arc::new(AuditObserver {
            store: Arc::clone(&store),
            pending: Arc::clone(&pending),
            clock: Arc::clone(&clock),
        }),
        latchkey_notify::QueueConfig::default(),
    );
    let outbox = Outbox::new(store, notifier.clone(), pending, clock, lease);
    Ok((notifier, handle, outbox))
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_notify::ChangeKind;

    fn notification(notice: Notice, recipient: Recipient) -> Notification {
        Notification {
            recipient,
            notice,
            lang: Some("de".into()),
            correlation_id: "corr-1".into(),
            subject: Some(latchkey_types::ObjectId::new_random()),
        }
    }

    /// What is stored comes back as the same notification (the delivery sends what the action
    /// queued), and the notices that carry secrets are never stored.
    #[test]
    fn every_stored_notice_comes_back_as_it_was_and_secrets_are_never_stored() {
        let at = time::macros::datetime!(2026-12-06 10:00 UTC);
        let email = Recipient::Email("a.vance@contoso.com".parse().unwrap());
        let sms = Recipient::Sms("+41446681800".parse().unwrap());
        let stored = [
            Notice::PasswordChanged { at },
            Notice::TemporaryAccessPassIssued { at },
            Notice::ResetLinkIssued { at },
            Notice::MethodsChanged {
                at,
                changes: vec![MethodChange {
                    method: "sms".into(),
                    change: ChangeKind::Removed,
                }],
            },
            Notice::SecurityContact {
                action: ContactAction::TemporaryAccessPass,
                user: "Adele Vance".into(),
                user_id: "00000000-0000-0000-0000-000000000001".into(),
                at,
                correlation_id: "corr-1".into(),
                by: Some("Farid (helpdesk@contoso.com)".into()),
            },
        ];
        for (notice, to) in stored.into_iter().zip([&email, &sms].into_iter().cycle()) {
            let n = notification(notice, to.clone());
            let payload = serde_json::to_value(Stored::of(&n).expect("stored")).unwrap();
            let q = QueuedNotice {
                id: "row".into(),
                subject: n.subject,
                correlation_id: n.correlation_id.clone(),
                kind: n.notice.kind().into(),
                payload,
                attempts: 1,
                created_at: at,
            };
            let back = serde_json::from_value::<Stored>(q.payload.clone())
                .unwrap()
                .into_notification(&q)
                .expect("readable");
            assert_eq!(format!("{back:?}"), format!("{n:?}"));
        }
        let secret = latchkey_types::Secret::new("12345678".to_string());
        let valid_for = Duration::from_secs(600);
        for notice in [
            Notice::Code {
                code: secret.clone(),
                valid_for,
            },
            Notice::CallerCode {
                code: secret.clone(),
                valid_for,
            },
            Notice::ResetLink {
                link: secret.clone(),
                valid_for,
            },
        ] {
            assert!(Stored::of(&notification(notice, email.clone())).is_none());
        }
    }
}
