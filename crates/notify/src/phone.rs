//! Phone numbers in E.164 form, the only form SMS providers accept unambiguously.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `+` followed by 8 to 15 digits, the first not zero (ITU-T E.164). Spaces, dashes, dots and
/// parentheses are removed when parsing; anything else is refused. National formats must be
/// normalised before (that needs a numbering-plan library and a default region).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an international phone number (expected +<country code><number>, e.g. +41446681800)")]
pub struct PhoneParseError;

impl PhoneNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `+41******00`: the country code's first digits and the last two, for logs.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let head: String = digits.chars().take(2).collect();
        let tail: String = digits
            .chars()
            .skip(digits.len().saturating_sub(2))
            .collect();
        format!(
            "+{head}{}{tail}",
            "*".repeat(digits.len().saturating_sub(4))
        )
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let rest = s.strip_prefix('+').ok_or(PhoneParseError)?;
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(PhoneParseError),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(PhoneParseError);
        }
        Ok(Self(format!("+{digits}")))
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Masked: a phone number in a log line is personal data.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_e164_and_masks() {
        let p: PhoneNumber = " +41 (44) 668-18.00 ".parse().unwrap();
        assert_eq!(p.as_str(), "+41446681800");
        assert_eq!(p.masked(), "+41*******00");
        assert_eq!(format!("{p:?}"), "PhoneNumber(+41*******00)");
        for bad in [
            "0446681800",
            "+0446681800",
            "+4144abc",
            "+1234567",
            "+1234567890123456",
            "",
        ] {
            assert!(bad.parse::<PhoneNumber>().is_err(), "{bad:?}");
        }
    }
}
