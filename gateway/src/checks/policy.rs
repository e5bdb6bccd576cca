//! Domain password policy: minimum age (writeback needs 0), lockout (the unlock feature), and
//! length/complexity (shown to users by the portal).

use super::gather::Snapshot;
use super::{Check, Status};

/// AD stores intervals as negative counts of 100 ns; `i64::MIN` means "never"/"forever".
pub fn interval(ticks: i64) -> String {
    if ticks == i64::MIN {
        return "forever".into();
    }
    let secs = ticks.unsigned_abs() / 10_000_000;
    if secs == 0 {
        return "0".into();
    }
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut parts = Vec::new();
    for (v, unit) in [(d, "d"), (h, "h"), (m, "min"), (s, "s")] {
        if v > 0 {
            parts.push(format!("{v} {unit}"));
        }
    }
    parts.join(" ")
}

pub fn checks(s: &Snapshot) -> Vec<Check> {
    let p = &s.policy;
    let domain = &s.domain_dn;
    let dns = dns_name(domain);
    let mut out = Vec::new();

    let mut min_age = Check::new(
        "min_password_age",
        "Minimum password age is 0",
        Status::Pass,
    );
    match p.min_pwd_age {
        Some(0) => min_age
            .evidence
            .push(format!("{domain}: minPwdAge = 0 (no minimum age)")),
        Some(t) => {
            min_age.status = Status::Fail;
            min_age.evidence.push(format!(
                "{domain}: minPwdAge = {} — a password changed or reset less than that ago cannot be \
                 changed again, so writeback fails with 0000052D",
                interval(t)
            ));
            min_age.fix = Some(format!(
                "Set-ADDefaultDomainPasswordPolicy -Identity {dns} -MinPasswordAge 00:00:00 (or Group \
                 Policy: Default Domain Policy > Password Policy > Minimum password age = 0)"
            ));
        }
        None => {
            min_age.status = Status::Warn;
            min_age.evidence.push(format!(
                "{domain}: minPwdAge not readable by the bind account"
            ));
        }
    }
    out.push(min_age);

    let mut lockout = Check::new(
        "lockout_policy",
        "Account lockout policy (for the unlock feature)",
        Status::Pass,
    );
    match p.lockout_threshold {
        Some(0) => {
            lockout.status = Status::Warn;
            lockout.evidence.push(format!(
                "{domain}: lockoutThreshold = 0: accounts never lock out, so self-service unlock \
                 has nothing to do"
            ));
            lockout.fix = Some(format!(
                "optional: Set-ADDefaultDomainPasswordPolicy -Identity {dns} -LockoutThreshold 10 \
                 -LockoutDuration 00:15:00 -LockoutObservationWindow 00:15:00"
            ));
        }
        Some(n) => lockout.evidence.push(format!(
            "{domain}: lockout after {n} bad passwords within {}, for {}",
            p.lockout_observation_window.map_or("?".into(), interval),
            p.lockout_duration.map_or("?".into(), interval)
        )),
        None => {
            lockout.status = Status::Warn;
            lockout.evidence.push(format!(
                "{domain}: lockoutThreshold not readable by the bind account"
            ));
        }
    }
    out.push(lockout);

    let mut rules = Check::new(
        "password_rules",
        "Password length and complexity (shown to users)",
        Status::Pass,
    );
    rules.evidence.push(format!(
        "{domain}: minimum length {}, complexity {}, history {}, maximum age {}",
        p.min_pwd_length.map_or("?".into(), |v| v.to_string()),
        match p.pwd_properties {
            Some(v) if v & 1 == 1 => "required",
            Some(_) => "not required",
            None => "?",
        },
        p.pwd_history_length.map_or("?".into(), |v| v.to_string()),
        p.max_pwd_age.map_or("?".into(), interval)
    ));
    rules.evidence.push(
        "fine-grained password policies (PSOs) can override these for some users; they are not \
         evaluated here"
            .into(),
    );
    out.push(rules);
    out
}

/// `DC=lab,DC=test` -> `lab.test`.
pub fn dns_name(dn: &str) -> String {
    dn.split(',')
        .filter_map(|rdn| {
            let (k, v) = rdn.trim().split_once('=')?;
            k.eq_ignore_ascii_case("DC").then(|| v.to_string())
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_well() {
        assert_eq!(interval(0), "0");
        assert_eq!(interval(-864_000_000_000), "1 d");
        assert_eq!(interval(-3_000_000_000), "5 min");
        assert_eq!(interval(i64::MIN), "forever");
        assert_eq!(dns_name("DC=lab,DC=test"), "lab.test");
    }
}
