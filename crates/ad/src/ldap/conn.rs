//! The connection: connect + bind, then searches and reads, each bounded by the timeout.

use std::collections::HashSet;
use std::time::Duration;

use latchkey_types::Secret;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{LdapConnAsync, LdapConnSettings, Mod, SearchEntry};

use super::entry::Entry;
use super::error::LdapError;
use super::tls::{TrustSource, client_config};
use crate::sid::Sid;

/// How to reach and authenticate to a DC.
#[derive(Clone, Debug)]
pub struct LdapSettings {
    /// `ldaps://host[:port]`, or `ldap://host[:port]` (then StartTLS is mandatory).
    pub url: String,
    pub bind_dn: String,
    pub password: Secret<String>,
    pub trust: TrustSource,
    /// Bound on connecting and on every single operation (each page of a search included).
    pub timeout: Duration,
    pub page_size: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Base,
    OneLevel,
    Subtree,
}

impl From<Scope> for ldap3::Scope {
    fn from(s: Scope) -> ldap3::Scope {
        match s {
            Scope::Base => ldap3::Scope::Base,
            Scope::OneLevel => ldap3::Scope::OneLevel,
            Scope::Subtree => ldap3::Scope::Subtree,
        }
    }
}

/// Which parts of `nTSecurityDescriptor` to ask for (LDAP_SERVER_SD_FLAGS_OID). Without the
/// control AD asks for all four, and a non-admin, lacking the SACL privilege, then gets no
/// attribute at all; so the control is always sent when the descriptor is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdFlags(pub u8);

impl SdFlags {
    pub const OWNER: u8 = 1;
    pub const GROUP: u8 = 2;
    pub const DACL: u8 = 4;
    pub const SACL: u8 = 8;
    pub const DACL_ONLY: SdFlags = SdFlags(Self::DACL);
    pub const OWNER_GROUP_DACL: SdFlags = SdFlags(Self::OWNER | Self::GROUP | Self::DACL);

    const OID: &'static str = "1.2.840.113556.1.4.801";

    fn control(self) -> RawControl {
        // BER: SEQUENCE { INTEGER flags } (flags < 0x80, so one content byte).
        RawControl {
            ctype: Self::OID.to_string(),
            crit: true,
            val: Some(vec![0x30, 0x03, 0x02, 0x01, self.0 & 0x0f]),
        }
    }
}

/// The rootDSE facts the gateway uses.
#[derive(Clone, Debug, Default)]
pub struct RootDse {
    pub default_naming_context: Option<String>,
    pub configuration_naming_context: Option<String>,
    pub schema_naming_context: Option<String>,
    pub dns_host_name: Option<String>,
    pub supported_controls: Vec<String>,
}

/// An authenticated connection to one DC.
pub struct Directory {
    ldap: ldap3::Ldap,
    timeout: Duration,
    page_size: i32,
    url: String,
    peer_certificate: Option<Vec<u8>>,
}

