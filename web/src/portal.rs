//! What every handler shares: the self-service back end, the templates and branding, and the
//! optional parts of this instance; rendering a page or an error page in the request's language.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

use crate::i18n::Lang;
use crate::render::{Brand, KioskView, PageBasics, Templates};
use crate::services::Services;

/// What every handler may need. Built once at start-up; cheap to clone (Arcs inside).
#[derive(Clone)]
pub struct Portal {
    pub templates: Arc<Templates>,
    pub brand: Arc<Brand>,
    pub services: Arc<Services>,
    /// What this instance serves besides self-service, by type: the enrollment sign-in
    /// (`signin::SignIn`), the consoles' access control (`console::Consoles`), the admin
    /// console's context (`admin::Admin`), the helpdesk's link lifetime, the demo outbox. The
    /// modules that own them read them with [`Portal::part`]; the portal names none of them,
    /// so they hang off it and not the other way round.
    pub parts: Parts,
}

impl Portal {
    pub fn new(brand: Brand, services: Services) -> anyhow::Result<Self> {
        let templates = Templates::load().map_err(|e| anyhow::anyhow!(e))?;
        Ok(Self {
            templates: Arc::new(templates),
            brand: Arc::new(brand),
            services: Arc::new(services),
            parts: Parts::default(),
        })
    }

    /// The part of type `T` this instance serves, if any.
    pub fn part<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.parts.get::<T>()
    }

    /// Renders a page in the browser's language (pages before a flow exists).
    pub fn render(
        &self,
        req: &HttpRequest,
        name: &str,
        extra: &impl serde::Serialize,
    ) -> HttpResponse {
        self.render_in(req, crate::i18n::for_request(req, None), name, extra)
    }

    /// Renders a page in `lang` with the request's CSP nonce.
    pub fn render_in(
        &self,
        req: &HttpRequest,
        lang: Lang,
        name: &str,
        extra: &impl serde::Serialize,
    ) -> HttpResponse {
        let kiosk = req.extensions().get::<Arc<KioskView>>().map(Arc::clone);
        let basics = PageBasics {
            nonce: &CspNonce::of(req),
            here: &here(req),
            kiosk: kiosk.as_deref(),
        };
        match self.templates.page(name, lang, &self.brand, &basics, extra) {
            Ok(html) => HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header(("Content-Language", lang.tag()))
                .body(html),
            Err(e) => {
                tracing::error!(error = %e, "template rendering failed");
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body("internal error")
            }
        }
    }

    /// The error page with one localized message, and the given status.
    pub fn error_page(
        &self,
        req: &HttpRequest,
        lang: Lang,
        status: StatusCode,
        message_key: &str,
    ) -> HttpResponse {
        let message = self.templates.catalogs().get(lang, message_key).to_string();
        let mut r = self.render_in(
            req,
            lang,
            "error.html",
            &serde_json::json!({ "message": message }),
        );
        *r.status_mut() = status;
        r
    }
}

/// The CSP nonce of the current request; templates put it on their `<style>`/`<script>` tags.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

impl CspNonce {
    /// The nonce set by the headers middleware (`security::headers`), or a fixed never-matching value if the middleware is absent.
    pub fn of(req: &HttpRequest) -> String {
        req.extensions()
            .get::<CspNonce>()
            .map_or_else(|| "missing".into(), |n| n.0.clone())
    }
}

/// The optional parts of a portal, one value per type, set while the portal is built.
#[derive(Clone, Default)]
pub struct Parts(HashMap<TypeId, Arc<dyn Any + Send + Sync>>);

impl Parts {
    /// Adds (or replaces) the part of type `T`.
    pub fn insert<T: Any + Send + Sync>(&mut self, part: Arc<T>) {
        self.0.insert(TypeId::of::<T>(), part);
    }

    /// The part of type `T`, if set.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let part = Arc::clone(self.0.get(&TypeId::of::<T>())?);
        part.downcast::<T>().ok()
    }
}

/// `response` with `cookie` set. Setting a cookie fails only for a value that is not a valid
/// header; that is a bug, logged, and the response goes out without it.
pub fn with_cookie(
    mut response: HttpResponse,
    cookie: &actix_web::cookie::Cookie<'_>,
) -> HttpResponse {
    if let Err(e) = response.add_cookie(cookie) {
        tracing::error!(error = %e, cookie = cookie.name(), "cannot set a cookie");
    }
    response
}

/// Where the language switch returns to: this page when it can be fetched again (a GET; its
/// path only, so what was searched for stays out of the link), else the page a form of this
/// area comes from.
fn here(req: &HttpRequest) -> String {
    let path = req.path();
    if req.method() == actix_web::http::Method::GET {
        // The kiosk's start starts over (and forgets the language): its switch returns to the
        // first page instead.
        if path == "/kiosk" {
            return "/".to_string();
        }
        // A sign-in callback cannot be fetched again (its code is spent): the area's start.
        return match path.strip_suffix("/callback") {
            Some("/enroll") => "/enroll".to_string(),
            Some(_) => "/".to_string(),
            None => path.to_string(),
        };
    }
    for (prefix, page) in [
        ("/verify", "/verify"),
        ("/reset", "/reset"),
        ("/unlock", "/action"),
        ("/tap", "/action"),
        ("/enroll", "/enroll"),
        ("/helpdesk", "/helpdesk"),
        ("/admin", "/admin"),
    ] {
        if path.starts_with(prefix) {
            return page.to_string();
        }
    }
    "/".to_string()
}
