//! Unlock without a password change, for a fully verified flow.
//!
//! Cloud accounts have no unlock operation in Graph: smart lockout ends by itself, and a reset
//! ends it at once. What the portal can do is clear an Identity Protection risk flag, which blocks
//! sign-in just like a lock. On-premises unlock (lockoutTime=0) needs the gateway (issue 5); until
//! it is connected the page says so plainly.

use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::Action;
use latchkey_store::Outcome;

use crate::app::Portal;
use crate::reset::acting_step;
use crate::verification::CsrfForm;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/unlock", web::post().to(unlock));
}

async fn unlock(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let (step, _policy) = match acting_step(&portal, &req, &form.csrf, Action::Unlock).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let (lang, subject) = (step.lang, step.flow.subject);
    let catalogs = portal.templates.catalogs();
    let dir = &portal.services.directory;
    let cleared = match dir.is_at_risk(&subject).await {
        Ok(true) => dir.dismiss_risk(&subject).await.is_ok(),
        // Identity Protection needs Entra ID P2 and is throttled hard; not knowing is not fatal.
        Ok(false) | Err(_) => false,
    };
    let mut paragraphs = Vec::new();
    if cleared {
        paragraphs.push(catalogs.get(lang, "unlock_risk_cleared").to_string());
    }
    let synced = step.data.synced;
    paragraphs.push(
        catalogs
            .get(
                lang,
                if synced {
                    "unlock_onprem_unavailable"
                } else {
                    "unlock_cloud"
                },
            )
            .to_string(),
    );
    let reason = if cleared {
        "risk dismissed"
    } else if synced {
        "on-premises unlock needs the gateway"
    } else {
        "cloud lockout clears by itself"
    };
    if step
        .audit(&portal, "unlock", None, Outcome::Success, Some(reason))
        .await
        .is_err()
    {
        return step.unavailable(&portal, &req);
    }
    let title = catalogs.get(lang, "unlock_title");
    portal.render_in(
        &req,
        lang,
        "result.html",
        &serde_json::json!({ "title": title, "paragraphs": paragraphs }),
    )
}
