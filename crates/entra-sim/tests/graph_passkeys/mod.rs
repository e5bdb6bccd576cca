//! Passkey (FIDO2) provisioning: creationOptions, registration with a software authenticator,
//! list / exclude / delete. Refusals in `refusals.rs`, policy and permissions in `policy.rs`.

mod policy;
mod refusals;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_entra_sim::Sim;
use latchkey_webauthn::soft::{SoftAttestation, SoftAuthenticator};
use latchkey_webauthn::{Ceremony, client_data_json};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

pub const RP: &str = "login.microsoft.com";
pub const ORIGIN: &str = "https://login.microsoft.com";
/// YubiKey 5 Series (the simulator names the model).
pub const YUBIKEY: [u8; 16] = [
    0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8,
];
pub const YUBIKEY_GUID: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";

pub fn options_path(user: &str) -> String {
    format!("/users/{user}/authentication/fido2Methods/creationOptions")
}

pub fn methods_path(user: &str) -> String {
    format!("/users/{user}/authentication/fido2Methods")
}

pub async fn options(sim: &Sim, token: &str, user: &str) -> Value {
    let (s, _, b) = graph_get(sim, token, &options_path(user)).await;
    assert_eq!(s, 200, "{b}");
    b
}

pub fn b64d(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// What a browser at `origin` would post for these options, made by `auth`.
pub struct Made {
    pub credential_id: Vec<u8>,
    pub client_data: Vec<u8>,
    pub attestation_object: Vec<u8>,
}

impl Made {
    pub fn body(&self, name: &str) -> Value {
        json!({
            "displayName": name,
            "publicKeyCredential": {
                "id": URL_SAFE_NO_PAD.encode(&self.credential_id),
                "response": {
                    "clientDataJSON": URL_SAFE_NO_PAD.encode(&self.client_data),
                    "attestationObject": URL_SAFE_NO_PAD.encode(&self.attestation_object),
                },
                "clientExtensionResults": {},
            },
        })
    }
}

/// The ceremony with its knobs: origin, RP ID, UV, attestation.
pub fn make_with(
    auth: &mut SoftAuthenticator,
    opts: &Value,
    origin: &str,
    rp_id: &str,
    user_verified: bool,
    attestation: SoftAttestation,
) -> Made {
    let pk = &opts["publicKey"];
    let challenge = b64d(pk["challenge"].as_str().unwrap());
    let client_data = client_data_json(Ceremony::Create, &challenge, origin);
    let hash: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, &client_data)
        .as_ref()
        .try_into()
        .unwrap();
    let exclude: Vec<Vec<u8>> = pk["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| b64d(d["id"].as_str().unwrap()))
        .collect();
    let user = b64d(pk["user"]["id"].as_str().unwrap());
    let cred = auth
        .make_credential(rp_id, &hash, &user, user_verified, &exclude, attestation)
        .unwrap();
    Made {
        attestation_object: cred.attestation_object().unwrap(),
        credential_id: cred.credential_id,
        client_data,
    }
}

pub fn make(auth: &mut SoftAuthenticator, opts: &Value, attestation: SoftAttestation) -> Made {
    make_with(auth, opts, ORIGIN, RP, true, attestation)
}

pub async fn register(sim: &Sim, token: &str, user: &str, body: Value) -> (u16, Value) {
    let (s, _, b) = graph(
        sim,
        token,
        Method::POST,
        &methods_path(user),
        Some(body),
        &[],
    )
    .await;
    (s, b)
}

/// Asserts the documented refusal: 400 with Graph's error shape.
pub fn assert_refused(status: u16, body: &Value, needle: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(body), "badRequest", "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    assert!(
        body["error"]["innerError"]["request-id"].is_string(),
        "{body}"
    );
}

