//! Reset of a synced user's password through the on-premises gateway, for portals without the
//! delegated writeback credential (`latchkey delegate`): when a gateway that may reset
//! (`[jobs] reset = true`) is connected, the password the user chose (already checked against
//! the policy) goes to it in a reset job; the page reports what AD said. The password lives in
//! the store only sealed, until the gateway takes it; it is never logged or audited.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use latchkey_jobs::{FailureReason, JobKind, Target};
use latchkey_notify::ContactAction;
use latchkey_notify::Recipient;
use latchkey_store::{Job, Outcome};
use latchkey_types::{EmailAddress, Secret};

use super::RESULT_WAIT;
use super::jobs::{self, POLL_EVERY, Waited};
use crate::act::Acting;
use crate::app::Portal;
use crate::flow;

/// The response for a synced user's reset without the delegated writeback credential: through
/// a connected gateway that may reset, or a plain "not possible here" when none is connected.
/// Settles the claim: given back when nothing reached AD, ended otherwise.
pub async fn submit(
    portal: &Portal,
    req: &HttpRequest,
    acting: Acting,
    password: &Secret<String>,
) -> HttpResponse {
    let lang = acting.step.lang;
    let fail = |status: StatusCode, key: &str| portal.error_page(req, lang, status, key);
    match jobs::connected(portal, JobKind::Reset).await {
        Ok(true) => {}
        Ok(false) => {
            let audited = acting
                .audit(
                    portal,
                    "reset",
                    Outcome::Denied,
                    "synced user: no writeback path configured",
                )
                .await;
            acting.finish(portal).await;
            return match audited {
                Ok(()) => fail(StatusCode::CONFLICT, "unlock_onprem_unavailable"),
                Err(e) => flow::ended_unavailable(portal, req, lang, &e),
            };
        }
        Err(e) => {
            tracing::error!(error = %e, "reset: cannot read the gateways");
            return acting.retry_page(portal, req, Err(e)).await;
        }
    }
    let user = match portal
        .services
        .directory
        .user(&acting.step.flow.subject)
        .await
    {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "reset: cannot read the user");
            let reason = format!("directory: {}", e.code().unwrap_or("no answer"));
            let audited = acting.audit(portal, "reset", Outcome::Error, &reason).await;
            return acting.retry_page(portal, req, audited).await;
        }
    };
    let Some(sam) = user.on_premises_sam_account_name.filter(|s| !s.is_empty()) else {
        let audited = acting
            .audit(
                portal,
                "reset",
                Outcome::Error,
                "synced user without onPremisesSamAccountName",
            )
            .await;
        acting.finish(portal).await;
        return match audited {
            Ok(()) => fail(StatusCode::BAD_GATEWAY, "reset_onprem_failed"),
            Err(e) => flow::ended_unavailable(portal, req, lang, &e),
        };
    };
    let target = Target {
        sam_account_name: sam,
        domain: user.on_premises_domain_name,
        allow_privileged: allow_privileged(portal, &acting.step.data),
    };
    queue_and_wait(portal, req, acting, target, password).await
}

