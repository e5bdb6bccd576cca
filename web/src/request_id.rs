//! Every request runs in a `request` span with a random id, so every log line written while it
//! is served carries the same `request_id` (in the JSON format as a field of `span`), and the
//! answer carries it in `X-Request-Id` for a user or an operator to quote. The path is not in the
//! span: some paths hold bearer tokens (`/link/{token}`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument as _;

/// The middleware (outermost: the whole request is inside the span).
pub async fn span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let bytes =
        latchkey_types::random::bytes::<8>().map_err(actix_web::error::ErrorInternalServerError)?;
    let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // At the highest level, so no log filter drops the span and its id from the warnings and
    // errors, the lines that matter most.
    let span = tracing::error_span!("request", request_id = %id);
    let mut res = next.call(req).instrument(span).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    Ok(res)
}
