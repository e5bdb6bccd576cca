//! Passkey (FIDO2) provisioning: creation options → a software authenticator → registration,
//! list, delete, the FIDO2 policy, and how Graph's refusals surface as `GraphError`s.

use std::time::Duration;

use latchkey_entra_sim::fixture::Fido2PolicyFixture;
use latchkey_graph::{
    AttestationLevel, AuthMethod, Clock, Fido2CreationOptions, Fido2Registration, GraphClient,
    GraphError, KeyEnforcement, PasskeyType,
};
use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator};
use latchkey_webauthn::{Ceremony, client_data_json, decode_base64_lenient};

use super::support::*;

/// YubiKey 5 Series.
const YUBIKEY: [u8; 16] = [
    0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8,
];

/// What the provisioning CLI does with the options: clientDataJSON for `https://{rp id}` with the
/// challenge as given, then authenticatorMakeCredential.
fn create(key: &mut SoftAuthenticator, o: &Fido2CreationOptions, name: &str) -> Fido2Registration {
    let challenge = decode_base64_lenient(&o.challenge).unwrap();
    let client_data = client_data_json(Ceremony::Create, &challenge, &o.origin());
    assert!(
        String::from_utf8_lossy(&client_data)
            .contains(&format!("\"challenge\":\"{}\"", o.challenge)),
        "the challenge goes in verbatim"
    );
    let hash: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, &client_data)
        .as_ref()
        .try_into()
        .unwrap();
    let cred = key
        .make_credential(
            &o.rp_id,
            &hash,
            &o.user_handle,
            o.user_verification == "required",
            &o.exclude_credentials,
            SoftAttestation::PackedSelf,
        )
        .unwrap();
    Fido2Registration {
        display_name: name.into(),
        attestation_object: cred.attestation_object().unwrap(),
        credential_id: cred.credential_id,
        client_data_json: client_data,
    }
}

#[tokio::test]
async fn provision_list_and_delete_a_passkey() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let now = sim.tenant().now();
    let o = c.fido2_creation_options(&oid(TARGET)).await.unwrap();
    assert_eq!(o.rp_id, "login.microsoft.com");
    assert_eq!(o.rp_name.as_deref(), Some("Microsoft"));
    assert_eq!(o.user_name, format!("target.user@{}", domain(&f)));
    assert_eq!(o.user_display_name, "Target User");
    assert!(!o.user_handle.is_empty());
    assert_eq!(o.algorithms, vec![-7, -257]);
    assert!(o.exclude_credentials.is_empty());
    assert!(o.resident_key_required);
    assert_eq!(o.user_verification, "required");
    assert_eq!(o.attestation, "direct");
    assert_eq!(o.timeout_ms, Some(60_000));
    assert_eq!(o.extensions["hmacCreateSecret"], true);
    assert!(!o.expired_at(now));
    assert!(o.expired_at(now + time::Duration::minutes(5)));

    let mut key = SoftAuthenticator::new(YUBIKEY);
    let reg = create(&mut key, &o, "Target's key");
    let m = c.add_fido2_method(&oid(TARGET), &reg).await.unwrap();
    assert_eq!(m.display_name.as_deref(), Some("Target's key"));
    assert_eq!(
        m.aa_guid.as_deref(),
        Some("cb69481e-8ff7-4039-93ec-0a2729a154a8")
    );
    assert_eq!(m.model.as_deref(), Some("YubiKey 5 Series"));
    assert_eq!(m.attestation_level, Some(AttestationLevel::NotAttested));
    assert_eq!(m.passkey_type, Some(PasskeyType::DeviceBound));
    assert!(m.created_date_time.is_some());
    let sent = requests_to(&sim, "/fido2Methods").pop().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.status, 201);
    assert!(
        !sent.body.contains('='),
        "base64url without padding: {}",
        sent.body
    );
    assert!(
        sent.body.contains("\"clientExtensionResults\":{}"),
        "{}",
        sent.body
    );
    assert!(!sent.body.contains("@odata.type"), "{}", sent.body);

    let listed = c.list_fido2_methods(&oid(TARGET)).await.unwrap();
    assert_eq!(listed, vec![m.clone()]);
    let all = c.list_auth_methods(&oid(TARGET)).await.unwrap();
    assert!(all.contains(&AuthMethod::Fido2(m.clone())));
    let again = c.fido2_creation_options(&oid(TARGET)).await.unwrap();
    assert_eq!(again.exclude_credentials, vec![reg.credential_id.clone()]);
    assert_ne!(again.challenge, o.challenge);

    c.delete_fido2_method(&oid(TARGET), &m.id).await.unwrap();
    assert!(c.list_fido2_methods(&oid(TARGET)).await.unwrap().is_empty());
    let e = c
        .delete_fido2_method(&oid(TARGET), &m.id)
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let n = sim.requests().len();
    let e = c.delete_fido2_method(&oid(TARGET), " ").await.unwrap_err();
    assert!(matches!(e, GraphError::InvalidInput(_)), "{e:?}");
    let empty = Fido2Registration {
        credential_id: Vec::new(),
        ..reg
    };
    let e = c.add_fido2_method(&oid(TARGET), &empty).await.unwrap_err();
    assert!(matches!(e, GraphError::InvalidInput(_)), "{e:?}");
    assert_eq!(sim.requests().len(), n, "nothing sent for invalid input");
}