pub fn exclude_ids(opts: &Value) -> Vec<Vec<u8>> {
    opts["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| b64d(d["id"].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn creation_options_have_the_documented_shape() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let before = sim.tenant().now();
    let o = options(&sim, &t, ADELE).await;
    assert!(
        o["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#microsoft.graph.webauthnCredentialCreationOptions")
    );
    let expires = time::OffsetDateTime::parse(
        o["challengeTimeoutDateTime"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    // Issued while the request ran: exactly 5 minutes after some moment between these two
    // (the answer's time has whole-second or millisecond precision, hence the second's slack).
    let after = sim.tenant().now();
    let five = time::Duration::minutes(5);
    assert!(
        expires >= before + five - time::Duration::seconds(1) && expires <= after + five,
        "expires {expires}, asked between {before} and {after}"
    );
    let pk = &o["publicKey"];
    assert_eq!(
        pk["rp"],
        json!({"id": "login.microsoft.com", "name": "Microsoft"})
    );
    assert_eq!(pk["user"]["name"], "adele.vance@contoso.com");
    assert_eq!(pk["user"]["displayName"], "Adele Vance");
    let challenge = pk["challenge"].as_str().unwrap();
    assert!(!challenge.contains('='), "no padding");
    assert_eq!(b64d(challenge).len(), 32);
    assert_eq!(
        pk["pubKeyCredParams"],
        json!([{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}])
    );
    assert_eq!(pk["timeout"], 60000);
    assert_eq!(pk["excludeCredentials"], json!([]));
    assert_eq!(
        pk["authenticatorSelection"],
        json!({"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"})
    );
    assert_eq!(pk["attestation"], "direct");
    assert_eq!(
        pk["extensions"]["credentialProtectionPolicy"],
        "userVerificationOptional"
    );
    // A new challenge each time; the same user handle. By UPN too.
    let again = options(&sim, &t, "adele.vance@contoso.com").await;
    assert_ne!(again["publicKey"]["challenge"], pk["challenge"]);
    assert_eq!(again["publicKey"]["user"]["id"], pk["user"]["id"]);
    let megan = options(&sim, &t, MEGAN).await;
    assert_ne!(megan["publicKey"]["user"]["id"], pk["user"]["id"]);
    // A key the fixture gives a credential id is excluded.
    let many = options(&sim, &t, MANY).await;
    assert_eq!(
        exclude_ids(&many),
        vec![b"Red key credential id (simulated)".to_vec()]
    );
    assert_eq!(
        many["publicKey"]["excludeCredentials"][0]["type"],
        "public-key"
    );
    assert_eq!(
        many["publicKey"]["excludeCredentials"][0]["transports"],
        json!([])
    );
    let (s, _, b) = graph_get(&sim, &t, &options_path("nobody@contoso.com")).await;
    assert_eq!((s, error_code(&b)), (404, "Request_ResourceNotFound"));
    sim.stop().await;
}

#[tokio::test]
async fn register_list_exclude_and_delete() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let mut key = SoftAuthenticator::new(YUBIKEY);

    let o = options(&sim, &t, ADELE).await;
    let first = make(&mut key, &o, SoftAttestation::None);
    let (s, b) = register(&sim, &t, ADELE, first.body("Adele's key")).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["@odata.type"],
        "#microsoft.graph.fido2AuthenticationMethod"
    );
    assert!(
        b["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/fido2Methods/$entity")
    );
    assert_eq!(b["displayName"], "Adele's key");
    assert_eq!(b["aaGuid"], YUBIKEY_GUID);
    assert_eq!(b["model"], "YubiKey 5 Series");
    assert_eq!(b["attestationLevel"], "notAttested");
    assert_eq!(b["attestationCertificates"], json!([]));
    assert_eq!(b["passkeyType"], "deviceBound");
    assert!(b["createdDateTime"].as_str().unwrap().ends_with('Z'));
    let first_id = b["id"].as_str().unwrap().to_owned();
    assert!(first_id.parse::<uuid::Uuid>().is_ok());

    // The new key is excluded next time; the authenticator refuses to make another.
    let o = options(&sim, &t, ADELE).await;
    assert_eq!(exclude_ids(&o), vec![first.credential_id.clone()]);
    let hash = [0u8; 32];
    let e = key
        .make_credential(
            RP,
            &hash,
            b"x",
            true,
            &exclude_ids(&o),
            SoftAttestation::None,
        )
        .unwrap_err();
    assert!(
        matches!(e, latchkey_webauthn::Error::CredentialExcluded),
        "{e}"
    );

    // Packed self attestation, from another key without a known model.
    let mut other = SoftAuthenticator::new([7; 16]);
    let second = make(&mut other, &o, SoftAttestation::PackedSelf);
    let (s, b) = register(&sim, &t, ADELE, second.body("Spare")).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["model"], Value::Null);
    assert_eq!(
        b["attestationLevel"], "notAttested",
        "self attestation is not attestation"
    );
    let second_id = b["id"].as_str().unwrap().to_owned();

    let (s, _, list) = graph_get(&sim, &t, &methods_path(ADELE)).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first_id.as_str(), second_id.as_str()]);
    let (_, _, all) = graph_get(&sim, &t, &format!("/users/{ADELE}/authentication/methods")).await;
    assert!(all.to_string().contains(&first_id));
    let (s, _, one) = graph_get(&sim, &t, &format!("{}/{second_id}", methods_path(ADELE))).await;
    assert_eq!((s, one["displayName"].as_str()), (200, Some("Spare")));

    let (s, _, _) = graph(
        &sim,
        &t,
        Method::DELETE,
        &format!("{}/{first_id}", methods_path(ADELE)),
        None,
        &[],
    )
    .await;
    assert_eq!(s, 204);
    let o = options(&sim, &t, ADELE).await;
    assert_eq!(exclude_ids(&o), vec![second.credential_id.clone()]);
    let (_, _, list) = graph_get(&sim, &t, &methods_path(ADELE)).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    // After the delete the first key can be registered again (new challenge, same key data:
    // `none` attestation does not sign the client data).
    let again = Made {
        client_data: client_data_json(
            Ceremony::Create,
            &b64d(o["publicKey"]["challenge"].as_str().unwrap()),
            ORIGIN,
        ),
        ..first
    };
    let (s, b) = register(&sim, &t, ADELE, again.body("Back again")).await;
    assert_eq!(s, 201, "{b}");
    let snapshot = sim.tenant().user(ADELE).unwrap();
    assert_eq!(
        snapshot
            .methods
            .iter()
            .filter(|m| m["@odata.type"] == "#microsoft.graph.fido2AuthenticationMethod")
            .count(),
        2
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_synced_passkey_and_a_default_name() {
    let sim = start().await;
    let t = app_token(&sim).await;
    let mut key = SoftAuthenticator::new(YUBIKEY);
    key.flags.backup_eligible = true;
    let o = options(&sim, &t, MEGAN).await;
    let made = make(&mut key, &o, SoftAttestation::None);
    let mut body = made.body("ignored");
    body.as_object_mut().unwrap().remove("displayName");
    let (s, b) = register(&sim, &t, MEGAN, body).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["passkeyType"], "synced");
    assert_eq!(
        b["displayName"], "YubiKey 5 Series",
        "named after the model"
    );
    sim.stop().await;
}
