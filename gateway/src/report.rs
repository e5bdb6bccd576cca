//! Output of `check`: the human report (colour on a terminal) and the JSON document.
//!
//! JSON schema (stable, `schema_version` 1):
//! `{ schema_version, dc, domain, base_dn, connector: {sam_account_name, dn, sid, source,
//! group_count}, checks: [{ id, title, status: pass|fail|warn|skip, evidence: [string],
//! fix: string|null, grants?: [{object_dn, ace_sddl, dsacls, comment}] }], summary: {pass, fail,
//! warn, skip}, exit_code }`; when the domain could not be checked:
//! `{ schema_version, error, checks: [], exit_code: 2 }`.

use serde_json::json;

use crate::checks::{Report, Status};

pub fn summary(report: &Report) -> serde_json::Value {
    let count = |s: Status| report.checks.iter().filter(|c| c.status == s).count();
    json!({
        "pass": count(Status::Pass),
        "fail": count(Status::Fail),
        "warn": count(Status::Warn),
        "skip": count(Status::Skip),
    })
}

pub fn to_json(report: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap_or_else(|e| json!({ "error": e.to_string() }));
    if let Some(obj) = v.as_object_mut() {
        obj.insert("summary".into(), summary(report));
        obj.insert("exit_code".into(), json!(report.exit_code()));
    }
    v
}

pub fn error_json(message: &str) -> serde_json::Value {
    json!({ "schema_version": 1, "error": message, "checks": [], "exit_code": 2 })
}

pub fn human(report: &Report, colour: bool) -> String {
    let paint = |s: Status| -> String {
        let label = s.label();
        if !colour {
            return label.to_string();
        }
        let code = match s {
            Status::Pass => "32",
            Status::Fail => "31;1",
            Status::Warn => "33",
            Status::Skip => "90",
        };
        format!("\x1b[{code}m{label}\x1b[0m")
    };
    let mut out = String::new();
    out.push_str(&format!(
        "latchkey-gateway check: {} — domain {}, scope {}\n",
        report.dc, report.domain, report.base_dn
    ));
    if let Some(c) = &report.connector {
        out.push_str(&format!(
            "connector account: {} ({}, {}), SID {}\n",
            c.sam_account_name, c.dn, c.source, c.sid
        ));
    }
    out.push('\n');
    for c in &report.checks {
        out.push_str(&format!("{}  {:<20} {}\n", paint(c.status), c.id, c.title));
        for e in &c.evidence {
            out.push_str(&format!("      {e}\n"));
        }
        if let Some(fix) = &c.fix {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    let s = summary(report);
    out.push_str(&format!(
        "\n{} pass, {} fail, {} warn, {} skip\n",
        s["pass"], s["fail"], s["warn"], s["skip"]
    ));
    out
}
