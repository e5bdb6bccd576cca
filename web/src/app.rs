//! The portal's HTTP server: shared state, middleware, and every module's routes.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use actix_web::http::StatusCode;

use crate::config::Settings;
use crate::i18n::{Lang, negotiate};
use crate::render::{Brand, Templates};
use crate::security::{self, CspNonce};
use crate::services::Services;

/// What every handler may need. Built once at start-up; cheap to clone (Arcs inside).
#[derive(Clone)]
pub struct Portal {
    pub templates: Arc<Templates>,
    pub brand: Arc<Brand>,
    pub services: Arc<Services>,
    /// Demo mode only: where "sent" messages go, shown at `/demo/outbox`.
    pub outbox: Option<Arc<crate::outbox::Outbox>>,
    /// OpenID Connect sign-in for `/enroll`; `None`: enrollment is not offered.
    pub signin: Option<Arc<crate::signin::SignIn>>,
    /// Sign-in and access control of `/admin` and `/helpdesk`; `None`: no console is served.
    pub consoles: Option<Arc<crate::console::Consoles>>,
    /// The admin console's context (configuration, Graph client, policy folder).
    pub admin: Option<Arc<crate::admin::Admin>>,
    /// How long a helpdesk reset link works (`[helpdesk] link_lifetime_minutes`).
    pub link_lifetime: std::time::Duration,
}

impl Portal {
    pub fn new(brand: Brand, services: Services) -> anyhow::Result<Self> {
        let templates = Templates::load().map_err(|e| anyhow::anyhow!(e))?;
        Ok(Self {
            templates: Arc::new(templates),
            brand: Arc::new(brand),
            services: Arc::new(services),
            outbox: None,
            signin: None,
            consoles: None,
            admin: None,
            link_lifetime: crate::helpdesk::link::DEFAULT_LINK_LIFETIME,
        })
    }

    /// Renders a page in the browser's language (pages before a flow exists).
    pub fn render(
        &self,
        req: &HttpRequest,
        name: &str,
        extra: &impl serde::Serialize,
    ) -> HttpResponse {
        let accept = req
            .headers()
            .get("accept-language")
            .and_then(|v| v.to_str().ok());
        self.render_in(req, negotiate(None, accept), name, extra)
    }

    /// Renders a page in `lang` with the request's CSP nonce.
    pub fn render_in(
        &self,
        req: &HttpRequest,
        lang: Lang,
        name: &str,
        extra: &impl serde::Serialize,
    ) -> HttpResponse {
        match self
            .templates
            .page(name, lang, &self.brand, &CspNonce::of(req), extra)
        {
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

/// Registers the routes every portal instance has.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .configure(crate::identify::configure)
        .configure(crate::verification::configure)
        .configure(crate::reset::configure)
        .configure(crate::unlock::configure)
        .configure(crate::gateway::configure)
        .configure(crate::tap::configure)
        .configure(crate::enroll::configure)
        .configure(crate::console::configure)
        .configure(crate::admin::configure)
        .configure(crate::helpdesk::configure)
        .configure(crate::outbox::configure);
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// Starts the portal on `listen` and runs until Ctrl+C (or SIGTERM).
pub async fn run_server(portal: Portal, listen: &str) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let server = start(portal, listener)?;
    tokio::select! {
        result = server.task => return result.map_err(|e| anyhow::anyhow!(e))?.map_err(Into::into),
        () = shutdown_signal() => {}
    }
    server.handle.stop(true).await;
    Ok(())
}

/// A portal serving in the background on the current tokio runtime: `latchkey demo` and the
/// end-to-end tests start it in-process (bind `127.0.0.1:0` for a free port).
pub struct RunningPortal {
    url: String,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Deletes expired store rows while the portal runs.
    housekeeping: tokio::task::JoinHandle<()>,
    /// Delivers the stored notices ([`crate::notices`]).
    notices: tokio::task::JoinHandle<()>,
}

impl RunningPortal {
    /// `http://ADDR:PORT`, no trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops gracefully (in-flight requests finish) and waits until the server has stopped.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
        self.housekeeping.abort();
        self.notices.abort();
    }
}

/// Builds the portal (every route and middleware) and serves it on `listener`, without signal
/// handling: the caller decides when to [`RunningPortal::stop`].
pub fn start(portal: Portal, listener: std::net::TcpListener) -> anyhow::Result<RunningPortal> {
    let url = format!("http://{}", listener.local_addr()?);
    let notices = portal.services.outbox.spawn();
    let housekeeping = crate::housekeeping::spawn(
        Arc::clone(&portal.services.store),
        Arc::clone(&portal.services.clock),
    );
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(portal.clone()))
            // Forms are small; anything bigger is refused before a handler runs (docs/security.md).
            .app_data(web::FormConfig::default().limit(16 * 1024))
            // The admin POSTs parse their forms from raw `web::Bytes` (repeated fields): same cap.
            .app_data(web::PayloadConfig::new(16 * 1024))
            .app_data(web::JsonConfig::default().limit(64 * 1024))
            // Inner to the headers: console refusals get the security headers too.
            .wrap(from_fn(crate::guard::graph_budget))
            .wrap(from_fn(crate::console::gate))
            .wrap(from_fn(security::headers))
            .configure(configure)
    })
    .disable_signals()
    .client_request_timeout(std::time::Duration::from_secs(10))
    .listen(listener)?
    .run();
    let handle = server.handle();
    Ok(RunningPortal {
        url,
        handle,
        task: tokio::spawn(server),
        housekeeping,
        notices,
    })
}

/// Ctrl+C, or SIGTERM (what service managers send).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `latchkey serve --config FILE`.
pub async fn serve(config: &Path) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config)?;
    let portal = crate::serve::build(&settings).await?;
    let _watcher = crate::reload::spawn(
        std::sync::Arc::clone(&portal.services),
        settings.policies.dir.clone(),
        std::time::Duration::from_secs(5),
    );
    tracing::info!(listen = %settings.server.listen, public_url = %settings.portal.public_url, "portal listening");
    run_server(portal, &settings.server.listen).await?;
    Ok(ExitCode::SUCCESS)
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
