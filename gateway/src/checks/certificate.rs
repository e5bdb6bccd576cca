//! The DC's TLS certificate: verified chain (the connection only exists if it verified), names,
//! expiry (< 30 days = WARN).

use latchkey_ad::ldap::TrustSource;

use super::gather::Snapshot;
use super::{Check, Status};

const WARN_DAYS: i64 = 30;

pub fn ldaps_certificate(s: &Snapshot) -> Check {
    let mut check = Check::new(
        "ldaps_certificate",
        "LDAPS certificate of the DC",
        Status::Pass,
    );
    match &s.trust {
        TrustSource::Insecure => {
            check.status = Status::Warn;
            check.evidence.push(
                "certificate NOT verified (--insecure-skip-tls-verify): anyone on the path could \
                 impersonate the DC"
                    .into(),
            );
            check.fix = Some(
                "set ad.ca_file to the CA that issued the DC certificate, or install it \
                              in the system store, and drop the insecure switch"
                    .into(),
            );
        }
        trust => check.evidence.push(format!(
            "chain and name verified against {trust} (TLS handshake)"
        )),
    }
    match &s.certificate {
        None => {
            check.status = Status::Warn;
            check
                .evidence
                .push("the server presented no certificate to inspect".into());
        }
        Some(Err(why)) => {
            check.status = Status::Warn;
            check.evidence.push(why.clone());
        }
        Some(Ok(c)) => {
            check
                .evidence
                .push(format!("subject {}, issuer {}", c.subject, c.issuer));
            check.evidence.push(if c.names.is_empty() {
                "no subjectAltName: modern clients reject this certificate".into()
            } else {
                format!("names: {}", c.names.join(", "))
            });
            let days = (c.not_after - s.now).div_euclid(86_400);
            if c.not_after <= s.now {
                check.status = Status::Fail;
                check.evidence.push("EXPIRED".into());
            } else if days < WARN_DAYS {
                if check.status == Status::Pass {
                    check.status = Status::Warn;
                }
                check
                    .evidence
                    .push(format!("expires in {days} days (< {WARN_DAYS})"));
            } else {
                check.evidence.push(format!("expires in {days} days"));
            }
            if check.status != Status::Pass && check.fix.is_none() {
                check.fix = Some(
                    "renew the DC's LDAPS certificate (the Kerberos Authentication / \
                                  Domain Controller template, or your CA's process)"
                        .into(),
                );
            }
        }
    }
    check
}
