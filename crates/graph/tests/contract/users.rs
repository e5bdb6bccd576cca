//! Users: get, find (filter, escaping, exactly one), create, update, set password.

use latchkey_graph::{GraphError, NewUser, USER_SELECT, UserRef, UserType, UserUpdate};
use latchkey_types::{Secret, Upn};

use super::support::*;

#[tokio::test]
async fn get_user_by_id_selects_exactly_the_portal_properties() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let u = c.get_user(&UserRef::Id(oid(OBRIEN))).await.unwrap();
    assert_eq!(u.id, oid(OBRIEN));
    assert_eq!(
        u.user_principal_name.as_str(),
        format!("o'brien@{}", domain(&f))
    );
    assert_eq!(u.display_name.as_deref(), Some("Paddy O'Brien"));
    assert_eq!(u.given_name.as_deref(), Some("Paddy"));
    assert_eq!(u.employee_id.as_deref(), Some("E-1001"));
    assert_eq!(u.usage_location.as_deref(), Some("IE"));
    assert_eq!(u.user_type, Some(UserType::Member));
    assert_eq!(u.account_enabled, Some(true));
    assert_eq!(u.other_mails.len(), 1);
    assert!(!u.is_synced());
    let r = &requests_to(&sim, &format!("/users/{OBRIEN}"))[0];
    let mut asked: Vec<String> = r
        .query_param("$select")
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let mut expected: Vec<String> = USER_SELECT.split(',').map(str::to_string).collect();
    asked.sort();
    expected.sort();
    assert_eq!(asked, expected);
    assert_eq!(expected.len(), 19);
}

#[tokio::test]
async fn get_user_by_upn_and_synced_flags() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let upn: Upn = format!("Synced.User@{}", domain(&f)).parse().unwrap();
    let u = c.get_user(&UserRef::Upn(upn)).await.unwrap();
    assert_eq!(u.id, oid(SYNCED));
    assert!(u.is_synced());
    assert_eq!(
        u.on_premises_sam_account_name.as_deref(),
        Some("synced.user")
    );
    assert_eq!(u.on_premises_domain_name.as_deref(), Some("corp.example"));
    // An apostrophe in a UPN path segment.
    let upn: Upn = format!("o'brien@{}", domain(&f)).parse().unwrap();
    assert_eq!(
        c.get_user(&UserRef::Upn(upn)).await.unwrap().id,
        oid(OBRIEN)
    );
}

#[tokio::test]
async fn unknown_user_is_a_typed_404() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let e = c
        .get_user(&UserRef::Id(oid("0b000000-0000-4000-8000-0000000000ff")))
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(e.status(), Some(404));
    assert_eq!(e.code(), Some("Request_ResourceNotFound"));
    let GraphError::Api(api) = &e else { panic!() };
    let sent = &requests_to(&sim, "/users/0b000000-0000-4000-8000-0000000000ff")[0];
    assert_eq!(
        Some(api.client_request_id.as_str()),
        sent.header("client-request-id")
    );
    assert!(api.request_id.is_some());
}

#[tokio::test]
async fn find_user_by_each_kind_of_address_in_one_request() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let d = domain(&f);
    for (typed, expected) in [
        (format!("o'brien@{d}"), OBRIEN), // UPN (and mail)
        (format!("  O'Brien@{}  ", d.to_uppercase()), OBRIEN), // case and spaces
        ("paddy.home@example.org".to_string(), OBRIEN), // otherMails
        (format!("p.alias@{d}"), PROXY),  // proxyAddresses smtp:
        (format!("proxy.user@{d}"), PROXY), // mail and SMTP:
    ] {
        let before = requests_to(&sim, "/users").len();
        let u = c
            .find_user(&typed)
            .await
            .unwrap_or_else(|e| panic!("{typed}: {e}"));
        assert_eq!(u.id, oid(expected), "{typed}");
        assert_eq!(
            requests_to(&sim, "/users").len(),
            before + 1,
            "one request for {typed}"
        );
    }
    let r = requests_to(&sim, "/users")
        .into_iter()
        .find(|r| r.query.contains("filter"))
        .unwrap();
    let filter = r.query_param("$filter").unwrap();
    assert_eq!(
        filter,
        format!(
            "userPrincipalName eq 'o''brien@{d}' or mail eq 'o''brien@{d}' or otherMails/any(m:m eq 'o''brien@{d}') or proxyAddresses/any(p:p eq 'smtp:o''brien@{d}')"
        )
    );
    assert_eq!(r.query_param("$top").as_deref(), Some("2"));
    assert!(r.query_param("$select").is_some());
    assert!(
        !r.query.contains('\''),
        "quotes are percent-encoded: {}",
        r.query
    );
}

