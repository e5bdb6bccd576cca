//! Step 1 of self-service: the user says who they are. Whatever they type, the outcome is the
//! same after the same time (docs/security.md, principle 1); the decision whether this account
//! may use self-service is made here, recorded in the server-side flow, and revealed only after
//! a verification succeeds.

use std::collections::HashSet;
use std::time::Duration;

use latchkey_policy::{Action, Subject, evaluate};
use latchkey_store::{
    FlowLifetime, FlowPurpose, FlowStep, FlowToken, NewFlow, Outcome, StoreError,
};
use latchkey_types::{MethodKind, ObjectId, SignInName};

use crate::SelfService;
use crate::flow::{self, FlowData, Refusal};

/// A flow as identification decided it, before it is stored.
#[derive(Debug)]
pub struct Plan {
    pub data: FlowData,
    /// The user, or for a decoy a random id that matches nobody.
    pub subject: ObjectId,
    /// For the audit trail only: which policy matched, or why the flow is a decoy.
    pub reason: Option<String>,
}

/// Why an account could not be planned: a fault, never a decoy (a decoy would tell the user
/// "we sent a code" and send nothing).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("directory: {0}")]
    Directory(#[from] latchkey_graph::GraphError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Mirror(#[from] latchkey_mirror::MirrorError),
    #[error("{0}")]
    NoRandomness(#[from] latchkey_types::random::NoRandomness),
}

/// A started flow: the token for the browser's cookie.
#[derive(Debug)]
pub struct Started {
    pub token: FlowToken,
}

/// Why no flow was started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Too many starts from this client, or the store could not count it.
    #[error("refused by a throttle")]
    Refused(Refusal),
    /// What was typed is not an account name (user@domain).
    #[error("not an account name")]
    InvalidLogin,
    /// The directory or the store could not be asked; nothing was started.
    #[error("{0}")]
    Plan(#[from] PlanError),
}

/// Starts a self-service flow for what the user typed: throttled per client address, planned
/// within the enumeration deadline, stored and audited. Known and unknown accounts get the same
/// outcome.
pub async fn start(s: &SelfService, login: &str, client: &str) -> Result<Started, StartError> {
    start_in(s, login, client, None).await
}

/// [`start`] from a browser session in `language` (a BCP 47 tag): what the flow sends is written
/// in it.
pub async fn start_in(
    s: &SelfService,
    login: &str,
    client: &str,
    language: Option<&str>,
) -> Result<Started, StartError> {
    flow::hit(s, "start:client", client, &s.limits.starts())
        .await
        .map_err(StartError::Refused)?;
    // name@domain, DOMAIN\name or name; one canonical spelling (NFKC, lower case), so every
    // spelling of one typed account is one throttle key and one decoy.
    let Ok(typed) = login.parse::<SignInName>() else {
        return Err(StartError::InvalidLogin);
    };
    let login = typed.to_string();
    let mut plan = within_deadline(s.deadline, plan(s, &login)).await?;
    plan.data.language = language.map(str::to_string);
    let token = create(s, plan, "flow.start", serde_json::Value::Null, None).await?;
    Ok(Started { token })
}

/// Runs `work`, then waits until the enumeration deadline has passed since the start, so every
/// outcome (user found or not, enrolled or not) takes the same time. Work that overruns is not
/// cut short; the deadline is chosen well above the slow path (a few Graph calls).
pub async fn within_deadline<T>(
    deadline: Duration,
    work: impl std::future::Future<Output = T>,
) -> T {
    let start = tokio::time::Instant::now();
    let out = work.await;
    tokio::time::sleep_until(start + deadline).await;
    out
}

/// Stores the planned flow and audits its start as `event` (success for a real flow, denied for
/// a decoy, with the plan's reason). `audit_subject` overrides who the event names (a helpdesk
/// link names the user it was issued for, even when the flow became a decoy).
pub async fn create(
    s: &SelfService,
    plan: Plan,
    event: &str,
    details: serde_json::Value,
    audit_subject: Option<ObjectId>,
) -> Result<FlowToken, PlanError> {
    let now = s.clock.now();
    let Plan {
        data,
        subject,
        reason,
    } = plan;
    let new = NewFlow {
        subject,
        purpose: FlowPurpose::SelfService,
        step: FlowStep::Verify,
        data: serde_json::to_value(&data).unwrap_or_default(),
        lifetime: FlowLifetime::default(),
    };
    let (token, _) = s.store.create_flow(new, now).await?;
    let outcome = if data.decoy {
        Outcome::Denied
    } else {
        Outcome::Success
    };
    let event = latchkey_store::AuditEvent {
        at: now,
        correlation_id: data.correlation_id.clone(),
        actor: "self".into(),
        subject: audit_subject.or((!data.decoy).then_some(subject)),
        event_type: event.to_string(),
        method: None,
        outcome,
        reason,
        details,
    };
    s.store.append_audit(&event).await?;
    Ok(token)
}

/// Resolves the account and decides. Every branch does its Graph calls before deciding, so the
/// deadline hides the rest.
/// What an unknown account's throttles, stand-in masks and questions are keyed on: its bare name
/// when every part of what was typed could belong to this tenant (`alice`, `CONTOSO\alice`,
/// `alice@contoso.com`, `alice@corp.contoso.com` are one person to the directory, and must be
/// one to a decoy too), else the whole canonical spelling (`alice@elsewhere.example` names
/// nobody here, and must not share a decoy with the tenant's `alice`).
pub fn decoy_key(login: &str, tenant: &crate::password::TenantRules) -> String {
    match login.parse::<SignInName>() {
        Ok(SignInName::Address(a)) => match a.as_str().rsplit_once('@') {
            Some((local, domain)) if tenant.owns(domain) => local.to_string(),
            _ => a.to_string(),
        },
        Ok(SignInName::Account { domain: None, name }) => name,
        Ok(SignInName::Account {
            domain: Some(d),
            name,
        }) if tenant.owns(&d) => name,
        Ok(other) => other.to_string(),
        Err(_) => login.trim().to_lowercase(),
    }
}

pub async fn plan(s: &SelfService, login: &str) -> Result<Plan, PlanError> {
    let tenant = crate::password::tenant_rules(s).await;
    let correlation_id = ObjectId::random()?.to_string();
    // A decoy's subject is random: it matches no user, and each decoy flow has its own.
    let decoy_subject = ObjectId::random()?;
    let decoy = |reason: String| {
        let subject = decoy_subject;
        let data = FlowData {
            decoy: true,
            account: login.to_string(),
            // Keyed as a real account is keyed on its one object: every spelling the tenant
            // could resolve to one person counts together ([`decoy_key`]).
            throttle_key: format!("login:{}", decoy_key(login, &tenant)),
            required: 2,
            // Sealed like a real flow's values: the same work whoever typed the account.
            attributes_sealed: crate::attribute::seal(s, &subject, &Default::default()),
            correlation_id: correlation_id.clone(),
            ..FlowData::default()
        };
        Ok(Plan {
            data,
            subject,
            reason: Some(reason),
        })
    };
    let source = Source::now(s).await?;
    let Some(user) = source.find_user(s, login).await? else {
        return decoy("no single account matches".into());
    };
    if user.account_enabled == Some(false) {
        return decoy(format!("account {} is disabled", user.id));
    }
    let memberships = source.memberships(s, &user.id).await?;
    let groups: HashSet<ObjectId> = memberships.groups.iter().map(|g| g.id).collect();
    let set = s.policies();
    let evaluation = evaluate(
        &set,
        Subject {
            groups: &groups,
            privileged: !memberships.roles.is_empty(),
        },
    );
    let Some(policy) = evaluation.policy else {
        return decoy(format!("account {}: {}", user.id, evaluation.explain()));
    };
    if !policy.allows(Action::Reset)
        && !policy.allows(Action::Unlock)
        && !policy.allows(Action::TemporaryAccessPass)
    {
        return decoy(format!(
            "account {}: policy '{}' allows no self-service action",
            user.id, policy.name
        ));
    }
    // A store error fails closed with an honest error: treating it as "nothing enrolled" would
    // give a decoy flow that says "we sent a code" and sends nothing (an Entra method that
    // cannot be read is counted instead: see `channels::available`).
    let available = crate::channels::available(s, &user, &policy.methods, &policy.sources)
        .await
        .map_err(|e| match e {
            crate::channels::SourceError::Store(e) => PlanError::Store(e),
            crate::channels::SourceError::Directory(e) => PlanError::Directory(e),
        })?;
    let privileged = !memberships.roles.is_empty();
    let passkey_alone = crate::flow::passkey_alone(policy, privileged);
    if !crate::flow::enough(policy.methods_required, passkey_alone, &available) {
        return decoy(format!(
            "account {}: not enough methods for policy '{}' from its sources",
            user.id, policy.name
        ));
    }
    let mut data = flow_data(s, &user, policy, login, correlation_id);
    data.passkey_alone = passkey_alone;
    Ok(Plan {
        data,
        subject: user.id,
        reason: Some(evaluation.explain()),
    })
}

/// Where identification reads the directory: the mirror while it is current (no Graph request,
/// and a timing that does not depend on Graph), else Graph live. Either way the write is
/// preceded by a live check ([`crate::act::claim`]), so a stale mirror can only refuse.
enum Source<'a> {
    Mirror(&'a latchkey_mirror::Mirror),
    Live,
}

impl<'a> Source<'a> {
    async fn now(s: &'a SelfService) -> Result<Source<'a>, PlanError> {
        Ok(match &s.mirror {
            Some(m) if m.freshness().await?.usable() => Source::Mirror(m),
            _ => Source::Live,
        })
    }

    async fn find_user(
        &self,
        s: &SelfService,
        login: &str,
    ) -> Result<Option<latchkey_graph::User>, PlanError> {
        match self {
            Source::Mirror(m) => match login.parse::<SignInName>() {
                Ok(typed) => Ok(m.find_user(&typed).await?),
                Err(_) => Ok(None),
            },
            Source::Live => Ok(s.directory.find_user(login).await?),
        }
    }

    async fn memberships(
        &self,
        s: &SelfService,
        id: &ObjectId,
    ) -> Result<latchkey_graph::Memberships, PlanError> {
        match self {
            Source::Mirror(m) => Ok(m.memberships(id).await?),
            Source::Live => Ok(s.directory.memberships(id).await?),
        }
    }
}

/// What a real flow keeps of the user and the policy that matched.
fn flow_data(
    s: &SelfService,
    user: &latchkey_graph::User,
    policy: &latchkey_policy::Policy,
    login: &str,
    correlation_id: String,
) -> FlowData {
    let attributes = if policy.methods.contains(&MethodKind::Attribute) {
        crate::attribute::directory_values(user)
    } else {
        Default::default()
    };
    FlowData {
        decoy: false,
        account: login.to_string(),
        throttle_key: user.id.to_string(),
        policy: Some(policy.name.clone()),
        required: policy.methods_required,
        methods: policy.methods.clone(),
        sources: policy.sources.clone(),
        sent_to: Default::default(),
        display_name: user.display_name.clone(),
        names: [
            user.display_name.clone(),
            user.given_name.clone(),
            user.surname.clone(),
            user.user_principal_name
                .as_str()
                .split('@')
                .next()
                .map(str::to_string),
            user.on_premises_sam_account_name.clone(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        mail: user.mail.as_ref().map(ToString::to_string),
        attributes_sealed: crate::attribute::seal(s, &user.id, &attributes),
        preferred_language: user.preferred_language.clone(),
        language: None,
        synced: user.on_premises_sync_enabled == Some(true),
        password_changed_at: user.last_password_change_date_time,
        correlation_id,
        // Set by the caller, who knows whether the account is privileged.
        passkey_alone: false,
        passkey_challenge: None,
    }
}

impl Plan {
    /// Makes this plan a decoy unless it is for `user` (a helpdesk link bound to a user whose
    /// account name now names someone else gets a flow that can never be verified).
    pub fn bind_to(mut self, user: &ObjectId) -> Result<Plan, PlanError> {
        if !self.data.decoy && self.subject != *user {
            self.data.decoy = true;
            self.data.throttle_key = format!("login:{}", self.data.account);
            self.subject = ObjectId::random()?;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_deadline_evens_out_fast_and_slow_paths() {
        let start = tokio::time::Instant::now();
        within_deadline(Duration::from_millis(500), async {}).await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
        let start = tokio::time::Instant::now();
        within_deadline(
            Duration::from_millis(500),
            tokio::time::sleep(Duration::from_millis(200)),
        )
        .await;
        assert_eq!(start.elapsed(), Duration::from_millis(500));
    }
}
