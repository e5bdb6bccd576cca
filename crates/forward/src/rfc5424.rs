//! Audit events as RFC 5424 syslog messages, with RFC 5425/6587 octet-counting framing for
//! stream transports.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [latchkey@32473 id=".." ...] BOM{json}`
//! - PRI: the configured facility with a severity from the outcome (error → err, failure and
//!   denial → warning, success → notice, started → info).
//! - HOSTNAME: the deployment's name (the portal's public host), not the forwarding instance's:
//!   any instance may forward any instance's events.
//! - MSGID: the event type (`password.reset`, ...).
//! - Structured data under an enterprise-number SD-ID (32473 is the number RFC 5612 reserves for
//!   documentation; `sd_id` changes it for organisations that map their own).
//! - MSG: the event as JSON ([`crate::event::event_json`]), UTF-8 with its byte-order mark as
//!   RFC 5424 §6.4 asks.
//!
//! Messages stay under [`MAX_MESSAGE`] bytes (rsyslog's default limit): an event whose details
//! would not fit is sent without them, marked `"details":{"truncated":true}`.

use latchkey_store::{AuditRecord, Outcome};
use serde_json::json;

use crate::event::event_json;

/// The longest structured-data value (the values are ids and names from the code; this only
/// bounds what a corrupt row could hold).
const MAX_PARAM: usize = 256;

/// rsyslog's default `maxMessageSize`: longer messages would be cut (or split) by the receiver.
pub const MAX_MESSAGE: usize = 8000;

/// Syslog facilities an operator may choose (RFC 5424 §6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facility {
    User,
    Daemon,
    Auth,
    AuthPriv,
    Audit,
    Local(u8),
}

impl Facility {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Self::User,
            "daemon" => Self::Daemon,
            "auth" => Self::Auth,
            "authpriv" => Self::AuthPriv,
            "audit" => Self::Audit,
            _ => {
                let n = s.strip_prefix("local")?.parse::<u8>().ok()?;
                if n > 7 {
                    return None;
                }
                Self::Local(n)
            }
        })
    }
    fn code(self) -> u8 {
        match self {
            Self::User => 1,
            Self::Daemon => 3,
            Self::Auth => 4,
            Self::AuthPriv => 10,
            Self::Audit => 13,
            Self::Local(n) => 16 + n,
        }
    }
}

fn severity(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Error => 3,
        Outcome::Failure | Outcome::Denied => 4,
        Outcome::Success => 5,
        Outcome::Started => 6,
    }
}

/// The fixed parts of every message.
#[derive(Clone, Debug)]
pub struct Header {
    pub facility: Facility,
    /// HOSTNAME: the deployment's name.
    pub hostname: String,
    pub app_name: String,
    /// The structured data element's id, e.g. `latchkey@32473`.
    pub sd_id: String,
}

