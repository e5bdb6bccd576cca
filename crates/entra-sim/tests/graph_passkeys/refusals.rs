//! What registration refuses: challenges (expired, another user's, reused), the ceremony
//! (origin, RP ID, UV, UP), attestation formats, duplicates and malformed bodies.

use std::time::Duration;

use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator};
use latchkey_webauthn::{Ceremony, client_data_json};
use serde_json::json;

use super::*;

#[tokio::test]
async fn an_expired_challenge_is_refused() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let mut key = SoftAuthenticator::new(YUBIKEY);
    // Just inside the 5 minutes: accepted.
    let o = options(&sim, &t, ADELE).await;
    sim.tenant().advance_time(Duration::from_secs(4 * 60 + 59));
    let made = make(&mut key, &o, SoftAttestation::None);
    let (s, b) = register(&sim, &t, ADELE, made.body("in time")).await;
    assert_eq!(s, 201, "{b}");
    // 5 minutes and a second later: refused, and the challenge is spent.
    let o = options(&sim, &t, ADELE).await;
    sim.tenant().advance_time(Duration::from_secs(5 * 60 + 1));
    let t = app_token(&sim).await;
    let made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let (s, b) = register(&sim, &t, ADELE, made.body("late")).await;
    assert_refused(s, &b, "expired");
    let (s, b) = register(&sim, &t, ADELE, made.body("late")).await;
    assert_refused(s, &b, "already been used");
    let (_, _, list) = graph_get(&sim, &t, &methods_path(ADELE)).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    sim.stop().await;
}

#[tokio::test]
async fn a_challenge_is_bound_to_its_user_and_used_once() {
    let sim = start().await;
    let t = app_token(&sim).await;
    // Megan's challenge, presented for Adele: refused, and spent for Megan too.
    let o = options(&sim, &t, MEGAN).await;
    let made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
    assert_refused(s, &b, "another user");
    let (s, b) = register(&sim, &t, MEGAN, made.body("k")).await;
    assert_refused(s, &b, "already been used");
    // A challenge nobody issued.
    let forged = Made {
        client_data: client_data_json(Ceremony::Create, &[9; 32], ORIGIN),
        ..made
    };
    let (s, b) = register(&sim, &t, MEGAN, forged.body("k")).await;
    assert_refused(s, &b, "not issued");
    // Success spends it as well: a second credential on the same challenge is refused.
    let o = options(&sim, &t, MEGAN).await;
    let made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let (s, b) = register(&sim, &t, MEGAN, made.body("k")).await;
    assert_eq!(s, 201, "{b}");
    let other = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let (s, b) = register(&sim, &t, MEGAN, other.body("k2")).await;
    assert_refused(s, &b, "already been used");
    // A failure after the challenge matched spends it: the good retry is refused.
    let o = options(&sim, &t, MEGAN).await;
    let mut key = SoftAuthenticator::new(YUBIKEY);
    let bad = make_with(&mut key, &o, ORIGIN, RP, false, SoftAttestation::None);
    let (s, b) = register(&sim, &t, MEGAN, bad.body("k3")).await;
    assert_refused(s, &b, "not verified");
    let good = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let (s, b) = register(&sim, &t, MEGAN, good.body("k3")).await;
    assert_refused(s, &b, "already been used");
    sim.stop().await;
}

