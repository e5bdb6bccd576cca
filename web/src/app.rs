//! The portal's HTTP server: shared state, middleware, and every module's routes.
//! The self-service flows (identify, verify, reset, unlock, enroll) land with issue 3; until then
//! the portal answers health checks and says plainly what it cannot do yet.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::config::Settings;
use crate::i18n::negotiate;
use crate::render::{Brand, Templates};
use crate::security::{self, CspNonce};

/// What every handler may need. Built once at start-up; cheap to clone (Arc inside).
#[derive(Clone)]
pub struct Portal {
    pub templates: Arc<Templates>,
    pub brand: Arc<Brand>,
}

impl Portal {
    pub fn new(brand: Brand) -> anyhow::Result<Self> {
        let templates = Templates::load().map_err(|e| anyhow::anyhow!(e))?;
        Ok(Self {
            templates: Arc::new(templates),
            brand: Arc::new(brand),
        })
    }

    /// Renders a page in the request's language with its CSP nonce.
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
        let lang = negotiate(None, accept);
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
}

/// Registers the routes every portal instance has.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/", web::get().to(index));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

async fn index(req: HttpRequest, portal: web::Data<Portal>) -> HttpResponse {
    portal.render(&req, "index.html", &serde_json::json!({}))
}

/// Starts the portal on `listen` and runs until Ctrl+C (or SIGTERM).
pub async fn run_server(listen: &str) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let server = start(listener)?;
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
    }
}

/// Builds the portal (every route and middleware) and serves it on `listener`, without signal
/// handling: the caller decides when to [`RunningPortal::stop`].
pub fn start(listener: std::net::TcpListener) -> anyhow::Result<RunningPortal> {
    let portal = Portal::new(Brand::default())?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(portal.clone()))
            .wrap(from_fn(security::headers))
            .configure(configure)
    })
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    Ok(RunningPortal {
        url,
        handle,
        task: tokio::spawn(server),
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
    // Build the Graph client now so a broken credential file fails at start-up, not at the first user.
    let _client = crate::entra::client(&settings)?;
    tracing::info!(listen = %settings.server.listen, "portal listening");
    run_server(&settings.server.listen).await?;
    Ok(ExitCode::SUCCESS)
}
