//! Errors of the binary and text parsers. They say what was wrong and where, so a bad
//! descriptor read from a customer's directory can be reported instead of crashing the check.

use thiserror::Error;

/// A binary structure (SID, ACL, ACE, security descriptor) that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("{what}: needs {needed} bytes at offset {offset}, only {available} available")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

impl ParseError {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        ParseError::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

/// A text form (SID string, GUID string, SDDL) that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct TextError {
    pub what: &'static str,
    pub input: String,
    pub reason: String,
}

impl TextError {
    pub(crate) fn new(what: &'static str, input: &str, reason: impl Into<String>) -> Self {
        // Cap the echoed input: SDDL can be long and error messages end up in reports.
        let input: String = input.chars().take(120).collect();
        TextError {
            what,
            input,
            reason: reason.into(),
        }
    }
}

/// Bounds-checked little-endian reader over a byte slice.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub bytes: &'a [u8],
    pub what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, what }
    }

    pub fn slice(&self, offset: usize, len: usize) -> Result<&'a [u8], ParseError> {
        offset
            .checked_add(len)
            .and_then(|end| self.bytes.get(offset..end))
            .ok_or(ParseError::Truncated {
                what: self.what,
                offset,
                needed: len,
                available: self.bytes.len().saturating_sub(offset),
            })
    }

    pub fn u8(&self, offset: usize) -> Result<u8, ParseError> {
        Ok(self.slice(offset, 1)?[0])
    }

    pub fn u16(&self, offset: usize) -> Result<u16, ParseError> {
        let b = self.slice(offset, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&self, offset: usize) -> Result<u32, ParseError> {
        let b = self.slice(offset, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}
