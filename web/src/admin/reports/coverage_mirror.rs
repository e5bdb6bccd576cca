//! Enrollment coverage read from the directory mirror, over every user of the tenant: the same
//! numbers as [`super::coverage::compute`] (the Graph path, the fallback), without its cap.
//!
//! **Why this scales.** Users are streamed from the store in pages of [`PAGE`] in id order, and
//! only what the page shows is kept: counts per row and the users unable to reset. A user's
//! transitive groups come from [`Nesting`] (each group's ancestors computed once). Policy
//! evaluation depends only on which of the groups that policies name the user is in, and on
//! whether they hold a role, so it is memoized per such combination ([`Relevant`]): a tenant
//! has few. Enrolled methods come from the store in one batch per page.
//!
//! **What still reads Graph.** Nothing, when a policy accepting Entra-registered methods finds
//! the mirror's copy of Microsoft's registration report recent (read hourly); otherwise the
//! report itself, once for the tenant; when the tenant refuses it, the per-user reads of the
//! Graph path (two requests per user in scope: that does not scale). The profile source reads
//! the mirror's copy of the user, one store read per user in scope of such a policy.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use latchkey_mirror::{Mirror, Nesting};
use latchkey_policy::{Action, MethodSource, Policy, PolicySet};
use latchkey_selfservice::SelfService;
use latchkey_selfservice::channels;
use latchkey_selfservice::directory::Directory;
use latchkey_store::{EnrollmentState, GroupKind, MirrorListedUser, Store};
use latchkey_types::{MethodKind, ObjectId};
use tokio::task::JoinSet;

use super::coverage::{
    self, Assessed, Coverage, CoverageError, CoverageRow, EntraRead, PARALLEL, UnableUser,
};
use super::source::{self, UsableMirror};

/// Users read from the store at a time.
pub const PAGE: u32 = 5_000;

/// The coverage from the mirror when it is usable, else from Graph; says which and how old.
pub async fn compute_best(s: &SelfService) -> Result<Coverage, CoverageError> {
    let used = source::usable(s.mirror.as_ref()).await;
    let mut out = match &used {
        Some(m) => compute(m, Arc::clone(&s.directory), s.policies(), PAGE).await?,
        None => {
            let (directory, store) = (Arc::clone(&s.directory), Arc::clone(&s.store));
            coverage::compute(directory, store, s.policies()).await?
        }
    };
    (out.source, out.mirror_as_of, out.mirror_age_seconds) =
        source::describe(used.as_ref(), s.clock.now());
    Ok(out)
}

/// The groups policies name (`applies_to`, `excludes`), the only ones evaluation looks at: a
/// user's policy is decided by which of them they are in and whether they are privileged.
pub(crate) struct Relevant {
    groups: Vec<ObjectId>,
}

impl Relevant {
    pub(crate) fn of(sets: &[&PolicySet]) -> Relevant {
        let mut groups: Vec<ObjectId> = Vec::new();
        for set in sets {
            for p in set.policies() {
                for g in p.applies_to.iter().chain(&p.excludes) {
                    if !groups.contains(&g.id) {
                        groups.push(g.id);
                    }
                }
            }
        }
        Relevant { groups }
    }

    /// Which of the named groups are among `member_of` (indices, ascending).
    pub(crate) fn key(&self, member_of: &HashSet<ObjectId>) -> Vec<u32> {
        (0u32..)
            .zip(&self.groups)
            .filter(|(_, g)| member_of.contains(g))
            .map(|(i, _)| i)
            .collect()
    }

    /// The groups a key stands for: evaluating with them is evaluating with all of the user's.
    pub(crate) fn groups(&self, key: &[u32]) -> HashSet<ObjectId> {
        key.iter()
            .filter_map(|&i| self.groups.get(i as usize).copied())
            .collect()
    }
}

/// A user in scope of the report, waiting for its methods.
struct Candidate {
    user: MirrorListedUser,
    /// Indices of the report's group rows the user is in.
    rows: Vec<usize>,
    policy: Option<usize>,
}

