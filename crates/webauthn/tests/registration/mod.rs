//! §7.1: registrations that verify (soft authenticator, hand-built EdDSA and RS256) and the
//! refusals of the ceremony itself: client data, authenticator data, algorithms.

use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator, authenticator_data, flags};
use latchkey_webauthn::{
    Algorithm, AttestationFormat, AttestationStatement, Ceremony, Challenge, CoseKey,
    attestation_object, client_data_json,
};

use crate::support::*;

#[test]
fn soft_none_registers_and_logs_in() {
    let mut auth = SoftAuthenticator::new([7; 16]);
    let reg = soft_register(&mut auth, SoftAttestation::None);
    let registered = reg.verify().unwrap();
    assert_eq!(registered.format, AttestationFormat::None);
    assert_eq!(registered.credential_id.0, reg.credential.credential_id);
    assert_eq!(registered.public_key.algorithm(), Algorithm::Es256);
    assert_eq!(registered.aaguid, [7; 16]);
    assert_eq!(registered.sign_count, 0);
    assert!(registered.user_verified && !registered.backup_eligible && !registered.backed_up);
    assert!(registered.attestation_certificates.is_empty());
    // the stored bytes parse back to the same key
    let stored = CoseKey::from_bytes(registered.public_key.as_bytes()).unwrap();
    assert_eq!(stored, registered.public_key);

    let first = soft_assert(&mut auth, &registered.credential_id.0)
        .verify(&registered, 0)
        .unwrap();
    assert_eq!(first.sign_count, 1);
    assert!(first.user_verified && !first.backed_up);
    let second = soft_assert(&mut auth, &registered.credential_id.0)
        .verify(&registered, 1)
        .unwrap();
    assert_eq!(second.sign_count, 2);
}

#[test]
fn soft_packed_self_registers() {
    let mut auth = SoftAuthenticator::new([7; 16]);
    let reg = soft_register(&mut auth, SoftAttestation::PackedSelf);
    let registered = reg.verify().unwrap();
    assert_eq!(registered.format, AttestationFormat::Packed);
    assert!(registered.attestation_certificates.is_empty());
}

/// A registration with a hand-made key: packed self attestation signed by that key, then a login.
fn hand_round_trip(key: HandKey) {
    let challenge = Challenge::random().unwrap();
    let client_data = client_data_json(Ceremony::Create, challenge.as_bytes(), ORIGIN);
    let id = b"hand-made credential".to_vec();
    let data = authenticator_data(
        RP_ID,
        flags::UP | flags::UV,
        0,
        Some((&[0; 16], &id, &key.cose_key())),
    );
    let statement = AttestationStatement::Packed {
        alg: key.algorithm(),
        sig: key.sign(&signed(&data, &client_data)),
        x5c: vec![],
    };
    let object = attestation_object(AttestationFormat::Packed, &data, &statement).unwrap();
    let registered = verify_reg(&challenge, &client_data, &object).unwrap();
    assert_eq!(registered.public_key.algorithm(), key.algorithm());
    // Only an algorithm the server offered is accepted.
    let others: Vec<_> = Algorithm::ALL
        .into_iter()
        .filter(|a| *a != key.algorithm())
        .collect();
    let refused = verify_reg_with(&challenge, &client_data, &object, true, &others);
    assert_eq!(reason(refused), "unsupported_algorithm");

    let challenge = Challenge::random().unwrap();
    let client_data = client_data_json(Ceremony::Get, challenge.as_bytes(), ORIGIN);
    let data = authenticator_data(RP_ID, flags::UP | flags::UV, 5, None);
    let assertion = Assertion {
        challenge,
        signature: key.sign(&signed(&data, &client_data)),
        client_data,
        credential_id: id,
        auth_data: data,
        user_handle: None,
    };
    assert_eq!(assertion.verify(&registered, 4).unwrap().sign_count, 5);
    // a signature by another key of the same kind
    let mut forged = assertion;
    forged.signature = match key {
        HandKey::Rsa(_) => forged.signature.iter().map(|b| b ^ 1).collect(),
        _ => HandKey::ed25519().sign(&signed(&forged.auth_data, &forged.client_data)),
    };
    assert_eq!(reason(forged.verify(&registered, 4)), "signature");
}

