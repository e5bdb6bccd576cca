//! Tenant-level resources: `/domains`, `/organization`, `/directory/onPremisesSynchronization`
//! (delegated only), and the Temporary Access Pass method policy.

use actix_web::HttpResponse;
use actix_web::web::{self, Data};
use serde_json::{Map, Value, json};

use super::auth::{Caller, Perms};
use super::error::{GraphError, GraphResult};
use crate::app::Shared;
use crate::clock::fmt;
use crate::state::State;

const DOMAIN_READ: Perms = Perms {
    app: &[
        "Domain.Read.All",
        "Domain.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "Domain.Read.All",
        "Domain.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

const ORG_READ: Perms = Perms {
    app: &[
        "Organization.Read.All",
        "Organization.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    delegated: &[
        "User.Read",
        "Organization.Read.All",
        "Organization.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

const SYNC_READ: Perms = Perms {
    app: &[],
    delegated: &[
        "OnPremDirectorySynchronization.Read.All",
        "OnPremDirectorySynchronization.ReadWrite.All",
    ],
};

const POLICY_READ: Perms = Perms {
    app: &[
        "Policy.Read.AuthenticationMethod",
        "Policy.Read.All",
        "Policy.ReadWrite.AuthenticationMethod",
    ],
    delegated: &[
        "Policy.Read.AuthenticationMethod",
        "Policy.Read.All",
        "Policy.ReadWrite.AuthenticationMethod",
    ],
};

/// Fixture domains plus the initial `*.onmicrosoft.com` domain (always present in Entra).
fn domains(state: &State) -> Vec<Map<String, Value>> {
    let has_default = state.domains.iter().any(|d| d.is_default);
    let mut list: Vec<Map<String, Value>> = Vec::new();
    let initial = &state.tenant.initial_domain;
    let mut push = |name: &str, auth: &str, default: bool, verified: bool| {
        let is_initial = name.eq_ignore_ascii_case(initial);
        let v = json!({
            "authenticationType": auth,
            "availabilityStatus": null,
            "id": name,
            "isAdminManaged": true,
            "isDefault": default,
            "isInitial": is_initial,
            "isRoot": true,
            "isVerified": verified,
            "supportedServices": ["Email", "OfficeCommunicationsOnline"],
            "passwordValidityPeriodInDays": 2147483647,
            "passwordNotificationWindowInDays": 14,
            "state": null,
        });
        list.push(v.as_object().cloned().unwrap_or_default());
    };
    if !state
        .domains
        .iter()
        .any(|d| d.name.eq_ignore_ascii_case(initial))
    {
        push(initial, "Managed", !has_default, true);
    }
    for d in &state.domains {
        push(&d.name, &d.authentication_type, d.is_default, d.is_verified);
    }
    list
}

pub async fn list_domains(shared: Data<Shared>, caller: Caller) -> GraphResult {
    caller.require(DOMAIN_READ)?;
    let values = domains(&shared.state());
    Ok(HttpResponse::Ok().json(json!({
        "@odata.context": format!("{}#domains", shared.metadata()),
        "value": values,
    })))
}

pub async fn get_domain(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    caller.require(DOMAIN_READ)?;
    let d = domains(&shared.state())
        .into_iter()
        .find(|d| {
            d["id"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(&path))
        })
        .ok_or_else(|| GraphError::not_found(&path))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}#domains/$entity", shared.metadata())),
    );
    body.extend(d);
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /domains/{id}/federationConfiguration` (v1.0, `Domain.Read.All`): the domain's
/// `internalDomainFederation` (one object for a federated domain, none for a managed one).
pub async fn list_federation_configuration(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    caller.require(DOMAIN_READ)?;
    let state = shared.state();
    let known = domains(&state).into_iter().any(|d| {
        d["id"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(&path))
    });
    if !known {
        return Err(GraphError::not_found(&path));
    }
    let values: Vec<Value> = state
        .domains
        .iter()
        .filter(|d| d.name.eq_ignore_ascii_case(&path))
        .filter(|d| d.authentication_type.eq_ignore_ascii_case("Federated"))
        .map(|d| {
            let passive = d
                .passive_sign_in_uri
                .clone()
                .unwrap_or_else(|| format!("https://sts.{}/adfs/ls/", d.name));
            let base = passive
                .split("/adfs/")
                .next()
                .unwrap_or(&passive)
                .to_string();
            let host = base.trim_start_matches("https://").to_string();
            json!({
                "@odata.type": "#microsoft.graph.internalDomainFederation",
                "id": format!("{}-federation", d.name),
                "displayName": format!("{} AD FS", d.name),
                "issuerUri": format!("http://{host}/adfs/services/trust"),
                "metadataExchangeUri": format!("{base}/adfs/services/trust/mex"),
                "signingCertificate": null,
                "passiveSignInUri": passive,
                "preferredAuthenticationProtocol": "wsFed",
                "activeSignInUri": format!("{base}/adfs/services/trust/2005/usernamemixed"),
                "signOutUri": format!("{base}/adfs/ls/?wa=wsignout1.0"),
                "promptLoginBehavior": "nativeSupport",
                "isSignedAuthenticationRequestRequired": true,
                "nextSigningCertificate": null,
                "federatedIdpMfaBehavior": "rejectMfaByFederatedIdp",
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "@odata.context": format!(
            "{}#domains('{}')/federationConfiguration",
            shared.metadata(),
            path.as_str()
        ),
        "value": values,
    })))
}

fn organization(state: &State) -> Map<String, Value> {
    let verified: Vec<Value> = domains(state)
        .into_iter()
        .filter(|d| d["isVerified"] == json!(true))
        .map(|d| {
            json!({
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": d["isDefault"],
                "isInitial": d["isInitial"],
                "name": d["id"],
                "type": d["authenticationType"],
            })
        })
        .collect();
    let synced = state.sync.on_premises_sync_enabled;
    json!({
        "id": state.tenant_id.to_string(),
        "deletedDateTime": null,
        "businessPhones": [],
        "city": null,
        "country": null,
        "countryLetterCode": state.tenant.country_letter_code.clone().unwrap_or_else(|| "US".into()),
        "createdDateTime": fmt::graph(state.created),
        "defaultUsageLocation": null,
        "displayName": state.tenant.display_name,
        "isMultipleDataLocationsForServicesEnabled": null,
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": if synced { state.sync.last_sync.as_deref().and_then(fmt::parse).map(fmt::graph) } else { None },
        "onPremisesSyncEnabled": if synced { Some(true) } else { None },
        "partnerTenantType": null,
        "postalCode": null,
        "preferredLanguage": "en",
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": null,
        "street": null,
        "technicalNotificationMails": state.tenant.technical_notification_mails,
        "tenantType": "AAD",
        "directorySizeQuota": {"used": state.users.len() + state.groups.len(), "total": 50000},
        "assignedPlans": [],
        "privacyProfile": {"contactEmail": "", "statementUrl": ""},
        "provisionedPlans": [],
        "verifiedDomains": verified,
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

pub async fn list_organization(shared: Data<Shared>, caller: Caller) -> GraphResult {
    caller.require(ORG_READ)?;
    let org = organization(&shared.state());
    Ok(HttpResponse::Ok().json(json!({
        "@odata.context": format!("{}#organization", shared.metadata()),
        "value": [org],
    })))
}

pub async fn get_organization(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    caller.require(ORG_READ)?;
    let state = shared.state();
    if !path.eq_ignore_ascii_case(&state.tenant_id.to_string()) {
        return Err(GraphError::not_found(&path));
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{}#organization/$entity", shared.metadata())),
    );
    body.extend(organization(&state));
    Ok(HttpResponse::Ok().json(body))
}

fn sync_json(state: &State) -> Map<String, Value> {
    let s = &state.sync;
    json!({
        "id": state.tenant_id.to_string(),
        "configuration": {
            "accidentalDeletionPrevention": {
                "synchronizationPreventionType": "enabledForCount",
                "alertThreshold": 500
            }
        },
        "features": {
            "passwordSyncEnabled": s.password_sync_enabled,
            "passwordWritebackEnabled": s.password_writeback_enabled,
            "directoryExtensionsEnabled": false,
            "quarantineUponUpnConflictEnabled": true,
            "quarantineUponProxyAddressesConflictEnabled": true,
            "softMatchOnUpnEnabled": true,
            "cloudPasswordPolicyForPasswordSyncedUsersEnabled": false,
            "fopeConflictResolutionEnabled": false,
            "unifiedGroupWritebackEnabled": false,
            "userWritebackEnabled": false,
            "deviceWritebackEnabled": false,
            "synchronizeUpnForManagedUsersEnabled": true,
            "userForcePasswordChangeOnLogonEnabled": false,
            "concurrentOrgIdProvisioningEnabled": false,
            "concurrentCredentialUpdateEnabled": false,
            "groupWriteBackEnabled": false,
            "blockSoftMatchEnabled": false,
            "blockCloudObjectTakeoverThroughHardMatchEnabled": false,
            "bypassDirSyncOverridesEnabled": false
        }
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

pub async fn list_sync(shared: Data<Shared>, caller: Caller) -> GraphResult {
    caller.require(SYNC_READ)?;
    let item = sync_json(&shared.state());
    Ok(HttpResponse::Ok().json(json!({
        "@odata.context": format!("{}#directory/onPremisesSynchronization", shared.metadata()),
        "value": [item],
    })))
}

pub async fn get_sync(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    caller.require(SYNC_READ)?;
    let state = shared.state();
    if !path.eq_ignore_ascii_case(&state.tenant_id.to_string()) {
        return Err(GraphError::not_found(&path));
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}#directory/onPremisesSynchronization/$entity",
            shared.metadata()
        )),
    );
    body.extend(sync_json(&state));
    Ok(HttpResponse::Ok().json(body))
}

pub async fn get_method_configuration(
    shared: Data<Shared>,
    caller: Caller,
    path: web::Path<String>,
) -> GraphResult {
    caller.require(POLICY_READ)?;
    if path.eq_ignore_ascii_case("Fido2") {
        let body =
            super::passkeys::configuration_json(&shared.metadata(), &shared.state().fido2_policy);
        return Ok(HttpResponse::Ok().json(body));
    }
    if !path.eq_ignore_ascii_case("TemporaryAccessPass") {
        return Err(GraphError::not_found(&path));
    }
    let state = shared.state();
    let p = &state.tap_policy;
    let meta = shared.metadata();
    Ok(HttpResponse::Ok().json(json!({
        "@odata.context": format!("{meta}#authenticationMethodConfigurations/$entity"),
        "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration",
        "id": "TemporaryAccessPass",
        "state": if p.enabled { "enabled" } else { "disabled" },
        "defaultLifetimeInMinutes": p.default_lifetime_minutes,
        "defaultLength": p.default_length,
        "minimumLifetimeInMinutes": p.minimum_lifetime_minutes,
        "maximumLifetimeInMinutes": p.maximum_lifetime_minutes,
        "isUsableOnce": p.is_usable_once,
        "includeTargets@odata.context": format!("{meta}#policies/authenticationMethodsPolicy/authenticationMethodConfigurations('TemporaryAccessPass')/microsoft.graph.temporaryAccessPassAuthenticationMethodConfiguration/includeTargets"),
        "includeTargets": [{"targetType": "group", "id": "all_users", "isRegistrationRequired": false}],
        "excludeTargets": [],
    })))
}

const GROUP_SETTINGS_READ: Perms = Perms {
    app: &[
        "GroupSettings.Read.All",
        "GroupSettings.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
    ],
    delegated: &[
        "GroupSettings.Read.All",
        "GroupSettings.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
};

/// The "Password Rule Settings" directory setting template.
pub const PASSWORD_RULE_SETTINGS_TEMPLATE: &str = "5cf42378-d67d-4f36-ba46-e8b86229381d";
/// The setting object's id in this simulator (fixed, so fixtures and tests can name it).
const PASSWORD_RULE_SETTINGS_ID: &str = "2e5a0f0c-7d4b-4f55-9f1c-0b6a5c0d3f01";

/// `GET /groupSettings`: the tenant-wide settings objects. A tenant starts with none ("Microsoft
/// Entra ID assigns the default configuration to the tenant and there are no setting objects");
/// the "Password Rule Settings" object exists once a custom banned list or a smart lockout other
/// than the default is configured. Values are strings, booleans as "True"/"False", the list
/// tab-separated.
pub async fn list_group_settings(shared: Data<Shared>, caller: Caller) -> GraphResult {
    caller.require(GROUP_SETTINGS_READ)?;
    let state = shared.state();
    let lockout = &state.smart_lockout;
    let banned = &state.password_policy.banned_words;
    let configured =
        !banned.is_empty() || lockout.threshold != 10 || lockout.duration_seconds != 60;
    let mut value = Vec::new();
    if configured {
        let flag = |b: bool| if b { "True" } else { "False" };
        value.push(json!({
            "id": PASSWORD_RULE_SETTINGS_ID,
            "displayName": "Password Rule Settings",
            "templateId": PASSWORD_RULE_SETTINGS_TEMPLATE,
            "values": [
                {"name": "BannedPasswordCheckOnPremisesMode", "value": "Audit"},
                {"name": "EnableBannedPasswordCheckOnPremises", "value": flag(false)},
                {"name": "EnableBannedPasswordCheck", "value": flag(!banned.is_empty())},
                {"name": "LockoutDurationInSeconds", "value": lockout.duration_seconds.to_string()},
                {"name": "LockoutThreshold", "value": lockout.threshold.to_string()},
                {"name": "BannedPasswordList", "value": banned.join("\t")},
            ],
        }));
    }
    Ok(HttpResponse::Ok().json(json!({
        "@odata.context": format!("{}#groupSettings", shared.metadata()),
        "value": value,
    })))
}
