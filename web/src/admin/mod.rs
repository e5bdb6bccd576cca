//! The admin console (`/admin`): the tenant connection, access policies (list, edit, simulate),
//! and, from their own modules, reports and the audit trail. Every route here is behind
//! [`crate::console::gate`] (a live admin session and current membership of `[admin] group`);
//! each handler still asks for the admitted user with [`crate::console::require`], so a route
//! that somehow escaped the gate would refuse (deny by default).

use std::path::PathBuf;
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_graph::GraphClient;
use time::OffsetDateTime;

use crate::config::Settings;
use crate::console::{self, Console, ConsoleUser};
use crate::portal::Portal;

pub mod audit;
pub mod connection;
pub mod gateways;
pub mod policies;
pub mod policy_delete;
pub mod policy_file;
pub mod reports;
pub mod simulate;

/// What the admin console works with besides the portal's services.
pub struct Admin {
    /// The configuration the portal runs with (tenant, credential, features for the check).
    pub settings: Settings,
    /// The portal's own app-only Graph client (a clone: same token cache, same debug switch).
    pub graph: GraphClient,
    /// The delegated client (hybrid writeback), when there is one.
    pub delegated: Option<GraphClient>,
    /// Where policy files are written (`[policies] dir`).
    pub policies_dir: PathBuf,
    /// The connection page's last test.
    pub connection: connection::ConnectionState,
    /// Until when the time-boxed HTTP debug log is on (`None`: off, or as configured).
    debug_until: Mutex<Option<OffsetDateTime>>,
    /// Policy writes one at a time (validate-then-write must see the files it validated).
    write: tokio::sync::Mutex<()>,
}

impl Admin {
    pub fn new(settings: Settings, graph: GraphClient, delegated: Option<GraphClient>) -> Self {
        Self {
            policies_dir: settings.policies.dir.clone(),
            settings,
            graph,
            delegated,
            connection: connection::ConnectionState::default(),
            debug_until: Mutex::new(None),
            write: tokio::sync::Mutex::new(()),
        }
    }
}

/// The admin console's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(index))
        .configure(connection::configure)
        .configure(gateways::configure)
        .configure(policies::configure)
        .configure(policy_delete::configure)
        .configure(simulate::configure)
        .configure(reports::configure)
        .configure(audit::configure);
}

/// Renders an admin page: the console user's language and the common context (`console_user`,
/// `csrf`, `console`, `section`) merged with `extra`.
pub fn page(
    portal: &Portal,
    req: &HttpRequest,
    user: &ConsoleUser,
    template: &str,
    section: &str,
    extra: serde_json::Value,
) -> HttpResponse {
    let mut ctx = user.context();
    if let Some(c) = ctx.as_object_mut() {
        if let serde_json::Value::Object(e) = extra {
            c.extend(e);
        }
        c.insert("section".into(), section.into());
    }
    portal.render_in(req, user.lang, template, &ctx)
}

/// The admin user and the admin context, or the response that refuses.
#[allow(clippy::result_large_err)] // as console::require
pub(crate) fn admin_of(
    portal: &Portal,
    req: &HttpRequest,
) -> Result<(ConsoleUser, std::sync::Arc<Admin>), HttpResponse> {
    let user = console::require(req, Console::Admin)?;
    match portal.part::<Admin>() {
        Some(a) => Ok((user, a)),
        None => Err(portal.error_page(
            req,
            user.lang,
            StatusCode::NOT_FOUND,
            "console_not_configured",
        )),
    }
}

/// A localized message.
pub(crate) fn msg(portal: &Portal, user: &ConsoleUser, key: &str) -> String {
    portal.templates.catalogs().get(user.lang, key).to_string()
}

/// The form body as name/value pairs (repeated names kept: checkboxes of one group).
pub(crate) fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The value of `name` in a form.
pub(crate) fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

async fn index(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    let user = match console::require(&req, Console::Admin) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let set = portal.services.policies();
    let enabled = set.policies().iter().filter(|p| p.enabled).count();
    page(
        &portal,
        &req,
        &user,
        "admin_index.html",
        "home",
        serde_json::json!({
            "policies": set.policies().len().to_string(),
            "enabled": enabled.to_string(),
        }),
    )
}
