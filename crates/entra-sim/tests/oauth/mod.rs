//! Token endpoint, authorize page, OIDC discovery.

use serde_json::{Value, json};

use crate::support::*;
use latchkey_entra_sim::SignInOutcome;

fn assert_sts_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let d = body["error_description"].as_str().unwrap();
    assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
    assert!(
        d.contains("\r\nTrace ID: ")
            && d.contains("\r\nCorrelation ID: ")
            && d.contains("\r\nTimestamp: "),
        "{d}"
    );
    for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[k].is_string(), "{k} missing in {body}");
    }
    // "2016-01-09 02:02:12Z"
    let ts = body["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 20, "{ts}");
    assert!(ts.ends_with('Z') && &ts[10..11] == " ");
}

#[tokio::test]
async fn client_credentials_with_secret_issues_a_graph_app_token() {
    let sim = start().await;
    let (s, body) = post_form(
        &sim,
        &[
            ("client_id", APP),
            ("scope", GRAPH_DEFAULT),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body.get("refresh_token").is_none() && body.get("scope").is_none());
    let c = claims(body["access_token"].as_str().unwrap());
    let tid = sim.tenant_id();
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{tid}/"));
    assert_eq!(c["tid"], tid);
    assert_eq!(c["appid"], APP);
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["oid"], "22222222-2222-2222-2222-222222222222");
    let roles: Vec<&str> = c["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(roles.contains(&"User-PasswordProfile.ReadWrite.All"));
    let wids = c["wids"].as_array().unwrap();
    assert!(
        wids.contains(&json!("fe930be7-5e62-47db-91af-98c3a49a38b1")),
        "User Administrator"
    );
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
    sim.stop().await;
}

#[tokio::test]
async fn http_basic_and_domain_name_tenant_are_accepted() {
    let sim = start().await;
    let url = format!("{}/contoso.com/oauth2/v2.0/token", sim.base_url());
    let r = client()
        .post(url)
        .basic_auth(APP, Some(SECRET))
        .form(&[
            ("scope", GRAPH_DEFAULT),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sim.stop().await;
}

#[tokio::test]
async fn token_errors_have_the_documented_shape_and_status() {
    let sim = start().await;
    let base = [
        ("scope", GRAPH_DEFAULT),
        ("grant_type", "client_credentials"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let (s, b) = post_form(
        &sim,
        &with(&[("client_id", APP), ("client_secret", "wrong")]),
    )
    .await;
    assert_eq!(s, 401);
    assert_sts_error(&b, "invalid_client", 7000215);
    let (s, b) = post_form(
        &sim,
        &with(&[
            ("client_id", "99999999-9999-9999-9999-999999999999"),
            ("client_secret", "x"),
        ]),
    )
    .await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "unauthorized_client", 700016);
    let (s, b) = post_form(&sim, &with(&[("client_id", APP)])).await;
    assert_eq!(s, 401);
    assert_sts_error(&b, "invalid_client", 7000218);
    let (s, b) = post_form(
        &sim,
        &[
            ("client_id", APP),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/User.Read.All"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "invalid_scope", 70011);
    let (s, b) = post_form(
        &sim,
        &[
            ("client_id", APP),
            ("client_secret", SECRET),
            ("grant_type", "client_credentials"),
            (
                "scope",
                "https://graph.microsoft.com/.default https://management.azure.com/.default",
            ),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "invalid_scope", 70011);
    let (s, b) = post_form(
        &sim,
        &[
            ("client_id", APP),
            ("client_secret", SECRET),
            ("grant_type", "password"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "unsupported_grant_type", 70003);
    // Unknown tenant.
    let r = client()
        .post(format!(
            "{}/nosuchtenant.example/oauth2/v2.0/token",
            sim.base_url()
        ))
        .header("client-request-id", "6f6c4645-0202-4486-b625-fa957dfc4700")
        .form(&with(&[("client_id", APP), ("client_secret", SECRET)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_sts_error(&b, "invalid_tenant", 90002);
    assert_eq!(
        b["correlation_id"], "6f6c4645-0202-4486-b625-fa957dfc4700",
        "client-request-id becomes the correlation id"
    );
    // Secrets never appear in error bodies.
    assert!(!b.to_string().contains(SECRET));
    sim.stop().await;
}

async fn assertion_request(sim: &latchkey_entra_sim::Sim, jwt: &str) -> (u16, Value) {
    post_form(
        sim,
        &[
            ("client_id", APP),
            ("scope", GRAPH_DEFAULT),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
            ("grant_type", "client_credentials"),
        ],
    )
    .await
}

#[tokio::test]
async fn certificate_assertions_rs256_x5t_and_ps256_x5t_s256_are_accepted() {
    let sim = start().await;
    for (alg, header) in [("RS256", "x5t"), ("PS256", "x5t#S256")] {
        let jwt = assertion(alg, header, APP_CERT, APP_KEY, &assertion_claims(&sim, APP));
        let (s, b) = assertion_request(&sim, &jwt).await;
        assert_eq!(s, 200, "{alg}: {b}");
        assert_eq!(claims(b["access_token"].as_str().unwrap())["appidacr"], "2");
        // The same assertion (same jti) cannot be replayed.
        let (s, b) = assertion_request(&sim, &jwt).await;
        assert_eq!(s, 401, "{b}");
        assert_eq!(b["error"], "invalid_client");
    }
    sim.stop().await;
}

#[tokio::test]
async fn bad_assertions_are_rejected() {
    let sim = start().await;
    // Unregistered certificate.
    let jwt = assertion(
        "RS256",
        "x5t",
        OTHER_CERT,
        OTHER_KEY,
        &assertion_claims(&sim, APP),
    );
    let (s, b) = assertion_request(&sim, &jwt).await;
    assert_eq!(s, 401);
    assert_sts_error(&b, "invalid_client", 700027);
    // Registered thumbprint, but signed with another key.
    let jwt = assertion(
        "PS256",
        "x5t#S256",
        APP_CERT,
        OTHER_KEY,
        &assertion_claims(&sim, APP),
    );
    let (s, b) = assertion_request(&sim, &jwt).await;
    assert_eq!(s, 401);
    assert_sts_error(&b, "invalid_client", 700027);
    // Wrong audience.
    let mut c = assertion_claims(&sim, APP);
    c["aud"] = json!("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    let (s, b) = assertion_request(&sim, &assertion("RS256", "x5t", APP_CERT, APP_KEY, &c)).await;
    assert_eq!(s, 401);
    assert_sts_error(&b, "invalid_client", 700023);
    // sub != iss (the 2025 doc example's typo).
    let mut c = assertion_claims(&sim, APP);
    c["sub"] = json!("aaaaaaaa-0000-1111-2222-bbbbbbbbbbbb");
    let (s, b) = assertion_request(&sim, &assertion("RS256", "x5t", APP_CERT, APP_KEY, &c)).await;
    assert_eq!(s, 401);
    assert_sts_error(&b, "invalid_client", 50048);
    // Expired.
    let mut c = assertion_claims(&sim, APP);
    c["nbf"] = json!(now() - 7200);
    c["exp"] = json!(now() - 3600);
    let (s, b) = assertion_request(&sim, &assertion("RS256", "x5t", APP_CERT, APP_KEY, &c)).await;
    assert_eq!(s, 401);
    assert_sts_error(&b, "invalid_client", 700024);
    // Garbage.
    let (s, b) = assertion_request(&sim, "not.a.jwt").await;
    assert_eq!(s, 400, "{b}");
    sim.stop().await;
}

#[tokio::test]
async fn authorization_code_with_pkce_refresh_and_id_token() {
    let sim = start().await;
    let body = user_tokens(
        &sim,
        "authadmin@contoso.com",
        "Alex-Pa55word!",
        ADMIN_SCOPES,
    )
    .await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(
        body["scope"]
            .as_str()
            .unwrap()
            .contains("UserAuthenticationMethod.ReadWrite.All")
    );
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["idtyp"], "user");
    assert_eq!(at["oid"], AUTH_ADMIN);
    assert_eq!(at["upn"], "authadmin@contoso.com");
    assert!(
        at["scp"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "UserAuthenticationMethod.ReadWrite.All")
    );
    assert!(
        at["wids"]
            .as_array()
            .unwrap()
            .contains(&json!("c4e39bd9-1100-46d3-8c65-fb160da0071f"))
    );
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], APP);
    assert_eq!(
        id["iss"],
        format!("{}/{}/v2.0", sim.base_url(), sim.tenant_id())
    );
    assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(id["preferred_username"], "authadmin@contoso.com");
    assert_eq!(id["oid"], AUTH_ADMIN);
    for k in ["sub", "tid", "name", "iat", "nbf", "exp"] {
        assert!(!id[k].is_null(), "{k}");
    }
    // Refresh: a new refresh token each time; the old one keeps working.
    let rt1 = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String| {
        let sim = &sim;
        async move {
            post_form(
                sim,
                &[
                    ("client_id", APP),
                    ("client_secret", SECRET),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("scope", "User.Read offline_access"),
                ],
            )
            .await
        }
    };
    let (s, b2) = refresh(rt1.clone()).await;
    assert_eq!(s, 200, "{b2}");
    let rt2 = b2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    let (s, _) = refresh(rt1.clone()).await;
    assert_eq!(s, 200, "old refresh token still valid");
    let (s, b) = refresh("bogus".into()).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_grant");
    // Refresh tokens expire (90 days).
    sim.tenant()
        .advance_time(std::time::Duration::from_secs(91 * 24 * 3600));
    let (s, b) = refresh(rt2).await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "invalid_grant", 70008);
    sim.stop().await;
}

#[tokio::test]
async fn codes_are_single_use_short_lived_and_pkce_bound() {
    let sim = start().await;
    let redeem = |code: String, verifier: String, redirect: &'static str| {
        let sim = &sim;
        async move {
            post_form(
                sim,
                &[
                    ("client_id", APP),
                    ("client_secret", SECRET),
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    let (verifier, challenge) = pkce();
    let code = code_from(
        &authorize(
            &sim,
            APP,
            "openid User.Read",
            Some(&challenge),
            "adele.vance@contoso.com",
            "Adele-Pa55word!",
        )
        .await,
    );
    let (s, b) = redeem(
        code.clone(),
        "wrong-verifier-wrong-verifier-wrong-verifier".into(),
        REDIRECT,
    )
    .await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "invalid_grant", 50148);
    // A failed redemption still consumed it.
    let (s, b) = redeem(code, verifier.clone(), REDIRECT).await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "invalid_grant", 54005);

    let code = code_from(
        &authorize(
            &sim,
            APP,
            "openid User.Read",
            Some(&challenge),
            "adele.vance@contoso.com",
            "Adele-Pa55word!",
        )
        .await,
    );
    let (s, b) = redeem(
        code.clone(),
        verifier.clone(),
        "http://127.0.0.1:9999/other",
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(b["error"], "invalid_grant");

    let code = code_from(
        &authorize(
            &sim,
            APP,
            "openid User.Read",
            Some(&challenge),
            "adele.vance@contoso.com",
            "Adele-Pa55word!",
        )
        .await,
    );
    let (s, _) = redeem(code.clone(), verifier.clone(), REDIRECT).await;
    assert_eq!(s, 200);
    let (s, b) = redeem(code, verifier.clone(), REDIRECT).await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "invalid_grant", 54005);

    let code = code_from(
        &authorize(
            &sim,
            APP,
            "openid User.Read",
            Some(&challenge),
            "adele.vance@contoso.com",
            "Adele-Pa55word!",
        )
        .await,
    );
    sim.tenant()
        .advance_time(std::time::Duration::from_secs(11 * 60));
    let (s, b) = redeem(code, verifier, REDIRECT).await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "invalid_grant", 70008);
    sim.stop().await;
}

#[tokio::test]
async fn public_client_pkce_and_missing_consent() {
    let sim = start().await;
    let (verifier, challenge) = pkce();
    let code = code_from(
        &authorize(
            &sim,
            PUBLIC_APP,
            "openid offline_access User.Read",
            Some(&challenge),
            "adele.vance@contoso.com",
            "Adele-Pa55word!",
        )
        .await,
    );
    let (s, b) = post_form(
        &sim,
        &[
            ("client_id", PUBLIC_APP),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(claims(b["access_token"].as_str().unwrap())["appidacr"], "0");
    // Missing verifier.
    let code = code_from(
        &authorize(
            &sim,
            PUBLIC_APP,
            "openid User.Read",
            Some(&challenge),
            "adele.vance@contoso.com",
            "Adele-Pa55word!",
        )
        .await,
    );
    let (s, b) = post_form(
        &sim,
        &[
            ("client_id", PUBLIC_APP),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"], "invalid_grant");
    // The read-only app has no consent for UserAuthenticationMethod.ReadWrite.All.
    let code = code_from(
        &authorize(
            &sim,
            READONLY_APP,
            "openid UserAuthenticationMethod.ReadWrite.All",
            None,
            "adele.vance@contoso.com",
            "Adele-Pa55word!",
        )
        .await,
    );
    let (s, b) = post_form(
        &sim,
        &[
            ("client_id", READONLY_APP),
            ("client_secret", READONLY_SECRET),
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert_sts_error(&b, "invalid_grant", 65001);
    assert_eq!(b["suberror"], "consent_required");
    sim.stop().await;
}

fn authorize_url(sim: &latchkey_entra_sim::Sim, params: &[(&str, &str)]) -> url::Url {
    url::Url::parse_with_params(
        &format!(
            "{}/{}/oauth2/v2.0/authorize",
            sim.base_url(),
            sim.tenant_id()
        ),
        params,
    )
    .unwrap()
}

#[tokio::test]
async fn authorize_page_is_accessible_and_reports_sign_in_failures() {
    let sim = start().await;
    let params = [
        ("client_id", APP),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "s1"),
    ];
    let page = client()
        .get(authorize_url(&sim, &params))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for needle in [
        "<label for=\"username\"",
        "<input id=\"username\" name=\"username\"",
        "<label for=\"password\"",
        "type=\"password\"",
        "<button type=\"submit\"",
        "type=\"hidden\" name=\"state\" value=\"s1\"",
        "lang=\"en\"",
    ] {
        assert!(html.contains(needle), "{needle} missing in {html}");
    }
    let post = |user: &'static str, pw: &'static str| {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.push(("username", user));
        form.push(("password", pw));
        let url = format!(
            "{}/{}/oauth2/v2.0/authorize",
            sim.base_url(),
            sim.tenant_id()
        );
        async move { client().post(url).form(&form).send().await.unwrap() }
    };
    let r = post("adele.vance@contoso.com", "nope").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("AADSTS50126") && html.contains("role=\"alert\""),
        "{html}"
    );
    assert!(!html.contains("nope"), "the password is never echoed");
    let html = post("disabled.user@contoso.com", "Diego-Pa55word!")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("AADSTS50057"), "{html}");
    let html = post("locked.user@contoso.com", "Miriam-Pa55word!")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("AADSTS50053"), "{html}");
    let html = post("<script>@contoso.com", "x")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("AADSTS50034") && !html.contains("<script>"),
        "escaped"
    );
    let r = post("adele.vance@contoso.com", "Adele-Pa55word!").await;
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        loc.port(),
        Some(8400),
        "loopback redirect keeps the requested port"
    );
    assert!(loc.query_pairs().any(|(k, v)| k == "state" && v == "s1"));
    sim.stop().await;
}

#[tokio::test]
async fn authorize_request_errors() {
    let sim = start().await;
    // Unknown client and unregistered redirect URI: shown on the page, never redirected.
    let r = client()
        .get(authorize_url(
            &sim,
            &[
                ("client_id", "99999999-9999-9999-9999-999999999999"),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS700016"));
    let r = client()
        .get(authorize_url(
            &sim,
            &[
                ("client_id", APP),
                ("response_type", "code"),
                ("redirect_uri", "https://evil.example/cb"),
                ("scope", "openid"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS50011"));
    // Other errors go back to the (valid) redirect URI.
    let r = client()
        .get(authorize_url(
            &sim,
            &[
                ("client_id", APP),
                ("response_type", "token"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("state", "s"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["error"], "unsupported_response_type");
    assert!(q.contains_key("error_description"));
    assert_eq!(q["state"], "s");
    let r = client()
        .get(authorize_url(
            &sim,
            &[
                ("client_id", APP),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("code_challenge", "abc"),
                ("code_challenge_method", "S512"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=invalid_request")
    );
    sim.stop().await;
}

#[tokio::test]
async fn smart_lockout() {
    let sim = start().await;
    assert_eq!(
        sim.sign_in("adele.vance@contoso.com", "Adele-Pa55word!"),
        SignInOutcome::Success
    );
    assert_eq!(
        sim.sign_in("nobody@contoso.com", "x"),
        SignInOutcome::NotFound
    );
    // Control endpoint does the same (the fixture starts this user locked).
    let r: Value = client()
        .post(format!("{}/_sim/signin", sim.base_url()))
        .json(&json!({"upn": "locked.user@contoso.com", "password": "x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"outcome": "Locked", "aadsts": 50053}));
    assert_eq!(
        sim.sign_in("disabled.user@contoso.com", "Diego-Pa55word!"),
        SignInOutcome::Disabled
    );
    assert_eq!(
        sim.sign_in("disabled.user@contoso.com", "wrong"),
        SignInOutcome::InvalidPassword
    );
    // The same wrong password over and over counts once.
    for _ in 0..20 {
        assert_eq!(
            sim.sign_in("adele.vance@contoso.com", "same-wrong"),
            SignInOutcome::InvalidPassword
        );
    }
    for i in 0..8 {
        assert_eq!(
            sim.sign_in("adele.vance@contoso.com", &format!("wrong-{i}")),
            SignInOutcome::InvalidPassword
        );
    }
    assert_eq!(
        sim.sign_in("adele.vance@contoso.com", "wrong-last"),
        SignInOutcome::Locked,
        "10th distinct failure"
    );
    assert_eq!(
        sim.sign_in("adele.vance@contoso.com", "Adele-Pa55word!"),
        SignInOutcome::Locked,
        "even the right password"
    );
    assert!(sim.tenant().is_locked_out("adele.vance@contoso.com"));
    sim.tenant()
        .advance_time(std::time::Duration::from_secs(61));
    assert_eq!(
        sim.sign_in("adele.vance@contoso.com", "Adele-Pa55word!"),
        SignInOutcome::Success
    );
    sim.stop().await;
}

#[tokio::test]
async fn oidc_discovery_and_jwks_verify_issued_tokens() {
    let sim = start().await;
    let tid = sim.tenant_id();
    let conf: Value = client()
        .get(format!(
            "{}/contoso.com/v2.0/.well-known/openid-configuration",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(conf["issuer"], format!("{}/{tid}/v2.0", sim.base_url()));
    assert_eq!(
        conf["token_endpoint"],
        format!("{}/{tid}/oauth2/v2.0/token", sim.base_url())
    );
    assert_eq!(
        conf["authorization_endpoint"],
        format!("{}/{tid}/oauth2/v2.0/authorize", sim.base_url())
    );
    let jwks: Value = client()
        .get(conf["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    let token = app_token(&sim).await;
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            token.split('.').next().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], key["kid"]);
    assert_eq!(header["alg"], "RS256");
    let dec = |s: &Value| {
        base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            s.as_str().unwrap(),
        )
        .unwrap()
    };
    let pk = ring::signature::RsaPublicKeyComponents {
        n: dec(&key["n"]),
        e: dec(&key["e"]),
    };
    let (input, sig) = token.rsplit_once('.').unwrap();
    pk.verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        input.as_bytes(),
        &dec(&json!(sig)),
    )
    .expect("signature verifies with the JWKS key");
    let r = client()
        .get(format!(
            "{}/unknown.example/discovery/v2.0/keys",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sim.stop().await;
}