/// [`compute_best`] from the mirror, reading `page` users at a time.
pub async fn compute(
    used: &UsableMirror,
    directory: Arc<dyn Directory>,
    set: Arc<PolicySet>,
    page: u32,
) -> Result<Coverage, CoverageError> {
    let store = Arc::clone(used.mirror.store());
    let policies = set.policies();
    let enabled: Vec<usize> = (0..policies.len())
        .filter(|&i| policies[i].enabled)
        .collect();
    let mut out = empty(store.as_ref(), policies, &enabled).await?;
    // The group rows with members: a group the mirror lacks counts as empty, as in Graph.
    let live: Vec<(usize, ObjectId)> = out
        .groups
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.missing)
        .filter_map(|(i, r)| Some((i, r.id.as_deref()?.parse().ok()?)))
        .collect();
    let wants = |s| enabled.iter().any(|&pi| policies[pi].sources.contains(&s));
    let registered = if wants(MethodSource::Entra) {
        // The mirror's copy of the registration report when it is recent (no Graph request),
        // else the report read now.
        let report = match used.mirror.registrations().await? {
            Some(rows) => Some(
                rows.into_iter()
                    .map(|(id, names)| (id, channels::entra_kinds_registered(&names)))
                    .filter(|(_, kinds)| !kinds.is_empty())
                    .collect(),
            ),
            None => coverage::registration_report(directory.as_ref(), |_| true).await?,
        };
        out.entra_read = Some(match report {
            Some(_) => EntraRead::RegistrationReport,
            None => EntraRead::PerUser,
        });
        report
    } else {
        None
    };
    let mut nesting = Nesting::load(store.as_ref()).await?;
    let relevant = Relevant::of(&[set.as_ref()]);
    let mut memo: HashMap<(Vec<u32>, bool), Option<usize>> = HashMap::new();
    let mut pages = latchkey_mirror::UserPages::new(Arc::clone(&store), page);
    while let Some(users) = pages.next().await? {
        let mut todo = Vec::new();
        for user in users {
            let (groups, roles) = nesting.resolve(&user.direct);
            let rows: Vec<usize> = live
                .iter()
                .filter(|(_, g)| groups.contains(g))
                .map(|(i, _)| *i)
                .collect();
            if rows.is_empty() {
                continue;
            }
            if !user.enabled {
                out.disabled += 1;
                continue;
            }
            let key = (relevant.key(&groups), !roles.is_empty());
            let policy = *memo.entry(key).or_insert_with_key(|(k, privileged)| {
                coverage::policy_index(&set, &relevant.groups(k), *privileged)
            });
            todo.push(Candidate { user, rows, policy });
        }
        let assessed = assess(used, &directory, &set, registered.as_ref(), &todo).await?;
        for (c, a) in todo.iter().zip(&assessed) {
            tally(&mut out, policies, &enabled, c, a);
        }
    }
    // Stable, over users met in id order: ties come out as in the Graph path.
    out.unable.sort_by_cached_key(|u| u.upn.to_lowercase());
    Ok(out)
}

/// The report's rows, all zero: enabled policies, then the groups they apply to.
async fn empty(
    store: &dyn Store,
    policies: &[Policy],
    enabled: &[usize],
) -> Result<Coverage, CoverageError> {
    let mut ids: Vec<ObjectId> = Vec::new();
    let mut offered: Vec<MethodKind> = Vec::new();
    for &pi in enabled {
        for g in &policies[pi].applies_to {
            if !ids.contains(&g.id) {
                ids.push(g.id);
            }
        }
        for m in &policies[pi].methods {
            if !offered.contains(m) {
                offered.push(*m);
            }
        }
    }
    // Only groups count: a role's id in `applies_to` is no group Graph would list.
    let known: HashMap<ObjectId, Option<String>> = store
        .mirror_group_names(&ids)
        .await?
        .into_iter()
        .filter(|(_, _, kind)| *kind == GroupKind::Group)
        .map(|(id, name, _)| (id, name))
        .collect();
    let mut out = Coverage::default();
    for &pi in enabled {
        let p = &policies[pi];
        out.policies
            .push(coverage::row(p.name.clone(), None, &p.methods));
    }
    for id in ids {
        let named = enabled
            .iter()
            .flat_map(|&pi| &policies[pi].applies_to)
            .find(|g| g.id == id)
            .and_then(|g| g.name.clone());
        let name = named
            .or_else(|| known.get(&id).cloned().flatten())
            .unwrap_or_else(|| id.to_string());
        let mut row = coverage::row(name, Some(id.to_string()), &offered);
        row.missing = !known.contains_key(&id);
        out.groups.push(row);
    }
    Ok(out)
}

