//! Directory-attribute check: the user types values the directory holds about them (e.g.
//! `employeeId` and `employeeHireDate`), compared with what the caller just read from Graph.
//!
//! Off by default (issue 3); which attributes are asked is configuration ([`AttributeSpec`]).
//! Each comparison runs in constant time, all of them run (no early exit), and the result does
//! not say which value was wrong. A value missing or empty in the directory never matches (an
//! empty field must not accept an empty answer), but is compared anyway so the time is the same.
//!
//! Values are canonicalised before comparison: text is NFKC, lower case, without spaces and
//! dashes (`E-12 345` = `e12345`); dates are compared as calendar dates and typed as ISO
//! `YYYY-MM-DD` (what an HTML date input sends). Graph's `employeeHireDate` is a timestamp: the
//! caller passes its UTC date.
//!
//! Nothing is stored here: the "stored" side is what the caller read from the directory (the
//! portal keeps it in the reset flow sealed with its at-rest key, never in clear).

use std::collections::{BTreeMap, BTreeSet};

use latchkey_types::Secret;
use time::{Date, OffsetDateTime};
use unicode_normalization::UnicodeNormalization;

use crate::ct::CtEq;
use crate::method::{Method, MethodKind, Outcome, Subject};
use crate::rng::RngError;

/// Why the check could not be configured. Never contains a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    /// The configuration breaks a rule.
    #[error("invalid directory-attribute configuration: {0}")]
    Config(&'static str),
    /// The random number generator failed.
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// How a value is typed and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeKind {
    /// Free text (identifiers): compared without case, spaces or dashes.
    Text,
    /// A calendar date, typed `YYYY-MM-DD`.
    Date,
}

/// One attribute the user must type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeSpec {
    /// The Graph property name (`employeeId`, `employeeHireDate`, an extension attribute...).
    pub name: String,
    /// How it is compared.
    pub kind: AttributeKind,
}

/// A value the directory holds, as the caller read it from Graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// A text value.
    Text(String),
    /// A date value.
    Date(Date),
}

/// The result of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeOutcome {
    /// Every value matched.
    Ok,
    /// At least one did not (which one is not said).
    Wrong,
}

impl Outcome for AttributeOutcome {
    fn is_accepted(&self) -> bool {
        matches!(self, AttributeOutcome::Ok)
    }
    fn reason(&self) -> &'static str {
        match self {
            AttributeOutcome::Ok => "ok",
            AttributeOutcome::Wrong => "wrong",
        }
    }
}

/// The directory-attribute method.
pub struct DirectoryAttributes {
    specs: Vec<AttributeSpec>,
    ct: CtEq,
}

impl std::fmt::Debug for DirectoryAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryAttributes")
            .field("specs", &self.specs)
            .finish_non_exhaustive()
    }
}

fn canonical_text(s: &str) -> String {
    s.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '\u{2010}'..='\u{2015}'))
        .collect()
}

fn canonical_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A typed date in `YYYY-MM-DD` form (surrounding spaces ignored), canonicalised; `None` if it is
/// not a real date.
fn parse_typed_date(s: &str) -> Option<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &format).ok().map(canonical_date)
}

impl DirectoryAttributes {
    /// The method asking for `specs` (at least one, distinct names).
    pub fn new(specs: Vec<AttributeSpec>) -> Result<Self, AttributeError> {
        if specs.is_empty() {
            return Err(AttributeError::Config("at least one attribute is required"));
        }
        let names: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        if names.len() != specs.len() || names.contains("") {
            return Err(AttributeError::Config(
                "attribute names must be distinct and non-empty",
            ));
        }
        Ok(Self {
            specs,
            ct: CtEq::new(&latchkey_types::random::generator())?,
        })
    }

    /// The attributes asked, in order (for the form and for the Graph `$select`).
    pub fn specs(&self) -> &[AttributeSpec] {
        &self.specs
    }

    /// Compares `given` (typed, by attribute name) with `expected` (from the directory, by name).
    pub fn check(
        &self,
        expected: &BTreeMap<String, AttributeValue>,
        given: &BTreeMap<String, Secret<String>>,
    ) -> AttributeOutcome {
        let mut all = true;
        for spec in &self.specs {
            let typed = given
                .get(&spec.name)
                .map(|s| s.expose().as_str())
                .unwrap_or_default();
            let (want, usable) = match (spec.kind, expected.get(&spec.name)) {
                (AttributeKind::Text, Some(AttributeValue::Text(t))) => {
                    let c = canonical_text(t);
                    let usable = !c.is_empty();
                    (c, usable)
                }
                (AttributeKind::Date, Some(AttributeValue::Date(d))) => (canonical_date(*d), true),
                // Missing in the directory, or of the wrong kind: compare against nothing.
                _ => (String::new(), false),
            };
            let got = match spec.kind {
                AttributeKind::Text => canonical_text(typed),
                AttributeKind::Date => parse_typed_date(typed).unwrap_or_default(),
            };
            let same = self.ct.eq(want.as_bytes(), got.as_bytes());
            // `&` not `&&`: every attribute is compared whatever the previous ones gave.
            all &= same & usable & !got.is_empty();
        }
        if all {
            AttributeOutcome::Ok
        } else {
            AttributeOutcome::Wrong
        }
    }
}

