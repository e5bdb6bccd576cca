//! Provisioning against the in-process Entra simulator, with the software key standing in for
//! a security key.
// Test code: a failing test stops right there, and the provider install may already be done.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::let_underscore_must_use
)]

use std::time::Duration;

use latchkey_entra_sim::fixture::Fido2PolicyFixture;
use latchkey_entra_sim::{Fixture, Sim};
use latchkey_graph::{Clock, Credential, GraphClient, GraphConfig, RetryPolicy};
use latchkey_passkey::aaguid::{model_for, model_name};
use latchkey_passkey::registration::Registration;
use latchkey_passkey::soft::{SoftDevice, SoftFailure};
use latchkey_passkey::{PasskeyError, Pin, provision, resolve_user};
use latchkey_types::{ObjectId, Secret};
use latchkey_webauthn::soft::SoftAttestation;
use uuid::{Uuid, uuid};

const APP: &str = "11111111-1111-1111-1111-111111111111";
const APP_SECRET: &str = "test-secret-value";
/// `latchkey-readonly`: User.Read.All only.
const READONLY: &str = "33333333-3333-3333-3333-333333333333";
const READONLY_SECRET: &str = "readonly-secret-value";
const ADELE: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
const YUBIKEY_5_NFC: Uuid = uuid!("2fc0579f-8113-47ea-b116-bb5a8db9202a");
const PIN: &str = "246810";

struct Tenant {
    sim: Sim,
    graph: GraphClient,
    /// The simulator's clock, as the flow's clock.
    clock: Clock,
}

async fn tenant() -> Tenant {
    tenant_as(APP, APP_SECRET).await
}

async fn tenant_as(client_id: &str, secret: &str) -> Tenant {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let f = Fixture::test();
    let sim = Sim::start(f.clone()).await.expect("simulator starts");
    let graph = client(&sim, &f, client_id, secret);
    let handle = sim.tenant();
    let clock = Clock::from_fn(move || handle.now());
    Tenant { sim, graph, clock }
}

fn client(sim: &Sim, f: &Fixture, client_id: &str, secret: &str) -> GraphClient {
    let mut c = GraphConfig::new(
        f.tenant.id.clone(),
        client_id,
        Credential::ClientSecret(Secret::new(secret.into())),
    );
    c.authority_host = sim.base_url();
    c.graph_base_url = sim.graph_base_url();
    c.retry = RetryPolicy {
        max_attempts: 2,
        max_total_wait: Duration::from_secs(2),
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    GraphClient::new(c).unwrap()
}

fn adele() -> ObjectId {
    ADELE.parse().unwrap()
}

fn pin() -> Option<Pin> {
    Some(Pin::new(PIN.into()).unwrap())
}

fn set_policy(t: &Tenant, f: impl FnOnce(&mut Fido2PolicyFixture)) {
    let mut p = t.sim.tenant().fido2_policy();
    f(&mut p);
    t.sim.tenant().set_fido2_policy(p).unwrap();
}

/// POSTs that reached the registration endpoint.
fn registrations_posted(t: &Tenant) -> usize {
    t.sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/fido2Methods"))
        .count()
}

#[tokio::test]
async fn provisions_a_key_and_entra_lists_it_with_its_model() {
    let t = tenant().await;
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN);
    let done = provision(
        &t.graph,
        &adele(),
        Some("Adele's key"),
        pin(),
        key.boxed(),
        &t.clock,
    )
    .await
    .unwrap();
    assert_eq!(done.aaguid, YUBIKEY_5_NFC);
    assert_eq!(done.model, Some("YubiKey 5 Series with NFC"));
    assert!(
        done.attestation_verified,
        "the simulator's challenge is 32 bytes"
    );
    assert_eq!(done.method.display_name.as_deref(), Some("Adele's key"));
    assert_eq!((key.info_calls(), key.make_credential_calls()), (1, 1));

    let listed = t.graph.list_fido2_methods(&adele()).await.unwrap();
    let method = listed
        .iter()
        .find(|m| m.id == done.method.id)
        .expect("listed");
    assert_eq!(method.display_name.as_deref(), Some("Adele's key"));
    let aaguid = method.aa_guid.as_deref().unwrap();
    assert_eq!(aaguid.parse::<Uuid>().unwrap(), YUBIKEY_5_NFC);
    assert_eq!(model_name(aaguid), Some("YubiKey 5 Series with NFC"));
    assert_eq!(method.model.as_deref(), Some("YubiKey 5 Series with NFC"));
}

