//! The admin console (`/admin`): the tenant connection, access policies (list, edit, simulate),
//! and, from their own modules, reports and the audit trail. Every route here is behind
//! [`crate::console::gate`] (a live admin session and current membership of `[admin] group`);
//! each handler still asks for the admitted user with [`crate::console::require`], so a route
//! that somehow escaped the gate would refuse (deny by default).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use latchkey_graph::GraphClient;
use time::OffsetDateTime;

use crate::config::Settings;
use crate::console::ConsoleUser;
use crate::error::WebError;
use crate::extract::{AdminConsole, Member};
use crate::portal::Portal;

pub mod audit;
pub mod connection;
pub mod directory;
pub mod gateways;
pub mod policies;
pub mod policy_delete;
pub mod policy_file;
pub mod policy_save;
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
        .configure(directory::configure)
        .configure(policies::configure)
        .configure(policy_save::configure)
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

/// The admin user the gate admitted and the admin console's context, for a handler
/// (`FromRequest`): refused with 403 outside the admin gate, 404 when this portal serves no admin
/// console.
pub(crate) struct AdminPage {
    pub user: ConsoleUser,
    pub admin: Arc<Admin>,
}

impl FromRequest for AdminPage {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let page = Member::<AdminConsole>::from_request(req, payload)
            .into_inner()
            .and_then(|member| {
                let user = member.user;
                let admin = req
                    .app_data::<web::Data<Portal>>()
                    .and_then(|p| p.part::<Admin>())
                    .ok_or_else(|| {
                        let status = StatusCode::NOT_FOUND;
                        actix_web::Error::from(WebError::page(
                            status,
                            "console_not_configured",
                            user.lang,
                        ))
                    })?;
                Ok(AdminPage { user, admin })
            });
        std::future::ready(page)
    }
}

/// An admin POST (`FromRequest`): [`AdminPage`] and the form as name/value pairs (repeated
/// names kept: checkboxes of one group), its CSRF token checked against the admin's session.
pub(crate) struct AdminPost {
    pub user: ConsoleUser,
    pub admin: Arc<Admin>,
    pub pairs: Vec<(String, String)>,
}

impl FromRequest for AdminPost {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let page = AdminPage::from_request(req, payload).into_inner();
        let body = web::Bytes::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let AdminPage { user, admin } = page?;
            let pairs = form_pairs(&body.await?);
            let portal = req
                .app_data::<web::Data<Portal>>()
                .ok_or(WebError::Forbidden)?;
            if !user.check_csrf(portal, &req, field(&pairs, "csrf")) {
                return Err(WebError::Csrf(user.lang).into());
            }
            Ok(AdminPost { user, admin, pairs })
        })
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

async fn index(
    req: HttpRequest,
    portal: web::Data<Portal>,
    user: Member<AdminConsole>,
) -> HttpResponse {
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
