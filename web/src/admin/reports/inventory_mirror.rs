//! The inventory export read from the directory mirror: the columns of [`super::inventory`],
//! users in id order, a page of [`PAGE`] at a time from the store; groups and roles resolved
//! locally ([`Nesting`]), their names read once per group, the policy evaluated once per
//! combination of policy-named groups ([`Relevant`]).
//!
//! The Entra methods column still costs one Graph request per user (`authentication/methods`,
//! at most [`PARALLEL`] at a time), as in the Graph path: that does not scale to the largest
//! tenants, and the mirror holds no methods (future work).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use latchkey_mirror::Nesting;
use latchkey_policy::PolicySet;
use latchkey_selfservice::directory::Directory;
use latchkey_store::{MirrorListedUser, Store};
use latchkey_types::ObjectId;
use tokio::task::JoinSet;

use super::coverage::PARALLEL;
use super::coverage_mirror::Relevant;
use super::csv::{self, Sink};
use super::inventory::{COLUMNS, entra_cell, labels};
use super::source::UsableMirror;

/// Users read from the store at a time.
pub const PAGE: u32 = 1_000;

/// Writes the whole inventory from the mirror to `sink`; ends the body with an error if the
/// store or Graph fails midway.
pub async fn produce(
    used: UsableMirror,
    directory: Arc<dyn Directory>,
    set: Arc<PolicySet>,
    sink: Sink,
) {
    if let Err(why) = write(used, directory, set, &sink).await {
        tracing::error!(error = %why, "inventory: cannot read the mirror or Graph");
        csv::fail(&sink, "directory or store unavailable").await;
    }
}

/// What the page's users need besides Graph: names of groups and roles, policies per key.
struct Lookups {
    nesting: Nesting,
    names: HashMap<ObjectId, String>,
    relevant: Relevant,
    policies: HashMap<(Vec<u32>, bool), String>,
}

async fn write(
    used: UsableMirror,
    directory: Arc<dyn Directory>,
    set: Arc<PolicySet>,
    sink: &Sink,
) -> Result<(), String> {
    let store = Arc::clone(used.mirror.store());
    let mut look = Lookups {
        nesting: Nesting::load(store.as_ref())
            .await
            .map_err(|e| e.to_string())?,
        names: HashMap::new(),
        relevant: Relevant::of(&[set.as_ref()]),
        policies: HashMap::new(),
    };
    let mut chunk = String::from(csv::BOM);
    csv::push_row(&mut chunk, &COLUMNS);
    let mut methods_allowed = true;
    let mut after = None;
    loop {
        let users = store
            .mirror_users_page(after, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = users.last() else { break };
        after = Some(last.id);
        let ids: Vec<ObjectId> = users.iter().map(|u| u.id).collect();
        let list = store
            .enrolled_methods(&ids)
            .await
            .map_err(|e| e.to_string())?;
        let mut methods_of = labels(list);
        let mut rows: Vec<Vec<String>> = Vec::with_capacity(users.len());
        for u in &users {
            let latchkey = methods_of.remove(&u.id).unwrap_or_default();
            rows.push(cells(store.as_ref(), &mut look, &set, u, latchkey).await?);
        }
        methods_allowed &= entra_column(&directory, &ids, &mut rows, methods_allowed).await?;
        for cells in rows {
            csv::push_row(&mut chunk, &cells);
            if !csv::flush_if_big(sink, &mut chunk).await {
                return Ok(());
            }
        }
    }
    csv::flush(sink, &mut chunk).await;
    Ok(())
}

/// A user's cells but the last (Entra methods, filled in by [`entra_column`]).
async fn cells(
    store: &dyn Store,
    look: &mut Lookups,
    set: &PolicySet,
    u: &MirrorListedUser,
    latchkey: Vec<String>,
) -> Result<Vec<String>, String> {
    let (groups, roles) = look.nesting.resolve(&u.direct);
    let unknown: Vec<ObjectId> = groups
        .iter()
        .chain(&roles)
        .filter(|g| !look.names.contains_key(g))
        .copied()
        .collect();
    if !unknown.is_empty() {
        let found = store
            .mirror_group_names(&unknown)
            .await
            .map_err(|e| e.to_string())?;
        for (id, name, _) in found {
            look.names
                .insert(id, name.unwrap_or_else(|| id.to_string()));
        }
        // Not in the mirror (a dangling edge): named by id, as Graph names a nameless group.
        for id in unknown {
            look.names.entry(id).or_insert_with(|| id.to_string());
        }
    }
    let name = |g: &ObjectId| look.names.get(g).cloned().unwrap_or_else(|| g.to_string());
    let mut group_names: Vec<String> = groups.iter().map(name).collect();
    group_names.sort_by_key(|g| g.to_lowercase());
    let mut role_names: Vec<String> = roles.iter().map(name).collect();
    role_names.sort();
    let policy = if u.enabled {
        policy_name(look, set, &groups, !roles.is_empty())
    } else {
        String::new()
    };
    Ok(vec![
        u.id.to_string(),
        u.user_principal_name.clone(),
        u.display_name.clone().unwrap_or_default(),
        u.enabled.to_string(),
        u.synced.to_string(),
        group_names.join("; "),
        role_names.join("; "),
        policy,
        latchkey.join("; "),
    ])
}

/// The name of the policy that applies, memoized per combination of policy-named groups.
fn policy_name(
    look: &mut Lookups,
    set: &PolicySet,
    groups: &HashSet<ObjectId>,
    privileged: bool,
) -> String {
    let key = (look.relevant.key(groups), privileged);
    let relevant = &look.relevant;
    look.policies
        .entry(key)
        .or_insert_with_key(|(k, privileged)| {
            let groups = relevant.groups(k);
            latchkey_policy::evaluate(
                set,
                latchkey_policy::Subject {
                    groups: &groups,
                    privileged: *privileged,
                },
            )
            .policy
            .map(|p| p.name.clone())
            .unwrap_or_default()
        })
        .clone()
}

/// One user's Entra methods cell and whether reading methods was permitted, or why not read.
type EntraCell = Result<(String, bool), String>;

/// Appends each row's Entra methods cell (one Graph request per user, at most [`PARALLEL`] at a
/// time, none once refused); whether reading methods is still permitted.
async fn entra_column(
    directory: &Arc<dyn Directory>,
    ids: &[ObjectId],
    rows: &mut [Vec<String>],
    mut allowed: bool,
) -> Result<bool, String> {
    let mut todo = ids.iter().copied().enumerate();
    let mut running: JoinSet<(usize, EntraCell)> = JoinSet::new();
    let mut cells: Vec<Option<String>> = vec![None; ids.len()];
    loop {
        while running.len() < PARALLEL {
            let Some((i, id)) = todo.next() else { break };
            let (directory, ask) = (Arc::clone(directory), allowed);
            running.spawn(async move { (i, entra_cell(directory.as_ref(), &id, ask).await) });
        }
        match running.join_next().await {
            None => break,
            Some(Ok((i, Ok((cell, permitted))))) => {
                allowed &= permitted;
                if let Some(slot) = cells.get_mut(i) {
                    *slot = Some(cell);
                }
            }
            Some(Ok((_, Err(why)))) => return Err(why),
            Some(Err(_)) => return Err("inventory task failed".into()),
        }
    }
    for (row, cell) in rows.iter_mut().zip(cells) {
        row.push(cell.unwrap_or_default());
    }
    Ok(allowed)
}
