//! Unlock without a password change, for a fully verified flow.
//!
//! Cloud accounts have no unlock operation in Graph: smart lockout ends by itself, and a reset
//! ends it at once. What the portal can do is clear an Identity Protection risk flag, which blocks
//! sign-in just like a lock. On-premises unlock (lockoutTime=0) needs the gateway (issue 5); until
//! it is connected the page says so plainly.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_policy::Action;
use latchkey_store::Outcome;

use crate::app::Portal;
use crate::flow;
use crate::reset::{current_policy, verified_flow};
use crate::verification::CsrfForm;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/unlock", web::post().to(unlock));
}

async fn unlock(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let Some((flow, data)) = verified_flow(&portal, &req).await else {
        return flow::expired(&portal);
    };
    let lang = flow::lang(&req, Some((&flow, &data)));
    if !portal
        .services
        .csrf
        .check(&req, &flow.id.to_string(), &form.csrf)
    {
        return portal.error_page(&req, lang, StatusCode::FORBIDDEN, "error_csrf");
    }
    if current_policy(&portal, &flow.subject, Action::Unlock)
        .await
        .is_none()
    {
        let _ = flow::audit(
            &portal,
            &data.correlation_id,
            Some(flow.subject),
            "unlock",
            None,
            Outcome::Denied,
            Some("policy no longer allows unlock"),
        )
        .await;
        return portal.error_page(&req, lang, StatusCode::FORBIDDEN, "unavailable_body");
    }
    let catalogs = portal.templates.catalogs();
    let mut paragraphs = Vec::new();
    let dir = &portal.services.directory;
    let cleared = match dir.is_at_risk(&flow.subject).await {
        Ok(true) => dir.dismiss_risk(&flow.subject).await.is_ok(),
        // Identity Protection needs Entra ID P2 and is throttled hard; not knowing is not fatal.
        Ok(false) | Err(_) => false,
    };
    if cleared {
        paragraphs.push(catalogs.get(lang, "unlock_risk_cleared").to_string());
    }
    paragraphs.push(
        catalogs
            .get(
                lang,
                if data.synced {
                    "unlock_onprem_unavailable"
                } else {
                    "unlock_cloud"
                },
            )
            .to_string(),
    );
    let reason = if cleared {
        "risk dismissed"
    } else if data.synced {
        "on-premises unlock needs the gateway"
    } else {
        "cloud lockout clears by itself"
    };
    if flow::audit(
        &portal,
        &data.correlation_id,
        Some(flow.subject),
        "unlock",
        None,
        Outcome::Success,
        Some(reason),
    )
    .await
    .is_err()
    {
        return portal.error_page(&req, lang, StatusCode::SERVICE_UNAVAILABLE, "error_generic");
    }
    portal.render_in(&req, lang, "result.html", &serde_json::json!({ "title": catalogs.get(lang, "unlock_title"), "paragraphs": paragraphs }))
}
