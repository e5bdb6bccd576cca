//! Shared helpers: the relying party, ceremonies with the software authenticator, and builders
//! for hand-made credentials (Ed25519, RSA, attestation certificates).

use ciborium::Value;
use latchkey_types::random;
use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator, SoftCredential};
use latchkey_webauthn::{
    Algorithm, Asserted, AssertionCheck, AssertionResponse, Ceremony, Challenge, CoseKey, Error,
    Registered, RegistrationCheck, RelyingParty, StoredCredential, client_data_json,
    verify_assertion, verify_registration,
};
use ring::signature::{Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};

pub const ORIGIN: &str = "https://sspr.contoso.com";
pub const RP_ID: &str = "sspr.contoso.com";
pub const USER: &[u8] = b"user-handle-0001";
/// The AAGUID in the test attestation certificate.
pub const AAGUID: [u8; 16] = *b"latchkey-test-01";

pub const RSA_KEY: &[u8] = include_bytes!("../fixtures/rs256-key.pk8.der");
pub const ATTESTATION_KEY: &[u8] = include_bytes!("../fixtures/attestation-key.pk8.der");
pub const ATTESTATION_CERT: &[u8] = include_bytes!("../fixtures/attestation-cert.der");
pub const ATTESTATION_CERT_WRONG_OU: &[u8] =
    include_bytes!("../fixtures/attestation-cert-wrong-ou.der");

pub fn rp() -> RelyingParty {
    RelyingParty::for_origin(ORIGIN).unwrap()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .try_into()
        .unwrap()
}

/// A registration in progress: what the browser sends back, and what it was checked against.
pub struct Registration {
    pub challenge: Challenge,
    pub client_data: Vec<u8>,
    pub credential: SoftCredential,
}

impl Registration {
    pub fn attestation_object(&self) -> Vec<u8> {
        self.credential.attestation_object().unwrap()
    }

    pub fn verify(&self) -> Result<Registered, Error> {
        self.verify_with(true, &Algorithm::ALL)
    }

    pub fn verify_with(&self, uv: bool, algorithms: &[Algorithm]) -> Result<Registered, Error> {
        verify_reg_with(
            &self.challenge,
            &self.client_data,
            &self.attestation_object(),
            uv,
            algorithms,
        )
    }
}

/// verify_registration with UV required and every algorithm allowed.
pub fn verify_reg(
    challenge: &Challenge,
    client_data: &[u8],
    attestation_object: &[u8],
) -> Result<Registered, Error> {
    verify_reg_with(
        challenge,
        client_data,
        attestation_object,
        true,
        &Algorithm::ALL,
    )
}

pub fn verify_reg_with(
    challenge: &Challenge,
    client_data: &[u8],
    attestation_object: &[u8],
    uv: bool,
    algorithms: &[Algorithm],
) -> Result<Registered, Error> {
    let rp = rp();
    let check = RegistrationCheck {
        rp: &rp,
        challenge: challenge.as_bytes(),
        user_verification_required: uv,
        algorithms,
    };
    verify_registration(&check, client_data, attestation_object)
}

/// A registration with the soft authenticator at our relying party.
pub fn soft_register(auth: &mut SoftAuthenticator, attestation: SoftAttestation) -> Registration {
    soft_register_at(auth, RP_ID, attestation)
}

pub fn soft_register_at(
    auth: &mut SoftAuthenticator,
    rp_id: &str,
    attestation: SoftAttestation,
) -> Registration {
    let challenge = Challenge::random().unwrap();
    let client_data = client_data_json(Ceremony::Create, challenge.as_bytes(), ORIGIN);
    let credential = auth
        .make_credential(rp_id, &sha256(&client_data), USER, true, &[], attestation)
        .unwrap();
    Registration {
        challenge,
        client_data,
        credential,
    }
}

/// An assertion in progress, with owned parts tests may tamper with.
pub struct Assertion {
    pub challenge: Challenge,
    pub client_data: Vec<u8>,
    pub credential_id: Vec<u8>,
    pub auth_data: Vec<u8>,
    pub signature: Vec<u8>,
    pub user_handle: Option<Vec<u8>>,
}

impl Assertion {
    pub fn verify(&self, stored: &Registered, stored_count: u32) -> Result<Asserted, Error> {
        self.verify_with(stored, stored_count, true, Some(USER))
    }

    pub fn verify_with(
        &self,
        stored: &Registered,
        stored_count: u32,
        uv: bool,
        user_handle: Option<&[u8]>,
    ) -> Result<Asserted, Error> {
        let rp = rp();
        let check = AssertionCheck {
            rp: &rp,
            challenge: &self.challenge,
            user_verification_required: uv,
            user_handle,
        };
        let stored = StoredCredential {
            id: &stored.credential_id.0,
            public_key: &stored.public_key,
            sign_count: stored_count,
            backup_eligible: stored.backup_eligible,
        };
        let response = AssertionResponse {
            credential_id: &self.credential_id,
            client_data_json: &self.client_data,
            authenticator_data: &self.auth_data,
            signature: &self.signature,
            user_handle: self.user_handle.as_deref(),
        };
        verify_assertion(&check, &stored, &response)
    }
}

