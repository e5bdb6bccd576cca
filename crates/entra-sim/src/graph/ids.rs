//! Per-request ids on every Graph response: `request-id`, `client-request-id` (the client's, or
//! a fresh one), `x-ms-ags-diagnostic`; error bodies get the same ids in `innerError`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpMessage};

use super::error::GraphError;
use crate::app::Shared;
use crate::clock::fmt;

#[derive(Debug, Clone)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

pub async fn graph_ids(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let ids = RequestIds {
        request_id: request_id.clone(),
        client_request_id: client_request_id.clone(),
    };
    req.extensions_mut().insert(ids);
    let shared = req.app_data::<Data<Shared>>().cloned();
    let mut res = next.call(req).await?.map_into_boxed_body();
    let err = res.response().extensions().get::<GraphError>().cloned();
    if let (Some(err), Some(shared)) = (err, shared) {
        let body = err.body(
            &fmt::inner_error(shared.clock.now()),
            &request_id,
            &client_request_id,
        );
        res = res.map_body(|_, _| BoxBody::new(body.to_string()));
    }
    let h = res.headers_mut();
    for (name, value) in [
        ("request-id", request_id.as_str()),
        ("client-request-id", client_request_id.as_str()),
        (
            "x-ms-ags-diagnostic",
            r#"{"ServerInfo":{"DataCenter":"Simulated","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"latchkey-entra-sim"}}"#,
        ),
    ] {
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(value) {
            h.insert(actix_web::http::header::HeaderName::from_static(name), v);
        }
    }
    Ok(res)
}