/// Queues the reset job (its intent audited first) and reports what the wait came to.
async fn queue_and_wait(
    portal: &Portal,
    req: &HttpRequest,
    acting: Acting,
    target: Target,
    password: &Secret<String>,
) -> HttpResponse {
    let (flow, data, lang) = (&acting.step.flow, &acting.step.data, acting.step.lang);
    // Channels known before the change, to tell the user afterwards.
    let mail = data
        .mail
        .as_deref()
        .and_then(|m| m.parse::<EmailAddress>().ok());
    let channels = crate::after_change::known_channels(portal, &flow.subject, mail.as_ref()).await;
    let revoke = acting.policy.revoke_sessions;
    let request = jobs::Request {
        kind: JobKind::Reset,
        subject: flow.subject,
        target,
        new_password: Some(password.clone()),
        must_change: false,
        correlation_id: data.correlation_id.clone(),
    };
    let extra = After {
        revoke_sessions: revoke,
        lang: data.preferred_language.clone(),
        notify: channels.iter().map(channel_string).collect(),
        policy: data.policy.clone(),
        user: Some(contact_name(data)),
    };
    let mut fields = serde_json::Map::new();
    fields.insert(
        AFTER.to_string(),
        serde_json::to_value(&extra).unwrap_or_default(),
    );
    let started = acting
        .audit(portal, "reset", Outcome::Started, "on-premises gateway job")
        .await;
    if started.is_err() {
        return acting.retry_page(portal, req, started).await;
    }
    let (job, waited) = match jobs::run_with(portal, request, fields).await {
        Ok(r) => r,
        Err(e) => {
            // The job may be queued: this verification is spent.
            tracing::error!(error = %e, "reset: cannot queue the gateway job");
            acting.finish(portal).await;
            return portal.error_page(req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
        }
    };
    match waited {
        Waited::Succeeded => {
            // The steps after the change (sign-out above all) get a Graph budget of their own:
            // the wait for the gateway may have used up the request's.
            let steps = succeeded(portal, req, acting, &job, channels);
            latchkey_graph::deadline::fresh(portal.services.graph_budget, steps).await
        }
        Waited::Failed { reason, detail } => {
            let outcome = if reason == FailureReason::DirectoryUnavailable {
                Outcome::Error
            } else {
                Outcome::Failure
            };
            let why = format!(
                "on-premises gateway job {job}: {}: {detail}",
                reason.as_str()
            );
            let audited = acting.audit(portal, "reset", outcome, &why).await;
            if reason == FailureReason::PasswordPolicy {
                // AD refused this password and changed nothing: another one may be tried.
                acting.retry(portal).await;
            } else {
                acting.finish(portal).await;
            }
            match (audited, reason) {
                (Err(e), _) => flow::ended_unavailable(portal, req, lang, &e),
                (Ok(()), FailureReason::PasswordPolicy) => {
                    portal.error_page(req, lang, StatusCode::BAD_REQUEST, "reset_onprem_policy")
                }
                (Ok(()), _) => {
                    portal.error_page(req, lang, StatusCode::BAD_GATEWAY, "reset_onprem_failed")
                }
            }
        }
        Waited::InProgress => pending(portal, req, acting, &job).await,
        Waited::Expired => {
            // Past its deadline: most likely never taken, but a job claimed and then expired may
            // still be reported, so this verification is spent.
            let why = format!("on-premises gateway job {job}: no gateway took it in time");
            let audited = acting.audit(portal, "reset", Outcome::Error, &why).await;
            let lang = acting.step.lang;
            acting.finish(portal).await;
            match audited {
                Ok(()) => {
                    portal.error_page(req, lang, StatusCode::BAD_GATEWAY, "reset_onprem_failed")
                }
                Err(e) => flow::ended_unavailable(portal, req, lang, &e),
            }
        }
    }
}

/// The gateway reported success while the page waited.
async fn succeeded(
    portal: &Portal,
    req: &HttpRequest,
    acting: Acting,
    job: &str,
    channels: Vec<Recipient>,
) -> HttpResponse {
    let (flow, data, lang) = (&acting.step.flow, &acting.step.data, acting.step.lang);
    let notified = !channels.is_empty();
    // Exactly once per job: the result handler may have claimed the steps already (the result
    // arrived just as this page looked, and its grace ran out). Then it wrote the reset's audit
    // event and told everyone; this page only shows the result.
    let sign_out = if claim_after_change(portal, job).await {
        let why = format!("on-premises gateway job {job}: password set in AD");
        if let Err(e) = acting.audit(portal, "reset", Outcome::Success, &why).await {
            // The `started` event is on record; the change is made, so go on.
            tracing::error!(error = %e, "reset: password changed but the audit event could not be written");
        }
        let s = crate::after_change::after_change(
            portal,
            flow,
            data,
            channels,
            acting.policy.revoke_sessions,
        )
        .await;
        crate::security_contacts::tell(
            portal,
            &acting.policy,
            ContactAction::PasswordReset,
            &flow.subject,
            data,
        )
        .await;
        Some(s)
    } else {
        None
    };
    let catalogs = portal.templates.catalogs();
    let mut paragraphs = vec![
        catalogs.get(lang, "reset_onprem_done").to_string(),
        catalogs.get(lang, "done_next_windows").to_string(),
    ];
    paragraphs.extend(sign_out.and_then(|s| s.paragraph(portal, lang)));
    if notified {
        paragraphs.push(catalogs.get(lang, "done_notified").to_string());
    }
    acting.finish(portal).await;
    flow::result_page(portal, req, lang, "done_title", &paragraphs)
}

/// The job outlived the page's wait: the flow ends here and the user is told to check back; a
/// later success is finished by the result handler ([`reported`]).
async fn pending(portal: &Portal, req: &HttpRequest, acting: Acting, job: &str) -> HttpResponse {
    let lang = acting.step.lang;
    // Not the reset's own event: that is written once, when the result arrives (`reported`),
    // with the steps after the change.
    let why = format!("on-premises gateway job {job}: queued, no result within the wait");
    if let Err(e) = acting
        .audit(portal, PENDING_EVENT, Outcome::Success, &why)
        .await
    {
        // The `started` event names the attempt; the job's own record names the rest.
        tracing::error!(error = %e, "reset: cannot audit a pending gateway reset");
    }
    acting.finish(portal).await;
    let catalogs = portal.templates.catalogs();
    let paragraphs = vec![catalogs.get(lang, "reset_onprem_pending").to_string()];
    flow::result_page(portal, req, lang, "reset_onprem_pending_title", &paragraphs)
}

/// Audit event of a reset whose gateway job outlived the page's wait.
pub const PENDING_EVENT: &str = "reset.pending";
/// Key in a reset job's target of what to do after the change ([`After`]).
const AFTER: &str = "after_change";
/// How long the result handler leaves the steps after the change to a page that may still be
/// waiting: that page sees the recorded result within one poll, and only the side that runs the
/// steps knows how the sign-out went, so the page can then say it to the user itself. Three
/// polls: one full period, the page's store read, and slack for a busy machine.
const PAGE_GRACE: std::time::Duration = POLL_EVERY.saturating_mul(3);

/// What the steps after the change need when the gateway reports after the page stopped
/// waiting. Non-secret: the policy's sign-out setting, the language, the channels to tell.
#[derive(serde::Serialize, serde::Deserialize)]
struct After {
    revoke_sessions: bool,
    lang: Option<String>,
    /// `email:addr` or `sms:+number`, known before the change.
    notify: Vec<String>,
    /// The policy that allowed the reset: whose security contacts are told. Absent in jobs
    /// queued by an older portal (nobody to tell then).
    #[serde(default)]
    policy: Option<String>,
    /// How the security contacts' notice names the user (display name, else the account).
    #[serde(default)]
    user: Option<String>,
}

/// The user's name in a security contact's notice, as [`crate::security_contacts::tell`] has it.
fn contact_name(data: &crate::flow::FlowData) -> String {
    data.display_name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| data.account.clone())
}

