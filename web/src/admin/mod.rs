//! The admin console (`/admin`): the tenant connection, access policies (list, edit, simulate),
//! and, from their own modules, reports and the audit trail. Every route here is behind
//! [`crate::console::gate`] (a live admin session and current membership of `[admin] group`);
//! each handler still asks for the admitted user with [`crate::console::require`], so a route
//! that somehow escaped the gate would refuse (deny by default).

use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::Portal;
use crate::console::{self, Console, ConsoleUser};

pub mod audit;
pub mod reports;

/// The admin console's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(index))
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
    if let (Some(c), serde_json::Value::Object(e)) = (ctx.as_object_mut(), extra) {
        c.extend(e);
        c.insert("section".into(), section.into());
    }
    portal.render_in(req, user.lang, template, &ctx)
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
