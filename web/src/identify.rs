//! Step 1 of self-service, the page: the user says who they are. Whatever they type, the answer is
//! the same redirect after the same time (docs/security.md, principle 1); the decision is
//! `latchkey_selfservice::identify`'s.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use latchkey_selfservice::identify::{self, StartError};
use serde::{Deserialize, Serialize};

use crate::error::WebError;
use crate::flow::{self, RefusalPage as _};
use crate::portal::Portal;
use crate::render::FieldError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/start", web::post().to(start));
}

/// Name of the pre-flow cookie that anchors the identify form's CSRF token.
fn pre_cookie_name(portal: &Portal) -> String {
    portal.services.cookies.name("latchkey-pre")
}

#[derive(Serialize, Default)]
struct IndexPage {
    enabled: bool,
    csrf: String,
    login: String,
    login_error: Option<String>,
    errors: Vec<FieldError>,
}

/// `GET /`: the first page (also the kiosk's, `crate::kiosk`).
pub(crate) async fn index(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    let (pre, fresh) = match req.cookie(&pre_cookie_name(&portal)) {
        Some(c) if c.value().len() >= 22 => (c.value().to_string(), false),
        _ => match random_id() {
            Ok(id) => (id, true),
            Err(e) => {
                tracing::error!(error = %e, "no randomness for the form's anchor");
                let lang = flow::lang(&req, None);
                return portal.error_page(
                    &req,
                    lang,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "error_generic",
                );
            }
        },
    };
    let page = IndexPage {
        enabled: true,
        csrf: portal.services.csrf.token(&pre),
        ..IndexPage::default()
    };
    let lang = flow::lang(&req, None);
    let mut resp = portal.render_in(&req, lang, "index.html", &page);
    if fresh {
        resp = crate::portal::with_cookie(resp, &pre_cookie(&portal, pre));
    }
    resp
}

fn pre_cookie(portal: &Portal, value: String) -> Cookie<'static> {
    (portal.services.cookies).cookie("latchkey-pre", value, SameSite::Strict)
}

/// The anchor of the identify form's CSRF token (256 random bits); never a predictable value.
fn random_id() -> Result<String, latchkey_types::random::NoRandomness> {
    let b = latchkey_types::random::bytes::<32>()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

#[derive(Deserialize)]
pub struct StartForm {
    csrf: String,
    login: String,
}

async fn start(
    req: HttpRequest,
    portal: web::Data<Portal>,
    form: web::Form<StartForm>,
) -> Result<HttpResponse, WebError> {
    let lang = flow::lang(&req, None);
    let pre = req
        .cookie(&pre_cookie_name(&portal))
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    if pre.is_empty() || !portal.services.csrf.check(&req, &pre, &form.csrf) {
        return Err(WebError::Csrf(lang));
    }
    let retry = |message: String, status| {
        let page = IndexPage {
            enabled: true,
            csrf: portal.services.csrf.token(&pre),
            login: form.login.chars().take(320).collect(),
            login_error: Some(message.clone()),
            errors: vec![FieldError {
                field: "login",
                message,
            }],
        };
        let mut r = portal.render_in(&req, lang, "index.html", &page);
        *r.status_mut() = status;
        r
    };
    let client = flow::client(&portal, &req);
    Ok(
        match identify::start_in(&portal.services, &form.login, &client, Some(lang.tag())).await {
            Ok(started) => {
                let resp = flow::see_other("/verify");
                crate::portal::with_cookie(
                    resp,
                    &crate::flow_cookie::flow_cookie(&portal, &started.token),
                )
            }
            Err(StartError::Refused(refusal)) => {
                retry(refusal.message(&portal, lang), refusal.status())
            }
            Err(StartError::InvalidLogin) => {
                let catalogs = portal.templates.catalogs();
                let message = catalogs.get(lang, "error_login_invalid").to_string();
                retry(message, StatusCode::BAD_REQUEST)
            }
            Err(StartError::Plan(e)) => {
                tracing::error!(error = %e, "identify: cannot start the flow");
                return Err(WebError::unavailable(lang));
            }
        },
    )
}
