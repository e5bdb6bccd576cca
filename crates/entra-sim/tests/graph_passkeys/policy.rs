//! The FIDO2 method policy (GET, fixture, test handle, control endpoint) and what it refuses;
//! the permissions and roles provisioning needs.

use latchkey_entra_sim::Fixture;
use latchkey_entra_sim::fixture::Fido2PolicyFixture;
use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator};
use serde_json::json;

use super::*;

const POLICY: &str =
    "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2";

#[tokio::test]
async fn the_policy_reads_as_documented_and_follows_the_fixture() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, _, b) = graph_get(&sim, &t, POLICY).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["@odata.type"],
        "#microsoft.graph.fido2AuthenticationMethodConfiguration"
    );
    assert!(
        b["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#authenticationMethodConfigurations/$entity")
    );
    assert_eq!(b["id"], "Fido2");
    assert_eq!(b["state"], "enabled");
    assert_eq!(b["isSelfServiceRegistrationAllowed"], true);
    assert_eq!(b["isAttestationEnforced"], false);
    assert_eq!(
        b["keyRestrictions"],
        json!({"isEnforced": false, "enforcementType": "block", "aaGuids": []})
    );
    assert_eq!(b["includeTargets"][0]["id"], "all_users");
    assert_eq!(b["excludeTargets"], json!([]));
    // The id is case-insensitive, as Graph's keys are.
    let (s, _, _) = graph_get(
        &sim,
        &t,
        "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Fido2",
    )
    .await;
    assert_eq!(s, 200);
    let readonly = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, _, b) = graph_get(&sim, &readonly, POLICY).await;
    assert_eq!((s, error_code(&b)), (403, "Authorization_RequestDenied"));
    sim.stop().await;

    let f = Fixture::from_toml(&format!(
        "{}\n[fido2_policy]\nenabled = false\nattestation_enforced = true\nkey_restrictions_enforced = true\nkey_restrictions_type = \"allow\"\nkey_restrictions_aaguids = [\"{YUBIKEY_GUID}\"]\n",
        include_str!("../../fixtures/test.toml").replace(
            "[fido2_policy]\nenabled = true\nself_service_registration_allowed = true\nattestation_enforced = false\nkey_restrictions_enforced = false\n",
            ""
        )
    ))
    .unwrap();
    assert!(f.fido2_policy.self_service_registration_allowed, "default");
    let sim = start_with(f).await;
    let t = app_token(&sim).await;
    let (_, _, b) = graph_get(&sim, &t, POLICY).await;
    assert_eq!(b["state"], "disabled");
    assert_eq!(b["isAttestationEnforced"], true);
    assert_eq!(
        b["keyRestrictions"],
        json!({"isEnforced": true, "enforcementType": "allow", "aaGuids": [YUBIKEY_GUID]})
    );
    sim.stop().await;
}

#[tokio::test]
async fn self_service_setup_off_or_method_disabled_refuses_provisioning() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let tenant = sim.tenant();
    let off = Fido2PolicyFixture {
        self_service_registration_allowed: false,
        ..Fido2PolicyFixture::default()
    };
    tenant.set_fido2_policy(off.clone()).unwrap();
    let (s, _, b) = graph_get(&sim, &t, &options_path(ADELE)).await;
    assert_refused(s, &b, "Allow self-service setup");
    // Switched off between the options and the registration.
    tenant
        .set_fido2_policy(Fido2PolicyFixture::default())
        .unwrap();
    let o = options(&sim, &t, ADELE).await;
    let made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    tenant.set_fido2_policy(off).unwrap();
    let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
    assert_refused(s, &b, "Allow self-service setup");
    let disabled = Fido2PolicyFixture {
        enabled: false,
        ..Fido2PolicyFixture::default()
    };
    tenant.set_fido2_policy(disabled).unwrap();
    let (s, _, b) = graph_get(&sim, &t, &options_path(ADELE)).await;
    assert_refused(s, &b, "disabled");
    let (_, _, b) = graph_get(&sim, &t, POLICY).await;
    assert_eq!(b["state"], "disabled");
    // The policy was refused before the challenge was looked at: it is still good.
    tenant
        .set_fido2_policy(Fido2PolicyFixture::default())
        .unwrap();
    let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
    assert_eq!(s, 201, "{b}");
    let bad = Fido2PolicyFixture {
        key_restrictions_type: "deny".into(),
        ..Fido2PolicyFixture::default()
    };
    assert!(tenant.set_fido2_policy(bad).is_err());
    sim.stop().await;
}

