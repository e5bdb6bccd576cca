//! The outermost middleware: records the request, then applies an injected fault if one matches.
//! `/_sim/` control calls bypass both.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::{Error, HttpResponse};

use crate::app::Shared;
use crate::clock::fmt;
use crate::faults::{self, FaultKind};
use crate::graph::batch::PART_HEADER;
use crate::recording::RecordedRequest;

/// A duplicate of the connection's socket, kept per connection so a `DropConnection` fault can
/// shut the socket down (the client then sees the connection close with no response).
#[derive(Debug)]
pub struct ConnSocket(pub Option<std::net::TcpStream>);

/// `HttpServer::on_connect` hook storing [`ConnSocket`].
pub fn on_connect(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Some(sock) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let dup = sock
                .as_fd()
                .try_clone_to_owned()
                .ok()
                .map(std::net::TcpStream::from);
            ext.insert(ConnSocket(dup));
        }
    }
    #[cfg(not(unix))]
    {
        let _ = conn;
        ext.insert(ConnSocket(None));
    }
}

pub async fn record_and_fault(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if req.path().starts_with("/_sim/") {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    }
    let shared = req
        .app_data::<Data<Shared>>()
        .cloned()
        .expect("Shared is registered");
    let summary = shared.recorder.summary_only();
    // Buffer the body so it can be both recorded and handed on.
    let body: Bytes = req.extract::<Bytes>().await.unwrap_or_default();
    req.set_payload(actix_web::dev::Payload::from(body.clone()));
    // A `$batch` part only when it carries this simulator's secret; a forged marker is kept in
    // the record as the client sent it, the genuine one is the simulator's and is left out.
    let batch_part = req
        .headers()
        .get(PART_HEADER)
        .is_some_and(|v| v.as_bytes() == shared.batch_secret.as_bytes());
    let index = shared.recorder.push(RecordedRequest {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: req.query_string().to_owned(),
        headers: if summary {
            Vec::new()
        } else {
            req.headers()
                .iter()
                .filter(|(k, _)| !(batch_part && k.as_str() == PART_HEADER))
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        },
        body: if summary {
            String::new()
        } else {
            String::from_utf8_lossy(&body).into_owned()
        },
        status: 0,
        batch_part,
    });

    let fault = shared.faults.take(req.method(), req.path());
    let res = match fault {
        None => next.call(req).await?.map_into_boxed_body(),
        Some(FaultKind::Latency(d)) => {
            tokio::time::sleep(d).await;
            next.call(req).await?.map_into_boxed_body()
        }
        Some(FaultKind::DropConnection) => {
            if let Some(ConnSocket(Some(sock))) = req.conn_data::<ConnSocket>() {
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }
            // Nothing reaches the client; the status stays 0 in the record.
            let resp = HttpResponse::InternalServerError().finish();
            return Ok(req.into_response(resp));
        }
        Some(FaultKind::DropResponse) => {
            let served = next.call(req).await?;
            if let Some(ConnSocket(Some(sock))) = served.request().conn_data::<ConnSocket>() {
                let _ = sock.shutdown(std::net::Shutdown::Both);
            }
            // Carried out, but nothing reaches the client; the status stays 0 in the record.
            let resp = HttpResponse::InternalServerError().finish();
            return Ok(served.into_response(resp).map_into_boxed_body());
        }
        Some(FaultKind::TooManyRequests { retry_after }) => {
            let now = shared.clock.now();
            let request_id = uuid::Uuid::new_v4().to_string();
            let mut resp = HttpResponse::TooManyRequests();
            if let Some(r) = retry_after
                && let Ok(v) = HeaderValue::from_str(&r)
            {
                resp.insert_header((HeaderName::from_static("retry-after"), v));
            }
            resp.insert_header(("request-id", request_id.clone()));
            let body = faults::throttled_body(&fmt::inner_error(now), &request_id);
            req.into_response(resp.json(body))
        }
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let now = shared.clock.now();
            let request_id = uuid::Uuid::new_v4().to_string();
            let client_request_id = req
                .headers()
                .get("client-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| request_id.clone());
            let body = serde_json::json!({"error": {
                "code": faults::code_for_status(code),
                "message": status.canonical_reason().unwrap_or("Error"),
                "innerError": {
                    "date": fmt::inner_error(now),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                }
            }});
            let resp = HttpResponse::build(status)
                .insert_header(("request-id", request_id))
                .insert_header(("client-request-id", client_request_id))
                .json(body);
            req.into_response(resp)
        }
    };
    shared.recorder.set_status(index, res.status().as_u16());
    Ok(res)
}
