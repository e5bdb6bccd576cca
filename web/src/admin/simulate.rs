//! Simulation: what a user would get under the running policies (or under a draft), and why
//! ([`crate::policy_cli::explain_user`], the same code as `latchkey policy explain`); and the
//! blast radius of a draft: how many users it would stop from resetting and how many it would
//! let in, computed from Graph group membership.
//!
//! **Blast radius, what is counted.** Users outside every group the two sets name match no
//! policy either way, so the population is the transitive user members of every group named in
//! `applies_to` or `excludes` of either set (`GET /groups/{id}/transitiveMembers/microsoft.graph.user`,
//! paged, at most [`MAX_USERS`] users in all). Disabled accounts are left out (they cannot use
//! self-service). Each user is evaluated against both sets with the groups seen in those pages;
//! whether the user is privileged (a directory role) is looked up only when it changes the
//! outcome (at most [`MAX_ROLE_LOOKUPS`] lookups, `transitiveMemberOf`). "Able to reset" means
//! the deciding policy allows the `reset` action.
//!
//! This is the Graph path; while the directory mirror is usable the blast radius is computed
//! from it instead, over every user and without bounds ([`blast_mirror`]).

pub mod blast_mirror;

use std::collections::{HashMap, HashSet};

use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_graph::GraphClient;
use latchkey_graph::NextPage;
use latchkey_policy::{Action, PolicySet, Subject, evaluate};
use latchkey_types::ObjectId;
use serde::{Deserialize, Serialize};

use super::{AdminPage, msg, page};
use crate::console::ConsoleUser;
use crate::portal::Portal;

/// Most users the blast radius reads from Graph.
pub const MAX_USERS: usize = 20_000;
/// Most per-user role lookups.
pub const MAX_ROLE_LOOKUPS: usize = 500;
/// Most names listed per direction (the counts are always complete).
pub(crate) const MAX_LISTED: usize = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/simulate", web::get().to(simulate));
}

/// The effect of replacing one policy set by another.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Blast {
    /// Groups named by either set whose members were read.
    pub groups: usize,
    /// Enabled users in those groups (the population compared).
    pub users: usize,
    /// Disabled accounts seen and left out.
    pub disabled: usize,
    /// Users able to reset now who would not be.
    pub blocked: usize,
    /// Users not able to reset now who would be.
    pub admitted: usize,
    /// Users who keep reset but under another policy.
    pub moved: usize,
    /// Up to 50 UPNs of each direction.
    pub blocked_names: Vec<String>,
    pub admitted_names: Vec<String>,
    /// Privileged-status lookups made.
    pub role_lookups: usize,
    /// True when a bound was hit (the counts cover what was read).
    pub truncated: bool,
    /// Where the users and their groups were read.
    pub source: crate::admin::reports::source::Source,
    /// The mirror's last sync (UTC) and its age in seconds, when it was the source.
    pub mirror_as_of: Option<String>,
    pub mirror_age_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Member {
    id: ObjectId,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    account_enabled: Option<bool>,
}

fn referenced(sets: [&PolicySet; 2]) -> Vec<ObjectId> {
    let mut out: Vec<ObjectId> = Vec::new();
    for set in sets {
        for p in set.policies() {
            for g in p.applies_to.iter().chain(&p.excludes) {
                if !out.contains(&g.id) {
                    out.push(g.id);
                }
            }
        }
    }
    out
}

