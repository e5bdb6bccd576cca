//! §7.2: logins against a stored credential, and every refusal: client data, flags, signature,
//! counter, backup eligibility, user handle, credential id.

use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator, authenticator_data, flags};
use latchkey_webauthn::{Challenge, Registered};

use crate::support::*;

/// A soft authenticator with one registered credential.
fn registered() -> (SoftAuthenticator, Registered) {
    let mut auth = SoftAuthenticator::new([7; 16]);
    let registered = soft_register(&mut auth, SoftAttestation::None)
        .verify()
        .unwrap();
    (auth, registered)
}

#[test]
fn discoverable_login_returns_the_user_handle() {
    let (mut auth, registered) = registered();
    let assertion = soft_assert_at(&mut auth, RP_ID, &[]);
    assert_eq!(assertion.credential_id, registered.credential_id.0);
    assert_eq!(assertion.user_handle.as_deref(), Some(USER));
    assertion.verify(&registered, 0).unwrap();
    assert_eq!(
        reason(auth.get_assertion("other.example", &[0; 32], &[])),
        "no_credential"
    );
}

#[test]
fn user_handle_must_match_when_present() {
    let (mut auth, registered) = registered();
    let mut assertion = soft_assert(&mut auth, &registered.credential_id.0);
    assert_eq!(
        reason(assertion.verify_with(&registered, 0, true, Some(b"another user"))),
        "user_handle"
    );
    // no expectation: any handle
    assertion.verify_with(&registered, 0, true, None).unwrap();
    // no handle in the response (or an empty one): the caller mapped the credential id already
    assertion.user_handle = None;
    assertion
        .verify_with(&registered, 0, true, Some(b"another user"))
        .unwrap();
    assertion.user_handle = Some(vec![]);
    assertion
        .verify_with(&registered, 0, true, Some(b"another user"))
        .unwrap();
}

#[test]
fn credential_id_must_be_the_stored_one() {
    let (mut auth, registered) = registered();
    let mut assertion = soft_assert(&mut auth, &registered.credential_id.0);
    assertion.credential_id.push(0);
    assert_eq!(
        reason(assertion.verify(&registered, 0)),
        "credential_mismatch"
    );
}

