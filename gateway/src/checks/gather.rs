//! Everything the checks need, read once over LDAP as the configured bind account. Users are
//! streamed page by page and judged as they arrive, so memory stays flat in the number of users.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use latchkey_ad::ldap::{
    CertificateInfo, Directory, Entry, LdapError, Scope, SdFlags, TrustSource,
    describe_certificate, escape_filter_value,
};
use latchkey_ad::rights::{self, Decision, Principal};
use latchkey_ad::{Acl, SecurityDescriptor, Sid};
use thiserror::Error;

use super::rights::USER_RIGHTS;
use super::{Check, ConnectorInfo, Status};
use crate::config::CheckConfig;

/// The domain could not be checked at all (exit code 2).
#[derive(Debug, Error)]
pub enum GatherError {
    #[error(transparent)]
    Ldap(#[from] LdapError),
    #[error("{0}")]
    Setup(String),
}

/// How many failing users each check lists by name (the count is always exact).
pub const MAX_LISTED: usize = 25;

pub struct Snapshot {
    pub url: String,
    pub domain_dn: String,
    pub base_dn: String,
    pub netbios: Option<String>,
    pub domain_sid: Sid,
    pub policy: DomainPolicy,
    pub domain_sd: Result<SecurityDescriptor, String>,
    pub connector: Connector,
    /// OUs under the base, plus every other container that holds users in scope.
    pub containers: Vec<Container>,
    /// The `user` class's defaultSecurityDescriptor DACL (explicit ACEs of every new user).
    pub user_default: Option<Acl>,
    pub users: UserScan,
    pub protected: Vec<ProtectedAccount>,
    pub certificate: Option<Result<CertificateInfo, String>>,
    pub trust: TrustSource,
    /// Unix seconds when the facts were read.
    pub now: i64,
}

#[derive(Clone, Debug, Default)]
pub struct DomainPolicy {
    pub min_pwd_age: Option<i64>,
    pub max_pwd_age: Option<i64>,
    pub min_pwd_length: Option<i64>,
    pub pwd_properties: Option<i64>,
    pub pwd_history_length: Option<i64>,
    pub lockout_threshold: Option<i64>,
    pub lockout_duration: Option<i64>,
    pub lockout_observation_window: Option<i64>,
}

pub struct Connector {
    pub sam: String,
    pub dn: String,
    pub sid: Sid,
    pub principal: Principal,
    pub group_count: usize,
    pub configured: bool,
    /// Other accounts that matched the discovery pattern.
    pub others: Vec<String>,
}

impl Connector {
    pub fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            sam_account_name: self.sam.clone(),
            dn: self.dn.clone(),
            sid: self.sid.to_string(),
            source: if self.configured {
                "configured"
            } else {
                "discovered"
            }
            .into(),
            group_count: self.group_count,
        }
    }
}

pub struct Container {
    pub dn: String,
    pub sd: Result<SecurityDescriptor, String>,
}

/// Per writeback right (same order as [`USER_RIGHTS`]): existing users that lack it.
#[derive(Default)]
pub struct UserScan {
    pub users: usize,
    pub failures: [RightFailures; 4],
    /// Users whose descriptor could not be read.
    pub unreadable: Vec<String>,
    pub unreadable_count: usize,
}

#[derive(Default)]
pub struct RightFailures {
    pub count: usize,
    pub listed: Vec<UserFailure>,
}

pub struct UserFailure {
    pub dn: String,
    pub decision: Decision,
}

pub struct ProtectedAccount {
    pub dn: String,
    pub sam: String,
    pub admin_count: bool,
    pub dacl_protected: bool,
    pub in_protected_group: bool,
    /// Whether the connector holds each writeback right on it today.
    pub rights: [bool; 4],
}