#[tokio::test]
async fn default_name_by_upn_with_built_in_verification() {
    let t = tenant().await;
    let user = resolve_user(&t.graph, "adele.vance@contoso.com")
        .await
        .unwrap();
    assert_eq!(user.id, adele());
    let bio = uuid!("d8522d9f-575b-4866-88a9-ba99fa02f35b");
    let key = SoftDevice::new(bio, PIN).with_built_in_uv();
    let done = provision(&t.graph, &user.id, None, None, key.boxed(), &t.clock)
        .await
        .unwrap();
    let expected = format!("Security key ({})", t.clock.now().date());
    assert_eq!(done.method.display_name.as_deref(), Some(expected.as_str()));
    assert_eq!(done.model, Some("YubiKey Bio Series"));
}

#[tokio::test]
async fn a_challenge_that_expires_while_the_key_waits_is_not_posted() {
    let t = tenant().await;
    let handle = t.sim.tenant();
    // The person takes six minutes to touch the key; the challenge lasts five.
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN)
        .during_touch(move || handle.advance_time(Duration::from_secs(6 * 60)));
    let err = provision(&t.graph, &adele(), None, pin(), key.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PasskeyError::ChallengeExpired { .. }),
        "{err}"
    );
    assert_eq!(key.make_credential_calls(), 1);
    assert_eq!(
        registrations_posted(&t),
        0,
        "nothing is sent with a dead challenge"
    );
}

#[tokio::test]
async fn entra_refuses_an_expired_challenge_the_local_clock_missed() {
    let t = tenant().await;
    let handle = t.sim.tenant();
    // A local clock that does not move (skewed against Entra's): Entra's refusal is reported.
    let frozen = t.clock.now();
    let stuck = Clock::from_fn(move || frozen);
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN)
        .during_touch(move || handle.advance_time(Duration::from_secs(6 * 60)));
    let err = provision(&t.graph, &adele(), None, pin(), key.boxed(), &stuck)
        .await
        .unwrap_err();
    assert!(matches!(err, PasskeyError::Rejected { .. }), "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(registrations_posted(&t), 1);
}

#[tokio::test]
async fn creation_options_past_their_time_are_refused_up_front() {
    let t = tenant().await;
    let later = t.clock.now() + time::Duration::minutes(6);
    let err = Registration::begin(&t.graph, &adele(), later)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PasskeyError::ChallengeExpired { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn self_service_setup_off_is_refused_before_the_key_is_touched() {
    let t = tenant().await;
    set_policy(&t, |p| p.self_service_registration_allowed = false);
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN);
    let err = provision(&t.graph, &adele(), None, pin(), key.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(matches!(err, PasskeyError::SelfServiceSetupOff), "{err}");
    assert!(
        err.to_string()
            .contains("\"Allow self-service set up\" = Yes")
    );
    assert!(!key.touched());

    set_policy(&t, |p| {
        p.self_service_registration_allowed = true;
        p.enabled = false;
    });
    let err = provision(&t.graph, &adele(), None, pin(), key.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(matches!(err, PasskeyError::MethodDisabled), "{err}");
    assert!(!key.touched());
}

#[tokio::test]
async fn key_restrictions_refuse_the_model_before_the_touch() {
    let t = tenant().await;
    set_policy(&t, |p| {
        p.key_restrictions_enforced = true;
        p.key_restrictions_type = "allow".into();
        p.key_restrictions_aaguids = vec!["cb69481e-8ff7-4039-93ec-0a2729a154a8".into()];
    });
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN);
    let err = provision(&t.graph, &adele(), None, pin(), key.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(matches!(err, PasskeyError::KeyNotAllowed { .. }), "{err}");
    assert!(
        err.to_string().contains("YubiKey 5 Series with NFC"),
        "{err}"
    );
    assert_eq!(key.make_credential_calls(), 0);
}

#[tokio::test]
async fn enforced_attestation_refuses_self_attestation_without_posting() {
    let t = tenant().await;
    set_policy(&t, |p| p.attestation_enforced = true);
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN).with_attestation(SoftAttestation::None);
    let err = provision(&t.graph, &adele(), None, pin(), key.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PasskeyError::AttestationRequired { .. }),
        "{err}"
    );
    assert_eq!(registrations_posted(&t), 0);
}

#[tokio::test]
async fn a_missing_permission_is_named() {
    let t = tenant_as(READONLY, READONLY_SECRET).await;
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN);
    let err = provision(&t.graph, &adele(), None, pin(), key.boxed(), &t.clock)
        .await
        .unwrap_err();
    let PasskeyError::PermissionMissing { permission, .. } = &err else {
        panic!("{err}");
    };
    assert!(permission.contains("UserAuthMethod-Passkey.ReadWrite.All"));
    assert!(
        err.to_string()
            .contains("not allowed to get passkey creation options"),
        "{err}"
    );
    assert_eq!(key.make_credential_calls(), 0);
}

