//! Enrollment coverage: who is in scope of which policy, who has enough methods, who will be
//! unable to reset.
//!
//! **How a user's policy is decided.** Exactly as the portal decides at identification
//! (`identify.rs`): the user's transitive groups and directory roles from Graph, then
//! [`latchkey_policy::evaluate`]; enough methods means [`latchkey_verify::requirement_met`] over
//! the methods the policy accepts from the sources it names: *active* Latchkey enrollments, the
//! phones and email registered in Entra, the directory profile's. So the report cannot disagree
//! with what a user meets at the portal.
//!
//! **Entra-registered methods.** When an enabled policy accepts them, the report first tries
//! Microsoft's registration report (`userRegistrationDetails`: one paged read for the whole
//! tenant, `AuditLog.Read.All`, Entra ID P1/P2); a tenant without the licence or the permission
//! (403) is read per user instead (`phoneMethods` + `emailMethods`, two requests per user in
//! scope of such a policy). [`Coverage::entra_read`] says which way was used.
//!
//! **Bounded work.** Candidates are the users of the groups enabled policies apply to, read one
//! Graph page at a time (`transitiveMembers/microsoft.graph.user`, `$select` of five fields);
//! only a small record per candidate is kept (id, UPN, name, flags, group indices), never Graph's
//! user objects, and at most [`MAX_USERS`] of them (the page then says the numbers are partial).
//! Each enabled candidate costs one Graph request (its memberships), at most [`PARALLEL`] at a
//! time; their enrolled methods come from the store in a few batched queries that read no
//! secret. Disabled accounts are counted but not evaluated.
//!
//! This is the Graph path; while the directory mirror is usable, [`super::coverage_mirror`]
//! computes the same report over every user, without the cap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use latchkey_graph::GraphError;
use latchkey_policy::{Action, MethodSource, PolicySet, Subject, evaluate};
use latchkey_store::{EnrollmentState, Store, StoreError};
use latchkey_types::{MethodKind, ObjectId};
use serde::Serialize;
use tokio::task::JoinSet;

use super::source::Source;
use latchkey_selfservice::channels;
use latchkey_selfservice::directory::{Directory, UserSummary};

/// Most users one report evaluates.
pub const MAX_USERS: usize = 50_000;
/// Graph requests in flight at once while evaluating users.
pub const PARALLEL: usize = 8;

/// Why the coverage could not be computed (nothing partial is shown then).
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("directory: {0}")]
    Graph(#[from] GraphError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("mirror: {0}")]
    Mirror(#[from] latchkey_mirror::MirrorError),
    #[error("evaluation task failed")]
    Task,
}

/// One method column.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MethodCount {
    pub method: &'static str,
    pub count: usize,
}

/// One line of a coverage table (a policy or a group).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CoverageRow {
    pub name: String,
    /// Group object id (group rows).
    pub id: Option<String>,
    /// Enabled accounts counted in this row.
    pub total: usize,
    /// Enough active methods for their policy: can reset today.
    pub ready: usize,
    /// Some accepted method, but fewer than the policy requires.
    pub partial: usize,
    /// No method the policy accepts.
    pub none: usize,
    /// Group rows: members no policy applies to (excluded, privileged, disabled policy).
    pub out_of_scope: usize,
    /// Group rows: the directory has no such group (deleted since the policy was written); it
    /// counts as empty, as it does at identification.
    pub missing: bool,
    /// Users with an active enrollment of each method.
    pub methods: Vec<MethodCount>,
}

/// A user in scope of a policy who does not have enough methods to pass it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UnableUser {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub policy: String,
    pub required: usize,
    /// Active methods the policy accepts.
    pub enrolled: Vec<&'static str>,
}

/// The coverage report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Coverage {
    /// Enabled policies in priority order.
    pub policies: Vec<CoverageRow>,
    /// Every group an enabled policy applies to.
    pub groups: Vec<CoverageRow>,
    /// Sorted by UPN.
    pub unable: Vec<UnableUser>,
    /// Enabled accounts evaluated.
    pub users: usize,
    /// Disabled accounts among the candidates (not evaluated: they cannot reset anyway).
    pub disabled: usize,
    /// More candidates than the limit ([`MAX_USERS`]): the numbers cover the first ones only.
    pub truncated: bool,
    /// How Entra-registered methods were read, when a policy accepts them.
    pub entra_read: Option<EntraRead>,
    /// Where the users and their groups were read ([`super::source`]).
    pub source: Source,
    /// The mirror's last sync (UTC) and its age in seconds, when it was the source.
    pub mirror_as_of: Option<String>,
    pub mirror_age_seconds: Option<u64>,
}