#[tokio::test]
async fn refusals_are_forbidden_or_bad_request() {
    let (sim, f) = start().await;
    // The client reads the time through its clock: here the simulator's, which the test moves.
    let mut cfg = config(&sim, &f, secret());
    let tenant = sim.tenant();
    cfg.clock = Clock::from_fn(move || tenant.now());
    let c = GraphClient::new(cfg).unwrap();
    // Missing permission: 403 Authorization_RequestDenied.
    let weak = weak_client(&sim, &f);
    for e in [
        weak.fido2_creation_options(&oid(TARGET)).await.unwrap_err(),
        weak.list_fido2_methods(&oid(TARGET)).await.unwrap_err(),
        weak.fido2_configuration().await.unwrap_err(),
    ] {
        assert!(e.is_forbidden(), "{e:?}");
        assert_eq!(e.code(), Some("Authorization_RequestDenied"));
    }
    let o = c.fido2_creation_options(&oid(TARGET)).await.unwrap();
    let mut key = SoftAuthenticator::new(YUBIKEY);
    let reg = create(&mut key, &o, "k");
    let e = weak.add_fido2_method(&oid(TARGET), &reg).await.unwrap_err();
    assert!(e.is_forbidden(), "{e:?}");

    // An expired challenge: 400, certainly not applied, not transient.
    assert!(!c.fido2_challenge_expired(&o));
    sim.tenant().advance_time(Duration::from_secs(5 * 60 + 1));
    assert!(c.fido2_challenge_expired(&o));
    let e = c.add_fido2_method(&oid(TARGET), &reg).await.unwrap_err();
    assert!(e.is_bad_request(), "{e:?}");
    assert_eq!(e.code(), Some("badRequest"));
    assert!(e.not_applied() && !e.is_transient());
    assert!(e.client_request_id().is_some());
    // The same registration again: the challenge is spent.
    let e = c.add_fido2_method(&oid(TARGET), &reg).await.unwrap_err();
    assert!(e.is_bad_request(), "{e:?}");

    // Another user's challenge.
    let o = c.fido2_creation_options(&oid(METHODS)).await.unwrap();
    let reg = create(&mut SoftAuthenticator::new(YUBIKEY), &o, "k");
    let e = c.add_fido2_method(&oid(TARGET), &reg).await.unwrap_err();
    assert!(e.is_bad_request(), "{e:?}");

    // "Allow self-service setup" off: the options themselves are refused.
    sim.tenant()
        .set_fido2_policy(Fido2PolicyFixture {
            self_service_registration_allowed: false,
            ..Fido2PolicyFixture::default()
        })
        .unwrap();
    let e = c.fido2_creation_options(&oid(TARGET)).await.unwrap_err();
    assert!(e.is_bad_request(), "{e:?}");
    let policy = c.fido2_configuration().await.unwrap();
    assert!(policy.enabled && !policy.self_service_registration_allowed);
    assert!(
        !policy.allows_provisioning(),
        "what a caller checks to explain the 400"
    );
    let shown = format!("{e}");
    assert!(
        shown.contains("400") && shown.contains("self-service"),
        "{shown}"
    );
}

#[tokio::test]
async fn the_fido2_policy_reads_with_its_key_restrictions() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let p = c.fido2_configuration().await.unwrap();
    assert!(p.enabled && p.self_service_registration_allowed && !p.attestation_enforced);
    assert!(p.allows_provisioning());
    let k = p.key_restrictions.unwrap();
    assert!(!k.enforced && k.enforcement == KeyEnforcement::Block && k.aaguids.is_empty());
    sim.tenant()
        .set_fido2_policy(Fido2PolicyFixture {
            attestation_enforced: true,
            key_restrictions_enforced: true,
            key_restrictions_type: "allow".into(),
            key_restrictions_aaguids: vec!["cb69481e-8ff7-4039-93ec-0a2729a154a8".into()],
            ..Fido2PolicyFixture::default()
        })
        .unwrap();
    let p = c.fido2_configuration().await.unwrap();
    assert!(p.attestation_enforced);
    let k = p.key_restrictions.unwrap();
    assert_eq!(k.enforcement, KeyEnforcement::Allow);
    assert!(k.permits("CB69481E-8FF7-4039-93EC-0A2729A154A8"));
    assert!(!k.permits("ee882879-721c-4913-9775-3dfcce97072a"));
    // Attestation enforced: a self-attested key is refused by Graph.
    let o = c.fido2_creation_options(&oid(TARGET)).await.unwrap();
    let reg = create(&mut SoftAuthenticator::new(YUBIKEY), &o, "k");
    let e = c.add_fido2_method(&oid(TARGET), &reg).await.unwrap_err();
    assert!(e.is_bad_request(), "{e:?}");
}

#[tokio::test]
async fn a_delegated_admin_provisions_for_another_user() {
    let (sim, f) = start().await;
    let c: GraphClient = delegated_client(&sim, &f).await;
    let o = c.fido2_creation_options(&oid(TARGET)).await.unwrap();
    let reg = create(&mut SoftAuthenticator::new(YUBIKEY), &o, "by the admin");
    let m = c.add_fido2_method(&oid(TARGET), &reg).await.unwrap();
    assert_eq!(m.display_name.as_deref(), Some("by the admin"));
    // Not on the admin's own account: Graph does not support self-service provisioning.
    let e = c.fido2_creation_options(&oid(ADMIN)).await.unwrap_err();
    assert!(e.is_forbidden(), "{e:?}");
}