#[test]
fn eddsa_registers_and_logs_in() {
    hand_round_trip(HandKey::ed25519());
}

#[test]
fn rs256_registers_and_logs_in() {
    hand_round_trip(HandKey::rsa());
}

#[test]
fn algorithm_not_offered_is_refused() {
    let mut auth = SoftAuthenticator::new([7; 16]);
    let reg = soft_register(&mut auth, SoftAttestation::None);
    assert_eq!(
        reason(reg.verify_with(true, &[Algorithm::EdDsa, Algorithm::Rs256])),
        "unsupported_algorithm"
    );
    reg.verify_with(true, &[Algorithm::Es256]).unwrap();
}

#[test]
fn client_data_refusals() {
    let mut auth = SoftAuthenticator::new([7; 16]);
    let reg = soft_register(&mut auth, SoftAttestation::None);
    let object = reg.attestation_object();
    let c = reg.challenge.to_base64url();
    let verify = |json: String| reason(verify_reg(&reg.challenge, json.as_bytes(), &object));
    let json = |kind: &str, challenge: &str, origin: &str, extra: &str| {
        format!(r#"{{"type":"{kind}","challenge":"{challenge}","origin":"{origin}"{extra}}}"#)
    };
    // The authenticator signed another clientDataHash, but the client data checks come first.
    assert_eq!(
        verify(json("webauthn.get", &c, ORIGIN, "")),
        "client_data_type"
    );
    let other = Challenge::random().unwrap().to_base64url();
    assert_eq!(
        verify(json("webauthn.create", &other, ORIGIN, "")),
        "challenge"
    );
    assert_eq!(
        verify(json("webauthn.create", "not base64!", ORIGIN, "")),
        "challenge"
    );
    assert_eq!(
        verify(json("webauthn.create", &c, "https://evil.example", "")),
        "origin"
    );
    assert_eq!(
        verify(json(
            "webauthn.create",
            &c,
            "https://sspr.contoso.com:444",
            ""
        )),
        "origin"
    );
    assert_eq!(
        verify(json(
            "webauthn.create",
            &c,
            ORIGIN,
            r#","crossOrigin":true"#
        )),
        "cross_origin"
    );
    assert_eq!(
        verify(json(
            "webauthn.create",
            &c,
            ORIGIN,
            r#","crossOrigin":"yes""#
        )),
        "malformed"
    );
    assert_eq!(verify("not json".into()), "malformed");
    // crossOrigin false and unknown members are fine
    let fine = json(
        "webauthn.create",
        &c,
        ORIGIN,
        r#","crossOrigin":false,"topOrigin":"x""#,
    );
    verify_reg(&reg.challenge, fine.as_bytes(), &object).unwrap();
}

#[test]
fn authenticator_data_refusals() {
    let mut auth = SoftAuthenticator::new([7; 16]);
    // another relying party's credential
    let reg = soft_register_at(&mut auth, "evil.example", SoftAttestation::None);
    assert_eq!(reason(reg.verify()), "rp_id_hash");
    // user not present
    auth.flags.user_present = false;
    assert_eq!(
        reason(soft_register(&mut auth, SoftAttestation::None).verify()),
        "user_not_present"
    );
    auth.flags.user_present = true;
    // user not verified, when required
    let challenge = Challenge::random().unwrap();
    let client_data = client_data_json(Ceremony::Create, challenge.as_bytes(), ORIGIN);
    let cred = auth
        .make_credential(
            RP_ID,
            &sha256(&client_data),
            USER,
            false,
            &[],
            SoftAttestation::PackedSelf,
        )
        .unwrap();
    let reg = Registration {
        challenge,
        client_data,
        credential: cred,
    };
    assert_eq!(
        reason(reg.verify_with(true, &Algorithm::ALL)),
        "user_not_verified"
    );
    assert!(
        !reg.verify_with(false, &Algorithm::ALL)
            .unwrap()
            .user_verified
    );
}

/// Registrations whose authenticator data the tests build (format none: nothing to re-sign).
fn none_with(data: &[u8]) -> &'static str {
    let challenge = Challenge::random().unwrap();
    let client_data = client_data_json(Ceremony::Create, challenge.as_bytes(), ORIGIN);
    let object = raw_attestation_object("none", vec![], data);
    match verify_reg(&challenge, &client_data, &object) {
        Ok(_) => "ok",
        Err(e) => e.reason(),
    }
}

