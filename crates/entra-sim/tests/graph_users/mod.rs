//! `/users`: get, `$select`, `$filter`, advanced queries, paging, create, update (passwordProfile).

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn smoke_token_get_user_filter_membership_methods() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, h, body) = graph_get(&sim, &t, "/users/adele.vance@contoso.com").await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["id"], ADELE);
    assert!(
        h.contains_key("request-id")
            && h.contains_key("client-request-id")
            && h.contains_key("date")
    );
    let (s, _, body) = graph_get(&sim, &t, &format!("/users/{ADELE}/transitiveMemberOf")).await;
    assert_eq!(s, 200, "{body}");
    let (s, _, body) = graph_get(&sim, &t, &format!("/users/{MANY}/authentication/methods")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 11, "{body}");
    sim.stop().await;
}

#[tokio::test]
async fn get_user_default_and_select() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &t, &format!("/users/{ADELE}")).await;
    assert_eq!(s, 200);
    assert_eq!(
        b["@odata.context"],
        format!("{}/$metadata#users/$entity", sim.graph_base_url())
    );
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    ] {
        assert!(keys.contains(&k), "{k}");
    }
    assert!(
        b.get("accountEnabled").is_none() && b.get("otherMails").is_none(),
        "non-default properties need $select"
    );
    let (s, _, b) = graph_get(&sim, &t, &format!("/users/{ADELE}?$select=displayName,otherMails,onPremisesSyncEnabled,lastPasswordChangeDateTime,postalCode,employeeHireDate")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["@odata.context"],
        format!(
            "{}/$metadata#users(displayName,otherMails,onPremisesSyncEnabled,lastPasswordChangeDateTime,postalCode,employeeHireDate)/$entity",
            sim.graph_base_url()
        )
    );
    assert_eq!(b["otherMails"], json!(["adele.personal@outlook.com"]));
    assert_eq!(b["onPremisesSyncEnabled"], Value::Null, "cloud-only = null");
    assert_eq!(b["postalCode"], "98004");
    assert_eq!(b["employeeHireDate"], "2021-09-01T00:00:00Z");
    assert!(b.get("id").is_none() && b.get("mail").is_none());
    let (s, _, b) = graph_get(&sim, &t, &format!("/users/{ADELE}?$select=nonsense")).await;
    assert_eq!(s, 400);
    assert_eq!(error_code(&b), "BadRequest");
    // UPN with an apostrophe, percent-encoded.
    let (s, _, b) = graph_get(&sim, &t, "/users/pat.o'brien%40contoso.com").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["id"], OBRIEN);
    sim.stop().await;
}

