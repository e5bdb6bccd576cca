//! The live tenant: directory objects built from the fixture, plus the state the STS and the
//! long-running operations keep. One `Mutex<State>` guards it all; handlers hold the lock only
//! for synchronous work (never across an `.await`).

pub mod changes;
pub mod churn;
pub mod directory;
pub mod generate;
pub mod handle;
pub mod methods;
pub mod passkeys;
pub mod signin;

use std::collections::{BTreeSet, HashMap, HashSet};

use latchkey_types::Secret;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::clock::fmt;
use crate::fixture::{
    AppFixture, DeviceMethodFixture, Fido2PolicyFixture, Fixture, LroFixture,
    PasswordPolicyFixture, SmartLockoutFixture, SyncFixture, TapPolicyFixture, TenantFixture,
    ThrottlingFixture, UserFixture,
};
use crate::roles;
use methods::{DeviceMethod, Fido2Method, Methods, PhoneMethod, PhoneType, TapMethod};

/// A deterministic GUID from a seed (generated users, service principals, directoryRole objects),
/// so ids stay the same from run to run.
pub fn stable_uuid(seed: &str) -> Uuid {
    let d = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// The key that signs delta state tokens: random per simulator, so tokens of another run (or a
/// tampered one) are refused.
fn token_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    k[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    k
}

fn time_or(s: &Option<String>, default: OffsetDateTime) -> OffsetDateTime {
    s.as_deref().and_then(fmt::parse).unwrap_or(default)
}

#[derive(Debug, Clone)]
pub struct Risk {
    pub level: String,
    pub state: String,
    pub detail: String,
    pub last_updated: OffsetDateTime,
}

/// Smart lockout bookkeeping (howto-password-smart-lockout.md): failures count toward the
/// threshold, but a repeat of one of the last three bad passwords does not count again.
#[derive(Debug, Clone, Default)]
pub struct Lockout {
    pub failures: u32,
    pub recent_bad: Vec<Vec<u8>>,
    pub locked_until: Option<OffsetDateTime>,
    pub lockouts: u32,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub upn: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub mail_nickname: Option<String>,
    pub other_mails: Vec<String>,
    pub proxy_addresses: Vec<String>,
    pub mobile_phone: Option<String>,
    pub business_phones: Vec<String>,
    pub job_title: Option<String>,
    pub office_location: Option<String>,
    pub employee_id: Option<String>,
    pub employee_hire_date: Option<OffsetDateTime>,
    pub account_enabled: bool,
    pub on_premises_sync_enabled: Option<bool>,
    pub on_premises_sam_account_name: Option<String>,
    pub on_premises_domain_name: Option<String>,
    pub on_premises_immutable_id: Option<String>,
    pub preferred_language: Option<String>,
    pub user_type: String,
    pub usage_location: Option<String>,
    pub password_policies: Option<String>,
    pub created: OffsetDateTime,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub password: Secret<String>,
    pub last_password_change: OffsetDateTime,
    pub force_change_password_next_sign_in: bool,
    /// `signInSessionsValidFromDateTime`: refresh tokens issued before it are refused.
    pub sign_in_sessions_valid_from: OffsetDateTime,
    /// Directory role template ids.
    pub roles: BTreeSet<String>,
    pub risk: Option<Risk>,
    pub methods: Methods,
    pub lockout: Lockout,
}

impl User {
    /// Synced from on-premises AD: Graph refuses cloud edits of its password profile.
    pub fn is_synced(&self) -> bool {
        self.on_premises_sync_enabled == Some(true)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Member {
    User(Uuid),
    Group(Uuid),
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: String,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub created: OffsetDateTime,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone)]
pub struct AppCert {
    pub der: Vec<u8>,
    /// base64url SHA-1 of the DER (`x5t`).
    pub x5t: String,
    /// base64url SHA-256 of the DER (`x5t#S256`).
    pub x5t_s256: String,
}

#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub display_name: String,
    pub sp_id: Uuid,
    pub secrets: Vec<Secret<String>>,
    pub certs: Vec<AppCert>,
    pub permissions: BTreeSet<String>,
    /// Role template ids of the service principal.
    pub roles: BTreeSet<String>,
    pub redirect_uris: Vec<String>,
    pub delegated_scopes: BTreeSet<String>,
}

impl App {
    pub fn has_scope_consent(&self, scope: &str) -> bool {
        self.delegated_scopes
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scope))
    }
}

