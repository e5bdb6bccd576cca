//! Authentication methods: list, per-type, create, delete, TAP.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;
use latchkey_entra_sim::{
    ALTERNATE_MOBILE_PHONE_ID, EMAIL_METHOD_ID, MOBILE_PHONE_ID, PASSWORD_METHOD_ID,
};

fn types(b: &Value) -> Vec<String> {
    b["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["@odata.type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn list_all_methods_with_schema_names() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &t, &format!("/users/{MANY}/authentication/methods")).await;
    assert_eq!(s, 200);
    let ts = types(&b);
    for ty in [
        "password",
        "email",
        "phone",
        "microsoftAuthenticator",
        "fido2",
        "softwareOath",
        "temporaryAccessPass",
        "windowsHelloForBusiness",
        "platformCredential",
    ] {
        assert!(
            ts.contains(&format!("#microsoft.graph.{ty}AuthenticationMethod")),
            "{ty}"
        );
    }
    let text = b.to_string();
    assert!(
        !text.contains("creationDateTime"),
        "schema name is createdDateTime"
    );
    let pw = &b["value"][0];
    assert_eq!(pw["id"], PASSWORD_METHOD_ID);
    assert_eq!(pw["password"], Value::Null);
    let tap = b["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["@odata.type"] == "#microsoft.graph.temporaryAccessPassAuthenticationMethod")
        .unwrap();
    assert_eq!(
        tap["temporaryAccessPass"],
        Value::Null,
        "the pass is only shown on create"
    );
    assert_eq!(tap["methodUsabilityReason"], "Expired");
    let (s, _, b) = graph_get(
        &sim,
        &t,
        &format!("/users/{MANY}/authentication/phoneMethods"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"].as_array().unwrap().len(), 3);
    assert_eq!(b["value"][0]["id"], MOBILE_PHONE_ID);
    assert_eq!(b["value"][0]["phoneNumber"], "+1 2065555555");
    let (s, _, b) = graph_get(
        &sim,
        &t,
        &format!("/users/{MANY}/authentication/phoneMethods/{MOBILE_PHONE_ID}"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["phoneType"], "mobile");
    let (s, _, b) = graph_get(
        &sim,
        &t,
        &format!("/users/{ADELE}/authentication/passwordMethods"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"][0]["id"], PASSWORD_METHOD_ID);
    let (s, _, _) = graph_get(
        &sim,
        &t,
        &format!("/users/{ADELE}/authentication/bogusMethods"),
    )
    .await;
    assert_eq!(s, 400);
    let readonly = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, _, b) = graph_get(
        &sim,
        &readonly,
        &format!("/users/{ADELE}/authentication/methods"),
    )
    .await;
    assert_eq!((s, error_code(&b)), (403, "Authorization_RequestDenied"));
    sim.stop().await;
}

#[tokio::test]
async fn phone_and_email_methods() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let path = format!("/users/{OBRIEN}/authentication/phoneMethods");
    let post = |body: Value| graph(&sim, &t, Method::POST, &path, Some(body), &[]);
    let (s, _, b) =
        post(json!({"phoneNumber": "+1 2065555555", "phoneType": "alternateMobile"})).await;
    assert_eq!(s, 400, "alternateMobile needs mobile: {b}");
    let (s, _, b) = post(json!({"phoneNumber": "206-555-5555", "phoneType": "mobile"})).await;
    assert_eq!(s, 400, "format: {b}");
    let (s, _, b) = post(
        json!({"phoneNumber": "+1 2065555555", "phoneType": "mobile", "smsSignInState": "ready"}),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let (s, _, b) = post(json!({"phoneNumber": "+1 2065555555", "phoneType": "mobile"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["id"], MOBILE_PHONE_ID);
    assert_eq!(b["phoneType"], "mobile");
    let (s, _, _) = post(json!({"phoneNumber": "+1 2065555556", "phoneType": "mobile"})).await;
    assert_eq!(s, 400, "one per type");
    let (s, _, _) =
        post(json!({"phoneNumber": "+1 2065555556", "phoneType": "alternateMobile"})).await;
    assert_eq!(s, 201);
    let del = |id: &str| {
        let url = format!("{path}/{id}");
        let (sim, t) = (&sim, &t);
        async move { graph(sim, t, Method::DELETE, &url, None, &[]).await }
    };
    let (s, _, _) = del(MOBILE_PHONE_ID).await;
    assert_eq!(s, 400, "mobile can't go while alternateMobile exists");
    assert_eq!(del(ALTERNATE_MOBILE_PHONE_ID).await.0, 204);
    assert_eq!(del(MOBILE_PHONE_ID).await.0, 204);
    assert_eq!(del(MOBILE_PHONE_ID).await.0, 404);

    let epath = format!("/users/{OBRIEN}/authentication/emailMethods");
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &epath,
        Some(json!({"emailAddress": "pat@outlook.example"})),
        &[],
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(b["id"], EMAIL_METHOD_ID);
    assert_eq!(b["emailAddress"], "pat@outlook.example");
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::POST,
        &epath,
        Some(json!({"emailAddress": "other@outlook.example"})),
        &[],
    )
    .await;
    assert_eq!(s, 400, "one email method per user");
    assert_eq!(
        graph(
            &sim,
            &t,
            Method::DELETE,
            &format!("{epath}/{EMAIL_METHOD_ID}"),
            None,
            &[]
        )
        .await
        .0,
        204
    );
    // The password method can't be deleted; other types by id.
    let (s, _, _) = graph(
        &sim,
        &t,
        Method::DELETE,
        &format!("/users/{MANY}/authentication/passwordMethods/{PASSWORD_METHOD_ID}"),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 400);
    let (_, _, b) = graph_get(
        &sim,
        &t,
        &format!("/users/{MANY}/authentication/fido2Methods"),
    )
    .await;
    let fido = b["value"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        graph(
            &sim,
            &t,
            Method::DELETE,
            &format!("/users/{MANY}/authentication/fido2Methods/{fido}"),
            None,
            &[]
        )
        .await
        .0,
        204
    );
    for seg in [
        "microsoftAuthenticatorMethods",
        "softwareOathMethods",
        "windowsHelloForBusinessMethods",
        "platformCredentialMethods",
        "temporaryAccessPassMethods",
    ] {
        let (_, _, b) = graph_get(&sim, &t, &format!("/users/{MANY}/authentication/{seg}")).await;
        let id = b["value"][0]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            graph(
                &sim,
                &t,
                Method::DELETE,
                &format!("/users/{MANY}/authentication/{seg}/{id}"),
                None,
                &[]
            )
            .await
            .0,
            204,
            "{seg}"
        );
    }
    let (_, _, b) = graph_get(&sim, &t, &format!("/users/{MANY}/authentication/methods")).await;
    assert_eq!(
        b["value"].as_array().unwrap().len(),
        5,
        "password + email + 3 phones"
    );
    sim.stop().await;
}

#[tokio::test]
async fn temporary_access_pass() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let path = format!("/users/{ADELE}/authentication/temporaryAccessPassMethods");
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &path,
        Some(json!({"lifetimeInMinutes": 5})),
        &[],
    )
    .await;
    assert_eq!(s, 400, "below the policy minimum: {b}");
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &path,
        Some(json!({"lifetimeInMinutes": 50000})),
        &[],
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &path,
        Some(json!({"lifetimeInMinutes": 60, "isUsableOnce": true})),
        &[],
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let pass = b["temporaryAccessPass"].as_str().unwrap();
    assert_eq!(pass.len(), 8);
    assert_eq!(b["isUsable"], true);
    assert_eq!(b["methodUsabilityReason"], "EnabledByPolicy");
    let first = b["id"].as_str().unwrap().to_owned();
    // A start in the future: not yet valid. It replaces the first one.
    let start = (time::OffsetDateTime::now_utc() + time::Duration::days(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &path,
        Some(json!({"startDateTime": start, "lifetimeInMinutes": 120})),
        &[],
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(b["methodUsabilityReason"], "NotYetValid");
    let (_, _, list) = graph_get(&sim, &t, &path).await;
    let v = list["value"].as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert_ne!(v[0]["id"], first.as_str());
    assert_eq!(v[0]["temporaryAccessPass"], Value::Null);
    let (s, _, b) = graph_get(&sim, &t, "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass").await;
    assert_eq!(s, 200);
    assert_eq!(b["minimumLifetimeInMinutes"], 60);
    sim.stop().await;
}

#[tokio::test]
async fn delegated_method_access_needs_a_role() {
    let sim = start().await;
    let adele = user_token(&sim, "adele.vance@contoso.com", "Adele-Pa55word!").await;
    let (s, _, _) = graph_get(
        &sim,
        &adele,
        &format!("/users/{ADELE}/authentication/methods"),
    )
    .await;
    assert_eq!(s, 200, "own methods");
    let (s, _, _) = graph_get(
        &sim,
        &adele,
        &format!("/users/{MANY}/authentication/methods"),
    )
    .await;
    assert_eq!(s, 403, "no role");
    let aa = user_token(&sim, "authadmin@contoso.com", "Alex-Pa55word!").await;
    let (s, _, b) = graph_get(
        &sim,
        &aa,
        &format!("/users/{MANY}/authentication/phoneMethods"),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        b["value"][0]["phoneNumber"], "+1 XXXXXXXX55",
        "masked for Authentication Administrators"
    );
    let (s, _, _) = graph(
        &sim,
        &aa,
        Method::POST,
        &format!("/users/{ADMIN}/authentication/emailMethods"),
        Some(json!({"emailAddress": "x@y.example"})),
        &[],
    )
    .await;
    assert_eq!(
        s, 403,
        "an Authentication Administrator can't manage a Global Administrator's methods"
    );
    sim.stop().await;
}