impl Snapshot {
    pub fn connector_check(&self) -> Check {
        let c = &self.connector;
        let mut check = Check::new("connector_account", "Sync connector account", Status::Pass);
        let name = self.account_name(&c.sam);
        check.evidence.push(format!(
            "{name} ({}), {}, SID {}, {} groups in its token (tokenGroups)",
            c.dn,
            if c.configured {
                "as configured"
            } else {
                "discovered by name"
            },
            c.sid,
            c.group_count
        ));
        if !c.others.is_empty() {
            check.status = Status::Warn;
            check.evidence.push(format!(
                "ambiguous: other accounts also match the connector name pattern: {}",
                c.others.join(", ")
            ));
            check.fix = Some(format!(
                "set ad.connector_account to the sAMAccountName Entra Connect uses (Synchronization \
                 Service > Connectors > the AD connector > Properties > Connect to Active Directory \
                 Forest); {} was checked",
                c.sam
            ));
        }
        check
    }

    /// `NETBIOS\sam` when the NetBIOS name is known.
    pub fn account_name(&self, sam: &str) -> String {
        match &self.netbios {
            Some(nb) => format!("{nb}\\{sam}"),
            None => sam.to_string(),
        }
    }
}

const USER_FILTER: &str = "(&(objectCategory=person)(objectClass=user))";

/// RIDs / SIDs of the groups AdminSDHolder protects (Microsoft, "AdminSDHolder, protected
/// accounts and groups"), besides the Administrator (500) and krbtgt (502) accounts.
const PROTECTED_DOMAIN_RIDS: &[u32] = &[512, 516, 518, 519, 521, 526, 527];
const PROTECTED_BUILTIN: &[&str] = &[
    "S-1-5-32-544",
    "S-1-5-32-548",
    "S-1-5-32-549",
    "S-1-5-32-550",
    "S-1-5-32-551",
    "S-1-5-32-552",
];

pub async fn gather(config: &CheckConfig) -> Result<Snapshot, GatherError> {
    let mut dir = Directory::connect(&config.ldap).await?;
    let result = gather_with(&mut dir, config).await;
    dir.unbind().await;
    result
}

/// Now, in Unix seconds: what the certificate and password-age checks compare with.
#[allow(clippy::disallowed_methods)] // the check's clock seam
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

