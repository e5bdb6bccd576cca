//! `GET/POST /{tenant}/oauth2/v2.0/authorize`: validates the request, shows a plain, accessible
//! sign-in page, signs the user in (smart lockout applies) and redirects back with a code.
//!
//! Errors about the client or the redirect URI are shown on the page (never redirected to an
//! unverified URI); other errors go back to the redirect URI as `error` + `error_description`.
//! `response_mode` other than `query` is answered as `query` (simplification).

use std::collections::HashMap;

use actix_web::web::{self, Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use time::Duration;

use crate::app::Shared;
use crate::state::signin::SignInOutcome;
use crate::state::{App, AuthCode, State};
use crate::tokens::random_token;

/// Authorization codes are short-lived (Entra: about ten minutes).
const CODE_LIFETIME_MINUTES: i64 = 10;

/// Request parameters carried through the sign-in form.
const CARRIED: [&str; 9] = [
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
];

type Params = HashMap<String, String>;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Loopback redirect URIs match on any port, as Entra allows for `http://localhost`
/// and `http://127.0.0.1`; everything else must match exactly.
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(a), Ok(b)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
    };
    loopback(&a)
        && loopback(&b)
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
}

fn page(status: u16, title: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n<main>\n<h1>{}</h1>\n{body}\n</main>\n</body>\n</html>\n",
        esc(title),
        esc(title)
    );
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::BAD_REQUEST),
    )
    .content_type("text/html; charset=utf-8")
    .insert_header(("Cache-Control", "no-store"))
    .insert_header(("X-Frame-Options", "DENY"))
    .body(html)
}

fn error_page(code: u32, message: &str) -> HttpResponse {
    page(
        400,
        "Sorry, but we're having trouble signing you in.",
        &format!("<p role=\"alert\">AADSTS{code}: {}</p>", esc(message)),
    )
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&String>,
    error: &str,
    description: &str,
) -> HttpResponse {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return error_page(50011, "The redirect URI is not valid."),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error);
        q.append_pair("error_description", description);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    HttpResponse::Found()
        .insert_header(("Location", url.to_string()))
        .finish()
}

/// Validates client and redirect URI (page errors) and the rest (redirect errors).
// The error is the finished response, built at most once per request: boxing buys nothing.
#[allow(clippy::result_large_err)]
fn validate(state: &State, tenant: &str, p: &Params) -> Result<App, HttpResponse> {
    if !state.is_this_tenant(tenant) {
        return Err(error_page(
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        ));
    }
    let client_id = p.get("client_id").map(String::as_str).unwrap_or("");
    if client_id.is_empty() {
        return Err(error_page(
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ));
    }
    let app = state.app(client_id).cloned().ok_or_else(|| {
        error_page(
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                state.tenant.display_name
            ),
        )
    })?;
    let redirect = p.get("redirect_uri").map(String::as_str).unwrap_or("");
    if !app
        .redirect_uris
        .iter()
        .any(|r| redirect_uri_matches(r, redirect))
    {
        return Err(error_page(
            50011,
            &format!(
                "The redirect URI '{redirect}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."
            ),
        ));
    }
    let st = p.get("state");
    if p.get("response_type").map(String::as_str) != Some("code") {
        return Err(redirect_error(
            redirect,
            st,
            "unsupported_response_type",
            "AADSTS700054: response_type must be 'code' for this application.",
        ));
    }
    if p.get("scope").is_none_or(|s| s.trim().is_empty()) {
        return Err(redirect_error(
            redirect,
            st,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        ));
    }
    if let Err(e) =
        super::scopes::Requested::parse(p.get("scope").map(String::as_str).unwrap_or(""))
    {
        return Err(redirect_error(
            redirect,
            st,
            "invalid_scope",
            &format!("AADSTS{}: {}", e.code, e.description),
        ));
    }
    let method = p.get("code_challenge_method").map(String::as_str);
    if p.contains_key("code_challenge") && !matches!(method, None | Some("S256") | Some("plain")) {
        return Err(redirect_error(
            redirect,
            st,
            "invalid_request",
            "AADSTS501491: Invalid code_challenge_method. Use 'S256' or 'plain'.",
        ));
    }
    if method.is_some() && !p.contains_key("code_challenge") {
        return Err(redirect_error(
            redirect,
            st,
            "invalid_request",
            "AADSTS501491: code_challenge_method was sent without a code_challenge.",
        ));
    }
    Ok(app)
}

