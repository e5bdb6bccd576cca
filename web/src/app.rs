//! The portal's HTTP server: every module's routes, the middleware, starting and stopping. The
//! state every handler shares is [`crate::portal::Portal`].

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::config::Settings;
use crate::portal::Portal;
use crate::security;

/// Registers the routes every portal instance has.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(crate::health::configure)
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
        .configure(crate::outbox::configure)
        .configure(crate::language::configure)
        .configure(crate::kiosk::configure);
}

/// Any path no route serves: the not-found page in the browser's language.
async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, crate::error::WebError> {
    let lang = crate::flow::lang(&req, None);
    let status = actix_web::http::StatusCode::NOT_FOUND;
    Err(crate::error::WebError::page(
        status,
        "error_not_found",
        lang,
    ))
}

/// Starts the portal on `listen` and runs until Ctrl+C (or SIGTERM).
pub async fn run_server(
    portal: Portal,
    listen: &str,
    tls: Option<rustls::ServerConfig>,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let server = start_with_tls(portal, listener, tls)?;
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
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the server task ended abnormally");
        }
        self.housekeeping.abort();
        self.notices.abort();
    }
}

/// Builds the portal (every route and middleware) and serves it on `listener`, without signal
/// handling: the caller decides when to [`RunningPortal::stop`].
pub fn start(portal: Portal, listener: std::net::TcpListener) -> anyhow::Result<RunningPortal> {
    start_with_tls(portal, listener, None)
}

/// [`start`], serving HTTPS with `tls` when given ([`crate::tls`]).
pub fn start_with_tls(
    portal: Portal,
    listener: std::net::TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> anyhow::Result<RunningPortal> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr()?);
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
            // Innermost: error pages are rendered before the headers (CSP nonce) go on.
            .wrap(from_fn(crate::error::render))
            // Inner to the headers: console refusals get the security headers too.
            .wrap(from_fn(graph_budget))
            .wrap(from_fn(crate::console::gate))
            // Outer to the consoles' gate: a kiosk browser is sent back to its start first.
            .wrap(from_fn(crate::kiosk::mark))
            .wrap(from_fn(security::headers))
            .wrap(from_fn(crate::metrics::record))
            // Outermost: everything a request logs carries its id.
            .wrap(from_fn(crate::request_id::span))
            .configure(configure)
            .default_service(web::to(not_found))
    })
    .disable_signals()
    .client_request_timeout(std::time::Duration::from_secs(10));
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    }
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
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot wait for Ctrl+C");
            }
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
    let tls = match (
        &settings.server.tls_cert_file,
        &settings.server.tls_key_file,
    ) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
        _ => None,
    };
    if let (Some(listen), Some(metrics)) = (
        &settings.metrics.listen,
        portal.part::<crate::metrics::Metrics>(),
    ) {
        let server = crate::metrics::serve(Arc::clone(&metrics), listen)?;
        tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
        crate::gauges::spawn(
            metrics,
            Arc::clone(&portal.services.store),
            Arc::clone(&portal.services.clock),
            portal.services.mirror.clone(),
            std::time::Duration::from_secs(15),
        );
        tracing::info!(listen = %listen, "metrics at /metrics");
    }
    if let Some(listen) = &settings.server.http_redirect_listen {
        let server = crate::redirect::serve(&settings.portal.public_url, listen)?;
        tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "the HTTP redirect listener stopped");
            }
        });
        tracing::info!(listen = %listen, "plain HTTP redirects to the portal's https:// URL");
    }
    let forwarding = portal
        .part::<crate::forwarding::Forwarding>()
        .map(|f| f.start());
    let syncer = portal
        .part::<crate::mirror::DirectoryMirror>()
        .and_then(|m| m.start());
    tracing::info!(listen = %settings.server.listen, public_url = %settings.portal.public_url, tls = tls.is_some(), "portal listening");
    let served = run_server(portal, &settings.server.listen, tls).await;
    if let Some(f) = forwarding {
        f.stop().await;
    }
    if let Some(s) = syncer {
        s.stop().await;
    }
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Middleware: every self-service request's Graph calls share one time budget
/// ([`latchkey_graph::deadline`]). The consoles (admin reports page through whole tenants) and
/// the gateway API (no Graph calls, long polls) are left to the per-request limits.
pub async fn graph_budget(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let path = req.path();
    let console = ["/admin", "/helpdesk", "/gateway/"]
        .iter()
        .any(|p| path.starts_with(p));
    let budget = req
        .app_data::<actix_web::web::Data<crate::portal::Portal>>()
        .map(|p| p.services.graph_budget);
    match budget {
        Some(budget) if !console => latchkey_graph::deadline::within(budget, next.call(req)).await,
        _ => next.call(req).await,
    }
}