impl Directory {
    /// Connects (TLS), binds, and keeps the server certificate for the report.
    pub async fn connect(s: &LdapSettings) -> Result<Directory, LdapError> {
        let lower = s.url.to_ascii_lowercase();
        let starttls = if lower.starts_with("ldaps://") {
            false
        } else if lower.starts_with("ldap://") {
            true
        } else {
            return Err(LdapError::Config(format!(
                "url {:?} must start with ldaps:// or ldap:// (StartTLS)",
                s.url
            )));
        };
        if s.bind_dn.is_empty() {
            return Err(LdapError::Config("bind_dn is empty".into()));
        }
        let mut cs = LdapConnSettings::new()
            .set_conn_timeout(s.timeout)
            .set_starttls(starttls);
        cs = match client_config(&s.trust)? {
            Some(config) => cs.set_config(config),
            None => {
                tracing::warn!(url = %s.url, "TLS certificate verification is DISABLED (insecure mode)");
                cs.set_no_tls_verify(true)
            }
        };
        let connect_err = |reason: String| LdapError::Connect {
            url: s.url.clone(),
            reason,
        };
        let (conn, mut ldap) =
            tokio::time::timeout(s.timeout, LdapConnAsync::with_settings(cs, &s.url))
                .await
                .map_err(|_| connect_err(format!("no answer within {} s", s.timeout.as_secs())))?
                .map_err(|e| connect_err(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!("LDAP connection closed: {e}");
            }
        });
        let bind = ldap
            .with_timeout(s.timeout)
            .simple_bind(&s.bind_dn, s.password.expose())
            .await
            .map_err(|e| LdapError::Bind {
                bind_dn: s.bind_dn.clone(),
                reason: e.to_string(),
            })?;
        if bind.rc != 0 {
            return Err(LdapError::Bind {
                bind_dn: s.bind_dn.clone(),
                reason: format!(
                    "result {}: {}",
                    bind.rc,
                    super::explain_ad_error(&bind.text)
                ),
            });
        }
        let peer_certificate = ldap.get_peer_certificate().await.ok().flatten();
        Ok(Directory {
            ldap,
            timeout: s.timeout,
            page_size: s.page_size.max(1),
            url: s.url.clone(),
            peer_certificate,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The DC's leaf certificate (DER), as presented in the TLS handshake.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        self.peer_certificate.as_deref()
    }

    pub async fn root_dse(&mut self) -> Result<RootDse, LdapError> {
        let e = self
            .read(
                "",
                &[
                    "defaultNamingContext",
                    "configurationNamingContext",
                    "schemaNamingContext",
                    "dnsHostName",
                    "supportedControl",
                ],
                None,
            )
            .await?
            .ok_or_else(|| LdapError::Protocol {
                op: "read rootDSE".into(),
                reason: "no entry".into(),
            })?;
        Ok(RootDse {
            default_naming_context: e.str("defaultNamingContext").map(str::to_string),
            configuration_naming_context: e.str("configurationNamingContext").map(str::to_string),
            schema_naming_context: e.str("schemaNamingContext").map(str::to_string),
            dns_host_name: e.str("dnsHostName").map(str::to_string),
            supported_controls: e
                .strs("supportedControl")
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
    }

    /// Reads one object (base search); `None` when it does not exist.
    pub async fn read(
        &mut self,
        dn: &str,
        attrs: &[&str],
        sd: Option<SdFlags>,
    ) -> Result<Option<Entry>, LdapError> {
        let op = format!("read {dn:?}");
        if let Some(flags) = sd {
            self.ldap.with_controls(flags.control());
        }
        let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_string()).collect();
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .search(dn, ldap3::Scope::Base, "(objectClass=*)", attrs)
            .await
            .map_err(|e| self.timeout_or(&op, e))?;
        let (entries, result) = (res.0, res.1);
        match result.rc {
            0 => Ok(entries
                .into_iter()
                .next()
                .map(|e| Entry::from_ldap3(SearchEntry::construct(e)))),
            32 => Ok(None), // noSuchObject
            rc => Err(LdapError::Operation {
                op,
                code: rc,
                text: super::explain_ad_error(&result.text),
            }),
        }
    }

    /// Paged search; `each` sees entries one at a time, so memory does not grow with the
    /// result size. Returns the number of entries.
    pub async fn search_paged<F>(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        sd: Option<SdFlags>,
        mut each: F,
    ) -> Result<usize, LdapError>
    where
        F: FnMut(Entry) -> Result<(), LdapError>,
    {
        let op = format!("search {base:?} {filter}");
        if let Some(flags) = sd {
            self.ldap.with_controls(flags.control());
        }
        let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_string()).collect();
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.page_size)),
        ];
        let timeout = self.timeout;
        let mut stream = self
            .ldap
            .with_timeout(timeout)
            .streaming_search_with(adapters, base, scope.into(), filter, attrs)
            .await
            .map_err(|e| self.timeout_or(&op, e))?;
        let mut n = 0;
        loop {
            match stream.next().await {
                Ok(Some(re)) => {
                    n += 1;
                    each(Entry::from_ldap3(SearchEntry::construct(re)))?;
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = stream.finish().await;
                    return Err(self.timeout_or(&op, e));
                }
            }
        }
        let result = stream.finish().await;
        if result.rc != 0 {
            return Err(LdapError::Operation {
                op,
                code: result.rc,
                text: super::explain_ad_error(&result.text),
            });
        }
        Ok(n)
    }

    /// The transitive group SIDs of an account (`tokenGroups`, computed by the DC, so nested
    /// groups and the primary group are included).
    pub async fn token_groups(&mut self, dn: &str) -> Result<Vec<Sid>, LdapError> {
        let e = self
            .read(dn, &["tokenGroups"], None)
            .await?
            .ok_or_else(|| LdapError::Protocol {
                op: format!("read tokenGroups of {dn:?}"),
                reason: "object not found".into(),
            })?;
        e.values("tokenGroups")
            .iter()
            .map(|v| {
                Sid::from_bytes(v).map_err(|err| LdapError::Protocol {
                    op: format!("read tokenGroups of {dn:?}"),
                    reason: err.to_string(),
                })
            })
            .collect()
    }

    /// Replaces parts of an object's security descriptor (those named by `sd`, e.g. the DACL
    /// only); the DC recomputes inheritance below it.
    pub async fn write_security_descriptor(
        &mut self,
        dn: &str,
        bytes: Vec<u8>,
        sd: SdFlags,
    ) -> Result<(), LdapError> {
        let op = format!("write nTSecurityDescriptor of {dn:?}");
        self.ldap.with_controls(sd.control());
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .modify(
                dn,
                vec![Mod::Replace(
                    b"nTSecurityDescriptor".to_vec(),
                    HashSet::from([bytes]),
                )],
            )
            .await
            .map_err(|e| self.timeout_or(&op, e))?;
        if res.rc != 0 {
            return Err(LdapError::Operation {
                op,
                code: res.rc,
                text: super::explain_ad_error(&res.text),
            });
        }
        Ok(())
    }

    /// Replaces one attribute's values (text).
    pub async fn replace(
        &mut self,
        dn: &str,
        attr: &str,
        values: &[&str],
    ) -> Result<(), LdapError> {
        let op = format!("modify {attr} of {dn:?}");
        let vals: HashSet<Vec<u8>> = values.iter().map(|v| v.as_bytes().to_vec()).collect();
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .modify(dn, vec![Mod::Replace(attr.as_bytes().to_vec(), vals)])
            .await
            .map_err(|e| self.timeout_or(&op, e))?;
        if res.rc != 0 {
            return Err(LdapError::Operation {
                op,
                code: res.rc,
                text: super::explain_ad_error(&res.text),
            });
        }
        Ok(())
    }

    /// Replaces one attribute's values with binary values (e.g. a quoted UTF-16LE `unicodePwd`,
    /// which AD accepts only over an encrypted connection, as every connection here is).
    pub async fn replace_binary(
        &mut self,
        dn: &str,
        attr: &str,
        values: Vec<Vec<u8>>,
    ) -> Result<(), LdapError> {
        let op = format!("modify {attr} of {dn:?}");
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .modify(
                dn,
                vec![Mod::Replace(
                    attr.as_bytes().to_vec(),
                    values.into_iter().collect(),
                )],
            )
            .await
            .map_err(|e| self.timeout_or(&op, e))?;
        check_rc(op, res)
    }

    /// Adds an entry (values as bytes, e.g. a quoted UTF-16LE `unicodePwd`).
    pub async fn add(&mut self, dn: &str, attrs: &[(&str, Vec<Vec<u8>>)]) -> Result<(), LdapError> {
        let op = format!("add {dn:?}");
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = attrs
            .iter()
            .map(|(k, vs)| (k.as_bytes().to_vec(), vs.iter().cloned().collect()))
            .collect();
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .add(dn, attrs)
            .await
            .map_err(|e| self.timeout_or(&op, e))?;
        check_rc(op, res)
    }

    /// Adds (`add = true`) or deletes values of one attribute.
    pub async fn modify_values(
        &mut self,
        dn: &str,
        add: bool,
        attr: &str,
        values: &[&[u8]],
    ) -> Result<(), LdapError> {
        let op = format!("modify {attr} of {dn:?}");
        let vals: HashSet<Vec<u8>> = values.iter().map(|v| v.to_vec()).collect();
        let m = if add {
            Mod::Add(attr.as_bytes().to_vec(), vals)
        } else {
            Mod::Delete(attr.as_bytes().to_vec(), vals)
        };
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .modify(dn, vec![m])
            .await
            .map_err(|e| self.timeout_or(&op, e))?;
        check_rc(op, res)
    }

    /// Deletes one entry.
    pub async fn delete(&mut self, dn: &str) -> Result<(), LdapError> {
        let op = format!("delete {dn:?}");
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .delete(dn)
            .await
            .map_err(|e| self.timeout_or(&op, e))?;
        check_rc(op, res)
    }

    pub async fn unbind(mut self) {
        // The connection closes either way; a failed unbind only means the server went first.
        if let Err(e) = self.ldap.with_timeout(self.timeout).unbind().await {
            tracing::debug!(error = %e, "LDAP unbind failed");
        }
    }

    fn timeout_or(&self, op: &str, e: ldap3::LdapError) -> LdapError {
        match e {
            ldap3::LdapError::Timeout { .. } => LdapError::Timeout {
                op: op.to_string(),
                secs: self.timeout.as_secs(),
            },
            other => LdapError::from_ldap3(op, other),
        }
    }
}

fn check_rc(op: String, res: ldap3::LdapResult) -> Result<(), LdapError> {
    if res.rc != 0 {
        return Err(LdapError::Operation {
            op,
            code: res.rc,
            text: super::explain_ad_error(&res.text),
        });
    }
    Ok(())
}
