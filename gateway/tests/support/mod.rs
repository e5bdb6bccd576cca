//! The lab connection, per-test OUs and accounts, ACE edits as Administrator, and running the
//! binary.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use latchkey_ad::ldap::{Directory, LdapSettings, SdFlags, TrustSource};
use latchkey_ad::{Ace, Acl, Control, SecurityDescriptor, Sid};
use latchkey_types::Secret;

pub const USER_PASSWORD: &str = "Us3r!Passw0rd-lk";
pub const USER_CLASS: &str = "bf967aba-0de6-11d0-a285-00aa003049e2";
pub const RESET: &str = "00299570-246d-11d0-a768-00aa006e0529";
pub const CHANGE: &str = "ab721a53-1e2f-11d0-9819-00aa0040529b";
pub const LOCKOUT_TIME: &str = "28630ebf-41d5-11d1-a9c1-0000f80367c1";
pub const PWD_LAST_SET: &str = "bf967a0a-0de6-11d0-a285-00aa003049e2";

pub struct Lab {
    pub url: String,
    pub ca_file: PathBuf,
    pub base_dn: String,
    pub realm: String,
    pub admin_dn: String,
    pub admin_password_file: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run tests/run (starts Samba), or start the lab with \
             `tests/samba/lab.sh install up seed delegate` and `eval \"$(tests/samba/lab.sh env)\"`"
        )
    })
}

impl Lab {
    pub fn from_env() -> Lab {
        let base_dn = var("LATCHKEY_TEST_BASE_DN");
        let realm = base_dn
            .split(',')
            .filter_map(|r| r.strip_prefix("DC="))
            .collect::<Vec<_>>()
            .join(".");
        Lab {
            url: var("LATCHKEY_TEST_LDAP_URL"),
            ca_file: var("LATCHKEY_TEST_CA_FILE").into(),
            base_dn,
            realm,
            admin_dn: var("LATCHKEY_TEST_ADMIN_DN"),
            admin_password_file: var("LATCHKEY_TEST_ADMIN_PASSWORD_FILE").into(),
        }
    }

    pub fn settings(&self, bind_dn: &str, password: &str) -> LdapSettings {
        LdapSettings {
            url: self.url.clone(),
            bind_dn: bind_dn.to_string(),
            password: Secret::new(password.to_string()),
            trust: TrustSource::CaFile(self.ca_file.clone()),
            timeout: Duration::from_secs(20),
            page_size: 100,
        }
    }

    pub async fn admin(&self) -> Directory {
        let pw = std::fs::read_to_string(&self.admin_password_file).unwrap();
        Directory::connect(&self.settings(&self.admin_dn, pw.trim_end()))
            .await
            .expect("admin bind to the lab")
    }
}

