//! Inputs: relying parties from portal URLs, encodings, and arbitrary bytes (never a panic).

use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator};
use latchkey_webauthn::{
    AssertionCheck, AssertionResponse, Ceremony, Challenge, CoseKey, CredentialId, RelyingParty,
    StoredCredential, client_data_json, decode_base64_lenient, verify_assertion,
};
use proptest::prelude::*;

use crate::support::*;

#[test]
fn relying_party_from_portal_urls() {
    let rp = RelyingParty::for_origin("https://sspr.contoso.com").unwrap();
    assert_eq!(rp.id, "sspr.contoso.com");
    assert_eq!(rp.origins, vec!["https://sspr.contoso.com".to_owned()]);
    // default port dropped, path ignored, host lowercased
    let rp = RelyingParty::for_origin("https://SSPR.Contoso.com:443/reset/").unwrap();
    assert_eq!(
        (rp.id.as_str(), rp.origins[0].as_str()),
        ("sspr.contoso.com", "https://sspr.contoso.com")
    );
    let rp = RelyingParty::for_origin("https://sspr.contoso.com:8443").unwrap();
    assert_eq!(rp.origins, vec!["https://sspr.contoso.com:8443".to_owned()]);
    let rp = RelyingParty::for_origin("http://localhost:8080").unwrap();
    assert_eq!(
        (rp.id.as_str(), rp.origins[0].as_str()),
        ("localhost", "http://localhost:8080")
    );

    for refused in [
        "https://192.0.2.1",
        "https://[2001:db8::1]:8443",
        "http://127.0.0.1:8080",
        "http://sspr.contoso.com",
        "ftp://sspr.contoso.com",
        "https://user:pass@sspr.contoso.com",
        "sspr.contoso.com",
        "",
    ] {
        let result = RelyingParty::for_origin(refused);
        assert_eq!(reason(result), "invalid_relying_party", "{refused}");
    }
}

#[test]
fn credential_ids_decode_from_graph_and_browsers() {
    // Microsoft Graph sends padded standard base64 in excludeCredentials
    let graph =
        CredentialId::from_base64url("TZ2KrDEawbrIGQsnheGZ/BG9Nfnb7blSGwQYMGyJIhM=").unwrap();
    let browser = CredentialId::from_base64url(&graph.to_base64url()).unwrap();
    assert_eq!(graph, browser);
    assert_eq!(graph.0.len(), 32);
    assert!(!graph.to_base64url().contains(['=', '+', '/']));
    assert_eq!(
        decode_base64_lenient("GshyINLMaOOwqt1LNUi0gQ==")
            .unwrap()
            .len(),
        16
    );
    assert_eq!(reason(decode_base64_lenient("a+b-")), "malformed");
}

#[test]
fn client_data_for_native_clients() {
    // Graph's challenges are long opaque strings, not 32 bytes
    let challenge = vec![0xab; 3000];
    let json = client_data_json(Ceremony::Create, &challenge, "https://login.microsoft.com");
    let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(parsed["type"], "webauthn.create");
    assert_eq!(parsed["origin"], "https://login.microsoft.com");
    assert_eq!(parsed["crossOrigin"], false);
    assert_eq!(
        decode_base64_lenient(parsed["challenge"].as_str().unwrap()).unwrap(),
        challenge
    );
    let ours = Challenge::from_bytes([1; 32]);
    let json = client_data_json(Ceremony::Get, ours.as_bytes(), ORIGIN);
    let expected = format!(
        r#"{{"type":"webauthn.get","challenge":"{}","origin":"{ORIGIN}","crossOrigin":false}}"#,
        ours.to_base64url()
    );
    assert_eq!(String::from_utf8(json).unwrap(), expected);
}

