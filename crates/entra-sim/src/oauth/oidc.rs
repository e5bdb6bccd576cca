//! OpenID Connect discovery and the JWKS.

use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::error::StsError;
use crate::app::Shared;

pub async fn configuration(
    req: HttpRequest,
    shared: Data<Shared>,
    tenant: web::Path<String>,
) -> HttpResponse {
    let tid = {
        let state = shared.state();
        if !state.is_this_tenant(&tenant) {
            return StsError::invalid_tenant(&tenant).render(
                &req,
                &shared.base_url,
                shared.clock.now(),
            );
        }
        state.tenant_id.to_string()
    };
    let b = &shared.base_url;
    HttpResponse::Ok().json(json!({
        "token_endpoint": format!("{b}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{b}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{b}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{b}/{tid}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
}

pub async fn keys(
    req: HttpRequest,
    shared: Data<Shared>,
    tenant: web::Path<String>,
) -> HttpResponse {
    let tid = {
        let state = shared.state();
        if !state.is_this_tenant(&tenant) {
            return StsError::invalid_tenant(&tenant).render(
                &req,
                &shared.base_url,
                shared.clock.now(),
            );
        }
        state.tenant_id.to_string()
    };
    HttpResponse::Ok().json(shared.keys.jwks(&format!("{}/{tid}/v2.0", shared.base_url)))
}