/// The methods of a page's candidates, in their order: enrollments in one store batch; Entra
/// and profile methods where the user's policy accepts them.
async fn assess(
    used: &UsableMirror,
    directory: &Arc<dyn Directory>,
    set: &PolicySet,
    registered: Option<&HashMap<ObjectId, Vec<MethodKind>>>,
    todo: &[Candidate],
) -> Result<Vec<Assessed>, CoverageError> {
    let ids: Vec<ObjectId> = todo.iter().map(|c| c.user.id).collect();
    let mut kinds_of: HashMap<ObjectId, Vec<MethodKind>> = HashMap::new();
    for m in used.mirror.store().enrolled_methods(&ids).await? {
        if m.state == EnrollmentState::Active
            && let Ok(kind) = m.method.parse::<MethodKind>()
        {
            kinds_of.entry(m.subject).or_default().push(kind);
        }
    }
    let mut out: Vec<Assessed> = Vec::with_capacity(todo.len());
    let mut reads: Vec<(usize, ObjectId, bool, bool)> = Vec::new();
    for (i, c) in todo.iter().enumerate() {
        let sources = c
            .policy
            .and_then(|pi| set.policies().get(pi))
            .map_or(&[][..], |p| &p.sources[..]);
        let wants_entra = sources.contains(&MethodSource::Entra);
        let entra = match registered {
            Some(r) if wants_entra => r.get(&c.user.id).cloned().unwrap_or_default(),
            _ => Vec::new(),
        };
        let live_entra = wants_entra && registered.is_none();
        let profile = sources.contains(&MethodSource::Profile);
        if live_entra || profile {
            reads.push((i, c.user.id, live_entra, profile));
        }
        out.push(Assessed {
            policy: c.policy,
            kinds: kinds_of.remove(&c.user.id).unwrap_or_default(),
            entra,
            profile: Vec::new(),
        });
    }
    // Per-user reads, at most PARALLEL at a time.
    let mut reads = reads.into_iter();
    let mut running: JoinSet<Result<(usize, UserReads), CoverageError>> = JoinSet::new();
    loop {
        while running.len() < PARALLEL {
            let Some((i, id, entra, profile)) = reads.next() else {
                break;
            };
            let (directory, mirror) = (Arc::clone(directory), Arc::clone(&used.mirror));
            running.spawn(async move {
                let r = read_user(directory.as_ref(), &mirror, id, entra, profile).await?;
                Ok((i, r))
            });
        }
        match running.join_next().await {
            None => break,
            Some(Ok(Ok((i, (entra, profile))))) => {
                if let Some(a) = out.get_mut(i) {
                    if let Some(e) = entra {
                        a.entra = e;
                    }
                    a.profile = profile;
                }
            }
            // Fail closed, as the Graph path: silently missing users would mislead.
            Some(Ok(Err(e))) => return Err(e),
            Some(Err(_)) => return Err(CoverageError::Task),
        }
    }
    Ok(out)
}

/// Entra methods read live (when asked) and the profile's methods (empty when not asked).
type UserReads = (Option<Vec<MethodKind>>, Vec<MethodKind>);

async fn read_user(
    directory: &dyn Directory,
    mirror: &Mirror,
    id: ObjectId,
    entra: bool,
    profile: bool,
) -> Result<UserReads, CoverageError> {
    // Two Graph requests per user: the fallback when the registration report is refused.
    let entra = match entra {
        true => Some(channels::entra_kinds(directory, &id).await?),
        false => None,
    };
    let profile = match profile {
        // A user gone from the mirror since its page was read has no profile methods.
        true => mirror
            .user(&id)
            .await?
            .map(|u| channels::profile_kinds(&u))
            .unwrap_or_default(),
        false => Vec::new(),
    };
    Ok((entra, profile))
}

/// Counts one assessed candidate into the rows, and lists them if unable to reset.
fn tally(out: &mut Coverage, policies: &[Policy], enabled: &[usize], c: &Candidate, a: &Assessed) {
    out.users += 1;
    let group_rows = |out: &mut Coverage, f: &dyn Fn(&mut CoverageRow)| {
        for &gi in &c.rows {
            if let Some(row) = out.groups.get_mut(gi) {
                f(row);
            }
        }
    };
    let Some((pi, p)) = a.policy.and_then(|pi| Some((pi, policies.get(pi)?))) else {
        group_rows(out, &|row| {
            row.total += 1;
            row.out_of_scope += 1;
            coverage::count_methods(row, &a.kinds);
        });
        return;
    };
    let (ready, accepted) = coverage::ready_for(p, a);
    if let Some(row) = enabled
        .iter()
        .position(|&e| e == pi)
        .and_then(|r| out.policies.get_mut(r))
    {
        coverage::count(row, (ready, accepted.clone()));
    }
    group_rows(out, &|row| coverage::count(row, (ready, accepted.clone())));
    // As at identification: a policy that allows neither action offers no self-service.
    if !ready && (p.allows(Action::Reset) || p.allows(Action::Unlock)) {
        out.unable.push(UnableUser {
            id: c.user.id.to_string(),
            upn: c.user.user_principal_name.clone(),
            display_name: c.user.display_name.clone().unwrap_or_default(),
            policy: p.name.clone(),
            required: p.methods_required,
            enrolled: accepted.iter().map(|k| k.as_str()).collect(),
        });
    }
}