/// PRINTUSASCII only (33..=126), at most `max` characters; `-` (the nil value) when empty.
fn header_field(s: &str, max: usize) -> String {
    let v: String = s
        .chars()
        .filter(|c| ('!'..='~').contains(c))
        .take(max)
        .collect();
    if v.is_empty() { "-".into() } else { v }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped (RFC 5424 §6.3.3); control characters dropped;
/// at most [`MAX_PARAM`] characters.
fn param_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_PARAM));
    for c in s.chars().filter(|c| !c.is_control()).take(MAX_PARAM) {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Checks an SD-ID: 1-32 PRINTUSASCII without `=`, space, `]` and `"`, of the form
/// `name@number` (an enterprise number: names without `@` are IANA's, RFC 5424 §6.3.2).
pub fn valid_sd_id(s: &str) -> bool {
    let printable = s
        .bytes()
        .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'));
    let enterprise = s.split_once('@').is_some_and(|(name, number)| {
        !name.is_empty()
            && !number.is_empty()
            && !number.contains('@')
            && number
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    s.len() <= 32 && printable && enterprise
}

/// One event as an RFC 5424 message (without framing).
pub fn message(header: &Header, record: &AuditRecord, source: &str) -> String {
    let e = &record.event;
    let pri = u16::from(header.facility.code()) * 8 + u16::from(severity(e.outcome));
    let at = crate::event::utc_millis(e.at);
    let mut sd = format!("[{}", header.sd_id);
    let subject = e.subject.map(|s| s.to_string());
    let id = record.id.0.to_string();
    let params: [(&str, Option<&str>); 7] = [
        ("id", Some(id.as_str())),
        ("event", Some(e.event_type.as_str())),
        ("outcome", Some(e.outcome.as_str())),
        ("method", e.method.as_deref()),
        ("actor", Some(e.actor.as_str())),
        ("subject", subject.as_deref()),
        ("correlationId", Some(e.correlation_id.as_str())),
    ];
    for (name, value) in params {
        if let Some(v) = value {
            sd.push_str(&format!(" {name}=\"{}\"", param_value(v)));
        }
    }
    sd.push(']');
    let head = format!(
        "<{pri}>1 {at} {} {} - {} {sd} \u{feff}",
        header_field(&header.hostname, 255),
        header_field(&header.app_name, 48),
        header_field(&e.event_type, 32),
    );
    let mut body = event_json(record, source);
    let mut msg = format!("{head}{body}");
    // Too long: the details go first, then the reason is cut, then it goes too; what is left
    // (ids, names from the code, the source) is bounded.
    if msg.len() > MAX_MESSAGE {
        body["details"] = json!({ "truncated": true });
        msg = format!("{head}{body}");
    }
    if msg.len() > MAX_MESSAGE
        && let Some(reason) = e.reason.as_deref()
    {
        body["reason"] = json!(reason.chars().take(500).collect::<String>());
        msg = format!("{head}{body}");
        if msg.len() > MAX_MESSAGE {
            body["reason"] = json!("(truncated)");
            msg = format!("{head}{body}");
        }
    }
    msg
}

/// RFC 5425 §4.3 / RFC 6587 §3.4.1 octet counting: `LEN SP MSG`.
pub fn frame(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_store::{AuditEvent, AuditId};

    fn record(details: serde_json::Value, outcome: Outcome) -> AuditRecord {
        AuditRecord {
            id: AuditId(42),
            event: AuditEvent {
                at: time::macros::datetime!(2026-12-07 13:45:01.123456 +01:00),
                correlation_id: "req \"1\"]\\".into(),
                actor: "anonymous".into(),
                subject: None,
                event_type: "password.reset".into(),
                method: Some("email".into()),
                outcome,
                reason: None,
                details,
            },
        }
    }

    fn header() -> Header {
        Header {
            facility: Facility::AuthPriv,
            hostname: "sspr.contoso.com".into(),
            app_name: "latchkey".into(),
            sd_id: "latchkey@32473".into(),
        }
    }

    #[test]
    fn a_message_has_the_rfc5424_header_and_escaped_structured_data() {
        let m = message(
            &header(),
            &record(json!({"n": 1}), Outcome::Success),
            "sspr",
        );
        // authpriv (10) * 8 + notice (5) = 85; UTC, milliseconds.
        assert!(
            m.starts_with(
                "<85>1 2026-12-07T12:45:01.123Z sspr.contoso.com latchkey - password.reset \
                 [latchkey@32473 id=\"42\" event=\"password.reset\" outcome=\"success\" \
                 method=\"email\" actor=\"anonymous\" correlationId=\"req \\\"1\\\"\\]\\\\\"] \u{feff}{"
            ),
            "{m}"
        );
        let json: serde_json::Value =
            serde_json::from_str(m.split_once('\u{feff}').unwrap().1).unwrap();
        assert_eq!(json["id"], 42);
        assert_eq!(json["source"], "sspr");
        assert_eq!(json["details"]["n"], 1);
    }

    #[test]
    fn severity_follows_the_outcome_and_facility_is_configurable() {
        let h = Header {
            facility: Facility::Local(4),
            ..header()
        };
        let m = message(&h, &record(json!({}), Outcome::Error), "s");
        assert!(m.starts_with("<163>1 "), "local4 (20) * 8 + err (3): {m}");
        assert_eq!(Facility::parse("local7"), Some(Facility::Local(7)));
        assert_eq!(Facility::parse("local8"), None);
        assert_eq!(Facility::parse("kern"), None);
    }

    #[test]
    fn oversized_details_are_dropped_and_marked() {
        let big = "x".repeat(MAX_MESSAGE);
        let m = message(
            &header(),
            &record(json!({ "big": big }), Outcome::Denied),
            "s",
        );
        assert!(m.len() <= MAX_MESSAGE);
        assert!(m.contains(r#""details":{"truncated":true}"#), "{m}");
    }

    #[test]
    fn a_long_reason_is_cut_until_the_message_fits() {
        let mut r = record(json!({ "big": "y".repeat(MAX_MESSAGE) }), Outcome::Error);
        r.event.reason = Some("z".repeat(3 * MAX_MESSAGE));
        let m = message(&header(), &r, "s");
        assert!(m.len() <= MAX_MESSAGE, "{}", m.len());
        assert!(m.contains(r#""details":{"truncated":true}"#));
        assert!(m.contains(&"z".repeat(500)) && !m.contains(&"z".repeat(501)));
    }

    #[test]
    fn header_fields_are_printable_ascii_and_octets_are_counted() {
        assert_eq!(header_field("a b\u{e9}c", 48), "abc");
        assert_eq!(header_field("", 48), "-");
        assert!(valid_sd_id("latchkey@32473"));
        assert!(!valid_sd_id("a b@1") && !valid_sd_id("") && !valid_sd_id("a=b@1"));
        assert!(!valid_sd_id("latchkey") && !valid_sd_id("latchkey@x") && !valid_sd_id("@1"));
        assert!(valid_sd_id("audit@32473.1.2"));
        assert_eq!(frame("h\u{e9}"), b"3 h\xc3\xa9".to_vec());
    }
}