fn sign_in_form(tenant: &str, p: &Params, username: &str, error: Option<&str>) -> HttpResponse {
    let mut hidden = String::new();
    for k in CARRIED {
        if let Some(v) = p.get(k) {
            hidden.push_str(&format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">\n",
                esc(v)
            ));
        }
    }
    let err = error
        .map(|e| format!("<p id=\"error\" role=\"alert\">{}</p>\n", esc(e)))
        .unwrap_or_default();
    let described = if error.is_some() {
        " aria-describedby=\"error\""
    } else {
        ""
    };
    let body = format!(
        "{err}<form method=\"post\" action=\"/{}/oauth2/v2.0/authorize\">\n{hidden}<p><label for=\"username\">Email, phone, or Skype</label><br>\n<input id=\"username\" name=\"username\" type=\"email\" autocomplete=\"username\" required value=\"{}\"{described}></p>\n<p><label for=\"password\">Password</label><br>\n<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{described}></p>\n<p><button type=\"submit\">Sign in</button></p>\n</form>",
        esc(tenant),
        esc(username)
    );
    page(200, "Sign in", &body)
}

pub async fn show(
    req: HttpRequest,
    shared: Data<Shared>,
    tenant: web::Path<String>,
) -> HttpResponse {
    let p: Params = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let state = shared.state();
    if let Err(resp) = validate(&state, &tenant, &p) {
        return resp;
    }
    if p.get("prompt").map(String::as_str) == Some("none") {
        // The simulator keeps no browser session.
        return redirect_error(
            &p["redirect_uri"],
            p.get("state"),
            "login_required",
            "AADSTS50058: A silent sign-in request was sent but no user is signed in.",
        );
    }
    let hint = p.get("login_hint").cloned().unwrap_or_default();
    sign_in_form(&tenant, &p, &hint, None)
}

pub async fn submit(shared: Data<Shared>, tenant: web::Path<String>, body: Bytes) -> HttpResponse {
    let p: Params = url::form_urlencoded::parse(&body).into_owned().collect();
    let now = shared.clock.now();
    let mut state = shared.state();
    // The hidden fields came back from the browser: validate them again.
    let app = match validate(&state, &tenant, &p) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let username = p.get("username").cloned().unwrap_or_default();
    let password = p.get("password").cloned().unwrap_or_default();
    let outcome = state.sign_in(&username, &password, now);
    if outcome != SignInOutcome::Success {
        return sign_in_form(&tenant, &p, &username, Some(outcome.message()));
    }
    let Some(user_id) = state.user(&username).map(|u| u.id) else {
        return sign_in_form(
            &tenant,
            &p,
            &username,
            Some(SignInOutcome::NotFound.message()),
        );
    };
    let code = random_token(48);
    let redirect_uri = p["redirect_uri"].clone();
    state.codes.insert(
        code.clone(),
        AuthCode {
            client_id: app.client_id.clone(),
            user_id,
            redirect_uri: redirect_uri.clone(),
            scopes: p["scope"].split_whitespace().map(str::to_owned).collect(),
            code_challenge: p.get("code_challenge").cloned(),
            code_challenge_method: p
                .get("code_challenge_method")
                .cloned()
                .unwrap_or_else(|| "plain".into()),
            nonce: p.get("nonce").cloned(),
            expires: now + Duration::minutes(CODE_LIFETIME_MINUTES),
            redeemed: false,
        },
    );
    let Ok(mut url) = url::Url::parse(&redirect_uri) else {
        return error_page(50011, "The redirect URI is not valid.");
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(s) = p.get("state") {
            q.append_pair("state", s);
        }
        q.append_pair("session_state", &uuid::Uuid::new_v4().to_string());
    }
    HttpResponse::Found()
        .insert_header(("Location", url.to_string()))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ports_are_ignored_only_for_loopback() {
        assert!(redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51234/callback"
        ));
        assert!(redirect_uri_matches(
            "http://localhost/cb",
            "http://localhost:8080/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5/other"
        ));
        assert!(!redirect_uri_matches(
            "https://app.example/cb",
            "https://app.example:444/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/callback",
            "http://localhost/callback"
        ));
        assert!(redirect_uri_matches(
            "https://app.example/cb",
            "https://app.example/cb"
        ));
    }
}