/// (policy name, may reset) for a user.
pub(crate) fn outcome(
    set: &PolicySet,
    groups: &HashSet<ObjectId>,
    privileged: bool,
) -> (Option<String>, bool) {
    let e = evaluate(set, Subject { groups, privileged });
    (
        e.policy.map(|p| p.name.clone()),
        e.policy.is_some_and(|p| p.allows(Action::Reset)),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    Blocked,
    Admitted,
    Moved,
}

pub(crate) fn classify(before: &(Option<String>, bool), after: &(Option<String>, bool)) -> Effect {
    match (before.1, after.1) {
        (true, false) => Effect::Blocked,
        (false, true) => Effect::Admitted,
        (true, true) if before.0 != after.0 => Effect::Moved,
        _ => Effect::None,
    }
}

/// Compares `old` and `new` over the users of every group either names.
pub async fn blast_radius(
    graph: &GraphClient,
    old: &PolicySet,
    new: &PolicySet,
) -> Result<Blast, latchkey_graph::GraphError> {
    let groups = referenced([old, new]);
    let mut blast = Blast {
        groups: groups.len(),
        ..Blast::default()
    };
    // user -> (upn, groups among the referenced ones)
    let mut users: HashMap<ObjectId, (String, HashSet<ObjectId>)> = HashMap::new();
    let mut disabled: HashSet<ObjectId> = HashSet::new();
    'groups: for g in &groups {
        let mut next: Option<NextPage> = None;
        loop {
            let page = graph
                .group_users_page::<Member>(
                    g,
                    "id,userPrincipalName,accountEnabled",
                    999,
                    next.as_ref(),
                )
                .await?;
            for m in page.items {
                if m.account_enabled == Some(false) {
                    disabled.insert(m.id);
                    continue;
                }
                if !users.contains_key(&m.id) && users.len() >= MAX_USERS {
                    blast.truncated = true;
                    break 'groups;
                }
                let entry = users.entry(m.id).or_insert_with(|| {
                    (
                        m.user_principal_name.clone().unwrap_or_default(),
                        HashSet::new(),
                    )
                });
                entry.1.insert(*g);
            }
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
    }
    blast.users = users.len();
    blast.disabled = disabled.len();
    let mut sorted: Vec<(&ObjectId, &(String, HashSet<ObjectId>))> = users.iter().collect();
    sorted.sort_by(|a, b| a.1.0.cmp(&b.1.0));
    for (id, (upn, member_of)) in sorted {
        // What the change does to this user if not privileged, and if privileged: the role
        // look-up is needed only when the two differ.
        let change = |privileged: bool| {
            classify(
                &outcome(old, member_of, privileged),
                &outcome(new, member_of, privileged),
            )
        };
        let (plain, privileged) = (change(false), change(true));
        let effect = if plain == privileged {
            plain
        } else if blast.role_lookups < MAX_ROLE_LOOKUPS {
            blast.role_lookups += 1;
            if graph.transitive_memberships(id).await?.roles.is_empty() {
                plain
            } else {
                privileged
            }
        } else {
            blast.truncated = true;
            continue;
        };
        match effect {
            Effect::Blocked => {
                blast.blocked += 1;
                if blast.blocked_names.len() < MAX_LISTED {
                    blast.blocked_names.push(upn.clone());
                }
            }
            Effect::Admitted => {
                blast.admitted += 1;
                if blast.admitted_names.len() < MAX_LISTED {
                    blast.admitted_names.push(upn.clone());
                }
            }
            Effect::Moved => blast.moved += 1,
            Effect::None => {}
        }
    }
    Ok(blast)
}

/// One user under the running set and under a draft, for the edit form's preview.
pub async fn compare(
    portal: &Portal,
    user: &ConsoleUser,
    graph: &GraphClient,
    current: &PolicySet,
    draft: &PolicySet,
    who: &str,
) -> serde_json::Value {
    let now = crate::policy_cli::explain_user(graph, current, who).await;
    let then = crate::policy_cli::explain_user(graph, draft, who).await;
    match (now, then) {
        (Ok(Some(now)), Ok(Some(then))) => serde_json::json!({ "now": now, "draft": then }),
        (Ok(None), _) | (_, Ok(None)) => {
            serde_json::json!({ "error": msg(portal, user, "admin_simulate_unknown_user") })
        }
        _ => serde_json::json!({ "error": msg(portal, user, "admin_graph_unavailable") }),
    }
}

#[derive(Deserialize)]
struct SimulateQuery {
    user: Option<String>,
}

async fn simulate(
    req: HttpRequest,
    portal: web::Data<Portal>,
    query: web::Query<SimulateQuery>,
    AdminPage { user, admin }: AdminPage,
) -> HttpResponse {
    let who = query.user.as_deref().unwrap_or("").trim().to_string();
    let mut result = serde_json::Value::Null;
    if !who.is_empty() {
        let set = portal.services.policies();
        result = match crate::policy_cli::explain_user(&admin.graph, &set, &who).await {
            Ok(Some(x)) => serde_json::json!({ "now": x }),
            Ok(None) => {
                serde_json::json!({ "error": msg(&portal, &user, "admin_simulate_unknown_user") })
            }
            Err(e) => {
                tracing::warn!(error = %e, "admin: simulation failed");
                serde_json::json!({ "error": msg(&portal, &user, "admin_graph_unavailable") })
            }
        };
    }
    page(
        &portal,
        &req,
        &user,
        "admin_simulate.html",
        "simulate",
        serde_json::json!({ "who": who, "result": result }),
    )
}