#[test]
fn reasons_are_distinct() {
    use latchkey_webauthn::Error::*;
    let all = [
        Malformed("x"),
        ClientDataType,
        Challenge,
        Origin,
        CrossOrigin,
        RpIdHash,
        UserNotPresent,
        UserNotVerified,
        NoAttestedCredential,
        UnsupportedAlgorithm,
        UnsupportedAttestation,
        AttestationSignature,
        AttestationCertificate("x"),
        CredentialMismatch,
        UserHandle,
        Signature,
        BackupEligibilityChanged,
        SignCountRegressed {
            stored: 1,
            received: 1,
        },
        InvalidRelyingParty("x"),
        CredentialExcluded,
        NoCredential,
        Random(latchkey_types::random::NoRandomness),
    ];
    let mut reasons: Vec<_> = all.iter().map(|e| e.reason()).collect();
    reasons.sort_unstable();
    reasons.dedup();
    assert_eq!(reasons.len(), all.len());
}

#[test]
fn algorithms_round_trip() {
    for alg in latchkey_webauthn::Algorithm::ALL {
        assert_eq!(
            latchkey_webauthn::Algorithm::from_cose(alg.cose()),
            Some(alg)
        );
    }
    assert_eq!(latchkey_webauthn::Algorithm::from_cose(-35), None);
    let names: Vec<_> = latchkey_webauthn::Algorithm::ALL
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(names, ["ES256", "EdDSA", "RS256"]);
    // serde uses the same names
    let json = serde_json::to_string(&latchkey_webauthn::Algorithm::ALL).unwrap();
    assert_eq!(json, r#"["ES256","EdDSA","RS256"]"#);
    let back: Vec<latchkey_webauthn::Algorithm> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, latchkey_webauthn::Algorithm::ALL);
}

/// A valid registration and login to mutate.
fn valid() -> (Registration, Assertion, latchkey_webauthn::Registered) {
    let mut auth = SoftAuthenticator::new(AAGUID);
    let reg = soft_register(&mut auth, SoftAttestation::PackedSelf);
    let registered = reg.verify().unwrap();
    let assertion = soft_assert(&mut auth, &registered.credential_id.0);
    (reg, assertion, registered)
}

fn assert_with(auth_data: &[u8], signature: &[u8], key: &CoseKey, assertion: &Assertion) -> bool {
    let rp = rp();
    let check = AssertionCheck {
        rp: &rp,
        challenge: &assertion.challenge,
        user_verification_required: true,
        user_handle: None,
    };
    let stored = StoredCredential {
        id: &assertion.credential_id,
        public_key: key,
        sign_count: 0,
        backup_eligible: false,
    };
    let response = AssertionResponse {
        credential_id: &assertion.credential_id,
        client_data_json: &assertion.client_data,
        authenticator_data: auth_data,
        signature,
        user_handle: None,
    };
    verify_assertion(&check, &stored, &response).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (reg, assertion, registered) = valid();
        prop_assert!(verify_reg(&reg.challenge, &reg.client_data, &bytes).is_err());
        prop_assert!(!assert_with(&bytes, &assertion.signature, &registered.public_key, &assertion));
        let _ = CoseKey::from_bytes(&bytes);
        let _ = decode_base64_lenient(&String::from_utf8_lossy(&bytes));
        // random bytes as authData inside a well-formed attestation object
        let object = raw_attestation_object("none", vec![], &bytes);
        let _ = verify_reg(&reg.challenge, &reg.client_data, &object);
    }

    #[test]
    fn mutated_inputs_never_panic(index in any::<prop::sample::Index>(), xor in 1u8..=255, cut in any::<bool>()) {
        let (reg, assertion, registered) = valid();
        let mutate = |bytes: &[u8]| {
            let mut bytes = bytes.to_vec();
            let i = index.index(bytes.len());
            if cut { bytes.truncate(i) } else { bytes[i] ^= xor }
            bytes
        };
        // Flipping any byte of a self-attested object (or cutting it) breaks it.
        let object = mutate(&reg.attestation_object());
        prop_assert!(verify_reg(&reg.challenge, &reg.client_data, &object).is_err());
        let data = mutate(&assertion.auth_data);
        prop_assert!(!assert_with(&data, &assertion.signature, &registered.public_key, &assertion));
        let cose = mutate(registered.public_key.as_bytes());
        if let Ok(key) = CoseKey::from_bytes(&cose) {
            // a mutated key that still parses never verifies the original signature
            prop_assert!(!assert_with(&assertion.auth_data, &assertion.signature, &key, &assertion));
        }
    }
}