#[tokio::test]
async fn find_user_requires_exactly_one_match() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let e = c.find_user("nobody@example.org").await.unwrap_err();
    assert!(matches!(e, GraphError::NotFound { .. }), "{e:?}");
    assert!(e.is_not_found());
    let e = c.find_user("shared.alias@example.org").await.unwrap_err();
    assert!(matches!(e, GraphError::Ambiguous { .. }), "{e:?}");
    assert!(e.client_request_id().is_some());
}

#[tokio::test]
async fn find_user_rejects_bad_syntax_and_injection_without_widening_the_match() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let d = domain(&f);
    // Not an address: rejected before any request.
    for bad in [
        "",
        "adele",
        "x' or 1 eq 1 or 'a@b.com",
        &format!("o'brien@{d}' or userPrincipalName ne '"),
        "a@b.com&$top=999",
    ] {
        let e = c.find_user(bad).await.unwrap_err();
        assert!(matches!(e, GraphError::InvalidInput(_)), "{bad:?} → {e:?}");
    }
    assert!(requests_to(&sim, "/users").is_empty());
    // Valid address syntax that tries to close the literal: stays one literal, matches nobody.
    let e = c.find_user(&format!("x'or'1'eq'1@{d}")).await.unwrap_err();
    assert!(matches!(e, GraphError::NotFound { .. }), "{e:?}");
    let r = requests_to(&sim, "/users").pop().unwrap();
    assert!(
        r.query_param("$filter")
            .unwrap()
            .starts_with(&format!("userPrincipalName eq 'x''or''1''eq''1@{d}'"))
    );
}

#[tokio::test]
async fn create_update_and_read_back_a_user() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let upn: Upn = format!("new.person@{}", domain(&f)).parse().unwrap();
    let mut nu = NewUser::new(
        upn.clone(),
        "New Person",
        "newperson",
        Secret::new("Str0ng-And-Long-Passw0rd".into()),
    );
    nu.given_name = Some("New".into());
    nu.usage_location = Some("NL".into());
    let created = c.create_user(&nu).await.unwrap();
    assert_eq!(created.user_principal_name, upn);
    let body = &requests_to(&sim, "/users")
        .iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .body
        .clone();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["mailNickname"], "newperson");
    assert_eq!(v["passwordProfile"]["forceChangePasswordNextSignIn"], true);

    c.update_user(
        &created.id,
        &UserUpdate {
            display_name: Some("Renamed Person".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let patch = requests_to(&sim, &format!("/users/{}", created.id))
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(patch.status, 204);
    assert_eq!(patch.body, r#"{"displayName":"Renamed Person"}"#);
    let back = c.get_user(&UserRef::Id(created.id)).await.unwrap();
    assert_eq!(back.display_name.as_deref(), Some("Renamed Person"));
    assert_eq!(back.usage_location.as_deref(), Some("NL"));
    // Creating the same UPN again is a 400 from Graph.
    let e = c.create_user(&nu).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    // Empty update is refused locally.
    assert!(matches!(
        c.update_user(&created.id, &UserUpdate::default()).await,
        Err(GraphError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn set_password_cloud_user_and_typed_failures() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    c.set_password(
        &oid(TARGET),
        &Secret::new("Brand-New-Passw0rd-42".into()),
        true,
    )
    .await
    .unwrap();
    let patch = requests_to(&sim, &format!("/users/{TARGET}"))
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&patch.body).unwrap();
    assert_eq!(v["passwordProfile"]["password"], "Brand-New-Passw0rd-42");
    assert_eq!(v["passwordProfile"]["forceChangePasswordNextSignIn"], true);

    // Synced user: on-premises mastered.
    let e = c
        .set_password(
            &oid(SYNCED),
            &Secret::new("Brand-New-Passw0rd-42".into()),
            false,
        )
        .await
        .unwrap_err();
    assert!(e.is_on_premises_mastered(), "{e:?}");
    assert_eq!(e.code(), Some("Request_BadRequest"));

    // Weak password: 400 from the policy check, and the password is not in the error.
    let e = c
        .set_password(&oid(TARGET), &Secret::new("abc".into()), false)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("\"abc\""));

    // An app without the permission: 403.
    let weak = weak_client(&sim, &f);
    let e = weak
        .set_password(
            &oid(TARGET),
            &Secret::new("Brand-New-Passw0rd-43".into()),
            false,
        )
        .await
        .unwrap_err();
    assert!(e.is_forbidden(), "{e:?}");
    assert_eq!(e.code(), Some("Authorization_RequestDenied"));
}