async fn gather_with(dir: &mut Directory, config: &CheckConfig) -> Result<Snapshot, GatherError> {
    let now = unix_now();
    let certificate = dir.peer_certificate().map(describe_certificate);
    // Step timings at debug level (LATCHKEY_LOG=latchkey_gateway=debug): where a slow DC spends.
    let started = std::time::Instant::now();
    let step = |name: &str| {
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "gathered: {name}"
        )
    };
    let dse = dir.root_dse().await?;
    step("rootDSE");
    let domain_dn = dse
        .default_naming_context
        .clone()
        .ok_or_else(|| GatherError::Setup("the rootDSE has no defaultNamingContext".into()))?;
    let base_dn = config.base_dn.clone().unwrap_or_else(|| domain_dn.clone());

    // The domain object: SID, password and lockout policy, and its DACL (Unexpire Password).
    let domain = dir
        .read(
            &domain_dn,
            &[
                "objectSid",
                "minPwdAge",
                "maxPwdAge",
                "minPwdLength",
                "pwdProperties",
                "pwdHistoryLength",
                "lockoutThreshold",
                "lockoutDuration",
                "lockOutObservationWindow",
                "nTSecurityDescriptor",
            ],
            Some(SdFlags::DACL_ONLY),
        )
        .await?
        .ok_or_else(|| GatherError::Setup(format!("cannot read the domain object {domain_dn}")))?;
    let domain_sid = domain
        .sid("objectSid")
        .and_then(Result::ok)
        .ok_or_else(|| GatherError::Setup(format!("{domain_dn} has no readable objectSid")))?;
    let policy = DomainPolicy {
        min_pwd_age: domain.i64("minPwdAge"),
        max_pwd_age: domain.i64("maxPwdAge"),
        min_pwd_length: domain.i64("minPwdLength"),
        pwd_properties: domain.i64("pwdProperties"),
        pwd_history_length: domain.i64("pwdHistoryLength"),
        lockout_threshold: domain.i64("lockoutThreshold"),
        lockout_duration: domain.i64("lockoutDuration"),
        lockout_observation_window: domain.i64("lockOutObservationWindow"),
    };
    let domain_sd = sd_of(&domain);
    step("domain object");

    if dir.read(&base_dn, &["objectClass"], None).await?.is_none() {
        return Err(GatherError::Setup(format!(
            "ad.base_dn {base_dn} does not exist"
        )));
    }

    let netbios = match &dse.configuration_naming_context {
        Some(config_nc) => {
            let mut name = None;
            let filter = format!(
                "(&(objectClass=crossRef)(nCName={}))",
                escape_filter_value(&domain_dn)
            );
            dir.search_paged(
                &format!("CN=Partitions,{config_nc}"),
                Scope::OneLevel,
                &filter,
                &["nETBIOSName"],
                None,
                |e| {
                    name = e.str("nETBIOSName").map(str::to_string);
                    Ok(())
                },
            )
            .await?;
            name
        }
        None => None,
    };

    let connector = find_connector(dir, config, &domain_dn).await?;
    step("connector and its groups");

    let user_default = match &dse.schema_naming_context {
        Some(schema) => dir
            .read(
                &format!("CN=User,{schema}"),
                &["defaultSecurityDescriptor"],
                None,
            )
            .await?
            .and_then(|e| e.str("defaultSecurityDescriptor").map(str::to_string))
            .and_then(|sddl| SecurityDescriptor::from_sddl(&sddl, Some(&domain_sid)).ok())
            .and_then(|sd| sd.dacl),
        None => None,
    };

    step("schema defaults");
    // OUs in scope, with their DACLs.
    let mut containers = Vec::new();
    dir.search_paged(
        &base_dn,
        Scope::Subtree,
        "(objectClass=organizationalUnit)",
        &["objectClass", "nTSecurityDescriptor"],
        Some(SdFlags::DACL_ONLY),
        |e| {
            containers.push(Container {
                sd: sd_of(&e),
                dn: e.dn,
            });
            Ok(())
        },
    )
    .await?;
    step("OUs");

    // The protected groups and the groups nested in them (a user is protected when its memberOf
    // names one).
    let protected_groups = protected_groups(dir, &domain_dn, &domain_sid).await?;
    step("protected groups");

    // Every user in scope, judged as it arrives.
    let mut users = UserScan::default();
    let mut protected = Vec::new();
    let mut parents: HashSet<String> = HashSet::new();
    let principal = connector.principal.clone();
    dir.search_paged(
        &base_dn,
        Scope::Subtree,
        USER_FILTER,
        &[
            "sAMAccountName",
            "adminCount",
            "memberOf",
            "nTSecurityDescriptor",
        ],
        Some(SdFlags::DACL_ONLY),
        |e| {
            users.users += 1;
            if let Some(p) = parent_dn(&e.dn) {
                parents.insert(p.to_string());
            }
            let sd = match sd_of(&e) {
                Ok(sd) => sd,
                Err(why) => {
                    users.unreadable_count += 1;
                    if users.unreadable.len() < MAX_LISTED {
                        users.unreadable.push(format!("{}: {why}", e.dn));
                    }
                    return Ok(());
                }
            };
            let decisions: Vec<Decision> = USER_RIGHTS
                .iter()
                .map(|r| rights::check_object(&principal, &sd, r.right))
                .collect();
            let admin_count = e.i64("adminCount") == Some(1);
            let in_group = e
                .strs("memberOf")
                .iter()
                .any(|g| protected_groups.contains(&g.to_ascii_lowercase()));
            if admin_count || in_group || sd.dacl_protected() {
                let mut held = [false; 4];
                for (h, d) in held.iter_mut().zip(&decisions) {
                    *h = d.is_granted();
                }
                protected.push(ProtectedAccount {
                    dn: e.dn.clone(),
                    sam: e.str("sAMAccountName").unwrap_or_default().to_string(),
                    admin_count,
                    dacl_protected: sd.dacl_protected(),
                    in_protected_group: in_group,
                    rights: held,
                });
                return Ok(());
            }
            for (f, d) in users.failures.iter_mut().zip(decisions) {
                if !d.is_granted() {
                    f.count += 1;
                    if f.listed.len() < MAX_LISTED {
                        f.listed.push(UserFailure {
                            dn: e.dn.clone(),
                            decision: d,
                        });
                    }
                }
            }
            Ok(())
        },
    )
    .await?;
    step("users");

    // Containers that hold users but are not OUs (CN=Users, the domain root...).
    let known: HashSet<String> = containers
        .iter()
        .map(|c| c.dn.to_ascii_lowercase())
        .collect();
    let mut extra: Vec<String> = parents
        .into_iter()
        .filter(|p| !known.contains(&p.to_ascii_lowercase()))
        .collect();
    extra.sort();
    for dn in extra {
        let sd = match dir
            .read(&dn, &["nTSecurityDescriptor"], Some(SdFlags::DACL_ONLY))
            .await?
        {
            Some(e) => sd_of(&e),
            None => Err("not found".into()),
        };
        containers.push(Container { dn, sd });
    }
    containers.sort_by_key(|c| dn_depth(&c.dn));

    Ok(Snapshot {
        url: dir.url().to_string(),
        domain_dn,
        base_dn,
        netbios,
        domain_sid,
        policy,
        domain_sd,
        connector,
        containers,
        user_default,
        users,
        protected,
        certificate,
        trust: config.ldap.trust.clone(),
        now,
    })
}