impl Method for DirectoryAttributes {
    /// The values just read from the directory, by Graph property name.
    type Stored = BTreeMap<String, AttributeValue>;
    /// The typed values, by Graph property name.
    type Answer = BTreeMap<String, Secret<String>>;
    type Outcome = AttributeOutcome;
    type Error = std::convert::Infallible;

    fn kind(&self) -> MethodKind {
        MethodKind::Attribute
    }

    async fn verify(
        &self,
        _subject: &Subject,
        stored: &mut BTreeMap<String, AttributeValue>,
        answer: BTreeMap<String, Secret<String>>,
        _now: OffsetDateTime,
    ) -> Result<AttributeOutcome, Self::Error> {
        Ok(self.check(stored, &answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn method() -> DirectoryAttributes {
        DirectoryAttributes::new(vec![
            AttributeSpec {
                name: "employeeId".into(),
                kind: AttributeKind::Text,
            },
            AttributeSpec {
                name: "employeeHireDate".into(),
                kind: AttributeKind::Date,
            },
        ])
        .unwrap()
    }

    fn directory(id: Option<&str>, hired: Option<Date>) -> BTreeMap<String, AttributeValue> {
        let mut m = BTreeMap::new();
        if let Some(id) = id {
            m.insert("employeeId".into(), AttributeValue::Text(id.into()));
        }
        if let Some(d) = hired {
            m.insert("employeeHireDate".into(), AttributeValue::Date(d));
        }
        m
    }

    fn typed(id: &str, hired: &str) -> BTreeMap<String, Secret<String>> {
        BTreeMap::from([
            ("employeeId".to_string(), Secret::new(id.to_string())),
            (
                "employeeHireDate".to_string(),
                Secret::new(hired.to_string()),
            ),
        ])
    }

    #[test]
    fn matching_values_pass_in_any_usual_spelling() {
        let m = method();
        let dir = directory(Some("E-12345"), Some(date!(2020 - 03 - 01)));
        for (id, hired) in [
            ("E-12345", "2020-03-01"),
            ("e12345", " 2020-03-01 "),
            ("E 123 45", "2020-03-01"),
        ] {
            assert_eq!(
                m.check(&dir, &typed(id, hired)),
                AttributeOutcome::Ok,
                "{id:?} {hired:?}"
            );
        }
    }

    #[test]
    fn any_mismatch_fails() {
        let m = method();
        let dir = directory(Some("E-12345"), Some(date!(2020 - 03 - 01)));
        for (id, hired) in [
            ("E-12346", "2020-03-01"),
            ("E-12345", "2020-03-02"),
            ("E-12345", "01/03/2020"), // only ISO dates
            ("E-12345", "2020-02-30"), // not a date
            ("", "2020-03-01"),
            ("E-12345", ""),
        ] {
            assert_eq!(
                m.check(&dir, &typed(id, hired)),
                AttributeOutcome::Wrong,
                "{id:?} {hired:?}"
            );
        }
        // Missing fields in the answer.
        assert_eq!(m.check(&dir, &BTreeMap::new()), AttributeOutcome::Wrong);
    }

    #[test]
    fn missing_or_empty_directory_values_never_match() {
        let m = method();
        assert_eq!(
            m.check(
                &directory(None, Some(date!(2020 - 03 - 01))),
                &typed("", "2020-03-01")
            ),
            AttributeOutcome::Wrong
        );
        assert_eq!(
            m.check(
                &directory(Some(" - "), Some(date!(2020 - 03 - 01))),
                &typed(" - ", "2020-03-01")
            ),
            AttributeOutcome::Wrong
        );
        assert_eq!(
            m.check(&directory(Some("E1"), None), &typed("E1", "")),
            AttributeOutcome::Wrong
        );
        // A value of the wrong kind (configuration slip) fails closed.
        let mut wrong_kind = directory(Some("E1"), None);
        wrong_kind.insert(
            "employeeHireDate".into(),
            AttributeValue::Text("2020-03-01".into()),
        );
        assert_eq!(
            m.check(&wrong_kind, &typed("E1", "2020-03-01")),
            AttributeOutcome::Wrong
        );
    }

    #[test]
    fn configuration_is_validated() {
        assert!(DirectoryAttributes::new(vec![]).is_err());
        let dup = AttributeSpec {
            name: "employeeId".into(),
            kind: AttributeKind::Text,
        };
        assert!(DirectoryAttributes::new(vec![dup.clone(), dup]).is_err());
        assert_eq!(method().specs().len(), 2);
        assert!(method().counts_toward_required());
    }
}
