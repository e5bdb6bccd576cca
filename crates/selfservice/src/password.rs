//! Checks a new password before anything is sent to the directory, so the user learns *why* a
//! password is refused instead of getting Entra's generic complexity error: every rule of
//! [`latchkey_password`] with the tenant's own terms (its custom banned password list when the
//! tenant enforces one, its name) and the policy's banned words, then — when configured — the
//! breached-password lookup.
//!
//! The tenant's settings are read from the directory at most once per [`TENANT_TTL`] and kept in
//! memory (they are tenant configuration, not user data); a failed read keeps what was known
//! (or Entra's defaults) and is retried after [`RETRY_AFTER`].

use std::sync::Mutex;
use std::time::Duration;

use latchkey_graph::PasswordRuleSettings;
pub use latchkey_password::Rejection;
use latchkey_password::{BannedTerms, BreachedLookup, Candidate};
use latchkey_policy::PasswordRules;
use time::OffsetDateTime;

use crate::SelfService;

pub use latchkey_password::Weakness;

/// How long the tenant's password settings are trusted before they are read again (Microsoft:
/// changes to the custom list "may take several hours" to apply in Entra itself).
pub const TENANT_TTL: Duration = Duration::from_secs(60 * 60);
/// After a failed read, how long before the next try.
pub const RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// What the tenant contributes to every check (and to how an unknown account is keyed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantRules {
    pub settings: PasswordRuleSettings,
    /// The words of the organization's name (four characters or more).
    pub name_words: Vec<String>,
    /// The tenant's verified domains, lower case.
    pub domains: Vec<String>,
}

impl TenantRules {
    /// Whether `domain` could be the tenant's: a verified domain, a subdomain of one (an
    /// on-premises DNS domain such as `corp.contoso.com`), or a name without a dot (a NetBIOS
    /// name such as `CONTOSO` or `CORP`, as Windows sign-in names spell it: the directory does
    /// not list them, and the sign-in lookup accepts any of them for a name only one account has).
    pub fn owns(&self, domain: &str) -> bool {
        let d = domain.to_lowercase();
        !d.contains('.')
            || self.domains.iter().any(|v| {
                d == *v
                    || d.ends_with(&format!(".{v}"))
                    || v.split('.').next().is_some_and(|label| label == d)
            })
    }

    /// The tenant's terms for scoring: its name, and its custom list when enforced.
    fn terms(&self) -> impl Iterator<Item = &str> {
        let custom = self
            .settings
            .banned_check_enabled
            .then_some(&self.settings.banned_passwords)
            .into_iter()
            .flatten();
        self.name_words.iter().chain(custom).map(String::as_str)
    }
}

struct Cached {
    /// Shared, not copied: every flow start reads it (the custom list may hold 1,000 terms).
    rules: std::sync::Arc<TenantRules>,
    /// When to read again.
    refresh_at: OffsetDateTime,
}

/// The password checks' state: the tenant's cached rules, the optional breached lookup, and the
/// permits for the checks themselves.
pub struct PasswordChecks {
    tenant: Mutex<Option<Cached>>,
    breached: Option<BreachedLookup>,
    /// The checks are CPU work (scoring, a guessability estimate): they run on the blocking
    /// pool, at most this many at once, so a burst of them never holds the request workers.
    permits: tokio::sync::Semaphore,
}

/// Password checks running at once; more wait their turn.
const CONCURRENT_CHECKS: usize = 2;
/// How long a check waits for its turn before the user is told to try again.
const CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl PasswordChecks {
    pub fn new(breached: Option<BreachedLookup>) -> Self {
        Self {
            tenant: Mutex::new(None),
            breached,
            permits: tokio::sync::Semaphore::new(CONCURRENT_CHECKS),
        }
    }
}