#[test]
fn client_data_refusals() {
    let (mut auth, registered) = registered();
    let assertion = soft_assert(&mut auth, &registered.credential_id.0);
    let c = assertion.challenge.to_base64url();
    let verify = |json: String| {
        let tampered = Assertion {
            challenge: assertion.challenge.clone(),
            client_data: json.into_bytes(),
            credential_id: assertion.credential_id.clone(),
            auth_data: assertion.auth_data.clone(),
            signature: assertion.signature.clone(),
            user_handle: assertion.user_handle.clone(),
        };
        reason(tampered.verify(&registered, 0))
    };
    let json = |kind: &str, challenge: &str, origin: &str, extra: &str| {
        format!(r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{origin}"{extra}}}"#)
    };
    assert_eq!(
        verify(json("webauthn.create", &c, ORIGIN, "")),
        "client_data_type"
    );
    assert_eq!(
        verify(json(
            "webauthn.get",
            &Challenge::random().unwrap().to_base64url(),
            ORIGIN,
            ""
        )),
        "challenge"
    );
    assert_eq!(
        verify(json("webauthn.get", &c, "http://sspr.contoso.com", "")),
        "origin"
    );
    assert_eq!(
        verify(json("webauthn.get", &c, ORIGIN, r#","crossOrigin":true"#)),
        "cross_origin"
    );
    // all checks pass but the bytes differ from what was signed
    assert_eq!(verify(json("webauthn.get", &c, ORIGIN, "")), "signature");
}

#[test]
fn flag_refusals() {
    let (mut auth, registered) = registered();
    auth.flags.user_present = false;
    let assertion = soft_assert(&mut auth, &registered.credential_id.0);
    assert_eq!(reason(assertion.verify(&registered, 0)), "user_not_present");
    auth.flags.user_present = true;
    auth.flags.user_verified = false;
    let assertion = soft_assert(&mut auth, &registered.credential_id.0);
    assert_eq!(
        reason(assertion.verify(&registered, 0)),
        "user_not_verified"
    );
    let asserted = assertion
        .verify_with(&registered, 0, false, Some(USER))
        .unwrap();
    assert!(!asserted.user_verified);
}

#[test]
fn another_relying_party_is_refused() {
    let (mut auth, _) = registered();
    let evil = soft_register_at(&mut auth, "evil.example", SoftAttestation::None);
    // stored as if it were ours (the key is what the attacker controls)
    let stored = registered_unchecked(&evil);
    let assertion = soft_assert_at(&mut auth, "evil.example", &[]);
    assert_eq!(reason(assertion.verify(&stored, 0)), "rp_id_hash");
}

/// The Registered a registration would give, taken without the relying-party checks.
fn registered_unchecked(reg: &Registration) -> Registered {
    let rp = latchkey_webauthn::RelyingParty {
        id: "evil.example".into(),
        origins: vec![ORIGIN.into()],
    };
    let algorithms = latchkey_webauthn::Algorithm::ALL;
    let check = latchkey_webauthn::RegistrationCheck {
        rp: &rp,
        challenge: reg.challenge.as_bytes(),
        user_verification_required: true,
        algorithms: &algorithms,
    };
    latchkey_webauthn::verify_registration(&check, &reg.client_data, &reg.attestation_object())
        .unwrap()
}

#[test]
fn signature_refusals() {
    let (mut auth, registered) = registered();
    let mut assertion = soft_assert(&mut auth, &registered.credential_id.0);
    let good = assertion.signature.clone();
    // not DER
    assertion.signature = vec![0x30, 0x02, 0x01];
    assert_eq!(reason(assertion.verify(&registered, 0)), "signature");
    assertion.signature = vec![];
    assert_eq!(reason(assertion.verify(&registered, 0)), "signature");
    // DER, but a flipped bit in s
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assertion.signature = flipped;
    assert_eq!(reason(assertion.verify(&registered, 0)), "signature");
    // valid DER signature by another key
    assertion.signature =
        HandKey::p256().sign(&signed(&assertion.auth_data, &assertion.client_data));
    assert_eq!(reason(assertion.verify(&registered, 0)), "signature");
    // tampered authenticator data (the counter)
    assertion.signature = good;
    assertion.auth_data[36] ^= 1;
    assert_eq!(reason(assertion.verify(&registered, 0)), "signature");
}

#[test]
fn counter_rules() {
    let (mut auth, registered) = registered();
    let id = registered.credential_id.0.clone();
    for _ in 0..4 {
        soft_assert(&mut auth, &id);
    }
    // the authenticator says 5: fine after 4, refused after 5 (equal) or 9 (regressed)
    let assertion = soft_assert(&mut auth, &id);
    assert_eq!(assertion.verify(&registered, 4).unwrap().sign_count, 5);
    match assertion.verify(&registered, 5) {
        Err(latchkey_webauthn::Error::SignCountRegressed {
            stored: 5,
            received: 5,
        }) => {}
        other => panic!("{other:?}"),
    }
    // a clone: its counter is behind the stored one
    auth.set_counter(&id, 1).unwrap();
    let cloned = soft_assert(&mut auth, &id);
    assert_eq!(
        reason(cloned.verify(&registered, 5)),
        "sign_count_regressed"
    );
    // a counter that drops to zero is a regression too
    auth.flags.counter = false;
    auth.set_counter(&id, 0).unwrap();
    assert_eq!(
        reason(soft_assert(&mut auth, &id).verify(&registered, 5)),
        "sign_count_regressed"
    );
    assert_eq!(reason(auth.set_counter(b"unknown", 1)), "no_credential");
}

#[test]
fn zero_counters_are_synced_passkeys() {
    let (mut auth, registered) = registered();
    auth.flags.counter = false;
    for _ in 0..3 {
        let assertion = soft_assert(&mut auth, &registered.credential_id.0);
        assert_eq!(assertion.verify(&registered, 0).unwrap().sign_count, 0);
    }
}

#[test]
fn backup_eligibility_is_fixed() {
    let (mut auth, registered) = registered();
    assert!(!registered.backup_eligible);
    auth.flags.backup_eligible = true;
    auth.flags.backed_up = true;
    let assertion = soft_assert(&mut auth, &registered.credential_id.0);
    assert_eq!(
        reason(assertion.verify(&registered, 0)),
        "backup_eligibility_changed"
    );
    // eligible from the start: the backup state may come and go
    let mut synced = SoftAuthenticator::new([0; 16]);
    synced.flags.backup_eligible = true;
    let registered = soft_register(&mut synced, SoftAttestation::None)
        .verify()
        .unwrap();
    assert!(registered.backup_eligible && !registered.backed_up);
    synced.flags.backed_up = true;
    let asserted = soft_assert(&mut synced, &registered.credential_id.0)
        .verify(&registered, 0)
        .unwrap();
    assert!(asserted.backed_up);
}

#[test]
fn authenticator_data_structure() {
    let (_, registered) = registered();
    let key = HandKey::p256();
    let mut registered = registered;
    registered.public_key = latchkey_webauthn::CoseKey::from_bytes(&key.cose_key()).unwrap();
    let login = |data: &[u8]| {
        let challenge = Challenge::random().unwrap();
        let client_data = latchkey_webauthn::client_data_json(
            latchkey_webauthn::Ceremony::Get,
            challenge.as_bytes(),
            ORIGIN,
        );
        let assertion = Assertion {
            signature: key.sign(&signed(data, &client_data)),
            challenge,
            client_data,
            credential_id: registered.credential_id.0.clone(),
            auth_data: data.to_vec(),
            user_handle: None,
        };
        match assertion.verify(&registered, 0) {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        }
    };
    let good = authenticator_data(RP_ID, flags::UP | flags::UV, 1, None);
    assert_eq!(login(&good), "ok");
    // signed, but with bytes after the end
    assert_eq!(login(&[good.as_slice(), &[0]].concat()), "malformed");
    // extensions: delimited and accepted
    let ext = authenticator_data(RP_ID, flags::UP | flags::UV | flags::ED, 1, None);
    assert_eq!(login(&[ext.as_slice(), &[0xa0]].concat()), "ok");
    // truncated at every length: refused as malformed, never a panic
    for len in 0..good.len() {
        assert_eq!(login(&good[..len]), "malformed", "length {len}");
    }
}