#[test]
fn authenticator_data_structure() {
    let key = HandKey::p256().cose_key();
    let uv = flags::UP | flags::UV;
    let good = authenticator_data(RP_ID, uv, 0, Some((&[0; 16], b"id", &key)));
    assert_eq!(none_with(&good), "ok");
    // trailing bytes
    assert_eq!(none_with(&[good.as_slice(), &[0]].concat()), "malformed");
    // extensions (credProtect) are delimited and accepted; a missing map is not
    let ext = authenticator_data(RP_ID, uv | flags::ED, 0, Some((&[0; 16], b"id", &key)));
    let cred_protect = [
        0xa1, 0x6b, b'c', b'r', b'e', b'd', b'P', b'r', b'o', b't', b'e', b'c', b't', 0x02,
    ];
    assert_eq!(none_with(&[ext.as_slice(), &cred_protect].concat()), "ok");
    assert_eq!(none_with(&ext), "malformed");
    // no attested credential
    assert_eq!(
        none_with(&authenticator_data(RP_ID, uv, 0, None)),
        "no_attested_credential"
    );
    // credential id lengths 0 and 1024 (the maximum is 1023)
    assert_eq!(
        none_with(&authenticator_data(
            RP_ID,
            uv,
            0,
            Some((&[0; 16], b"", &key))
        )),
        "malformed"
    );
    assert_eq!(
        none_with(&authenticator_data(
            RP_ID,
            uv,
            0,
            Some((&[0; 16], &[1; 1023], &key))
        )),
        "ok"
    );
    assert_eq!(
        none_with(&authenticator_data(
            RP_ID,
            uv,
            0,
            Some((&[0; 16], &[1; 1024], &key))
        )),
        "malformed"
    );
    // backed up but not backup eligible
    let bs = authenticator_data(RP_ID, uv | flags::BS, 0, Some((&[0; 16], b"id", &key)));
    assert_eq!(none_with(&bs), "malformed");
    let be_bs = authenticator_data(
        RP_ID,
        uv | flags::BE | flags::BS,
        0,
        Some((&[0; 16], b"id", &key)),
    );
    assert_eq!(none_with(&be_bs), "ok");
    // truncated at every length: refused, never a panic
    for len in 0..good.len() {
        assert_eq!(none_with(&good[..len]), "malformed", "length {len}");
    }
}

#[test]
fn excluded_credentials_are_refused_by_the_authenticator() {
    let mut auth = SoftAuthenticator::new([7; 16]);
    let reg = soft_register(&mut auth, SoftAttestation::None);
    let exclude = vec![reg.credential.credential_id.clone()];
    let result = auth.make_credential(
        RP_ID,
        &[0; 32],
        b"someone else",
        true,
        &exclude,
        SoftAttestation::None,
    );
    assert_eq!(reason(result), "credential_excluded");
    // the exclude list is per relying party
    auth.make_credential(
        "other.example",
        &[0; 32],
        USER,
        true,
        &exclude,
        SoftAttestation::None,
    )
    .unwrap();
    // Debug shows no key material
    let debug = format!("{auth:?}");
    assert!(debug.contains("credentials: 2"), "{debug}");
}
