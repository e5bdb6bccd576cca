//! Helpers shared by the integration tests: start a simulator, get tokens, sign assertions.

#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_entra_sim::{Fixture, Sim};
use ring::rand::SystemRandom;
use ring::signature::RsaKeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

pub const APP: &str = "11111111-1111-1111-1111-111111111111";
pub const SECRET: &str = "test-secret-value";
pub const READONLY_APP: &str = "33333333-3333-3333-3333-333333333333";
pub const READONLY_SECRET: &str = "readonly-secret-value";
pub const PUBLIC_APP: &str = "44444444-4444-4444-4444-444444444444";
pub const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
pub const REDIRECT: &str = "http://127.0.0.1:8400/callback";

pub const ADELE: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
pub const MEGAN: &str = "a1c2e3f4-0001-4000-8000-000000000002";
pub const ADMIN: &str = "a1c2e3f4-0001-4000-8000-000000000003";
pub const AUTH_ADMIN: &str = "a1c2e3f4-0001-4000-8000-000000000004";
pub const DISABLED: &str = "a1c2e3f4-0001-4000-8000-000000000005";
pub const RISKY: &str = "a1c2e3f4-0001-4000-8000-000000000006";
pub const MANY: &str = "a1c2e3f4-0001-4000-8000-000000000007";
pub const ALIAS: &str = "a1c2e3f4-0001-4000-8000-000000000008";
pub const USER_ADMIN: &str = "a1c2e3f4-0001-4000-8000-000000000011";
pub const HELPDESK: &str = "a1c2e3f4-0001-4000-8000-000000000012";
pub const PRIV_AUTH: &str = "a1c2e3f4-0001-4000-8000-000000000013";
pub const OBRIEN: &str = "a1c2e3f4-0001-4000-8000-000000000014";
pub const LOCKED: &str = "a1c2e3f4-0001-4000-8000-000000000015";
pub const SEC_ADMIN: &str = "a1c2e3f4-0001-4000-8000-000000000016";
pub const ALL_STAFF: &str = "c0000000-0000-4000-8000-00000000000d";
pub const GROUP_A: &str = "c0000000-0000-4000-8000-00000000000a";
pub const GROUP_B: &str = "c0000000-0000-4000-8000-00000000000b";
pub const GROUP_C: &str = "c0000000-0000-4000-8000-00000000000c";

pub const APP_CERT: &str = include_str!("../../keys/app-cert.pem");
pub const APP_KEY: &str = include_str!("../../keys/app-cert.key.pem");
pub const OTHER_CERT: &str = include_str!("../../keys/other-cert.pem");
pub const OTHER_KEY: &str = include_str!("../../keys/other-cert.key.pem");

pub async fn start() -> Sim {
    start_with(Fixture::test()).await
}

pub async fn start_with(f: Fixture) -> Sim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Sim::start(f).await.expect("simulator starts")
}

/// A client that does not follow redirects (authorize tests look at the 302).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

pub fn token_url(sim: &Sim) -> String {
    format!("{}/{}/oauth2/v2.0/token", sim.base_url(), sim.tenant_id())
}

pub async fn post_form(sim: &Sim, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(token_url(sim))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

pub async fn app_token_for(sim: &Sim, client_id: &str, secret: &str) -> String {
    let (status, body) = post_form(
        sim,
        &[
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", GRAPH_DEFAULT),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn app_token(sim: &Sim) -> String {
    app_token_for(sim, APP, SECRET).await
}

/// Decodes a JWT's claims without checking it.
pub fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// Signs a client assertion. `thumb_header` is "x5t" (SHA-1) or "x5t#S256".
pub fn assertion(
    alg: &str,
    thumb_header: &str,
    cert_pem: &str,
    key_pem: &str,
    claims: &Value,
) -> String {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let thumb = if thumb_header == "x5t" {
        b64(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref())
    } else {
        b64(ring::digest::digest(&ring::digest::SHA256, &der).as_ref())
    };
    let header = json!({"alg": alg, "typ": "JWT", thumb_header: thumb});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let pair = RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).unwrap();
    let mut sig = vec![0u8; pair.public().modulus_len()];
    let padding: &dyn ring::signature::RsaEncoding = if alg == "PS256" {
        &ring::signature::RSA_PSS_SHA256
    } else {
        &ring::signature::RSA_PKCS1_SHA256
    };
    pair.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut sig)
        .unwrap();
    format!("{input}.{}", b64(&sig))
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn assertion_claims(sim: &Sim, client_id: &str) -> Value {
    json!({
        "aud": token_url(sim),
        "iss": client_id,
        "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(),
        "nbf": now(),
        "exp": now() + 600,
    })
}

pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = b64(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref());
    (verifier, challenge)
}

/// Runs the authorize page (GET, then POST of the form) and returns the redirect `Location`.
pub async fn authorize(
    sim: &Sim,
    client_id: &str,
    scope: &str,
    challenge: Option<&str>,
    upn: &str,
    password: &str,
) -> reqwest::Response {
    let mut params = vec![
        ("client_id", client_id.to_owned()),
        ("response_type", "code".to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("scope", scope.to_owned()),
        ("state", "xyz-state".to_owned()),
        ("nonce", "n-0S6_WzA2Mj".to_owned()),
    ];
    if let Some(c) = challenge {
        params.push(("code_challenge", c.to_owned()));
        params.push(("code_challenge_method", "S256".to_owned()));
    }
    let url = format!(
        "{}/{}/oauth2/v2.0/authorize",
        sim.base_url(),
        sim.tenant_id()
    );
    let get_url = url::Url::parse_with_params(&url, &params).unwrap();
    let page = client().get(get_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut form: Vec<(&str, String)> = params;
    form.push(("username", upn.to_owned()));
    form.push(("password", password.to_owned()));
    client().post(&url).form(&form).send().await.unwrap()
}

pub fn code_from(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 302, "expected a redirect");
    let loc = resp.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(loc).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in redirect")
}

/// A delegated token for the test app (secret + PKCE), full token response.
pub async fn user_tokens(sim: &Sim, upn: &str, password: &str, scope: &str) -> Value {
    let (verifier, challenge) = pkce();
    let resp = authorize(sim, APP, scope, Some(&challenge), upn, password).await;
    let code = code_from(&resp);
    let (status, body) = post_form(
        sim,
        &[
            ("client_id", APP),
            ("client_secret", SECRET),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

pub const ADMIN_SCOPES: &str =
    "openid profile offline_access User.Read UserAuthenticationMethod.ReadWrite.All";

pub async fn user_token(sim: &Sim, upn: &str, password: &str) -> String {
    user_tokens(sim, upn, password, ADMIN_SCOPES).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// GET on Graph with a bearer token.
pub async fn graph_get(
    sim: &Sim,
    token: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    graph(sim, token, reqwest::Method::GET, path, None, &[]).await
}

pub async fn graph(
    sim: &Sim,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}{path}", sim.graph_base_url())
    };
    let mut req = client().request(method, url).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, json)
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}
