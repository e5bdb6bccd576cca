//! The four rights on user objects (Reset Password, Change Password, write lockoutTime, write
//! pwdLastSet) in every container in scope and on every existing user, and Unexpire Password
//! on the domain root.

use std::collections::BTreeSet;

use latchkey_ad::guid::well_known::*;
use latchkey_ad::rights::{self, Decision, Right};
use latchkey_ad::{AccessMask, Ace, AceFlags, Guid, ace_to_sddl};

use super::gather::{Snapshot, by_dn, is_within, parent_dn};
use super::{Check, Grant, Status};

/// A writeback right on user objects.
pub struct UserRight {
    pub id: &'static str,
    pub title: &'static str,
    pub right: Right,
    /// dsacls' `PermissionBits;Object` part, e.g. `CA;Reset Password`.
    pub dsacls: &'static str,
}

pub const USER_RIGHTS: [UserRight; 4] = [
    UserRight {
        id: "reset_password",
        title: "Reset Password on user objects",
        right: Right::ControlAccess(RESET_PASSWORD),
        dsacls: "CA;Reset Password",
    },
    UserRight {
        id: "change_password",
        title: "Change Password on user objects",
        right: Right::ControlAccess(CHANGE_PASSWORD),
        dsacls: "CA;Change Password",
    },
    UserRight {
        id: "write_lockout_time",
        title: "Write lockoutTime on user objects",
        right: Right::WriteProperty {
            attribute: LOCKOUT_TIME,
            property_set: None,
        },
        dsacls: "WP;lockoutTime",
    },
    UserRight {
        id: "write_pwd_last_set",
        title: "Write pwdLastSet on user objects",
        right: Right::WriteProperty {
            attribute: PWD_LAST_SET,
            // pwdLastSet belongs to the User-Account-Restrictions property set.
            property_set: Some(USER_ACCOUNT_RESTRICTIONS),
        },
        dsacls: "WP;pwdLastSet",
    },
];

fn right_parts(right: Right) -> (u32, Guid) {
    match right {
        Right::ControlAccess(g) => (AccessMask::CONTROL_ACCESS, g),
        Right::WriteProperty { attribute, .. } => (AccessMask::WRITE_PROPERTY, attribute),
    }
}

/// PowerShell single-quoted string.
pub fn ps_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Why a decision is not a grant, in words.
fn explain(d: &Decision) -> String {
    match d {
        Decision::Denied(e) => format!(
            "DENIED by ({}) — ACE #{} of {}, trustee {} (deny ACEs win over the grant; remove it or \
             take the connector out of that group)",
            ace_to_sddl(&e.ace.ace),
            e.ace.index,
            e.ace.source,
            e.matched
        ),
        Decision::NotGranted => "no ACE grants it to the connector or any of its groups".into(),
        Decision::Granted(e) => format!("granted by {e}"),
        Decision::NoDacl => "no DACL: everything is granted".into(),
    }
}

pub fn user_rights(s: &Snapshot) -> Vec<Check> {
    USER_RIGHTS
        .iter()
        .enumerate()
        .map(|(i, r)| user_right(s, i, r))
        .collect()
}

