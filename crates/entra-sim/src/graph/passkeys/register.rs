//! `POST /users/{id}/authentication/fido2Methods`: the registration ceremony (WebAuthn §7.1) as
//! the relying party `login.microsoft.com`, then the tenant's FIDO2 policy.
//!
//! Order of checks: caller, body, policy (enabled, self-service setup), challenge (issued here,
//! for this user, not expired: taken out of the store as soon as it is found, so it is spent
//! whether or not the rest succeeds), the attestation (type, challenge, origin, rpIdHash, UP,
//! UV, algorithm ES256/RS256, format `none` or `packed` and its signature), the credential id,
//! duplicates, attestation enforcement, key restrictions.

use actix_web::HttpResponse;
use actix_web::web::{self, Data, Json};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{check_policy, not_self, refused, relying_party};
use crate::app::Shared;
use crate::graph::auth::Caller;
use crate::graph::error::{GraphError, GraphResult};
use crate::graph::methods::check_write;
use crate::graph::users::find_user;
use crate::state::methods::{Fido2Method, MethodKind};
use crate::state::passkeys::{decode_id, model_of, thumbprint};
use latchkey_webauthn::{Algorithm, AttestationFormat, RegistrationCheck, verify_registration};

/// What Graph says when the body lacks the credential (observed, msgraph-beta-sdk-dotnet#941).
const MISSING: &str = "The request is missing a fido2AuthenticationMethod entity with a displayName and publicKeyCredential in the request body.";

/// The request body's parts, decoded.
struct Registration {
    display_name: Option<String>,
    credential_id: Vec<u8>,
    client_data_json: Vec<u8>,
    attestation_object: Vec<u8>,
}

impl Registration {
    fn parse(body: &Map<String, Value>) -> GraphResult<Registration> {
        let credential = body
            .get("publicKeyCredential")
            .and_then(Value::as_object)
            .ok_or_else(|| refused(MISSING))?;
        let text = |v: Option<&Value>, name: &str| -> GraphResult<Vec<u8>> {
            let s = v.and_then(Value::as_str).ok_or_else(|| refused(MISSING))?;
            decode_id(s).ok_or_else(|| {
                refused(format!(
                    "publicKeyCredential.{name} must be Base64URL-encoded without padding."
                ))
            })
        };
        let response = credential.get("response").and_then(Value::as_object);
        Ok(Registration {
            display_name: body
                .get("displayName")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            credential_id: text(credential.get("id"), "id")?,
            client_data_json: text(
                response.and_then(|r| r.get("clientDataJSON")),
                "response.clientDataJSON",
            )?,
            attestation_object: text(
                response.and_then(|r| r.get("attestationObject")),
                "response.attestationObject",
            )?,
        })
    }
}

/// The one member read before verification: which challenge the client answered.
#[derive(Deserialize)]
struct ClientDataChallenge {
    challenge: String,
}

pub async fn register(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<Map<String, Value>>,
) -> GraphResult {
    let now = shared.clock.now();
    let mut state = shared.state();
    let i = find_user(&state, &path)?;
    not_self(&caller, &state.users[i])?;
    check_write(&caller, &state.users[i], Some(MethodKind::Fido2))?;
    let req = Registration::parse(&body)?;
    check_policy(&state.fido2_policy)?;

    let answered: ClientDataChallenge = serde_json::from_slice(&req.client_data_json)
        .map_err(|_| refused("The clientDataJSON is not valid JSON with a challenge."))?;
    let pending = state
        .passkey_challenges
        .take(&answered.challenge)
        .ok_or_else(|| {
            refused("The challenge was not issued by this service or has already been used.")
        })?;
    if pending.user != state.users[i].id {
        return Err(refused("The challenge was issued for another user."));
    }
    if now >= pending.expires {
        return Err(refused(
            "The challenge has expired. Request new creation options and try again.",
        ));
    }

    let rp = relying_party();
    let check = RegistrationCheck {
        rp: &rp,
        challenge: &pending.bytes,
        user_verification_required: true,
        // What creationOptions offers in pubKeyCredParams.
        algorithms: &[Algorithm::Es256, Algorithm::Rs256],
    };
    let registered = verify_registration(&check, &req.client_data_json, &req.attestation_object)
        .map_err(|e| refused(format!("The public key credential is not valid: {e}.")))?;
    if registered.credential_id.0 != req.credential_id {
        return Err(refused(
            "publicKeyCredential.id does not match the credential in the attestation object.",
        ));
    }
    let duplicate = state.users.iter().any(|u| {
        u.methods
            .fido2
            .iter()
            .any(|m| m.credential_id.as_deref() == Some(registered.credential_id.0.as_slice()))
    });
    if duplicate {
        return Err(refused("This passkey is already registered."));
    }

    let policy = &state.fido2_policy;
    // Attested: a packed statement with a certificate chain. The simulator has no FIDO metadata
    // to chain it to; self attestation and `none` never count.
    let attested = registered.format == AttestationFormat::Packed
        && !registered.attestation_certificates.is_empty();
    if policy.attestation_enforced && !attested {
        return Err(refused(
            "The FIDO2 authentication method policy enforces attestation, and this passkey has no verifiable attestation.",
        ));
    }
    let aaguid = Uuid::from_bytes(registered.aaguid);
    if !policy.permits_aaguid(&aaguid) {
        return Err(refused(
            "This security key model is not allowed by the key restrictions of the FIDO2 authentication method policy.",
        ));
    }

    let id = latchkey_types::random::uuid()
        .map_err(|_| {
            GraphError::new(
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                "No randomness for an id.",
            )
        })?
        .to_string();
    let model = model_of(&aaguid);
    state.users[i].methods.fido2.push(Fido2Method {
        id: id.clone(),
        display_name: req
            .display_name
            .or_else(|| model.map(str::to_owned))
            .unwrap_or_else(|| "Passkey".to_owned()),
        model: model.map(str::to_owned),
        aaguid: Some(aaguid.to_string()),
        attestation_level: if attested { "attested" } else { "notAttested" }.to_owned(),
        passkey_type: if registered.backup_eligible {
            "synced"
        } else {
            "deviceBound"
        }
        .to_owned(),
        created: now,
        credential_id: Some(registered.credential_id.0),
        attestation_certificates: registered
            .attestation_certificates
            .iter()
            .map(|c| thumbprint(c))
            .collect(),
    });

    let created = state.users[i]
        .methods
        .list(MethodKind::Fido2, now)
        .into_iter()
        .find(|m| m.get("id").and_then(Value::as_str) == Some(id.as_str()))
        .unwrap_or(Value::Null);
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(format!(
            "{}#users('{}')/authentication/fido2Methods/$entity",
            shared.metadata(),
            state.users[i].id
        )),
    );
    if let Value::Object(o) = created {
        out.extend(o);
    }
    Ok(HttpResponse::Created().json(out))
}
