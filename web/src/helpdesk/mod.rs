//! The helpdesk console (`/helpdesk`): find a user, send a pre-filled reset link, verify a caller,
//! and, after the caller is verified and where the user's policy allows, issue a Temporary Access
//! Pass, delete a lost authentication method or require re-enrollment.
//!
//! Every route sits behind the console gate ([`crate::console::gate`]: a live helpdesk session
//! whose user is, right now, in the helpdesk group); handlers call [`crate::console::require`]
//! first (deny by default). On top of that:
//! - **Scope**: a member only ever sees users who are transitive members of a `[helpdesk] serves`
//!   group. Out-of-scope users look exactly like unknown ones ([`find`]).
//! - **Never a password**: the helpdesk neither sees nor sets one; the reset link only pre-fills
//!   the self-service identify step ([`link`]).
//! - **Verified caller**: acting on the account needs a code the caller read back ([`caller`]),
//!   kept server-side for a few minutes and bound to this member, session and user.
//! - **Four eyes** for privileged targets (directory roles, or members of the admin or helpdesk
//!   group): a second member approves
//!   ([`actions`]).
//! - Every action is audited with the member as actor (`helpdesk.*` events).
//!
//! Console paths are lower-case ASCII with variables in the query string (the gate's rule).

pub mod actions;
pub mod approvals;
pub mod caller;
pub mod case;
pub mod link;
pub mod lookup;
pub mod search;
pub mod unlock;

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_graph::{GraphError, Memberships, User};
use latchkey_policy::{Action, Subject, evaluate};
use latchkey_types::ObjectId;

use crate::console::{self, Console, ConsoleUser};
use crate::portal::Portal;
use latchkey_selfservice::flow::Unrecorded as _;

pub fn configure(cfg: &mut web::ServiceConfig) {
    lookup::configure(cfg);
    link::configure(cfg);
    caller::configure(cfg);
    actions::configure(cfg);
    approvals::configure(cfg);
}

/// A user the member may serve, as read from the directory for this request.
pub struct Target {
    pub user: User,
    pub memberships: Memberships,
    /// A (transitive) member of the `[admin] group` or `[helpdesk] group`: the consoles'
    /// own people, as powerful over the portal as a directory role is over the tenant.
    pub console_member: bool,
}

impl Target {
    /// Holds a directory role or is in a console group: actions need a second member's approval.
    pub fn privileged(&self) -> bool {
        self.memberships.has_any_role() || self.console_member
    }

    /// The policy that applies now and allows `action` (fresh membership: this request's).
    pub fn policy_allowing(
        &self,
        portal: &Portal,
        action: Action,
    ) -> Option<latchkey_policy::Policy> {
        let groups: HashSet<ObjectId> = self.memberships.groups.iter().map(|g| g.id).collect();
        let set = portal.services.policies();
        let evaluation = evaluate(
            &set,
            Subject {
                groups: &groups,
                // The policy's notion of privileged is the one self-service uses (directory
                // roles), so the helpdesk never applies a different policy than the user gets.
                privileged: self.memberships.has_any_role(),
            },
        );
        evaluation.policy.filter(|p| p.allows(action)).cloned()
    }
}

/// Finds the user `query` names (UPN, mail or object id) if, and only if, the helpdesk may
/// serve them: a transitive member of a `[helpdesk] serves` group. Unknown, ambiguous and
/// out-of-scope users are all `None`.
pub async fn find(portal: &Portal, query: &str) -> Result<Option<Target>, GraphError> {
    let query = query.trim();
    if query.is_empty() || query.len() > 320 {
        return Ok(None);
    }
    let dir = &portal.services.directory;
    // By id (every action on a looked-up user), the account and its groups come in one request.
    let (user, memberships) = match query.parse::<ObjectId>() {
        Ok(id) => match dir.user_with_memberships(&id).await {
            // A membership read that failed is a fault, not an unknown user.
            Ok(found) => (found.user, found.memberships?),
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        },
        Err(_) => match dir.find_user(&query.to_ascii_lowercase()).await? {
            Some(user) => {
                let memberships = dir.memberships(&user.id).await?;
                (user, memberships)
            }
            None => return Ok(None),
        },
    };
    let Some(consoles) = portal.part::<crate::console::Consoles>() else {
        return Ok(None);
    };
    if !consoles.serves.iter().any(|g| memberships.is_member_of(g)) {
        return Ok(None);
    }
    // `memberships` is the transitive list, so nested console groups count too.
    let console_member = [Console::Admin, Console::Helpdesk]
        .into_iter()
        .filter_map(|c| consoles.group(c))
        .any(|g| memberships.is_member_of(&g));
    Ok(Some(Target {
        user,
        memberships,
        console_member,
    }))
}