fn sd_of(e: &Entry) -> Result<SecurityDescriptor, String> {
    match e.security_descriptor() {
        Some(Ok(sd)) => Ok(sd),
        Some(Err(err)) => Err(format!("unparsable security descriptor: {err}")),
        None => Err("security descriptor not readable by the bind account".into()),
    }
}

async fn find_connector(
    dir: &mut Directory,
    config: &CheckConfig,
    domain_dn: &str,
) -> Result<Connector, GatherError> {
    let (filter, configured) = match &config.connector_account {
        Some(sam) => (
            format!(
                "(&(objectClass=user)(sAMAccountName={}))",
                escape_filter_value(sam)
            ),
            true,
        ),
        // Entra Connect's AD DS connector account is MSOL_<hex> when created by express
        // settings; Entra Cloud Sync uses the provAgentgMSA gMSA.
        None => (
            "(&(objectClass=user)(|(sAMAccountName=MSOL_*)(sAMAccountName=provAgentgMSA*)))".into(),
            false,
        ),
    };
    let mut found: Vec<(String, String, Option<Sid>)> = Vec::new();
    dir.search_paged(
        domain_dn,
        Scope::Subtree,
        &filter,
        &["sAMAccountName", "objectSid"],
        None,
        |e| {
            found.push((
                e.str("sAMAccountName").unwrap_or_default().to_string(),
                e.dn.clone(),
                e.sid("objectSid").and_then(Result::ok),
            ));
            Ok(())
        },
    )
    .await?;
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut it = found.into_iter();
    let Some((sam, dn, sid)) = it.next() else {
        return Err(GatherError::Setup(match &config.connector_account {
            Some(sam) => format!("connector account {sam:?} not found in {domain_dn}"),
            None => format!(
                "no sync connector account found in {domain_dn} (looked for MSOL_* and \
                 provAgentgMSA*); set ad.connector_account"
            ),
        }));
    };
    let others = it.map(|(s, _, _)| s).collect();
    let sid = sid.ok_or_else(|| GatherError::Setup(format!("{dn} has no readable objectSid")))?;
    let groups = dir.token_groups(&dn).await?;
    let group_count = groups.len();
    Ok(Connector {
        principal: Principal::from_token_groups(sid.clone(), groups),
        sam,
        dn,
        sid,
        group_count,
        configured,
        others,
    })
}