#[tokio::test]
async fn unknown_user_and_bad_tokens() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, h, b) =
        client_get_with_id(&sim, &t, "/users/00000000-0000-0000-0000-000000000001").await;
    assert_eq!(s, 404);
    assert_eq!(error_code(&b), "Request_ResourceNotFound");
    assert_eq!(
        b["error"]["message"],
        "Resource '00000000-0000-0000-0000-000000000001' does not exist or one of its queried reference-property objects are not present."
    );
    assert_eq!(
        b["error"]["innerError"]["client-request-id"],
        "11111111-2222-3333-4444-555555555555"
    );
    assert_eq!(
        b["error"]["innerError"]["request-id"].as_str(),
        h["request-id"].to_str().ok()
    );
    assert_eq!(
        h["client-request-id"],
        "11111111-2222-3333-4444-555555555555"
    );
    let date = b["error"]["innerError"]["date"].as_str().unwrap();
    assert!(
        time::PrimitiveDateTime::parse(
            date,
            &time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")
        )
        .is_ok(),
        "{date}"
    );

    let r = client()
        .get(format!("{}/users", sim.graph_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let b: Value = r.json().await.unwrap();
    assert_eq!(error_code(&b), "InvalidAuthenticationToken");
    let (s, _, b) = graph_get(&sim, "eyJhbGciOiJub25lIn0.e30.", "/users").await;
    assert_eq!(s, 401, "{b}");
    // A token signed by someone else.
    let forged = assertion("RS256", "x5t", APP_CERT, APP_KEY, &claims(&t));
    let (s, _, _) = graph_get(&sim, &forged, "/users").await;
    assert_eq!(s, 401);
    // Expired.
    sim.tenant()
        .advance_time(std::time::Duration::from_secs(3601));
    let (s, _, b) = graph_get(&sim, &t, "/users").await;
    assert_eq!(s, 401);
    assert_eq!(error_code(&b), "InvalidAuthenticationToken");
    sim.stop().await;
}

async fn client_get_with_id(
    sim: &latchkey_entra_sim::Sim,
    t: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    graph(
        sim,
        t,
        Method::GET,
        path,
        None,
        &[("client-request-id", "11111111-2222-3333-4444-555555555555")],
    )
    .await
}

fn ids(b: &Value) -> Vec<String> {
    b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

fn filter_url(f: &str, extra: &str) -> String {
    let enc: String = url::form_urlencoded::byte_serialize(f.as_bytes()).collect();
    format!("/users?$filter={enc}{extra}")
}

#[tokio::test]
async fn filters_default_queries() {
    let sim = start().await;
    let t = app_token(&sim).await;
    for (f, expected) in [
        (
            "userPrincipalName eq 'ADELE.VANCE@contoso.com'",
            vec![ADELE],
        ),
        ("mail eq 'pat.o''brien@contoso.com'", vec![OBRIEN]),
        (
            "otherMails/any(x:x eq 'grady.archie@gmail.com')",
            vec![ALIAS],
        ),
        (
            "proxyAddresses/any(p:p eq 'smtp:g.archie@fabrikam.com')",
            vec![ALIAS],
        ),
        ("startsWith(displayName,'Adele')", vec![ADELE]),
        (
            "employeeId eq 'E1001' or employeeId eq 'E1002'",
            vec![ADELE, MEGAN],
        ),
        ("accountEnabled eq false", vec![DISABLED]),
        (
            "mail eq 'adele.vance@contoso.com' and accountEnabled eq true",
            vec![ADELE],
        ),
        // Injection attempts: an escaped quote is part of the literal and matches nothing.
        ("userPrincipalName eq 'x'' or ''1'' eq ''1'", vec![]),
    ] {
        let (s, _, b) = graph_get(&sim, &t, &filter_url(f, "")).await;
        assert_eq!(s, 200, "{f}: {b}");
        assert_eq!(ids(&b), expected, "{f}");
        assert!(b.get("@odata.count").is_none());
    }
    // Two users share an otherMails value: both come back (the caller must detect ambiguity).
    let (_, _, b) = graph_get(
        &sim,
        &t,
        &filter_url("otherMails/any(x:x eq 'shared.family@outlook.com')", ""),
    )
    .await;
    assert_eq!(b["value"].as_array().unwrap().len(), 2);
    for bad in [
        "userPrincipalName eq 'x' or 1 eq 1'",
        "userPrincipalName eq 'x' or 1 eq 1",
        "userPrincipalName eq",
        "startsWith(mail)",
        "otherMails eq 'a@b.c'",
    ] {
        let (s, _, b) = graph_get(&sim, &t, &filter_url(bad, "")).await;
        assert_eq!(s, 400, "{bad}");
        assert_eq!(error_code(&b), "Request_BadRequest", "{bad}");
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Invalid filter clause"),
            "{b}"
        );
    }
    let (s, _, b) = graph_get(&sim, &t, &filter_url("shoeSize eq '42'", "")).await;
    assert_eq!(s, 400);
    assert_eq!(error_code(&b), "Request_BadRequest");
    let (s, _, b) = graph_get(&sim, &t, &filter_url("streetAddress eq 'x'", "")).await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "The request uses a filter property that is not indexed"
    );
    sim.stop().await;
}

