//! Protected accounts: adminCount=1, members of AdminSDHolder-protected groups, or a protected
//! DACL. SDProp rewrites their DACLs from AdminSDHolder every hour (on Windows), so delegated
//! rights do not reach them and writeback cannot reset their passwords.

use super::gather::{MAX_LISTED, Snapshot};
use super::rights::USER_RIGHTS;
use super::{Check, Status};

pub fn protected_accounts(s: &Snapshot) -> Check {
    let mut check = Check::new(
        "protected_accounts",
        "Protected accounts (AdminSDHolder) writeback cannot reset",
        Status::Pass,
    );
    if s.protected.is_empty() {
        check
            .evidence
            .push(format!("no protected accounts in {}", s.base_dn));
        return check;
    }
    check.status = Status::Warn;
    for p in s.protected.iter().take(MAX_LISTED) {
        let mut why = Vec::new();
        if p.admin_count {
            why.push("adminCount=1");
        }
        if p.in_protected_group {
            why.push("member of a protected group");
        }
        if p.dacl_protected {
            why.push("protected DACL");
        }
        let missing: Vec<&str> = USER_RIGHTS
            .iter()
            .zip(p.rights)
            .filter(|(_, held)| !held)
            .map(|(r, _)| r.id)
            .collect();
        let state = if missing.is_empty() {
            "the connector holds the rights today, but on Windows SDProp removes them within the hour"
                .to_string()
        } else {
            format!("the connector lacks: {}", missing.join(", "))
        };
        check
            .evidence
            .push(format!("{} ({}): {}; {state}", p.sam, p.dn, why.join(", ")));
    }
    if s.protected.len() > MAX_LISTED {
        check
            .evidence
            .push(format!("... and {} more", s.protected.len() - MAX_LISTED));
    }
    check.fix = Some(format!(
        "expected: password writeback cannot reset or unlock these {} accounts, so their users \
         must use another way (Microsoft recommends keeping it so). To include them anyway, grant \
         the same rights on CN=AdminSDHolder,CN=System,{} — SDProp then copies them to every \
         protected account",
        s.protected.len(),
        s.domain_dn
    ));
    check
}
