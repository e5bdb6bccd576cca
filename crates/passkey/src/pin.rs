//! [`Pin`]: a security key's PIN, never printed and wiped from memory when dropped.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::PasskeyError;

/// CTAP 2.1 §6.5.1: a PIN has at least 4 Unicode code points (a key may ask for more) and at
/// most 63 bytes of UTF-8. Checked here, before the key sees it, because a PIN the key refuses
/// still costs one of its (usually 8) tries.
const MIN_CHARS: usize = 4;
const MAX_BYTES: usize = 63;

/// A security key PIN.
///
/// `Debug` shows `Pin([redacted])` and there is no `Display`, so it cannot end up in a log line
/// or an error by accident; the text is wiped when the value is dropped (ctap-hid-fido2 still
/// makes its own short-lived copies while it hashes the PIN).
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Takes the PIN as typed (a trailing newline from a terminal read is the caller's to strip).
    pub fn new(pin: String) -> Result<Pin, PasskeyError> {
        let pin = Zeroizing::new(pin);
        if pin.chars().count() < MIN_CHARS {
            return Err(PasskeyError::InvalidPin(
                "a security key PIN has at least 4 characters",
            ));
        }
        if pin.len() > MAX_BYTES {
            return Err(PasskeyError::InvalidPin(
                "a security key PIN has at most 63 bytes",
            ));
        }
        Ok(Pin(pin))
    }

    /// The PIN text, for the one call that hands it to the key. Every use is greppable.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_pin() {
        let pin = Pin::new("123456".into()).unwrap();
        assert_eq!(format!("{pin:?}"), "Pin([redacted])");
        assert_eq!(pin.expose(), "123456");
    }

    #[test]
    fn length_rules_follow_ctap() {
        assert!(Pin::new("123".into()).is_err());
        assert!(Pin::new("1234".into()).is_ok());
        // four code points, eight bytes: allowed
        assert!(Pin::new("ÄÖÜß".into()).is_ok());
        assert!(Pin::new("x".repeat(63)).is_ok());
        assert!(Pin::new("x".repeat(64)).is_err());
        let err = Pin::new("12".into()).unwrap_err().to_string();
        assert!(!err.contains("12"), "{err}");
    }
}