#[tokio::test]
async fn advanced_queries_need_consistency_level_and_count() {
    let sim = start().await;
    let t = app_token(&sim).await;
    for f in [
        "endsWith(mail,'@contoso.com')",
        "mobilePhone eq '+1 2065550100'",
        "onPremisesSamAccountName eq 'pobrien'",
        "mail ne 'x@y.z'",
        "not(accountEnabled eq true)",
    ] {
        let (s, _, b) = graph_get(&sim, &t, &filter_url(f, "")).await;
        assert_eq!(
            (s, error_code(&b)),
            (400, "Request_UnsupportedQuery"),
            "{f}"
        );
        assert_eq!(b["error"]["message"], "Unsupported Query.");
        // Header without $count: still unsupported.
        let (s, _, _) = graph(
            &sim,
            &t,
            Method::GET,
            &filter_url(f, ""),
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
        assert_eq!(s, 400, "{f}");
        let (s, _, b) = graph(
            &sim,
            &t,
            Method::GET,
            &filter_url(f, "&$count=true"),
            None,
            &[("ConsistencyLevel", "eventual")],
        )
        .await;
        assert_eq!(s, 200, "{f}: {b}");
        assert!(b["@odata.count"].is_u64());
    }
    let (_, _, b) = graph(
        &sim,
        &t,
        Method::GET,
        &filter_url("onPremisesSamAccountName eq 'pobrien'", "&$count=true"),
        None,
        &[("ConsistencyLevel", "eventual")],
    )
    .await;
    assert_eq!(ids(&b), vec![OBRIEN]);
    // The documented query-parameter form.
    let (s, _, b) = graph_get(
        &sim,
        &t,
        &filter_url(
            "endsWith(mail,'@contoso.com')",
            "&$count=true&ConsistencyLevel=eventual&$top=5",
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let next = b["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.contains("ConsistencyLevel=eventual") && next.contains("$skiptoken="),
        "{next}"
    );
    // $count=true without the header is silently ignored.
    let (s, _, b) = graph_get(&sim, &t, "/users?$count=true").await;
    assert_eq!(s, 200);
    assert!(b.get("@odata.count").is_none());
    // /users/$count
    let (s, _, b) = graph_get(&sim, &t, "/users/$count").await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["message"], "$count is not currently supported.");
    let (s, h, b) = graph(
        &sim,
        &t,
        Method::GET,
        "/users/$count",
        None,
        &[("ConsistencyLevel", "eventual")],
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(b.as_u64().unwrap() > 150, "{b}");
    // $search needs the header.
    let (s, _, b) = graph_get(&sim, &t, "/users?$search=%22displayName:adele%22").await;
    assert_eq!((s, error_code(&b)), (400, "Request_UnsupportedQuery"));
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::GET,
        "/users?$search=%22displayName:adele%22",
        None,
        &[("ConsistencyLevel", "eventual")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ids(&b), vec![ADELE]);
    sim.stop().await;
}

#[tokio::test]
async fn paging_follows_next_links_and_needs_the_header_again() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &t, "/users?$top=1000").await;
    assert_eq!((s, error_code(&b)), (400, "Request_BadRequest"));
    let mut url = "/users?$select=id&$top=40".to_owned();
    let mut seen = Vec::new();
    loop {
        let (s, _, b) = graph_get(&sim, &t, &url).await;
        assert_eq!(s, 200, "{b}");
        seen.extend(ids(&b));
        match b["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    let total = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), total);
    assert!(total > 160, "{total}");
    // Default page size is 100.
    let (_, _, b) = graph_get(&sim, &t, "/users?$select=id").await;
    assert_eq!(b["value"].as_array().unwrap().len(), 100);
    // An advanced query's next page without the header fails; with it, it works.
    let (_, _, b) = graph(
        &sim,
        &t,
        Method::GET,
        &filter_url(
            "endsWith(userPrincipalName,'@contoso.onmicrosoft.com')",
            "&$count=true&$top=100",
        ),
        None,
        &[("ConsistencyLevel", "eventual")],
    )
    .await;
    assert_eq!(b["@odata.count"], 150);
    let next = b["@odata.nextLink"].as_str().unwrap().to_owned();
    let (s, _, _) = graph_get(&sim, &t, &next).await;
    assert_eq!(s, 400, "ConsistencyLevel must be re-sent");
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::GET,
        &next,
        None,
        &[("ConsistencyLevel", "eventual")],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"].as_array().unwrap().len(), 50);
    assert!(
        b.get("@odata.count").is_none(),
        "count only on the first page"
    );
    // The recording shows what the client sent.
    let last = sim.requests().into_iter().last().unwrap();
    assert_eq!(last.header("consistencylevel"), Some("eventual"));
    // A tampered skiptoken is refused.
    let tampered = next.replace("$skiptoken=m~", "$skiptoken=m~AAAA");
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::GET,
        &tampered,
        None,
        &[("ConsistencyLevel", "eventual")],
    )
    .await;
    assert_eq!(s, 400);
    sim.stop().await;
}

#[tokio::test]
async fn create_user() {
    let sim = start().await;
    let readonly = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let body = serde_json::from_str::<Value>(include_str!(
        "../../../../tests/fixtures/graph-examples/create-user-request.json"
    ))
    .unwrap();
    let (s, _, b) = graph(
        &sim,
        &readonly,
        Method::POST,
        "/users",
        Some(body.clone()),
        &[],
    )
    .await;
    assert_eq!((s, error_code(&b)), (403, "Authorization_RequestDenied"));
    sim.tenant().add_app_permission(APP, "User.ReadWrite.All");
    let t = app_token(&sim).await;
    let mut body = body;
    body["userPrincipalName"] = json!("new.user@contoso.com");
    let (s, _, b) = graph(&sim, &t, Method::POST, "/users", Some(body.clone()), &[]).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["@odata.context"],
        format!("{}/$metadata#users/$entity", sim.graph_base_url())
    );
    assert_eq!(b["userPrincipalName"], "new.user@contoso.com");
    let (s, _, b) = graph(&sim, &t, Method::POST, "/users", Some(body.clone()), &[]).await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "Another object with the same value for property userPrincipalName already exists."
    );
    body["userPrincipalName"] = json!("other@contoso.com");
    body.as_object_mut().unwrap().remove("mailNickname");
    let (s, _, _) = graph(&sim, &t, Method::POST, "/users", Some(body.clone()), &[]).await;
    assert_eq!(s, 400);
    body["mailNickname"] = json!("other");
    body["passwordProfile"]["password"] = json!("weak");
    let (s, _, b) = graph(&sim, &t, Method::POST, "/users", Some(body), &[]).await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("password complexity")
    );
    sim.stop().await;
}