/// A pending authorization code (`/authorize` → `/token`).
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub user_id: Uuid,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: String,
    pub nonce: Option<String>,
    pub expires: OffsetDateTime,
    pub redeemed: bool,
}

#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub client_id: String,
    pub user_id: Uuid,
    pub scopes: Vec<String>,
    pub expires: OffsetDateTime,
    /// When it was issued (compared with the user's `signInSessionsValidFromDateTime`).
    pub issued: OffsetDateTime,
}

/// A `resetPassword` long-running operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created: OffsetDateTime,
    pub last_action: OffsetDateTime,
    pub polls: u32,
    /// `None` = will succeed; `Some(detail)` = will fail with this `statusDetail`.
    pub failure: Option<String>,
}

#[derive(Debug)]
pub struct State {
    pub tenant: TenantFixture,
    pub domains: Vec<crate::fixture::DomainFixture>,
    pub sync: SyncFixture,
    pub password_policy: PasswordPolicyFixture,
    pub smart_lockout: SmartLockoutFixture,
    pub lro: LroFixture,
    pub throttling: ThrottlingFixture,
    pub tap_policy: TapPolicyFixture,
    pub fido2_policy: Fido2PolicyFixture,
    /// Challenges handed out by `fido2Methods/creationOptions`.
    pub passkey_challenges: passkeys::PasskeyChallenges,
    pub tenant_id: Uuid,
    pub created: OffsetDateTime,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub apps: Vec<App>,
    pub codes: HashMap<String, AuthCode>,
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    pub used_jtis: HashSet<String>,
    pub operations: HashMap<Uuid, Operation>,
    /// Recent Identity Protection request times (for the per-tenant throttle).
    pub identity_protection_hits: Vec<OffsetDateTime>,
    /// Delta paging and token behaviour (`[delta]`; `PUT /_sim/delta`).
    pub delta: crate::fixture::DeltaFixture,
    /// The change log delta queries answer from.
    pub changes: changes::Changes,
    /// Soft-deleted users and groups (`/directory/deletedItems`).
    pub deleted_users: HashMap<Uuid, directory::DeletedUser>,
    pub deleted_groups: HashMap<Uuid, directory::DeletedGroup>,
    /// GUID → position in `users` (see [`State::user_pos`]).
    pub user_pos: HashMap<Uuid, usize>,
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl State {
    pub fn build(fixture: &Fixture, now: OffsetDateTime) -> Result<State, String> {
        let tenant_id: Uuid = fixture
            .tenant
            .id
            .parse()
            .map_err(|_| "tenant.id is not a GUID".to_string())?;
        let created = time_or(&fixture.tenant.created, now - Duration::days(365));
        let mut users: Vec<User> = fixture
            .users
            .iter()
            .map(|u| build_user(u, created))
            .collect::<Result<_, _>>()?;
        let mut groups = Vec::new();
        let mut generated = 0u32;
        for g in &fixture.groups {
            let id = match &g.id {
                Some(id) => id.parse().map_err(|_| format!("group id {id}"))?,
                None => stable_uuid(&format!("group:{}", g.display_name)),
            };
            let mut members = Vec::new();
            for _ in 0..g.generated_members {
                generated += 1;
                let upn = format!("gen-user-{generated:04}@{}", fixture.tenant.initial_domain);
                let u = build_user(
                    &UserFixture {
                        upn: upn.clone(),
                        display_name: format!("Generated User {generated:04}"),
                        given_name: Some("Generated".into()),
                        surname: Some(format!("User {generated:04}")),
                        mail: Some(upn),
                        password: "Generated-Passw0rd!".into(),
                        ..UserFixture::default()
                    },
                    created,
                )?;
                members.push(Member::User(u.id));
                users.push(u);
            }
            groups.push(Group {
                id,
                display_name: g.display_name.clone(),
                description: g.description.clone(),
                mail_nickname: g
                    .mail_nickname
                    .clone()
                    .unwrap_or_else(|| g.display_name.replace(' ', "")),
                mail_enabled: g.mail_enabled,
                security_enabled: g.security_enabled,
                created,
                members,
            });
        }
        // Resolve member names now that every group has an id.
        for (gi, g) in fixture.groups.iter().enumerate() {
            for m in &g.members {
                let member = if m.contains('@') {
                    users
                        .iter()
                        .find(|u| u.upn.eq_ignore_ascii_case(m))
                        .map(|u| Member::User(u.id))
                } else {
                    groups
                        .iter()
                        .find(|x| x.display_name.eq_ignore_ascii_case(m))
                        .map(|x| Member::Group(x.id))
                };
                groups[gi]
                    .members
                    .push(member.ok_or_else(|| format!("unknown member {m}"))?);
            }
        }
        if let Some(g) = &fixture.generate {
            generate::generate(
                g,
                &fixture.tenant.initial_domain,
                created,
                &mut users,
                &mut groups,
            );
        }
        let apps = fixture
            .apps
            .iter()
            .map(build_app)
            .collect::<Result<_, _>>()?;
        // Generated tenants (load runs) grow these by doubling; the spare half would stay
        // resident for the life of the simulator.
        users.shrink_to_fit();
        for g in &mut groups {
            g.members.shrink_to_fit();
        }
        Ok(State {
            tenant: fixture.tenant.clone(),
            domains: fixture.domains.clone(),
            sync: fixture.sync.clone(),
            password_policy: fixture.password_policy.clone(),
            smart_lockout: fixture.smart_lockout.clone(),
            lro: fixture.lro.clone(),
            throttling: fixture.throttling.clone(),
            tap_policy: fixture.tap_policy.clone(),
            fido2_policy: fixture.fido2_policy.clone(),
            passkey_challenges: passkeys::PasskeyChallenges::default(),
            tenant_id,
            created,
            users,
            groups,
            apps,
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            used_jtis: HashSet::new(),
            operations: HashMap::new(),
            identity_protection_hits: Vec::new(),
            delta: fixture.delta.clone(),
            changes: changes::Changes::new(token_key()),
            deleted_users: HashMap::new(),
            deleted_groups: HashMap::new(),
            user_pos: HashMap::new(),
        })
        .map(|mut s| {
            s.seed_changes();
            for (u, f) in s.users.iter_mut().zip(&fixture.users) {
                if f.locked_out {
                    u.lockout.locked_until = Some(
                        now + Duration::seconds(fixture.smart_lockout.duration_seconds as i64),
                    );
                    u.lockout.lockouts = 1;
                }
            }
            s
        })
    }

    /// `{tenant}` in a URL: the tenant GUID or one of its verified domains (or the initial domain).
    pub fn is_this_tenant(&self, tenant: &str) -> bool {
        tenant.eq_ignore_ascii_case(&self.tenant_id.to_string())
            || tenant.eq_ignore_ascii_case(&self.tenant.initial_domain)
            || self
                .domains
                .iter()
                .any(|d| d.is_verified && d.name.eq_ignore_ascii_case(tenant))
    }

    /// A user by object id or UPN (case-insensitive), as Graph addresses `/users/{id|upn}`.
    pub fn user_index(&self, key: &str) -> Option<usize> {
        if let Ok(id) = key.parse::<Uuid>() {
            return self.user_pos(id);
        }
        self.users
            .iter()
            .position(|u| u.upn.eq_ignore_ascii_case(key))
    }

    pub fn user(&self, key: &str) -> Option<&User> {
        self.user_index(key).map(|i| &self.users[i])
    }

    pub fn user_by_id(&self, id: Uuid) -> Option<&User> {
        self.user_pos(id).map(|i| &self.users[i])
    }

    pub fn group(&self, key: &str) -> Option<&Group> {
        let id: Uuid = key.parse().ok()?;
        self.groups.iter().find(|g| g.id == id)
    }

    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// The object id Graph gives the activated directoryRole for a template in this tenant.
    pub fn directory_role_object_id(&self, template: &str) -> Uuid {
        stable_uuid(&format!("directoryRole:{}:{template}", self.tenant_id))
    }

    /// Groups that directly contain `member`.
    pub fn direct_groups_of(&self, member: Member) -> Vec<&Group> {
        self.groups
            .iter()
            .filter(|g| g.members.contains(&member))
            .collect()
    }

    /// Every group containing `member` directly or through nesting (each once, nearest first).
    pub fn transitive_groups_of(&self, member: Member) -> Vec<&Group> {
        let mut seen: Vec<Uuid> = Vec::new();
        let mut queue = vec![member];
        let mut out = Vec::new();
        while let Some(m) = queue.pop() {
            for g in self.direct_groups_of(m) {
                if !seen.contains(&g.id) {
                    seen.push(g.id);
                    out.push(g);
                    queue.insert(0, Member::Group(g.id));
                }
            }
        }
        out
    }

    /// Every member of a group including nested groups and their members (each once).
    pub fn transitive_members(&self, group: &Group) -> Vec<Member> {
        let mut out: Vec<Member> = Vec::new();
        let mut visited = vec![group.id];
        let mut queue: Vec<Member> = group.members.clone();
        let mut i = 0;
        while i < queue.len() {
            let m = queue[i];
            i += 1;
            if out.contains(&m) {
                continue;
            }
            out.push(m);
            if let Member::Group(gid) = m
                && !visited.contains(&gid)
            {
                visited.push(gid);
                if let Some(g) = self.groups.iter().find(|g| g.id == gid) {
                    queue.extend(g.members.iter().copied());
                }
            }
        }
        out
    }
}

pub fn build_user(u: &UserFixture, tenant_created: OffsetDateTime) -> Result<User, String> {
    let id = match &u.id {
        Some(id) => id.parse().map_err(|_| format!("user id {id}"))?,
        None => stable_uuid(&format!("user:{}", u.upn.to_ascii_lowercase())),
    };
    let created = time_or(&u.created, tenant_created);
    let last_pw = time_or(&u.last_password_change, created);
    let m = &u.methods;
    let device = |d: &DeviceMethodFixture, kind: &str, i: usize| DeviceMethod {
        id: d
            .id
            .clone()
            .unwrap_or_else(|| stable_uuid(&format!("{kind}:{id}:{i}")).to_string()),
        display_name: d.display_name.clone(),
        device_tag: d.device_tag.clone(),
        phone_app_version: d.phone_app_version.clone(),
        key_strength: d.key_strength.clone(),
        platform: d.platform.clone(),
        created: time_or(&d.created, created),
    };
    let devices = |v: &[DeviceMethodFixture], kind: &str| -> Vec<DeviceMethod> {
        v.iter()
            .enumerate()
            .map(|(i, d)| device(d, kind, i))
            .collect()
    };
    let methods = Methods {
        password_created: Some(time_or(&m.password_created, last_pw)),
        email: m.email.clone(),
        phones: m
            .phones
            .iter()
            .map(|p| PhoneMethod {
                phone_type: PhoneType::parse(&p.phone_type).unwrap_or(PhoneType::Mobile),
                number: p.number.clone(),
                sms_sign_in_state: p.sms_sign_in_state.clone().unwrap_or_else(|| {
                    if p.phone_type == "mobile" {
                        "notEnabled".into()
                    } else {
                        "notSupported".into()
                    }
                }),
            })
            .collect(),
        microsoft_authenticator: devices(&m.microsoft_authenticator, "authenticator"),
        fido2: m
            .fido2
            .iter()
            .enumerate()
            .map(|(i, f)| Fido2Method {
                id: f
                    .id
                    .clone()
                    .unwrap_or_else(|| stable_uuid(&format!("fido2:{id}:{i}")).to_string()),
                display_name: f.display_name.clone(),
                model: f.model.clone(),
                aaguid: f.aaguid.clone(),
                attestation_level: f
                    .attestation_level
                    .clone()
                    .unwrap_or_else(|| "attested".into()),
                passkey_type: f
                    .passkey_type
                    .clone()
                    .unwrap_or_else(|| "deviceBound".into()),
                created: time_or(&f.created, created),
                credential_id: f.credential_id.as_deref().and_then(passkeys::decode_id),
                attestation_certificates: Vec::new(),
            })
            .collect(),
        software_oath: devices(&m.software_oath, "oath"),
        windows_hello_for_business: devices(&m.windows_hello_for_business, "whfb"),
        platform_credential: devices(&m.platform_credential, "platform"),
        temporary_access_pass: m.temporary_access_pass.as_ref().map(|t| TapMethod {
            id: stable_uuid(&format!("tap:{id}")).to_string(),
            created: time_or(&t.created, created),
            start: t.start.as_deref().and_then(fmt::parse),
            lifetime_minutes: t.lifetime_minutes,
            is_usable_once: t.is_usable_once,
            used: false,
        }),
        default_method: m.default_method.clone(),
    };
    Ok(User {
        id,
        upn: u.upn.clone(),
        display_name: u.display_name.clone(),
        given_name: u.given_name.clone(),
        surname: u.surname.clone(),
        mail: u.mail.clone(),
        mail_nickname: u
            .mail_nickname
            .clone()
            .or_else(|| u.upn.split('@').next().map(str::to_owned)),
        other_mails: u.other_mails.clone(),
        proxy_addresses: u.proxy_addresses.clone(),
        mobile_phone: u.mobile_phone.clone(),
        business_phones: u.business_phones.clone(),
        job_title: u.job_title.clone(),
        office_location: u.office_location.clone(),
        employee_id: u.employee_id.clone(),
        employee_hire_date: u.employee_hire_date.as_deref().and_then(fmt::parse),
        account_enabled: u.account_enabled.unwrap_or(true),
        on_premises_sync_enabled: u.on_premises_sync_enabled,
        on_premises_sam_account_name: u.on_premises_sam_account_name.clone(),
        on_premises_domain_name: u.on_premises_domain_name.clone(),
        on_premises_immutable_id: u.on_premises_immutable_id.clone(),
        preferred_language: u.preferred_language.clone(),
        user_type: u.user_type.clone().unwrap_or_else(|| "Member".into()),
        usage_location: u.usage_location.clone(),
        password_policies: u.password_policies.clone(),
        created,
        extra: u.extra.clone(),
        password: Secret::new(u.password.clone()),
        last_password_change: last_pw,
        force_change_password_next_sign_in: false,
        sign_in_sessions_valid_from: created,
        roles: u
            .directory_roles
            .iter()
            .filter_map(|n| roles::by_name(n))
            .map(str::to_owned)
            .collect(),
        risk: u.risk.as_ref().map(|r| Risk {
            level: r.level.clone(),
            state: r.state.clone(),
            detail: r.detail.clone(),
            last_updated: time_or(&r.last_updated, created),
        }),
        methods,
        lockout: Lockout::default(),
    })
}

fn build_app(a: &AppFixture) -> Result<App, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs = a
        .certificates
        .iter()
        .map(|pem| {
            let der = CertificateDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| format!("app {} certificate: {e}", a.client_id))?;
            let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
            let sha256 = ring::digest::digest(&ring::digest::SHA256, &der);
            Ok(AppCert {
                x5t: b64url(sha1.as_ref()),
                x5t_s256: b64url(sha256.as_ref()),
                der: der.to_vec(),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(App {
        client_id: a.client_id.to_ascii_lowercase(),
        display_name: a.display_name.clone(),
        sp_id: match &a.service_principal_id {
            Some(s) => s.parse().map_err(|_| format!("sp id {s}"))?,
            None => stable_uuid(&format!("servicePrincipal:{}", a.client_id)),
        },
        secrets: a
            .client_secrets
            .iter()
            .map(|s| Secret::new(s.clone()))
            .collect(),
        certs,
        permissions: a.application_permissions.iter().cloned().collect(),
        roles: a
            .directory_roles
            .iter()
            .filter_map(|n| roles::by_name(n))
            .map(str::to_owned)
            .collect(),
        redirect_uris: a.redirect_uris.clone(),
        delegated_scopes: a.delegated_scopes.iter().cloned().collect(),
    })
}

impl State {
    /// A password set by an administrator or the SSPR service: updates the password and
    /// `lastPasswordChangeDateTime`, unlocks a smart-locked account (an admin reset unlocks, per
    /// howto-password-smart-lockout.md) and remediates user risk.
    pub fn apply_password(
        &mut self,
        index: usize,
        password: &str,
        force_change: bool,
        risk_detail: &str,
        now: OffsetDateTime,
    ) {
        let u = &mut self.users[index];
        u.password = Secret::new(password.to_owned());
        u.last_password_change = now;
        u.force_change_password_next_sign_in = force_change;
        u.methods.password_created = Some(now);
        u.lockout = Lockout::default();
        if let Some(r) = &mut u.risk
            && r.state == "atRisk"
        {
            r.state = "remediated".into();
            r.level = "none".into();
            r.detail = risk_detail.into();
            r.last_updated = now;
        }
    }
}