fn channel_string(r: &Recipient) -> String {
    match r {
        Recipient::Email(e) => format!("email:{}", e.as_str()),
        Recipient::Sms(p) => format!("sms:{p}"),
    }
}

fn parse_channel(s: &str) -> Option<Recipient> {
    if let Some(e) = s.strip_prefix("email:") {
        return e.parse().ok().map(Recipient::Email);
    }
    s.strip_prefix("sms:")
        .and_then(|p| p.parse().ok())
        .map(Recipient::Sms)
}

/// Whether this caller is the one to run the steps after the change of `job`: the store's
/// one conditional update that marks the job ([`latchkey_store::Store::claim_after_change`]),
/// so the waiting page and the result handler (of any portal instance) never both run them. On
/// a store error: nobody runs them twice, so `false`.
async fn claim_after_change(portal: &Portal, job: &str) -> bool {
    let s = &portal.services;
    match s.store.claim_after_change(job, s.clock.now()).await {
        Ok(won) => won,
        Err(e) => {
            tracing::error!(error = %e, "reset: cannot claim the after-change steps of a job");
            false
        }
    }
}

/// Called by the gateway API when a reset job's success is recorded: unless the waiting page
/// already did, void codes and flows, notify the channels known before the change, sign out
/// per policy, tell the policy's security contacts, and write the reset's audit event.
pub async fn reported(portal: &Portal, job: &Job) {
    if job.kind != JobKind::Reset.as_str() {
        return;
    }
    // Who runs the steps is decided by the claim alone; this wait only decides who is likely to
    // win it. A page still waiting on this job (its wait, RESULT_WAIT from the queueing, is not
    // over) sees the result within one poll and, if it claims first, tells the user the whole
    // outcome, sign-out included; when the page wins we find the job claimed and stop. A page
    // that already said "in progress" is not waiting: no pause then. If the page is slower than
    // the grace, it loses the claim and shows the result without the sign-out sentence; the
    // steps still ran once, here.
    let now = portal.services.clock.now();
    if now < job.created_at + RESULT_WAIT + POLL_EVERY {
        tokio::time::sleep(PAGE_GRACE).await;
    }
    if !claim_after_change(portal, &job.id).await {
        return;
    }
    let after: Option<After> = job
        .target
        .get(AFTER)
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    // A job without the record (queued by an older portal): the safe defaults.
    let after = after.unwrap_or(After {
        revoke_sessions: true,
        lang: None,
        notify: Vec::new(),
        policy: None,
        user: None,
    });
    let channels = after
        .notify
        .iter()
        .filter_map(|c| parse_channel(c))
        .collect();
    let audited = crate::flow::audit(
        portal,
        &job.correlation_id,
        Some(job.subject),
        "reset",
        None,
        Outcome::Success,
        Some(&format!(
            "on-premises gateway job {}: password set in AD (finished on the gateway's report, not by the page)",
            job.id
        )),
    )
    .await;
    if audited.is_err() {
        tracing::error!("reset: password changed but the audit event could not be written");
    }
    crate::after_change::after_change_of(
        portal,
        &job.subject,
        &job.correlation_id,
        after.lang,
        channels,
        after.revoke_sessions,
    )
    .await;
    // The policy's security contacts hear of it as after any reset (the policy as it is now: a
    // contact added or removed since the job was queued is honoured).
    let Some(name) = after.policy else { return };
    let set = portal.services.policies();
    let Some(policy) = set.get(&name) else {
        tracing::warn!(
            policy = %name,
            "reset: the policy of a late gateway reset is gone; its security contacts are not told"
        );
        return;
    };
    let user = after
        .user
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| job.subject.to_string());
    crate::security_contacts::tell_about(
        portal,
        policy,
        crate::security_contacts::Told {
            action: ContactAction::PasswordReset,
            subject: &job.subject,
            user: &user,
            correlation_id: &job.correlation_id,
            by: None,
        },
    )
    .await;
}

/// Whether the policy that matched this flow allows privileged accounts; the gateway refuses an
/// `adminCount=1` account otherwise. A policy gone from the set: not allowed.
pub fn allow_privileged(portal: &Portal, data: &crate::flow::FlowData) -> bool {
    data.policy
        .as_deref()
        .and_then(|n| {
            portal
                .services
                .policies()
                .get(n)
                .map(|p| p.allow_privileged)
        })
        .unwrap_or(false)
}
