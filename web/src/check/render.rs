//! The human-readable form of a connection report (`latchkey check` without `--json`).

use super::Report;

/// The human-readable table.
pub fn render(report: &Report) -> String {
    use crate::render::Lines as _;
    let mut out = String::new();
    out.line(format_args!("Tenant      {}", report.tenant));
    out.line(format_args!(
        "App         {} ({})",
        report.client_id, report.credential
    ));
    match &report.token {
        Err(e) => {
            out.line(format_args!("Token       FAILED: {e}"));
            out.line(format_args!("\nRequests made: {}", report.requests));
            return out;
        }
        Ok(t) => {
            out.line(format_args!(
                "Token       acquired: {} application permission(s), directory role(s): {}",
                t.application_permissions.len(),
                if t.directory_roles.is_empty() {
                    "none".to_string()
                } else {
                    t.directory_roles.join(", ")
                }
            ));
        }
    }
    out.line(format_args!(""));
    out.line(format_args!(
        "{:<8} {:<46} {:<60} GRANTED",
        "STATUS", "OPERATION", "NEEDED (any of)"
    ));
    for row in &report.checks {
        let status = match (row.status, row.required) {
            ("ok", _) => "ok",
            ("missing", true) => "MISSING",
            ("missing", false) => "off",
            _ => "WARN",
        };
        let mut needed = row.needed_permissions[0].to_string();
        if let Some(role) = row.needed_roles.first() {
            needed.push_str(" + role ");
            needed.push_str(role);
        }
        let mut granted: Vec<String> = row.granted_permissions.clone();
        granted.extend(row.granted_roles.iter().map(|r| format!("role {r}")));
        let granted = if granted.is_empty() {
            "-".to_string()
        } else {
            granted.join(", ")
        };
        let operation = if row.required {
            row.operation.to_string()
        } else {
            format!("{} (optional)", row.operation)
        };
        out.line(format_args!(
            "{status:<8} {operation:<46} {needed:<60} {granted}; {}",
            row.probe
        ));
        if let (Some(fix), true) = (&row.fix, row.required) {
            out.line(format_args!("         fix: {fix}"));
        }
    }
    out.line(format_args!("\nDelegated credential (resetPassword with writeback for synced users): not configured in this version."
    ));
    if !report.forwarding.is_empty() {
        out.line(format_args!(
            "\nAudit forwarding (reached without sending an event):"
        ));
        for row in &report.forwarding {
            let status = if row.ok { "ok" } else { "FAILED" };
            out.line(format_args!("{status:<8} {:<8} {}", row.output, row.result));
        }
    }
    out.line(format_args!("Requests made: {}", report.requests));
    out.line(format_args!(
        "{}",
        if report.ok {
            "Result: everything required is granted."
        } else {
            "Result: something required is missing or unreachable (see above)."
        }
    ));
    out
}