#[tokio::test]
async fn the_same_key_twice_is_excluded() {
    let t = tenant().await;
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN);
    provision(
        &t.graph,
        &adele(),
        Some("first"),
        pin(),
        key.boxed(),
        &t.clock,
    )
    .await
    .unwrap();
    // Entra lists the new credential in excludeCredentials; the key holds it and refuses.
    let err = provision(
        &t.graph,
        &adele(),
        Some("again"),
        pin(),
        key.boxed(),
        &t.clock,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, PasskeyError::CredentialExcluded), "{err}");
    assert_eq!(
        err.to_string(),
        "this security key is already registered for this user"
    );
    assert_eq!(registrations_posted(&t), 1);

    // The knob gives the same answer without a first registration.
    let other = SoftDevice::new(YUBIKEY_5_NFC, PIN).failing_with(SoftFailure::Excluded);
    let err = provision(&t.graph, &adele(), None, pin(), other.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(matches!(err, PasskeyError::CredentialExcluded), "{err}");
}

#[tokio::test]
async fn pin_errors_are_told_apart() {
    let t = tenant().await;
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN);
    let wrong = || Some(Pin::new("135790".into()).unwrap());
    let err = provision(&t.graph, &adele(), None, wrong(), key.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PasskeyError::WrongPin {
                retries_left: Some(7)
            }
        ),
        "{err}"
    );
    assert_eq!(err.to_string(), "wrong PIN (7 tries left)");

    // No PIN for a key that has one: refused before the key is asked.
    let err = provision(&t.graph, &adele(), None, None, key.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(matches!(err, PasskeyError::PinRequired), "{err}");
    assert_eq!(key.make_credential_calls(), 1);

    let almost = SoftDevice::new(YUBIKEY_5_NFC, PIN).with_pin_retries(1);
    let err = provision(&t.graph, &adele(), None, wrong(), almost.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(matches!(err, PasskeyError::PinBlocked), "{err}");

    let fresh = SoftDevice::new(YUBIKEY_5_NFC, PIN).without_pin();
    let err = provision(&t.graph, &adele(), None, pin(), fresh.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(matches!(err, PasskeyError::PinNotSet), "{err}");
    assert_eq!(registrations_posted(&t), 0);
}

#[tokio::test]
async fn an_untouched_key_says_so() {
    let t = tenant().await;
    let key = SoftDevice::new(YUBIKEY_5_NFC, PIN).failing_with(SoftFailure::NotTouched);
    let err = provision(&t.graph, &adele(), None, pin(), key.boxed(), &t.clock)
        .await
        .unwrap_err();
    assert!(matches!(err, PasskeyError::NotTouched), "{err}");
}

#[test]
fn aaguid_table_lookups() {
    assert_eq!(
        model_name("CB69481E-8FF7-4039-93EC-0A2729A154A8"),
        Some("YubiKey 5 Series")
    );
    assert_eq!(
        model_name("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"),
        Some("Google Password Manager")
    );
    assert_eq!(
        model_for(&uuid!("08987058-cadc-4b81-b6e1-30de50dcbe96")),
        Some("Windows Hello")
    );
    assert_eq!(model_name("00000000-0000-0000-0000-000000000000"), None);
    assert_eq!(model_name("12345678-1234-1234-1234-123456789abc"), None);
}

#[test]
fn pins_never_show() {
    let pin = Pin::new("98765432".into()).unwrap();
    assert_eq!(format!("{pin:?}"), "Pin([redacted])");
}