/// The tenant's rules, read from the directory when the cached copy is due.
pub async fn tenant_rules(s: &SelfService) -> std::sync::Arc<TenantRules> {
    let now = s.clock.now();
    let known = {
        let guard = s.passwords.tenant.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(c) if c.refresh_at > now => return std::sync::Arc::clone(&c.rules),
            Some(c) => Some(std::sync::Arc::clone(&c.rules)),
            None => None,
        }
    };
    let read = async {
        let settings = s.directory.password_rule_settings().await?;
        let org = s.directory.organization().await?;
        Ok::<_, latchkey_graph::GraphError>(TenantRules {
            settings,
            name_words: org
                .display_name
                .unwrap_or_default()
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| w.chars().count() >= latchkey_password::banned::MIN_TERM_CHARS)
                .map(str::to_lowercase)
                .collect(),
            domains: org
                .verified_domains
                .iter()
                .map(|d| d.name.to_lowercase())
                .collect(),
        })
    };
    let (rules, wait) = match read.await {
        Ok(rules) => (std::sync::Arc::new(rules), TENANT_TTL),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the tenant's password rule settings (GroupSettings.Read.All); checking with what is known");
            (known.unwrap_or_default(), RETRY_AFTER)
        }
    };
    let refresh_at = now + wait;
    *s.passwords.tenant.lock().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
        rules: std::sync::Arc::clone(&rules),
        refresh_at,
    });
    rules
}

/// Every check of a new password; `confirm: None` checks the password alone (the live feedback
/// while typing). The breached lookup runs only with `lookup_breaches` (the submit, never the
/// live check: it would send the service a hash prefix for every partial password) and only for
/// a password that passed everything else.
pub async fn check(
    s: &SelfService,
    password: &str,
    confirm: Option<&str>,
    rules: &PasswordRules,
    user_names: &[&str],
    lookup_breaches: bool,
) -> Result<(), Rejection> {
    let tenant = tenant_rules(s).await;
    let banned = BannedTerms::global_with(
        tenant
            .terms()
            .chain(rules.banned_words.iter().map(String::as_str)),
    );
    // Off the request workers, a bounded number at a time; the permit is held for the CPU work
    // only, never across the breached lookup's network call.
    let permit = tokio::time::timeout(CHECK_WAIT, s.passwords.permits.acquire()).await;
    let Ok(Ok(permit)) = permit else {
        return Err(Rejection::Busy);
    };
    let (password_owned, confirm_owned) = (password.to_string(), confirm.map(str::to_string));
    let (rules_owned, names_owned): (PasswordRules, Vec<String>) = (
        rules.clone(),
        user_names.iter().map(|n| n.to_string()).collect(),
    );
    let verdict = tokio::task::spawn_blocking(move || {
        let names: Vec<&str> = names_owned.iter().map(String::as_str).collect();
        latchkey_password::check(&Candidate {
            password: &password_owned,
            confirm: confirm_owned.as_deref(),
            rules: &rules_owned,
            user_names: &names,
            banned: &banned,
        })
    })
    .await;
    drop(permit);
    match verdict {
        Ok(result) => result?,
        Err(e) => {
            tracing::error!(error = %e, "password check task failed");
            return Err(Rejection::Busy);
        }
    }
    match (&s.passwords.breached, lookup_breaches) {
        (Some(lookup), true) => lookup.check(password).await,
        _ => Ok(()),
    }
}

/// Why a live check while typing gave no verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum PreviewError {
    /// The password would be refused, for this reason.
    Rejected(Rejection),
    /// Too many live checks for this flow (or the store could not count one): the form still
    /// works, the server checks everything on submit.
    Throttled,
    /// The flow is not one that may set a password (not verified, a decoy, no policy).
    NotAllowed,
}

/// The live check of a password being typed on a verified flow's reset page: the same rules as
/// the submit (the confirmation aside), throttled per flow. Nothing is recorded but the count.
pub async fn preview(
    s: &SelfService,
    current: &crate::flow::Current,
    password: &str,
) -> Result<(), PreviewError> {
    if current.data.decoy || !current.is_complete() {
        return Err(PreviewError::NotAllowed);
    }
    let set = s.policies();
    let Some(policy) = current.data.policy.as_deref().and_then(|n| set.get(n)) else {
        return Err(PreviewError::NotAllowed);
    };
    crate::flow::hit(
        s,
        "password:preview",
        &current.flow.id.to_string(),
        &s.limits.password_previews(),
    )
    .await
    .map_err(|_| PreviewError::Throttled)?;
    let names: Vec<&str> = current.data.names.iter().map(String::as_str).collect();
    check(s, password, None, &policy.password, &names, false)
        .await
        .map_err(PreviewError::Rejected)
}