/// A login with the soft authenticator (allow list = the one credential).
pub fn soft_assert(auth: &mut SoftAuthenticator, credential_id: &[u8]) -> Assertion {
    soft_assert_at(auth, RP_ID, &[credential_id.to_vec()])
}

pub fn soft_assert_at(auth: &mut SoftAuthenticator, rp_id: &str, allow: &[Vec<u8>]) -> Assertion {
    let challenge = Challenge::random().unwrap();
    let client_data = client_data_json(Ceremony::Get, challenge.as_bytes(), ORIGIN);
    let a = auth
        .get_assertion(rp_id, &sha256(&client_data), allow)
        .unwrap();
    Assertion {
        challenge,
        client_data,
        credential_id: a.credential_id,
        auth_data: a.auth_data,
        signature: a.signature,
        user_handle: a.user_handle,
    }
}

/// A key that is not the soft authenticator's: signs like one of the supported algorithms.
pub enum HandKey {
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
    P256(ring::signature::EcdsaKeyPair),
}

impl HandKey {
    pub fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random::generator()).unwrap();
        HandKey::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    pub fn rsa() -> Self {
        HandKey::Rsa(RsaKeyPair::from_pkcs8(RSA_KEY).unwrap())
    }

    pub fn attestation() -> Self {
        let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        HandKey::P256(
            ring::signature::EcdsaKeyPair::from_pkcs8(alg, ATTESTATION_KEY, &random::generator())
                .unwrap(),
        )
    }

    pub fn p256() -> Self {
        let alg = &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 =
            ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &random::generator()).unwrap();
        HandKey::P256(
            ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &random::generator())
                .unwrap(),
        )
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            HandKey::Ed25519(_) => Algorithm::EdDsa,
            HandKey::Rsa(_) => Algorithm::Rs256,
            HandKey::P256(_) => Algorithm::Es256,
        }
    }

    /// The COSE_Key of the public key.
    pub fn cose_key(&self) -> Vec<u8> {
        let entries: Vec<(i64, Value)> = match self {
            HandKey::Ed25519(k) => vec![
                (1, 1.into()),
                (3, (-8).into()),
                (-1, 6.into()),
                (-2, Value::Bytes(k.public_key().as_ref().to_vec())),
            ],
            HandKey::Rsa(k) => {
                let c: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
                vec![
                    (1, 3.into()),
                    (3, (-257).into()),
                    (-1, Value::Bytes(c.n)),
                    (-2, Value::Bytes(c.e)),
                ]
            }
            HandKey::P256(k) => {
                let point = k.public_key().as_ref();
                vec![
                    (1, 2.into()),
                    (3, (-7).into()),
                    (-1, 1.into()),
                    (-2, Value::Bytes(point[1..33].to_vec())),
                    (-3, Value::Bytes(point[33..].to_vec())),
                ]
            }
        };
        let map = Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect());
        let mut out = Vec::new();
        ciborium::ser::into_writer(&map, &mut out).unwrap();
        assert!(CoseKey::from_bytes(&out).is_ok());
        out
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            HandKey::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            HandKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &random::generator(), message, &mut sig)
                    .unwrap();
                sig
            }
            HandKey::P256(k) => k
                .sign(&random::generator(), message)
                .unwrap()
                .as_ref()
                .to_vec(),
        }
    }
}

/// `data ‖ hash`, what authenticators sign.
pub fn signed(data: &[u8], client_data: &[u8]) -> Vec<u8> {
    [data, &sha256(client_data)].concat()
}

/// Encodes an attestation object with an arbitrary format and statement.
pub fn raw_attestation_object(
    fmt: &str,
    statement: Vec<(&str, Value)>,
    auth_data: &[u8],
) -> Vec<u8> {
    let statement = statement
        .into_iter()
        .map(|(k, v)| (Value::Text(k.into()), v))
        .collect();
    let map = Value::Map(vec![
        (Value::Text("fmt".into()), Value::Text(fmt.into())),
        (Value::Text("attStmt".into()), Value::Map(statement)),
        (
            Value::Text("authData".into()),
            Value::Bytes(auth_data.to_vec()),
        ),
    ]);
    let mut out = Vec::new();
    ciborium::ser::into_writer(&map, &mut out).unwrap();
    out
}

/// The `reason` of a refusal, for compact assertions.
pub fn reason<T: std::fmt::Debug>(result: Result<T, Error>) -> &'static str {
    match result {
        Ok(value) => panic!("expected a refusal, got {value:?}"),
        Err(e) => e.reason(),
    }
}