fn pw(password: &str, force: bool) -> Value {
    json!({"passwordProfile": {"forceChangePasswordNextSignIn": force, "password": password}})
}

#[tokio::test]
async fn patch_password_profile() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let before = sim.tenant().user(RISKY).unwrap();
    sim.tenant().lock_out(RISKY);
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::PATCH,
        &format!("/users/{RISKY}"),
        Some(pw("N3w-Secure-Passphrase", false)),
        &[],
    )
    .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(b, Value::Null);
    let after = sim.tenant().user(RISKY).unwrap();
    assert!(sim.tenant().check_password(RISKY, "N3w-Secure-Passphrase"));
    assert!(after.last_password_change > before.last_password_change);
    assert!(after.locked_until.is_none(), "an admin reset unlocks");
    assert_eq!(after.risk_state.as_deref(), Some("remediated"));
    assert_eq!(after.risk_level.as_deref(), Some("none"));
    assert_eq!(
        after.risk_detail.as_deref(),
        Some("userPerformedSecuredPasswordReset")
    );
    let (_, _, b) = graph_get(
        &sim,
        &t,
        &format!("/users/{RISKY}?$select=lastPasswordChangeDateTime"),
    )
    .await;
    assert!(
        b["lastPasswordChangeDateTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // Policy.
    for weak in ["short1A", "alllowercaseletters", "Contoso24!", "P@ssw0rd!"] {
        let (s, _, b) = graph(
            &sim,
            &t,
            Method::PATCH,
            &format!("/users/{ADELE}"),
            Some(pw(weak, false)),
            &[],
        )
        .await;
        assert_eq!(s, 400, "{weak}");
        assert_eq!(
            b["error"]["message"],
            "The specified password does not comply with password complexity requirements. Please provide a different password."
        );
    }
    // On-premises mastered.
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::PATCH,
        &format!("/users/{MEGAN}"),
        Some(pw("N3w-Secure-Passphrase", true)),
        &[],
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        b["error"]["message"],
        "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration."
    );
    // "Who can reset passwords": a User Administrator app cannot touch a Global Administrator,
    // an Authentication Administrator or a Privileged Authentication Administrator.
    for target in [ADMIN, AUTH_ADMIN, PRIV_AUTH, SEC_ADMIN] {
        let (s, _, b) = graph(
            &sim,
            &t,
            Method::PATCH,
            &format!("/users/{target}"),
            Some(pw("N3w-Secure-Passphrase", true)),
            &[],
        )
        .await;
        assert_eq!(
            (s, error_code(&b)),
            (403, "Authorization_RequestDenied"),
            "{target}"
        );
        assert_eq!(
            b["error"]["message"],
            "Insufficient privileges to complete the operation."
        );
    }
    // ...but can reset a Helpdesk Administrator and another User Administrator.
    for target in [HELPDESK, USER_ADMIN] {
        let (s, _, _) = graph(
            &sim,
            &t,
            Method::PATCH,
            &format!("/users/{target}"),
            Some(pw("N3w-Secure-Passphrase", true)),
            &[],
        )
        .await;
        assert_eq!(s, 204, "{target}");
    }
    assert!(
        sim.tenant()
            .user(HELPDESK)
            .unwrap()
            .force_change_password_next_sign_in
    );
    // Without the directory role, the permission alone is not enough.
    sim.tenant().set_app_directory_roles(APP, &[]);
    let t2 = app_token(&sim).await;
    let (s, _, _) = graph(
        &sim,
        &t2,
        Method::PATCH,
        &format!("/users/{ADELE}"),
        Some(pw("N3w-Secure-Passphrase", true)),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    // Privileged Authentication Administrator covers admins.
    sim.tenant()
        .set_app_directory_roles(APP, &["Privileged Authentication Administrator"]);
    let t3 = app_token(&sim).await;
    let (s, _, _) = graph(
        &sim,
        &t3,
        Method::PATCH,
        &format!("/users/{ADMIN}"),
        Some(pw("N3w-Secure-Passphrase", true)),
        &[],
    )
    .await;
    assert_eq!(s, 204);
    // Without the permission: 403; permissions are read from the token.
    let readonly = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, _, _) = graph(
        &sim,
        &readonly,
        Method::PATCH,
        &format!("/users/{ADELE}"),
        Some(pw("N3w-Secure-Passphrase", true)),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    sim.tenant()
        .remove_app_permission(APP, "User-PasswordProfile.ReadWrite.All");
    let (s, _, _) = graph(
        &sim,
        &t3,
        Method::PATCH,
        &format!("/users/{ADELE}"),
        Some(pw("N3w-Secure-Passphrase", true)),
        &[],
    )
    .await;
    assert_eq!(s, 204, "the old token still carries the permission");
    let t4 = app_token(&sim).await;
    let (s, _, _) = graph(
        &sim,
        &t4,
        Method::PATCH,
        &format!("/users/{ADELE}"),
        Some(pw("N3w-Secure-Passphrase", true)),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    // Unknown property / other properties need User.ReadWrite.All.
    let (s, _, _) = graph(
        &sim,
        &t3,
        Method::PATCH,
        &format!("/users/{ADELE}"),
        Some(json!({"jobTitle": "x"})),
        &[],
    )
    .await;
    assert_eq!(s, 403);
    sim.stop().await;
}

#[tokio::test]
async fn delegated_user_read_reaches_only_self() {
    let sim = start().await;
    let t = user_tokens(
        &sim,
        "adele.vance@contoso.com",
        "Adele-Pa55word!",
        "openid User.Read",
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, _, b) = graph_get(&sim, &t, "/me").await;
    assert_eq!(s, 200);
    assert_eq!(b["id"], ADELE);
    let (s, _, _) = graph_get(&sim, &t, &format!("/users/{MEGAN}")).await;
    assert_eq!(s, 403);
    let (s, _, _) = graph_get(&sim, &t, "/users").await;
    assert_eq!(s, 403);
    let app = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &app, "/me").await;
    assert_eq!(s, 400, "{b}");
    sim.stop().await;
}