#[tokio::test]
async fn the_ceremony_must_be_for_entra_with_presence_and_verification() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let cases: [(&str, &str, bool, bool, &str); 4] = [
        ("https://evil.example", RP, true, true, "origin"),
        // The RP ID of the v1.0 doc example is not the one Entra registers passkeys for.
        (
            "https://login.microsoftonline.com",
            RP,
            true,
            true,
            "origin",
        ),
        (ORIGIN, "login.microsoftonline.com", true, true, "rpIdHash"),
        (ORIGIN, RP, false, true, "not verified"),
    ];
    for (origin, rp_id, uv, up, needle) in cases {
        let o = options(&sim, &t, ADELE).await;
        let mut key = SoftAuthenticator::new(YUBIKEY);
        key.flags.user_present = up;
        let made = make_with(&mut key, &o, origin, rp_id, uv, SoftAttestation::None);
        let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
        assert_refused(s, &b, needle);
    }
    let o = options(&sim, &t, ADELE).await;
    let mut key = SoftAuthenticator::new(YUBIKEY);
    key.flags.user_present = false;
    let made = make(&mut key, &o, SoftAttestation::None);
    let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
    assert_refused(s, &b, "not present");
    // A webauthn.get client data is not a registration.
    let o = options(&sim, &t, ADELE).await;
    let mut made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    made.client_data = client_data_json(
        Ceremony::Get,
        &b64d(o["publicKey"]["challenge"].as_str().unwrap()),
        ORIGIN,
    );
    let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
    assert_refused(s, &b, "wrong type");
    let (_, _, list) = graph_get(&sim, &t, &methods_path(ADELE)).await;
    assert_eq!(list["value"], json!([]));
    sim.stop().await;
}

/// `{"fmt":"none",...}` with its format string swapped for `fido-u2f` (CBOR text of another length).
fn with_format(attestation_object: &[u8], fmt: &str) -> Vec<u8> {
    let none = [0x63, b'f', b'm', b't', 0x64, b'n', b'o', b'n', b'e'];
    let at = attestation_object
        .windows(none.len())
        .position(|w| w == none)
        .expect("a none attestation object");
    let mut out = attestation_object[..at + 4].to_vec();
    out.push(0x60 + u8::try_from(fmt.len()).unwrap());
    out.extend_from_slice(fmt.as_bytes());
    out.extend_from_slice(&attestation_object[at + none.len()..]);
    out
}

#[tokio::test]
async fn only_none_and_packed_attestation_are_accepted() {
    let sim = start().await;
    let t = app_token(&sim).await;
    for fmt in ["fido-u2f", "tpm", "android-key"] {
        let o = options(&sim, &t, ADELE).await;
        let mut made = make(
            &mut SoftAuthenticator::new(YUBIKEY),
            &o,
            SoftAttestation::None,
        );
        made.attestation_object = with_format(&made.attestation_object, fmt);
        let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
        assert_refused(s, &b, "not valid");
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_key_is_registered_once_in_the_tenant() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let o = options(&sim, &t, ADELE).await;
    let made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let (s, b) = register(&sim, &t, ADELE, made.body("k")).await;
    assert_eq!(s, 201, "{b}");
    // The same credential again, with fresh challenges (`none` does not sign the client data),
    // for Adele and for Megan.
    for user in [ADELE, MEGAN] {
        let o = options(&sim, &t, user).await;
        let again = Made {
            client_data: client_data_json(
                Ceremony::Create,
                &b64d(o["publicKey"]["challenge"].as_str().unwrap()),
                ORIGIN,
            ),
            credential_id: made.credential_id.clone(),
            attestation_object: made.attestation_object.clone(),
        };
        let (s, b) = register(&sim, &t, user, again.body("copy")).await;
        assert_refused(s, &b, "already registered");
    }
    sim.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_refused() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let (s, b) = register(&sim, &t, ADELE, json!({"displayName": "k"})).await;
    assert_refused(s, &b, "missing a fido2AuthenticationMethod");
    let o = options(&sim, &t, ADELE).await;
    let made = make(
        &mut SoftAuthenticator::new(YUBIKEY),
        &o,
        SoftAttestation::None,
    );
    let mut body = made.body("k");
    body["publicKeyCredential"]["response"]["clientDataJSON"] = json!("not base64 at all!");
    let (s, b) = register(&sim, &t, ADELE, body).await;
    assert_refused(s, &b, "clientDataJSON");
    // The id must name the credential in the attestation object.
    let mut body = made.body("k");
    body["publicKeyCredential"]["id"] = json!("AAAA");
    let (s, b) = register(&sim, &t, ADELE, body).await;
    assert_refused(s, &b, "does not match");
    let (s, _, b) = graph(
        &sim,
        &t,
        Method::POST,
        &methods_path(ADELE),
        Some(json!("a string")),
        &[],
    )
    .await;
    assert_eq!(s, 400, "{b}");
    sim.stop().await;
}