/// How the report learned which methods users registered in Entra.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EntraRead {
    /// `userRegistrationDetails`, one paged read.
    RegistrationReport,
    /// `phoneMethods` and `emailMethods` per user (the report was refused: licence or permission).
    PerUser,
}

struct Candidate {
    summary: UserSummary,
    groups: Vec<usize>,
}

pub(super) struct Assessed {
    /// Index into the policy set.
    pub(super) policy: Option<usize>,
    /// Active Latchkey enrollments.
    pub(super) kinds: Vec<MethodKind>,
    /// Registered in Entra (read only where the user's policy accepts them).
    pub(super) entra: Vec<MethodKind>,
    /// In the directory profile (read only where the user's policy accepts them).
    pub(super) profile: Vec<MethodKind>,
}

impl Assessed {
    /// The methods policy `p` accepts from the sources it names.
    fn accepted(&self, p: &latchkey_policy::Policy) -> Vec<MethodKind> {
        let mut out: Vec<MethodKind> = Vec::new();
        for (source, kinds) in [
            (MethodSource::Latchkey, &self.kinds),
            (MethodSource::Entra, &self.entra),
            (MethodSource::Profile, &self.profile),
        ] {
            if !p.sources.contains(&source) {
                continue;
            }
            for k in kinds {
                if p.methods.contains(k) && !out.contains(k) {
                    out.push(*k);
                }
            }
        }
        out
    }
}

/// Computes the coverage against the directory and the store, for at most [`MAX_USERS`] users.
pub async fn compute(
    directory: Arc<dyn Directory>,
    store: Arc<dyn Store>,
    set: Arc<PolicySet>,
) -> Result<Coverage, CoverageError> {
    compute_at_most(directory, store, set, MAX_USERS).await
}