/// `"pw"` in UTF-16LE, as unicodePwd wants it.
pub fn unicode_pwd(pw: &str) -> Vec<u8> {
    format!("\"{pw}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn unique() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}{}",
        std::process::id() % 10_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// One test's world: an OU, a connector account and a scratch directory.
pub struct Scenario {
    pub lab: Lab,
    pub ou: String,
    pub connector: String,
    pub connector_sid: Sid,
    pub dir: PathBuf,
    pub admin: Directory,
}

impl Scenario {
    pub async fn new(tag: &str) -> Scenario {
        let lab = Lab::from_env();
        let mut admin = lab.admin().await;
        let id = unique();
        let ou = format!("OU=lk-{tag}-{id},{}", lab.base_dn);
        admin
            .add(
                &ou,
                &[("objectClass", vec![b"organizationalUnit".to_vec()])],
            )
            .await
            .unwrap();
        // sAMAccountName is limited to 20 characters.
        let connector: String = format!("MSOL_{}{id}", &tag[..tag.len().min(6)])
            .chars()
            .take(20)
            .collect();
        let connector_dn = format!("CN={connector},CN=Users,{}", lab.base_dn);
        add_user(&mut admin, &connector_dn, &connector).await;
        let sid = sid_of(&mut admin, &connector_dn).await;
        let dir = std::env::temp_dir().join(format!("latchkey-gw-test-{tag}-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        Scenario {
            lab,
            ou,
            connector,
            connector_sid: sid,
            dir,
            admin,
        }
    }

    pub async fn user(&mut self, cn: &str, parent: &str) -> String {
        let dn = format!("CN={cn},{parent}");
        let sam: String = format!("{cn}{}", unique()).chars().take(20).collect();
        add_user(&mut self.admin, &dn, &sam).await;
        dn
    }

    pub async fn ou(&mut self, name: &str, parent: &str) -> String {
        let dn = format!("OU={name},{parent}");
        self.admin
            .add(
                &dn,
                &[("objectClass", vec![b"organizationalUnit".to_vec()])],
            )
            .await
            .unwrap();
        dn
    }

    pub async fn group(&mut self, name: &str) -> (String, Sid) {
        let cn = format!("{name}{}", unique());
        let dn = format!("CN={cn},{}", self.ou);
        self.admin
            .add(
                &dn,
                &[
                    ("objectClass", vec![b"group".to_vec()]),
                    ("sAMAccountName", vec![cn.into_bytes()]),
                ],
            )
            .await
            .unwrap();
        let sid = sid_of(&mut self.admin, &dn).await;
        (dn, sid)
    }

    pub async fn add_member(&mut self, group_dn: &str, member_dn: &str) {
        self.admin
            .modify_values(group_dn, true, "member", &[member_dn.as_bytes()])
            .await
            .unwrap();
    }

    pub fn connector_dn(&self) -> String {
        format!("CN={},CN=Users,{}", self.connector, self.lab.base_dn)
    }

    /// The four writeback delegations (CIIO, inherited by user objects) for `trustee`.
    pub fn writeback_aces(trustee: &Sid, skip: &[&str]) -> Vec<String> {
        [
            (RESET, "CR"),
            (CHANGE, "CR"),
            (LOCKOUT_TIME, "WP"),
            (PWD_LAST_SET, "WP"),
        ]
        .iter()
        .filter(|(g, _)| !skip.contains(g))
        .map(|(g, m)| format!("(OA;CIIO;{m};{g};{USER_CLASS};{trustee})"))
        .collect()
    }

    /// Adds explicit ACEs to an object's DACL (denies first, as canonical order wants).
    pub async fn add_aces(&mut self, dn: &str, aces: &[String]) {
        let new: Vec<Ace> = aces
            .iter()
            .map(|a| Ace::from_sddl(a, None).unwrap())
            .collect();
        self.rewrite_dacl(dn, |sd| {
            let mut explicit: Vec<Ace> = sd.dacl.as_ref().map_or(vec![], |d| {
                d.aces
                    .iter()
                    .filter(|a| !a.is_inherited())
                    .cloned()
                    .collect()
            });
            for ace in new {
                let pos = if ace.is_deny() {
                    0
                } else {
                    explicit
                        .iter()
                        .rposition(|a| a.is_deny())
                        .map_or(0, |i| i + 1)
                };
                explicit.insert(pos, ace);
            }
            (sd.control.0, explicit)
        })
        .await;
    }

    /// Blocks inheritance on an object (protected DACL, inherited ACEs removed), like
    /// unticking "Include inheritable permissions" and choosing "Remove".
    pub async fn block_inheritance(&mut self, dn: &str) {
        self.rewrite_dacl(dn, |sd| {
            let explicit = sd.dacl.as_ref().map_or(vec![], |d| {
                d.aces
                    .iter()
                    .filter(|a| !a.is_inherited())
                    .cloned()
                    .collect()
            });
            (sd.control.0 | Control::DACL_PROTECTED, explicit)
        })
        .await;
    }

    /// Emulates SDProp on a user: protected DACL with AdminSDHolder-like ACEs, adminCount=1.
    pub async fn protect(&mut self, dn: &str) {
        let sddl = "D:P(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;BA)(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)";
        let sd = SecurityDescriptor::from_sddl(sddl, None).unwrap();
        self.admin
            .write_security_descriptor(dn, sd.to_bytes().unwrap(), SdFlags::DACL_ONLY)
            .await
            .unwrap();
        self.admin.replace(dn, "adminCount", &["1"]).await.unwrap();
    }

    async fn rewrite_dacl(
        &mut self,
        dn: &str,
        f: impl FnOnce(&SecurityDescriptor) -> (u16, Vec<Ace>),
    ) {
        let e = self
            .admin
            .read(dn, &["nTSecurityDescriptor"], Some(SdFlags::DACL_ONLY))
            .await
            .unwrap()
            .unwrap();
        let sd = e.security_descriptor().unwrap().unwrap();
        let (control, aces) = f(&sd);
        let new = SecurityDescriptor {
            revision: 1,
            control: Control(control | Control::DACL_PRESENT | Control::SELF_RELATIVE),
            owner: None,
            group: None,
            sacl: None,
            dacl: Some(Acl::new(aces)),
        };
        self.admin
            .write_security_descriptor(dn, new.to_bytes().unwrap(), SdFlags::DACL_ONLY)
            .await
            .unwrap();
    }

    /// Writes the gateway configuration: bind as the connector itself, scope = this OU.
    pub fn config(&self) -> PathBuf {
        let pw = self.dir.join("connector.pw");
        std::fs::write(&pw, USER_PASSWORD).unwrap();
        let path = self.dir.join("gateway.toml");
        std::fs::write(
            &path,
            format!(
                "[ad]\nurl = \"{}\"\nbind_dn = \"{}@{}\"\npassword_file = \"connector.pw\"\n\
                 ca_file = \"{}\"\nbase_dn = \"{}\"\nconnector_account = \"{}\"\n",
                self.lab.url,
                self.connector,
                self.lab.realm,
                self.lab.ca_file.display(),
                self.ou,
                self.connector
            ),
        )
        .unwrap();
        path
    }

    /// Runs `latchkey-gateway check --config ... --json [extra]`; returns (exit code, JSON).
    /// Exit code 2 ("could not check") fails the test with the tool's message.
    pub fn check_json(&self, extra: &[&str]) -> (i32, serde_json::Value) {
        let (code, out, err) = self.check_raw(&[&["--json"], extra].concat());
        assert_ne!(code, 2, "could not check: {out}\n{err}");
        let json =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
        (code, json)
    }

    /// Runs the binary; returns (exit code, stdout, stderr).
    pub fn check_raw(&self, extra: &[&str]) -> (i32, String, String) {
        let config = self.config();
        let out = Command::new(env!("CARGO_BIN_EXE_latchkey-gateway"))
            .arg("check")
            .arg("--config")
            .arg(&config)
            .args(extra)
            .env_remove(latchkey_gateway::config::PASSWORD_ENV)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }
}

async fn add_user(admin: &mut Directory, dn: &str, sam: &str) {
    admin
        .add(
            dn,
            &[
                ("objectClass", vec![b"user".to_vec()]),
                ("sAMAccountName", vec![sam.as_bytes().to_vec()]),
                ("unicodePwd", vec![unicode_pwd(USER_PASSWORD)]),
                ("userAccountControl", vec![b"512".to_vec()]),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

async fn sid_of(admin: &mut Directory, dn: &str) -> Sid {
    admin
        .read(dn, &["objectSid"], None)
        .await
        .unwrap()
        .unwrap()
        .sid("objectSid")
        .unwrap()
        .unwrap()
}

/// The check with this id from the JSON report.
pub fn check<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

pub fn status<'a>(report: &'a serde_json::Value, id: &str) -> &'a str {
    check(report, id)["status"].as_str().unwrap()
}

pub fn evidence(report: &serde_json::Value, id: &str) -> String {
    check(report, id)["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
