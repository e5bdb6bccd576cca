//! Passkey (FIDO2) provisioning: `GET /users/{id}/authentication/fido2Methods/creationOptions`,
//! `POST /users/{id}/authentication/fido2Methods` ([`register`]) and the FIDO2 method policy
//! (`fido2AuthenticationMethodConfiguration`). Listing and deleting FIDO2 methods are the
//! generic per-type method endpoints ([`super::methods`]).
//!
//! Sources (v1.0): `fido2authenticationmethod-creationoptions`, `authentication-post-fido2methods`
//! and its permissions include, `fido2authenticationmethodconfiguration-get`, known issues
//! "FIDO2 provisioning API requires self-service setup to be enabled". Where the docs give no
//! error body, refusals are 400 with code `badRequest`, the code this endpoint was seen to answer
//! a bad registration body with (msgraph-beta-sdk-dotnet#941); the messages are ours.

mod register;

pub use register::register;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::{self, Data};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use super::users::find_user;
use crate::app::Shared;
use crate::clock::fmt;
use crate::fixture::Fido2PolicyFixture;
use crate::roles::{
    AUTHENTICATION_ADMINISTRATOR, GLOBAL_ADMINISTRATOR, GLOBAL_READER,
    PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
};
use crate::state::User;
use crate::state::passkeys::{ORIGIN, RP_ID, user_handle};

/// creationOptions and registration: least privileged `UserAuthMethod-Passkey.ReadWrite.All`,
/// higher `UserAuthenticationMethod.ReadWrite.All`, delegated and application alike.
const PROVISION: &[&str] = &[
    "UserAuthMethod-Passkey.ReadWrite.All",
    "UserAuthenticationMethod.ReadWrite.All",
];

/// A refusal of the passkey or of the policy: 400 `badRequest`.
pub(crate) fn refused(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "badRequest", message)
}

/// "Self-service operations aren't currently supported" (creationOptions page): a delegated
/// caller cannot provision a passkey for their own account.
fn not_self(caller: &Caller, target: &User) -> GraphResult<()> {
    if caller.is_self(target.id) {
        Err(GraphError::forbidden())
    } else {
        Ok(())
    }
}

/// The known issue: provisioning needs the method enabled and "Allow self-service setup" on.
pub(crate) fn check_policy(policy: &Fido2PolicyFixture) -> GraphResult<()> {
    if !policy.enabled {
        return Err(refused(
            "The FIDO2 authentication method is disabled by the tenant's authentication methods policy.",
        ));
    }
    if !policy.self_service_registration_allowed {
        return Err(refused(
            "FIDO2 provisioning requires 'Allow self-service setup' (isSelfServiceRegistrationAllowed) in the FIDO2 authentication method policy.",
        ));
    }
    Ok(())
}

/// `GET /users/{id | upn}/authentication/fido2Methods/creationOptions`. Delegated callers on
/// others need Global Reader, Authentication Administrator or Privileged Authentication
/// Administrator (the page's role list).
pub async fn creation_options(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    let now = shared.clock.now();
    let mut state = shared.state();
    let i = find_user(&state, &path)?;
    let user = &state.users[i];
    not_self(&caller, user)?;
    caller.require(Perms {
        app: PROVISION,
        delegated: PROVISION,
    })?;
    if caller.is_delegated()
        && !caller.has_role(&[
            GLOBAL_READER,
            AUTHENTICATION_ADMINISTRATOR,
            PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
            GLOBAL_ADMINISTRATOR,
        ])
    {
        return Err(GraphError::forbidden());
    }
    check_policy(&state.fido2_policy)?;
    let (user_id, upn, display_name) = (user.id, user.upn.clone(), user.display_name.clone());
    let exclude: Vec<Value> = user
        .methods
        .fido2
        .iter()
        .filter_map(|m| m.credential_id.as_deref())
        .map(|id| json!({"id": URL_SAFE_NO_PAD.encode(id), "type": "public-key", "transports": []}))
        .collect();
    let bytes = latchkey_types::random::bytes::<32>().map_err(|_| {
        GraphError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            "No randomness for a challenge.",
        )
    })?;
    let expires = state.passkey_challenges.issue(user_id, bytes, now);
    // Shape and values as a live tenant answers (DSInternals' captured response): RS256 and
    // ES256, cross-platform authenticators, a discoverable credential with UV, direct
    // attestation, credProtect and hmac-secret requested.
    Ok(HttpResponse::Ok().json(json!({
        "@odata.context": format!("{}#microsoft.graph.webauthnCredentialCreationOptions", shared.metadata()),
        "challengeTimeoutDateTime": fmt::graph(expires),
        "publicKey": {
            "rp": {"id": RP_ID, "name": "Microsoft"},
            "user": {
                "id": URL_SAFE_NO_PAD.encode(user_handle(user_id)),
                "name": upn,
                "displayName": display_name,
            },
            "challenge": URL_SAFE_NO_PAD.encode(bytes),
            "pubKeyCredParams": [
                {"type": "public-key", "alg": -7},
                {"type": "public-key", "alg": -257},
            ],
            "timeout": 60000,
            "excludeCredentials": exclude,
            "authenticatorSelection": {
                "authenticatorAttachment": "cross-platform",
                "requireResidentKey": true,
                "userVerification": "required",
            },
            "attestation": "direct",
            "extensions": {
                "hmacCreateSecret": true,
                "enforceCredentialProtectionPolicy": true,
                "credentialProtectionPolicy": "userVerificationOptional",
            },
        },
    })))
}

/// The relying party registrations are verified against.
pub(crate) fn relying_party() -> latchkey_webauthn::RelyingParty {
    latchkey_webauthn::RelyingParty {
        id: RP_ID.to_owned(),
        origins: vec![ORIGIN.to_owned()],
    }
}

/// `fido2AuthenticationMethodConfiguration`, as `GET .../authenticationMethodConfigurations/fido2`
/// returns it (the documented example's members and order).
pub fn configuration_json(meta: &str, p: &Fido2PolicyFixture) -> Value {
    json!({
        "@odata.context": format!("{meta}#authenticationMethodConfigurations/$entity"),
        "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
        "id": "Fido2",
        "state": if p.enabled { "enabled" } else { "disabled" },
        "isSelfServiceRegistrationAllowed": p.self_service_registration_allowed,
        "isAttestationEnforced": p.attestation_enforced,
        "keyRestrictions": {
            "isEnforced": p.key_restrictions_enforced,
            "enforcementType": p.key_restrictions_type,
            "aaGuids": p.key_restrictions_aaguids,
        },
        "includeTargets@odata.context": format!("{meta}#policies/authenticationMethodsPolicy/authenticationMethodConfigurations('Fido2')/microsoft.graph.fido2AuthenticationMethodConfiguration/includeTargets"),
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": false}],
        "excludeTargets": [],
    })
}