#[tokio::test]
async fn attestation_enforcement_and_key_restrictions() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let tenant = sim.tenant();
    tenant
        .set_fido2_policy(Fido2PolicyFixture {
            attestation_enforced: true,
            ..Fido2PolicyFixture::default()
        })
        .unwrap();
    for attestation in [SoftAttestation::None, SoftAttestation::PackedSelf] {
        let o = options(&sim, &t, ADELE).await;
        let made = make(&mut SoftAuthenticator::new(YUBIKEY), &o, attestation);
        let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
        assert_refused(s, &b, "enforces attestation");
    }
    let restricted = |kind: &str, listed: &[&str]| Fido2PolicyFixture {
        key_restrictions_enforced: true,
        key_restrictions_type: kind.into(),
        key_restrictions_aaguids: listed.iter().map(|s| s.to_string()).collect(),
        ..Fido2PolicyFixture::default()
    };
    let other_model = "ee882879-721c-4913-9775-3dfcce97072a";
    for (policy, allowed) in [
        (restricted("block", &[YUBIKEY_GUID]), false),
        (restricted("allow", &[other_model]), false),
        (restricted("block", &[other_model]), true),
        (restricted("allow", &[&YUBIKEY_GUID.to_uppercase()]), true),
    ] {
        tenant.set_fido2_policy(policy.clone()).unwrap();
        let o = options(&sim, &t, ADELE).await;
        let made = make(
            &mut SoftAuthenticator::new(YUBIKEY),
            &o,
            SoftAttestation::None,
        );
        let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
        if allowed {
            assert_eq!(s, 201, "{policy:?}: {b}");
        } else {
            assert_refused(s, &b, "key restrictions");
        }
    }
    sim.stop().await;
}

#[tokio::test]
async fn the_control_endpoint_reads_and_changes_the_policy() {
    let sim = start().await;
    let url = format!("{}/_sim/fido2-policy", sim.base_url());
    let r = client()
        .put(&url)
        .json(&json!({"self_service_registration_allowed": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        !sim.tenant()
            .fido2_policy()
            .self_service_registration_allowed
    );
    assert!(
        sim.tenant().fido2_policy().enabled,
        "missing keys take defaults"
    );
    let got: serde_json::Value = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["self_service_registration_allowed"], false);
    let r = client()
        .put(&url)
        .json(&json!({"key_restrictions_aaguids": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sim.stop().await;
}

#[tokio::test]
async fn provisioning_needs_a_passkey_write_permission() {
    let sim = start().await;
    let readonly = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, _, b) = graph_get(&sim, &readonly, &options_path(ADELE)).await;
    assert_eq!((s, error_code(&b)), (403, "Authorization_RequestDenied"));
    let (s, _, b) = graph_get(&sim, &readonly, &methods_path(ADELE)).await;
    assert_eq!((s, error_code(&b)), (403, "Authorization_RequestDenied"));
    // The granular read permission lists, but does not provision.
    assert!(
        sim.tenant()
            .add_app_permission(READONLY_APP, "UserAuthMethod-Passkey.Read.All")
    );
    let reader = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, _, _) = graph_get(&sim, &reader, &methods_path(ADELE)).await;
    assert_eq!(s, 200);
    let (s, _, _) = graph_get(&sim, &reader, &options_path(ADELE)).await;
    assert_eq!(s, 403);
    let full = app_token(&sim).await;
    let o = options(&sim, &full, ADELE).await;
    let made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let (s, b) = register(&sim, &reader, ADELE, made.body("k")).await;
    assert_eq!((s, error_code(&b)), (403, "Authorization_RequestDenied"));
    // The least privileged write permission does both.
    assert!(
        sim.tenant()
            .add_app_permission(READONLY_APP, "UserAuthMethod-Passkey.ReadWrite.All")
    );
    let writer = app_token_for(&sim, READONLY_APP, READONLY_SECRET).await;
    let (s, b) = register(&sim, &writer, ADELE, made.body("k")).await;
    assert_eq!(s, 201, "the 403s did not spend the challenge: {b}");
    let o = options(&sim, &writer, ADELE).await;
    assert_eq!(exclude_ids(&o).len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn delegated_provisioning_needs_a_role_and_another_user() {
    let sim = start().await;
    let adele = user_token(&sim, "adele.vance@contoso.com", "Adele-Pa55word!").await;
    let (s, _, b) = graph_get(&sim, &adele, &options_path(ADELE)).await;
    assert_eq!(
        (s, error_code(&b)),
        (403, "Authorization_RequestDenied"),
        "self-service is not supported"
    );
    let (s, _, _) = graph_get(&sim, &adele, &options_path(MEGAN)).await;
    assert_eq!(s, 403, "no role");
    let aa = user_token(&sim, "authadmin@contoso.com", "Alex-Pa55word!").await;
    let o = options(&sim, &aa, MEGAN).await;
    let made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let (s, b) = register(&sim, &aa, MEGAN, made.body("k")).await;
    assert_eq!(s, 201, "{b}");
    // An Authentication Administrator can't manage a Global Administrator's methods.
    let o = options(&sim, &aa, ADMIN).await;
    let made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let (s, _) = register(&sim, &aa, ADMIN, made.body("k")).await;
    assert_eq!(s, 403);
    sim.stop().await;
}