/// The gate's helpdesk user, or the response to send.
// The error is the response itself, sent at once: boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
pub fn member(req: &HttpRequest) -> Result<ConsoleUser, HttpResponse> {
    console::require(req, Console::Helpdesk)
}

/// [`member`] for a POST: also checks the form's CSRF token against the session.
#[allow(clippy::result_large_err)]
pub fn member_post(
    portal: &Portal,
    req: &HttpRequest,
    csrf: &str,
) -> Result<ConsoleUser, HttpResponse> {
    let m = member(req)?;
    if !m.check_csrf(portal, req, csrf) {
        return Err(portal.error_page(req, m.lang, StatusCode::FORBIDDEN, "error_csrf"));
    }
    Ok(m)
}

/// [`find`] for a handler: the target, or the "no such user you may serve" page (404, the same
/// for unknown and out-of-scope users), or 503 when the directory is unavailable.
pub async fn target(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    query: &str,
) -> Result<Target, HttpResponse> {
    let started = tokio::time::Instant::now();
    match find(portal, query).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => {
            // Unknown answers fast, out of scope after the membership read: both wait out the
            // portal's deadline so the time taken does not tell them apart either.
            tokio::time::sleep_until(started + portal.services.deadline).await;
            Err(lookup::not_found(portal, req, m, query))
        }
        Err(e) => {
            tracing::error!(error = %e, "helpdesk: directory unavailable");
            Err(portal.error_page(
                req,
                m.lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_generic",
            ))
        }
    }
}

/// The preamble of every POST about one user: the member (gate and CSRF) and the user they
/// may serve, or the response to send. One place so every handler checks both, in this order.
#[allow(clippy::result_large_err)]
pub async fn member_target(
    portal: &Portal,
    req: &HttpRequest,
    csrf: &str,
    query: &str,
) -> Result<(ConsoleUser, Target), HttpResponse> {
    let m = member_post(portal, req, csrf)?;
    let t = target(portal, req, &m, query).await?;
    Ok((m, t))
}

/// [`member_target`] for a POST that acts on the account: the member's own account is refused
/// and audited as `event` ([`refuse_self`]).
#[allow(clippy::result_large_err)]
pub async fn member_acting_on(
    portal: &Portal,
    req: &HttpRequest,
    csrf: &str,
    query: &str,
    event: &str,
) -> Result<(ConsoleUser, Target), HttpResponse> {
    let (m, t) = member_target(portal, req, csrf, query).await?;
    if let Some(r) = refuse_self(portal, req, &m, &t, event).await {
        return Err(r);
    }
    Ok((m, t))
}

/// Members never act on their own account through the console (that would be self-service with
/// the helpdesk's powers): the page says so, the attempt is audited.
pub async fn refuse_self(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    t: &Target,
    what: &str,
) -> Option<HttpResponse> {
    if t.user.id != m.oid {
        return None;
    }
    m.audit(
        portal,
        what,
        Some(t.user.id),
        latchkey_store::Outcome::Denied,
        Some("own account"),
        serde_json::Value::Null,
    )
    .await
    .or_log();
    let msg = message(portal, m, "helpdesk_error_self", &[]);
    Some(lookup::render_user(portal, req, m, t, Some(msg), StatusCode::FORBIDDEN).await)
}

/// A 303 to a console page (local paths only).
pub fn see_other(path: String) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", path))
        .finish()
}

/// The user page of `id`.
pub fn user_path(id: &ObjectId) -> String {
    format!("/helpdesk/user?q={id}")
}

/// Renders a helpdesk page: the member's context plus `extra` (a JSON object).
pub fn page(
    portal: &Portal,
    req: &HttpRequest,
    m: &ConsoleUser,
    name: &str,
    extra: serde_json::Value,
    status: StatusCode,
) -> HttpResponse {
    let mut ctx = m.context();
    if let (Some(c), serde_json::Value::Object(e)) = (ctx.as_object_mut(), extra) {
        c.extend(e);
        // The navigation marks the current section; every page has one (maybe none).
        c.entry("section").or_insert_with(|| "".into());
        c.entry("errors").or_insert_with(|| serde_json::json!([]));
    }
    let mut r = portal.render_in(req, m.lang, name, &ctx);
    *r.status_mut() = status;
    r
}

/// A localized message with `{name}` placeholders filled in.
pub fn message(portal: &Portal, m: &ConsoleUser, key: &str, vars: &[(&str, &str)]) -> String {
    let mut text = portal.templates.catalogs().get(m.lang, key).to_string();
    for (k, v) in vars {
        text = text.replace(&format!("{{{k}}}"), v);
    }
    text
}