fn user_right(s: &Snapshot, index: usize, r: &UserRight) -> Check {
    let mut check = Check::new(r.id, r.title, Status::Pass);
    let principal = &s.connector.principal;
    let index_by_dn = by_dn(&s.containers);
    let mut granted_lines = Vec::new();
    let mut grant_points: BTreeSet<String> = BTreeSet::new();
    let mut failing_containers: Vec<String> = Vec::new();
    let mut denied = false;

    for c in &s.containers {
        let sd = match &c.sd {
            Ok(sd) => sd,
            Err(why) => {
                check
                    .evidence
                    .push(format!("{}: cannot evaluate: {why}", c.dn));
                failing_containers.push(c.dn.clone());
                continue;
            }
        };
        let Some(dacl) = &sd.dacl else {
            granted_lines.push(format!("{}: no DACL (everything granted)", c.dn));
            continue;
        };
        let aces = rights::future_child_aces(dacl, s.user_default.as_ref(), CLASS_USER);
        let d = rights::evaluate(principal, &aces, r.right);
        match &d {
            Decision::Granted(e) => granted_lines.push(format!(
                "{}: new user objects get it from ({}) — ACE #{} of {}",
                c.dn,
                ace_to_sddl(&e.ace.ace),
                e.ace.index,
                if e.ace.source == rights::AceSource::Container {
                    "this container's DACL, inherited".to_string()
                } else {
                    e.ace.source.to_string()
                }
            )),
            Decision::NoDacl => {}
            Decision::Denied(_) => {
                denied = true;
                failing_containers.push(c.dn.clone());
                check.evidence.push(format!(
                    "{}: user objects here do NOT get it: {}",
                    c.dn,
                    explain(&d)
                ));
            }
            Decision::NotGranted => {
                failing_containers.push(c.dn.clone());
                // Where inheritance stops: this container, or the nearest protected ancestor.
                let blocked_at = std::iter::successors(Some(c.dn.as_str()), |dn| parent_dn(dn))
                    .take_while(|dn| is_within(dn, &s.base_dn))
                    .find(|dn| {
                        index_by_dn
                            .get(&dn.to_ascii_lowercase())
                            .and_then(|c| c.sd.as_ref().ok())
                            .is_some_and(|sd| sd.dacl_protected())
                    });
                let why = match blocked_at {
                    Some(b) if b.eq_ignore_ascii_case(&c.dn) => format!(
                        "inheritance is BLOCKED on this container (protected DACL) and it grants \
                         nothing itself: {}",
                        explain(&d)
                    ),
                    Some(b) => format!(
                        "inheritance is BLOCKED at {b} (protected DACL), so grants above it do not \
                         reach here: {}",
                        explain(&d)
                    ),
                    None => explain(&d),
                };
                check
                    .evidence
                    .push(format!("{}: user objects here do NOT get it: {why}", c.dn));
                grant_points.insert(blocked_at.unwrap_or(&s.base_dn).to_string());
            }
        }
    }

    // Existing users (protected accounts are reported by their own check).
    let f = &s.users.failures[index];
    let in_failing_container = |dn: &str| {
        parent_dn(dn).is_some_and(|p| failing_containers.iter().any(|c| c.eq_ignore_ascii_case(p)))
    };
    let mut user_grants = Vec::new();
    for u in &f.listed {
        check.evidence.push(format!(
            "{}: existing user lacks it: {}",
            u.dn,
            explain(&u.decision)
        ));
        if matches!(u.decision, Decision::Denied(_)) {
            denied = true;
        } else if !in_failing_container(&u.dn) {
            user_grants.push(u.dn.clone());
        }
    }
    if f.count > f.listed.len() {
        check.evidence.push(format!(
            "... and {} more user objects lack it",
            f.count - f.listed.len()
        ));
    }

    let failed = !failing_containers.is_empty() || f.count > 0;
    if failed {
        check.status = Status::Fail;
    } else {
        let shown = granted_lines.len().min(10);
        check.evidence.extend(granted_lines.drain(..shown));
        if !granted_lines.is_empty() {
            check.evidence.push(format!(
                "... and {} more containers, all granted",
                granted_lines.len()
            ));
        }
    }
    check.evidence.push(format!(
        "checked {} containers and {} user objects in {} ({} protected accounts reported separately)",
        s.containers.len(),
        s.users.users,
        s.base_dn,
        s.protected.len()
    ));

    let who = s.account_name(&s.connector.sam);
    let (mask, guid) = right_parts(r.right);
    for point in &grant_points {
        let ace = Ace::new(
            true,
            AceFlags::CONTAINER_INHERIT | AceFlags::INHERIT_ONLY,
            mask,
            Some(guid),
            Some(CLASS_USER),
            s.connector.sid.clone(),
        );
        check.grants.push(Grant {
            object_dn: point.clone(),
            ace_sddl: ace_to_sddl(&ace),
            dsacls: format!(
                "dsacls {} /I:S /G {}",
                ps_quote(point),
                ps_quote(&format!("{who}:{};user", r.dsacls))
            ),
            comment: format!("{} for {who} on user objects in and below {point}", r.title),
            ace: Some(ace),
        });
    }
    for dn in user_grants {
        let ace = Ace::new(true, 0, mask, Some(guid), None, s.connector.sid.clone());
        check.grants.push(Grant {
            object_dn: dn.clone(),
            ace_sddl: ace_to_sddl(&ace),
            dsacls: format!(
                "dsacls {} /G {}",
                ps_quote(&dn),
                ps_quote(&format!("{who}:{}", r.dsacls))
            ),
            comment: format!("{} for {who} on this one user object", r.title),
            ace: Some(ace),
        });
    }
    if failed {
        let mut fix = Vec::new();
        if !check.grants.is_empty() {
            fix.push(format!(
                "grant {who} \"{}\" on descendant user objects (see --fix-script): {}",
                r.dsacls,
                check
                    .grants
                    .iter()
                    .map(|g| g.object_dn.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if denied {
            fix.push(
                "remove the deny ACE named above (Active Directory Users and Computers > object > \
                 Properties > Security > Advanced), or remove the connector from the denied group; \
                 no script does this for you"
                    .into(),
            );
        }
        check.fix = Some(fix.join(". "));
    }
    check
}

pub fn unexpire_password(s: &Snapshot) -> Check {
    let mut check = Check::new(
        "unexpire_password",
        "Unexpire Password on the domain root",
        Status::Pass,
    );
    let right = Right::ControlAccess(UNEXPIRE_PASSWORD);
    let d = match &s.domain_sd {
        Ok(sd) => rights::check_object(&s.connector.principal, sd, right),
        Err(why) => {
            check.status = Status::Fail;
            check
                .evidence
                .push(format!("{}: cannot evaluate: {why}", s.domain_dn));
            return check;
        }
    };
    check
        .evidence
        .push(format!("{}: {}", s.domain_dn, explain(&d)));
    if !d.is_granted() {
        check.status = Status::Fail;
        let who = s.account_name(&s.connector.sam);
        let ace = Ace::new(
            true,
            0,
            AccessMask::CONTROL_ACCESS,
            Some(UNEXPIRE_PASSWORD),
            None,
            s.connector.sid.clone(),
        );
        if !matches!(d, Decision::Denied(_)) {
            check.grants.push(Grant {
                object_dn: s.domain_dn.clone(),
                ace_sddl: ace_to_sddl(&ace),
                dsacls: format!(
                    "dsacls {} /G {}",
                    ps_quote(&s.domain_dn),
                    ps_quote(&format!("{who}:CA;Unexpire Password"))
                ),
                comment: format!("Unexpire Password for {who} on the domain root"),
                ace: Some(ace),
            });
        }
        check.fix = Some(format!(
            "grant {who} \"Unexpire Password\" on {} (see --fix-script){}",
            s.domain_dn,
            if matches!(d, Decision::Denied(_)) {
                "; first remove the deny ACE named above"
            } else {
                ""
            }
        ));
    }
    check
}
