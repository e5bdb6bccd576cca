//! The optional plain-HTTP listener of a portal that serves TLS itself
//! (`[server] http_redirect_listen`): every request is answered with a permanent redirect to the
//! same path and query at `portal.public_url`. The target's scheme and host come from the
//! configuration, never from the request (no open redirect through a forged `Host`); nothing is
//! served over plain HTTP.

use actix_web::{HttpRequest, HttpResponse, web};

/// Serves the redirects on `listen` until the process stops.
pub fn serve(public_url: &str, listen: &str) -> anyhow::Result<actix_web::dev::Server> {
    let origin = url::Url::parse(public_url)?.origin().ascii_serialization();
    let server = actix_web::HttpServer::new(move || {
        let origin = origin.clone();
        actix_web::App::new().default_service(web::to(move |req: HttpRequest| {
            let origin = origin.clone();
            async move { redirect(&origin, &req) }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(listen)
    .map_err(|e| anyhow::anyhow!("key `server.http_redirect_listen` ({listen}): {e}"))?
    .run();
    Ok(server)
}

/// 308 (the method and body are kept) to the origin with the request's path and query.
fn redirect(origin: &str, req: &HttpRequest) -> HttpResponse {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    // A path is absolute; `//host` would make the Location another origin.
    let path = if path.starts_with('/') && !path.starts_with("//") {
        path
    } else {
        "/"
    };
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", format!("{origin}{path}")))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}
