//! `--fix-script`: PowerShell that grants exactly the missing rights with dsacls, one commented
//! line per ACE.

use crate::checks::{Report, Status};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let connector = report
        .connector
        .as_ref()
        .map(|c| format!("{} ({})", c.sam_account_name, c.sid))
        .unwrap_or_default();
    out.push_str(&format!(
        "# latchkey-gateway fix script for {} (scope {}), connector account {connector}\n",
        report.domain, report.base_dn
    ));
    out.push_str(
        "# Review it, then run it in PowerShell as a Domain Admin on a domain-joined machine with the\n\
         # AD DS tools (dsacls). Each command adds exactly one ACE for one missing right.\n",
    );
    out.push_str("$ErrorActionPreference = 'Stop'\n");
    let mut n = 0;
    for c in &report.checks {
        for g in &c.grants {
            n += 1;
            out.push_str(&format!(
                "\n# {} [{}]: ACE ({}) on {}\n",
                g.comment, c.id, g.ace_sddl, g.object_dn
            ));
            out.push_str(&g.dsacls);
            out.push('\n');
        }
    }
    if n == 0 {
        out.push_str("\n# Nothing to grant: every right checked is in place.\n");
    }
    // What an ACE cannot fix is listed as comments only: the script changes ACLs, nothing else.
    for c in &report.checks {
        if let (Status::Fail, true, Some(fix)) = (c.status, c.grants.is_empty(), &c.fix) {
            out.push_str(&format!("\n# NOT in this script ({}): {fix}\n", c.id));
        }
    }
    out
}
