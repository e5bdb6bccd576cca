//! `--apply-fix`: adds the missing ACEs with administrator credentials, as explicit ACEs in
//! canonical position (after the explicit denies, before the allows). The DC re-inherits below.

use latchkey_ad::ldap::{Directory, LdapError, LdapSettings, SdFlags};
use latchkey_ad::{Acl, Control, SecurityDescriptor, ace_to_sddl};

use crate::checks::Report;

/// Applies every grant of the report; returns one line per change.
pub async fn apply(report: &Report, admin: &LdapSettings) -> Result<Vec<String>, LdapError> {
    let mut dir = Directory::connect(admin).await?;
    let mut done = Vec::new();
    for check in &report.checks {
        for g in &check.grants {
            let Some(ace) = &g.ace else { continue };
            let entry = dir
                .read(
                    &g.object_dn,
                    &["nTSecurityDescriptor"],
                    Some(SdFlags::DACL_ONLY),
                )
                .await?
                .ok_or_else(|| LdapError::Protocol {
                    op: format!("read {}", g.object_dn),
                    reason: "object not found".into(),
                })?;
            let sd = entry
                .security_descriptor()
                .ok_or_else(|| LdapError::Protocol {
                    op: format!("read {}", g.object_dn),
                    reason: "no security descriptor returned".into(),
                })?
                .map_err(|e| LdapError::Protocol {
                    op: format!("parse {}", g.object_dn),
                    reason: e.to_string(),
                })?;
            let current = sd.dacl.clone().unwrap_or_else(|| Acl::new(Vec::new()));
            let mut explicit: Vec<_> = current
                .aces
                .iter()
                .filter(|a| !a.is_inherited())
                .cloned()
                .collect();
            if explicit.contains(ace) {
                done.push(format!("{}: ({}) already present", g.object_dn, g.ace_sddl));
                continue;
            }
            let pos = explicit
                .iter()
                .rposition(|a| a.is_deny())
                .map_or(0, |i| i + 1);
            explicit.insert(pos, ace.clone());
            let keep = sd.control.0 & (Control::DACL_PROTECTED | Control::DACL_AUTO_INHERITED);
            let new_sd = SecurityDescriptor {
                revision: 1,
                control: Control(Control::SELF_RELATIVE | Control::DACL_PRESENT | keep),
                owner: None,
                group: None,
                sacl: None,
                dacl: Some(Acl {
                    revision: current.revision.max(latchkey_ad::ACL_REVISION_DS),
                    aces: explicit,
                }),
            };
            let bytes = new_sd.to_bytes().map_err(|e| LdapError::Protocol {
                op: format!("encode {}", g.object_dn),
                reason: e.to_string(),
            })?;
            dir.write_security_descriptor(&g.object_dn, bytes, SdFlags::DACL_ONLY)
                .await?;
            done.push(format!("{}: added ({})", g.object_dn, ace_to_sddl(ace)));
        }
    }
    dir.unbind().await;
    Ok(done)
}
