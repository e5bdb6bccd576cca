//! `POST /{tenant}/oauth2/v2.0/token`: client credentials (secret, HTTP Basic, or certificate
//! assertion), authorization code (+ PKCE), refresh token.

use std::collections::HashMap;

use actix_web::web::{self, Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::error::StsError;
use super::issue::{self, ClientAuth};
use super::scopes::{self, Requested};
use crate::app::Shared;
use crate::state::{App, RefreshGrant, State};
use crate::tokens::{Jwt, random_token};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Refresh tokens for confidential clients live 90 days.
const REFRESH_LIFETIME_DAYS: i64 = 90;

type Form = HashMap<String, String>;

pub async fn token(
    req: HttpRequest,
    shared: Data<Shared>,
    tenant: web::Path<String>,
    body: Bytes,
) -> HttpResponse {
    let now = shared.clock.now();
    match handle(&req, &shared, &tenant, &body, now) {
        Ok(r) => r,
        Err(e) => e.render(&req, &shared.base_url, now),
    }
}

fn handle(
    req: &HttpRequest,
    shared: &Shared,
    tenant: &str,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<HttpResponse, StsError> {
    let form: Form = url::form_urlencoded::parse(body).into_owned().collect();
    let mut state = shared.state();
    if !state.is_this_tenant(tenant) {
        return Err(StsError::invalid_tenant(tenant));
    }
    let basic = basic_credentials(req);
    let client_id = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| StsError::missing("client_id"))?;
    let grant_type = form
        .get("grant_type")
        .cloned()
        .ok_or_else(|| StsError::missing("grant_type"))?;
    let app = state
        .app(&client_id)
        .cloned()
        .ok_or_else(|| StsError::unknown_app(&client_id, &state.tenant.display_name))?;
    let secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic.map(|(_, s)| s));
    let auth = authenticate(shared, &mut state, tenant, &app, &form, secret, now)?;
    match grant_type.as_str() {
        "client_credentials" => client_credentials(shared, &state, &app, &form, auth, now),
        "authorization_code" => authorization_code(shared, &mut state, &app, &form, auth, now),
        "refresh_token" => refresh_token(shared, &mut state, &app, &form, auth, now),
        other => Err(StsError::new(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    let b = h
        .strip_prefix("Basic ")
        .or_else(|| h.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

fn authenticate(
    shared: &Shared,
    state: &mut State,
    tenant: &str,
    app: &App,
    form: &Form,
    secret: Option<String>,
    now: OffsetDateTime,
) -> Result<ClientAuth, StsError> {
    let assertion = form.get("client_assertion");
    let is_public = app.secrets.is_empty() && app.certs.is_empty();
    if is_public {
        if secret.is_some() || assertion.is_some() {
            return Err(StsError::new(
                401,
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            ));
        }
        return Ok(ClientAuth::Public);
    }
    if let Some(secret) = secret {
        return if app.secrets.iter().any(|s| s.expose() == &secret) {
            Ok(ClientAuth::Secret)
        } else {
            Err(StsError::new(
                401,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    app.client_id
                ),
            ))
        };
    }
    let Some(assertion) = assertion else {
        return Err(StsError::new(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    if form.get("client_assertion_type").map(String::as_str) != Some(JWT_BEARER) {
        return Err(StsError::new(
            400,
            "invalid_request",
            900144,
            format!(
                "The request body must contain the following parameter: 'client_assertion_type' with the value '{JWT_BEARER}'."
            ),
        ));
    }
    verify_assertion(shared, state, tenant, app, assertion, now)?;
    Ok(ClientAuth::Certificate)
}

fn assertion_error(status: u16, code: u32, msg: impl Into<String>) -> StsError {
    StsError::new(status, "invalid_client", code, msg)
}

/// Checks a client assertion (certificate-credentials.md): registered certificate by thumbprint
/// (`x5t#S256` or `x5t`), RS256 or PS256 signature, `aud` = this token endpoint, `iss` == `sub`
/// == client id, `nbf`/`exp`, `jti` not seen before.
fn verify_assertion(
    shared: &Shared,
    state: &mut State,
    tenant: &str,
    app: &App,
    assertion: &str,
    now: OffsetDateTime,
) -> Result<(), StsError> {
    let jwt = Jwt::decode(assertion).map_err(|_| {
        StsError::new(
            400,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    })?;
    let cert = if let Some(t) = jwt.header_str("x5t#S256") {
        app.certs.iter().find(|c| c.x5t_s256 == t)
    } else if let Some(t) = jwt.header_str("x5t") {
        app.certs.iter().find(|c| c.x5t == t)
    } else {
        return Err(assertion_error(
            401,
            700027,
            "Client assertion failed signature validation. [Reason - The key was not found.]",
        ));
    };
    let thumb = jwt
        .header_str("x5t#S256")
        .or_else(|| jwt.header_str("x5t"))
        .unwrap_or_default()
        .to_owned();
    let cert = cert.ok_or_else(|| {
        assertion_error(
            401,
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumb}']"
            ),
        )
    })?;
    jwt.verify_with_certificate(&cert.der).map_err(|_| {
        assertion_error(401, 700027, "Client assertion failed signature validation.")
    })?;
    let iss = jwt.claim_str("iss").unwrap_or("");
    let sub = jwt.claim_str("sub").unwrap_or("");
    if iss != sub {
        return Err(assertion_error(
            401,
            50048,
            "Subject mismatches Issuer claim in the client assertion.",
        ));
    }
    if !iss.eq_ignore_ascii_case(&app.client_id) {
        return Err(assertion_error(
            401,
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let aud = jwt.claim_str("aud").unwrap_or("");
    let expected: Vec<String> = [tenant.to_owned(), state.tenant_id.to_string()]
        .iter()
        .map(|t| format!("{}/{t}/oauth2/v2.0/token", shared.base_url))
        .collect();
    let aud_ok = expected.iter().any(|e| e.eq_ignore_ascii_case(aud))
        || aud
            .strip_prefix(&format!("{}/", shared.base_url))
            .and_then(|r| r.strip_suffix("/oauth2/v2.0/token"))
            .is_some_and(|t| state.is_this_tenant(t));
    if !aud_ok {
        return Err(assertion_error(
            401,
            700023,
            format!(
                "Client assertion audience claim does not match Realm issuer. Expected '{}'.",
                expected[1]
            ),
        ));
    }
    let t = now.unix_timestamp();
    let exp = jwt.claim_i64("exp").unwrap_or(0);
    let nbf = jwt.claim_i64("nbf").unwrap_or(0);
    // Entra tolerates five minutes of clock skew.
    if exp + 300 < t || nbf - 300 > t {
        return Err(assertion_error(
            401,
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                t, nbf, exp
            ),
        ));
    }
    if let Some(jti) = jwt.claim_str("jti") {
        // Simulator choice (no documented code): a replayed assertion is refused.
        if !state.used_jtis.insert(format!("{}:{jti}", app.client_id)) {
            return Err(assertion_error(
                401,
                7000274,
                "The client assertion has already been used. Each assertion must have a unique 'jti'.",
            ));
        }
    }
    Ok(())
}

fn token_response(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store, no-cache"))
        .insert_header(("Pragma", "no-cache"))
        .json(body)
}

fn client_credentials(
    shared: &Shared,
    state: &State,
    app: &App,
    form: &Form,
    auth: ClientAuth,
    now: OffsetDateTime,
) -> Result<HttpResponse, StsError> {
    let scope = form
        .get("scope")
        .ok_or_else(|| StsError::missing("scope"))?;
    scopes::check_app_scope(scope, &state.tenant.display_name)?;
    let token = issue::app_token(&shared.keys, state, app, auth, now.unix_timestamp());
    Ok(token_response(json!({
        "token_type": "Bearer",
        "expires_in": issue::ACCESS_TOKEN_SECONDS,
        "ext_expires_in": issue::ACCESS_TOKEN_SECONDS,
        "access_token": token,
    })))
}

/// Issues the delegated token set for `user_id` and `requested`.
#[allow(clippy::too_many_arguments)]
fn delegated_response(
    shared: &Shared,
    state: &mut State,
    app: &App,
    user_id: uuid::Uuid,
    requested: &Requested,
    nonce: Option<&str>,
    auth: ClientAuth,
    now: OffsetDateTime,
) -> Result<HttpResponse, StsError> {
    let user = state.user_by_id(user_id).cloned().ok_or_else(|| {
        StsError::new(
            400,
            "invalid_grant",
            50034,
            "The user account does not exist in this directory.",
        )
    })?;
    if !user.account_enabled {
        return Err(StsError::new(
            400,
            "invalid_grant",
            50057,
            "The user account is disabled.",
        ));
    }
    let graph = requested.graph_scopes(app);
    if graph.iter().any(|s| !app.has_scope_consent(s)) {
        return Err(StsError::consent_required(
            &app.client_id,
            &app.display_name,
        ));
    }
    let t = now.unix_timestamp();
    let access = issue::user_token(
        &shared.keys,
        state,
        app,
        &user,
        &requested.scp_list(&graph),
        auth,
        t,
    );
    let mut body = json!({
        "token_type": "Bearer",
        "scope": requested.response_scope(&graph),
        "expires_in": issue::ACCESS_TOKEN_SECONDS,
        "ext_expires_in": issue::ACCESS_TOKEN_SECONDS,
        "access_token": access,
    });
    if requested.offline_access {
        let rt = random_token(48);
        state.refresh_tokens.insert(
            rt.clone(),
            RefreshGrant {
                client_id: app.client_id.clone(),
                user_id,
                scopes: requested.raw.clone(),
                expires: now + Duration::days(REFRESH_LIFETIME_DAYS),
                issued: now,
            },
        );
        body["refresh_token"] = json!(rt);
    }
    if requested.openid {
        body["id_token"] = json!(issue::id_token(
            &shared.keys,
            &shared.base_url,
            state,
            app,
            &user,
            nonce,
            requested.email,
            t,
        ));
    }
    Ok(token_response(body))
}

fn authorization_code(
    shared: &Shared,
    state: &mut State,
    app: &App,
    form: &Form,
    auth: ClientAuth,
    now: OffsetDateTime,
) -> Result<HttpResponse, StsError> {
    let code = form.get("code").ok_or_else(|| StsError::missing("code"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| StsError::missing("redirect_uri"))?;
    let invalid_code = || {
        StsError::new(
            400,
            "invalid_grant",
            70000,
            "The provided value for the 'code' parameter is not valid.",
        )
    };
    let grant = state.codes.get_mut(code).ok_or_else(invalid_code)?;
    if !grant.client_id.eq_ignore_ascii_case(&app.client_id) {
        return Err(invalid_code());
    }
    if grant.redeemed {
        return Err(StsError::new(
            400,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    if now >= grant.expires {
        return Err(StsError::new(
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    // Single use: any redemption attempt consumes the code, even one that fails below.
    grant.redeemed = true;
    if grant.redirect_uri != *redirect_uri {
        return Err(StsError::new(
            400,
            "invalid_grant",
            70000,
            "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect URI used to obtain the authorization code.",
        ));
    }
    if let Some(challenge) = &grant.code_challenge {
        let verifier = form.get("code_verifier").ok_or_else(|| {
            StsError::new(
                400,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        })?;
        if !super::pkce_matches(challenge, &grant.code_challenge_method, verifier) {
            return Err(StsError::new(
                400,
                "invalid_grant",
                50148,
                "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
            ));
        }
    }
    let grant = grant.clone();
    let requested = Requested::parse(&grant.scopes.join(" "))?;
    delegated_response(
        shared,
        state,
        app,
        grant.user_id,
        &requested,
        grant.nonce.as_deref(),
        auth,
        now,
    )
}

fn refresh_token(
    shared: &Shared,
    state: &mut State,
    app: &App,
    form: &Form,
    auth: ClientAuth,
    now: OffsetDateTime,
) -> Result<HttpResponse, StsError> {
    let rt = form
        .get("refresh_token")
        .ok_or_else(|| StsError::missing("refresh_token"))?;
    let grant = state.refresh_tokens.get(rt).cloned().ok_or_else(|| {
        StsError::new(
            400,
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    })?;
    if !grant.client_id.eq_ignore_ascii_case(&app.client_id) {
        return Err(StsError::new(
            400,
            "invalid_grant",
            70000,
            "The provided value for the 'refresh_token' is not valid. It was issued to a different client.",
        ));
    }
    if now >= grant.expires {
        return Err(StsError::new(
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    // revokeSignInSessions moves the user's
    // signInSessionsValidFromDateTime; older refresh tokens are refused with AADSTS50173
    // (FreshTokenNeeded). The description follows Microsoft's error-code table; the
    // timestamps use the STS format.
    let valid_from = state
        .user_by_id(grant.user_id)
        .map(|u| u.sign_in_sessions_valid_from);
    if let Some(valid_from) = valid_from.filter(|v| grant.issued < *v) {
        return Err(StsError::new(
            400,
            "invalid_grant",
            50173,
            format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                crate::clock::fmt::graph(grant.issued),
                crate::clock::fmt::graph(valid_from),
            ),
        ));
    }
    // Refresh tokens are not bound to the scopes first asked for: any consented scope may be
    // requested. The old refresh token stays valid (Entra does not revoke on use).
    let scope = form
        .get("scope")
        .cloned()
        .unwrap_or_else(|| grant.scopes.join(" "));
    let mut requested = Requested::parse(&scope)?;
    // The new token set keeps offline access.
    requested.offline_access = true;
    if !requested.raw.iter().any(|s| s == "offline_access") {
        requested.raw.push("offline_access".into());
    }
    delegated_response(
        shared,
        state,
        app,
        grant.user_id,
        &requested,
        None,
        auth,
        now,
    )
}
