//! The inventory export: every user of the tenant with their groups, directory roles, the
//! policy that applies, the methods enrolled in Latchkey and the authentication methods Entra
//! holds for them (the "asset view").
//!
//! **Bounded work.** Users are read one Graph page at a time (999, `$select` of five fields) and
//! written out before the next page is read; per page, one batched store read of enrolled
//! methods (no secret decrypted); per user, one request for memberships and one for
//! `authentication/methods`, at most [`super::coverage::PARALLEL`] at a time. Memory holds one
//! page of users and the CSV chunks not yet sent. When the app lacks
//! `UserAuthenticationMethod.Read.All` (403), the column says so and no further method requests
//! are made.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use latchkey_graph::AuthMethod;
use latchkey_policy::{PolicySet, Subject, evaluate};
use latchkey_store::{EnrolledMethod, EnrollmentState, Store};
use latchkey_types::ObjectId;
use tokio::task::JoinSet;

use super::coverage::PARALLEL;
use super::csv::{self, Sink};
use latchkey_selfservice::directory::{Directory, UserSummary};

/// The header row.
pub const COLUMNS: [&str; 10] = [
    "object_id",
    "user_principal_name",
    "display_name",
    "account_enabled",
    "synced",
    "groups",
    "directory_roles",
    "policy",
    "latchkey_methods",
    "entra_methods",
];

/// What the Entra methods cell says when the app may not read methods.
pub const NOT_PERMITTED: &str = "not permitted (UserAuthenticationMethod.Read.All)";

/// Writes the whole inventory to `sink`; ends the body with an error if the directory or the
/// store fails midway.
pub async fn produce(
    directory: Arc<dyn Directory>,
    store: Arc<dyn Store>,
    set: Arc<PolicySet>,
    sink: Sink,
) {
    let mut chunk = String::from(csv::BOM);
    csv::push_row(&mut chunk, &COLUMNS);
    let mut methods_allowed = true;
    let mut next = None;
    loop {
        let page = match directory.users_page(next.as_ref()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "inventory: cannot list users");
                return csv::fail(&sink, "directory unavailable").await;
            }
        };
        // The page's enrolled methods in one batch (no secret read).
        let ids: Vec<ObjectId> = page.items.iter().map(|u| u.id).collect();
        let mut methods_of = match store.enrolled_methods(&ids).await {
            Ok(list) => labels(list),
            Err(e) => {
                tracing::error!(error = %e, "inventory: cannot read enrollments");
                return csv::fail(&sink, "store unavailable").await;
            }
        };
        // One page at a time, rows in the directory's order.
        let mut rows: Vec<Option<Vec<String>>> = vec![None; page.items.len()];
        let mut users = page.items.into_iter().enumerate();
        let mut running: JoinSet<(usize, RowResult)> = JoinSet::new();
        loop {
            while running.len() < PARALLEL {
                let Some((i, u)) = users.next() else { break };
                let (directory, set) = (Arc::clone(&directory), Arc::clone(&set));
                let ask_methods = methods_allowed;
                let latchkey = methods_of.remove(&u.id).unwrap_or_default();
                running.spawn(async move {
                    (
                        i,
                        row(directory.as_ref(), &set, u, latchkey, ask_methods).await,
                    )
                });
            }
            match running.join_next().await {
                None => break,
                Some(Ok((i, Ok((cells, permitted))))) => {
                    methods_allowed &= permitted;
                    rows[i] = Some(cells);
                }
                Some(Ok((_, Err(why)))) => {
                    tracing::error!(error = %why, "inventory: cannot read a user");
                    return csv::fail(&sink, "directory or store unavailable").await;
                }
                Some(Err(_)) => return csv::fail(&sink, "inventory task failed").await,
            }
        }
        for cells in rows.into_iter().flatten() {
            csv::push_row(&mut chunk, &cells);
            if !csv::flush_if_big(&sink, &mut chunk).await {
                return;
            }
        }
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    csv::flush(&sink, &mut chunk).await;
}

/// One user's cells and whether reading methods was permitted, or why the user could not be read.
type RowResult = Result<(Vec<String>, bool), String>;

/// One user's cells, and whether reading methods was permitted.
async fn row(
    directory: &dyn Directory,
    set: &PolicySet,
    u: UserSummary,
    latchkey: Vec<String>,
    ask_methods: bool,
) -> RowResult {
    let memberships = directory
        .memberships(&u.id)
        .await
        .map_err(|e| e.to_string())?;
    let mut groups: Vec<String> = memberships
        .groups
        .iter()
        .map(|g| g.display_name.clone().unwrap_or_else(|| g.id.to_string()))
        .collect();
    groups.sort_by_key(|g| g.to_lowercase());
    let mut roles: Vec<String> = memberships
        .roles
        .iter()
        .map(|r| r.display_name.clone().unwrap_or_else(|| r.id.to_string()))
        .collect();
    roles.sort();
    let ids: HashSet<ObjectId> = memberships.groups.iter().map(|g| g.id).collect();
    let policy = if u.account_enabled == Some(false) {
        String::new()
    } else {
        evaluate(
            set,
            Subject {
                groups: &ids,
                privileged: !memberships.roles.is_empty(),
            },
        )
        .policy
        .map(|p| p.name.clone())
        .unwrap_or_default()
    };
    let (entra, permitted) = entra_cell(directory, &u.id, ask_methods).await?;
    let flag = |b: Option<bool>, default: bool| b.unwrap_or(default).to_string();
    Ok((
        vec![
            u.id.to_string(),
            u.user_principal_name.unwrap_or_default(),
            u.display_name.unwrap_or_default(),
            flag(u.account_enabled, true),
            flag(u.on_premises_sync_enabled, false),
            groups.join("; "),
            roles.join("; "),
            policy,
            latchkey.join("; "),
            entra,
        ],
        permitted,
    ))
}

/// The Latchkey methods cell's entries per user: `method`, or `method (pending)`.
pub(super) fn labels(list: Vec<EnrolledMethod>) -> HashMap<ObjectId, Vec<String>> {
    let mut out: HashMap<ObjectId, Vec<String>> = HashMap::new();
    for m in list {
        let label = match m.state {
            EnrollmentState::Active => m.method,
            EnrollmentState::Pending => format!("{} (pending)", m.method),
        };
        out.entry(m.subject).or_default().push(label);
    }
    out
}

/// The Entra methods cell and whether reading methods was permitted (`false`: stop asking).
pub(super) async fn entra_cell(
    directory: &dyn Directory,
    id: &ObjectId,
    ask_methods: bool,
) -> Result<(String, bool), String> {
    Ok(if !ask_methods {
        (NOT_PERMITTED.to_string(), false)
    } else {
        match directory.auth_methods(id).await {
            Ok(list) => (describe(&list), true),
            Err(e) if e.status() == Some(403) => (NOT_PERMITTED.to_string(), false),
            Err(e) => return Err(e.to_string()),
        }
    })
}

/// `email; phone x3; password`: method types by their Graph names, counted.
pub fn describe(methods: &[AuthMethod]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for m in methods {
        let t = m.odata_type();
        let short = t
            .strip_prefix("#microsoft.graph.")
            .unwrap_or(&t)
            .trim_end_matches("AuthenticationMethod")
            .to_string();
        *counts.entry(short).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(k, n)| if n == 1 { k } else { format!("{k} x{n}") })
        .collect::<Vec<_>>()
        .join("; ")
}