/// The protected groups (AdminSDHolder's list) and every group nested in them, as lower-case DNs.
/// A user is then protected when its `memberOf` names one of them. The nesting is followed level
/// by level with plain (indexed) `memberOf` equality on groups: the DC's in-chain matching rule
/// costs a transitive evaluation per object, which on Samba was the biggest fixed cost of the
/// check (issue 5 benchmark), and asked once per user it took seconds per thousand users.
async fn protected_groups(
    dir: &mut Directory,
    domain_dn: &str,
    domain_sid: &Sid,
) -> Result<HashSet<String>, GatherError> {
    let mut sids: Vec<Sid> = PROTECTED_DOMAIN_RIDS
        .iter()
        .filter_map(|rid| domain_sid.with_rid(*rid))
        .collect();
    sids.extend(PROTECTED_BUILTIN.iter().filter_map(|s| s.parse().ok()));
    let filter: String = sids
        .iter()
        .map(|s| format!("(objectSid={})", s.to_ldap_filter_value()))
        .collect();
    let mut groups: HashSet<String> = HashSet::new();
    let mut frontier: Vec<String> = Vec::new();
    dir.search_paged(
        domain_dn,
        Scope::Subtree,
        &format!("(|{filter})"),
        &["cn"],
        None,
        |e| {
            frontier.push(e.dn.clone());
            groups.insert(e.dn.to_ascii_lowercase());
            Ok(())
        },
    )
    .await?;
    // Nesting deeper than this is a loop AD would not allow anyway; stop rather than spin.
    for _level in 0..32 {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for chunk in frontier.chunks(50) {
            let any: String = chunk
                .iter()
                .map(|g| format!("(memberOf={})", escape_filter_value(g)))
                .collect();
            dir.search_paged(
                domain_dn,
                Scope::Subtree,
                &format!("(&(objectClass=group)(|{any}))"),
                &["cn"],
                None,
                |e| {
                    if groups.insert(e.dn.to_ascii_lowercase()) {
                        next.push(e.dn);
                    }
                    Ok(())
                },
            )
            .await?;
        }
        frontier = next;
    }
    Ok(groups)
}

/// The parent of a DN, honouring `\,` escapes.
pub fn parent_dn(dn: &str) -> Option<&str> {
    let bytes = dn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => return dn.get(i + 1..).map(str::trim_start),
            _ => i += 1,
        }
    }
    None
}

/// Number of RDNs (for sorting parents before children).
pub fn dn_depth(dn: &str) -> usize {
    let mut n = 1;
    let mut cur = dn;
    while let Some(p) = parent_dn(cur) {
        n += 1;
        cur = p;
    }
    n
}

/// Whether `dn` is `ancestor` or below it (case-insensitive).
pub fn is_within(dn: &str, ancestor: &str) -> bool {
    let (d, a) = (dn.to_ascii_lowercase(), ancestor.to_ascii_lowercase());
    d == a || d.ends_with(&format!(",{a}"))
}

/// Index containers by lower-case DN.
pub fn by_dn(containers: &[Container]) -> HashMap<String, &Container> {
    containers
        .iter()
        .map(|c| (c.dn.to_ascii_lowercase(), c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_helpers() {
        assert_eq!(
            parent_dn("CN=Smith\\, John,OU=X,DC=lab"),
            Some("OU=X,DC=lab")
        );
        assert_eq!(parent_dn("DC=lab"), None);
        assert_eq!(dn_depth("CN=a,OU=X,DC=lab,DC=test"), 4);
        assert!(is_within("OU=Y,OU=X,DC=lab", "ou=x,dc=lab"));
        assert!(!is_within("OU=XY,DC=lab", "OU=Y,DC=lab"));
    }
}