/// [`compute`] for at most `max_users` users (the first ones met, in group order, then as Graph
/// lists them); more set [`Coverage::truncated`].
pub async fn compute_at_most(
    directory: Arc<dyn Directory>,
    store: Arc<dyn Store>,
    set: Arc<PolicySet>,
    max_users: usize,
) -> Result<Coverage, CoverageError> {
    let policies = set.policies();
    let enabled: Vec<usize> = (0..policies.len())
        .filter(|&i| policies[i].enabled)
        .collect();

    // The groups enabled policies apply to, in policy order, with names for humans.
    let mut groups: Vec<(ObjectId, String)> = Vec::new();
    let mut missing: HashSet<ObjectId> = HashSet::new();
    for &pi in &enabled {
        for g in &policies[pi].applies_to {
            if groups.iter().any(|(id, _)| *id == g.id) {
                continue;
            }
            let name = match &g.name {
                Some(n) => n.clone(),
                None => match directory.group_name(&g.id).await {
                    Ok(n) => n.unwrap_or_else(|| g.id.to_string()),
                    Err(e) if e.is_not_found() => {
                        missing.insert(g.id);
                        g.id.to_string()
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            groups.push((g.id, name));
        }
    }

    // Candidates, one page at a time.
    let mut truncated = false;
    let mut candidates: BTreeMap<ObjectId, Candidate> = BTreeMap::new();
    for (gi, (group, _)) in groups.iter().enumerate() {
        if missing.contains(group) {
            continue;
        }
        let mut next = None;
        loop {
            let page = match directory.group_users_page(group, next.as_ref()).await {
                Ok(p) => p,
                // A group deleted since the policy was written has no members.
                Err(e) if e.is_not_found() && next.is_none() => {
                    missing.insert(*group);
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            for u in page.items {
                if let Some(c) = candidates.get_mut(&u.id) {
                    if !c.groups.contains(&gi) {
                        c.groups.push(gi);
                    }
                } else if candidates.len() < max_users {
                    candidates.insert(
                        u.id,
                        Candidate {
                            summary: u,
                            groups: vec![gi],
                        },
                    );
                } else {
                    truncated = true;
                }
            }
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
    }

    // Active methods of the enabled accounts: a few store queries for all of them, no secret
    // decrypted.
    let enabled_ids: Vec<ObjectId> = candidates
        .values()
        .filter(|c| c.summary.account_enabled != Some(false))
        .map(|c| c.summary.id)
        .collect();
    let mut kinds_of: HashMap<ObjectId, Vec<MethodKind>> = HashMap::new();
    for m in store.enrolled_methods(&enabled_ids).await? {
        if m.state == EnrollmentState::Active
            && let Ok(kind) = m.method.parse::<MethodKind>()
        {
            kinds_of.entry(m.subject).or_default().push(kind);
        }
    }

    // Entra-registered methods, when a policy accepts them: the registration report if the
    // tenant allows it, else per user below.
    let wants = |source| {
        enabled
            .iter()
            .any(|&pi| policies[pi].sources.contains(&source))
    };
    let (mut registered, entra_read) = if wants(MethodSource::Entra) {
        let keep = |id: &ObjectId| candidates.contains_key(id);
        match registration_report(directory.as_ref(), keep).await? {
            Some(map) => (Some(map), Some(EntraRead::RegistrationReport)),
            None => (None, Some(EntraRead::PerUser)),
        }
    } else {
        (None, None)
    };

    // Evaluate the enabled accounts, at most PARALLEL at a time.
    let mut assessed: HashMap<ObjectId, Assessed> = HashMap::with_capacity(enabled_ids.len());
    let mut todo = enabled_ids.into_iter();
    let mut running: JoinSet<Result<(ObjectId, Assessed), CoverageError>> = JoinSet::new();
    loop {
        while running.len() < PARALLEL {
            let Some(id) = todo.next() else { break };
            let (directory, set) = (Arc::clone(&directory), Arc::clone(&set));
            let kinds = kinds_of.remove(&id).unwrap_or_default();
            let known = registered
                .as_mut()
                .map(|r| r.remove(&id).unwrap_or_default());
            running.spawn(async move {
                let policy = policy_of(directory.as_ref(), &set, &id).await?;
                let sources = policy.map_or(&[][..], |pi| &set.policies()[pi].sources[..]);
                let entra = match (sources.contains(&MethodSource::Entra), known) {
                    (false, _) => vec![],
                    (true, Some(k)) => k,
                    (true, None) => channels::entra_kinds(directory.as_ref(), &id).await?,
                };
                let profile = if sources.contains(&MethodSource::Profile) {
                    channels::profile_kinds(&directory.user(&id).await?)
                } else {
                    vec![]
                };
                let a = Assessed {
                    policy,
                    kinds,
                    entra,
                    profile,
                };
                Ok((id, a))
            });
        }
        match running.join_next().await {
            None => break,
            Some(Ok(Ok((id, a)))) => {
                assessed.insert(id, a);
            }
            // Fail closed: a report with silently missing users would mislead.
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(_)) => return Err(CoverageError::Task),
        }
    }

    let ready_for = |pi: usize, a: &Assessed| ready_for(&policies[pi], a);

    let mut out = Coverage {
        truncated,
        entra_read,
        users: assessed.len(),
        disabled: candidates.len() - assessed.len(),
        ..Coverage::default()
    };

    for &pi in &enabled {
        let p = &policies[pi];
        let mut row = row(p.name.clone(), None, &p.methods);
        for a in assessed.values().filter(|a| a.policy == Some(pi)) {
            count(&mut row, ready_for(pi, a));
        }
        out.policies.push(row);
    }

    // Method columns of group rows: every method an enabled policy offers.
    let mut offered: Vec<MethodKind> = Vec::new();
    for &pi in &enabled {
        for m in &policies[pi].methods {
            if !offered.contains(m) {
                offered.push(*m);
            }
        }
    }
    for (gi, (id, name)) in groups.iter().enumerate() {
        let mut row = row(name.clone(), Some(id.to_string()), &offered);
        row.missing = missing.contains(id);
        for c in candidates.values().filter(|c| c.groups.contains(&gi)) {
            let Some(a) = assessed.get(&c.summary.id) else {
                continue;
            };
            match a.policy {
                Some(pi) => count(&mut row, ready_for(pi, a)),
                None => {
                    row.total += 1;
                    row.out_of_scope += 1;
                    count_methods(&mut row, &a.kinds);
                }
            }
        }
        out.groups.push(row);
    }

    for c in candidates.values() {
        let Some(a) = assessed.get(&c.summary.id) else {
            continue;
        };
        let Some(pi) = a.policy else { continue };
        let p = &policies[pi];
        // As at identification: a policy that allows neither action offers no self-service.
        if !p.allows(Action::Reset) && !p.allows(Action::Unlock) {
            continue;
        }
        let (ready, accepted) = ready_for(pi, a);
        if !ready {
            out.unable.push(UnableUser {
                id: c.summary.id.to_string(),
                upn: c.summary.user_principal_name.clone().unwrap_or_default(),
                display_name: c.summary.display_name.clone().unwrap_or_default(),
                policy: p.name.clone(),
                required: p.methods_required,
                enrolled: accepted.iter().map(|k| k.as_str()).collect(),
            });
        }
    }
    out.unable.sort_by_cached_key(|u| u.upn.to_lowercase());
    Ok(out)
}

/// The index of the policy that applies to the user, decided as at identification.
async fn policy_of(
    directory: &dyn Directory,
    set: &PolicySet,
    id: &ObjectId,
) -> Result<Option<usize>, CoverageError> {
    let memberships = directory.memberships(id).await?;
    let groups: HashSet<ObjectId> = memberships.groups.iter().map(|g| g.id).collect();
    Ok(policy_index(set, &groups, !memberships.roles.is_empty()))
}

/// The index of the policy [`evaluate`] picks for a user in `groups`.
pub(super) fn policy_index(
    set: &PolicySet,
    groups: &HashSet<ObjectId>,
    privileged: bool,
) -> Option<usize> {
    let evaluation = evaluate(set, Subject { groups, privileged });
    evaluation
        .policy
        .and_then(|p| set.policies().iter().position(|q| q.priority == p.priority))
}

/// Whether `a` has enough of what `p` accepts, and what it accepts.
pub(super) fn ready_for(p: &latchkey_policy::Policy, a: &Assessed) -> (bool, Vec<MethodKind>) {
    let accepted = a.accepted(p);
    (
        latchkey_selfservice::flow::enough(
            p.methods_required,
            p.passkey_satisfies == latchkey_policy::PasskeySatisfies::All,
            &accepted,
        ),
        accepted,
    )
}

pub(super) fn row(name: String, id: Option<String>, methods: &[MethodKind]) -> CoverageRow {
    CoverageRow {
        name,
        id,
        total: 0,
        ready: 0,
        partial: 0,
        none: 0,
        out_of_scope: 0,
        missing: false,
        methods: methods
            .iter()
            .map(|m| MethodCount {
                method: m.as_str(),
                count: 0,
            })
            .collect(),
    }
}

/// Counts one user in scope: ready, partial or none, and each method their policy accepts.
pub(super) fn count(row: &mut CoverageRow, (ready, accepted): (bool, Vec<MethodKind>)) {
    row.total += 1;
    if ready {
        row.ready += 1;
    } else if accepted.is_empty() {
        row.none += 1;
    } else {
        row.partial += 1;
    }
    count_methods(row, &accepted);
}

/// The registration report's methods of the users `keep` accepts (users without such methods
/// are left out: absent means none), or `None` when the tenant refuses the report (403: no
/// Entra ID P1/P2, or no `AuditLog.Read.All`): read per user then.
pub(super) async fn registration_report(
    directory: &dyn Directory,
    keep: impl Fn(&ObjectId) -> bool,
) -> Result<Option<HashMap<ObjectId, Vec<MethodKind>>>, CoverageError> {
    let mut out = HashMap::new();
    let mut next = None;
    loop {
        let page = match directory.registration_details_page(next.as_ref()).await {
            Ok(p) => p,
            Err(e) if e.is_forbidden() && next.is_none() => {
                tracing::info!(error = %e, "registration report refused; reading Entra methods per user");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        // Only what is asked for is kept: the report lists the whole tenant.
        for r in page.items {
            if keep(&r.id) {
                let kinds = channels::entra_kinds_registered(&r.methods_registered);
                if !kinds.is_empty() {
                    out.insert(r.id, kinds);
                }
            }
        }
        match page.next {
            Some(n) => next = Some(n),
            None => return Ok(Some(out)),
        }
    }
}

pub(super) fn count_methods(row: &mut CoverageRow, kinds: &[MethodKind]) {
    for m in &mut row.methods {
        if kinds.iter().any(|k| k.as_str() == m.method) {
            m.count += 1;
        }
    }
}
