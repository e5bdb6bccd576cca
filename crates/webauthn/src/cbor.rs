//! The little CBOR this crate needs, on ciborium's `Value`: decode one item and learn where it
//! ends (authenticator data has no length for the COSE key or the extensions), and look keys up
//! in maps without being fooled by duplicates.

use ciborium::Value;

use crate::Error;

/// Our inputs nest a few levels at most (attestation object → attStmt → x5c). A low limit keeps
/// hostile input from spending stack on deep nesting.
const RECURSION_LIMIT: usize = 16;

/// Decodes the one CBOR item at the start of `bytes`; returns it and how many bytes it took.
pub(crate) fn decode_prefix(bytes: &[u8], what: &'static str) -> Result<(Value, usize), Error> {
    let mut rest = bytes;
    // ciborium reads exactly the item's bytes from the slice (no read-ahead), so what is left
    // in `rest` starts right after the item.
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, RECURSION_LIMIT)
        .map_err(|_| Error::Malformed(what))?;
    Ok((value, bytes.len().saturating_sub(rest.len())))
}

/// Decodes `bytes` as exactly one CBOR item (trailing bytes are refused).
pub(crate) fn decode_exact(bytes: &[u8], what: &'static str) -> Result<Value, Error> {
    let (value, used) = decode_prefix(bytes, what)?;
    if used != bytes.len() {
        return Err(Error::Malformed(what));
    }
    Ok(value)
}

/// Encodes a value (writing into a `Vec` does not fail, but the API says it may).
pub(crate) fn encode(value: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).map_err(|_| Error::Malformed("CBOR encoding"))?;
    Ok(out)
}

/// The entries of a map.
pub(crate) fn map<'a>(value: &'a Value, what: &'static str) -> Result<&'a [(Value, Value)], Error> {
    match value {
        Value::Map(entries) => Ok(entries),
        _ => Err(Error::Malformed(what)),
    }
}

/// The value under the one key that `is_key` accepts; a key present twice is malformed (two
/// parsers could otherwise read different values from the same bytes).
fn get<'a>(
    map: &'a [(Value, Value)],
    is_key: impl Fn(&Value) -> bool,
    what: &'static str,
) -> Result<Option<&'a Value>, Error> {
    let mut found = None;
    for (key, value) in map {
        if is_key(key) {
            if found.is_some() {
                return Err(Error::Malformed(what));
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// The value under an integer key (COSE labels).
pub(crate) fn get_int_key<'a>(
    map: &'a [(Value, Value)],
    key: i64,
    what: &'static str,
) -> Result<Option<&'a Value>, Error> {
    get(map, |k| as_i64(k) == Some(key), what)
}

/// The value under a text key (attestation object and statement members).
pub(crate) fn get_text_key<'a>(
    map: &'a [(Value, Value)],
    key: &str,
    what: &'static str,
) -> Result<Option<&'a Value>, Error> {
    get(map, |k| k.as_text() == Some(key), what)
}

/// An integer that fits in `i64`.
pub(crate) fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => i64::try_from(i128::from(*i)).ok(),
        _ => None,
    }
}

/// A byte string.
pub(crate) fn as_bytes<'a>(value: &'a Value, what: &'static str) -> Result<&'a [u8], Error> {
    match value {
        Value::Bytes(bytes) => Ok(bytes),
        _ => Err(Error::Malformed(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_reports_where_the_item_ends() {
        // {1: 2} followed by two unrelated bytes
        let bytes = [0xa1, 0x01, 0x02, 0xff, 0x00];
        let (value, used) = decode_prefix(&bytes, "test").unwrap();
        assert_eq!(used, 3);
        assert_eq!(
            get_int_key(map(&value, "m").unwrap(), 1, "k").unwrap(),
            Some(&Value::from(2))
        );
        assert!(decode_exact(&bytes, "test").is_err());
    }

    #[test]
    fn duplicate_keys_are_malformed() {
        // {1: 2, 1: 3}
        let value = decode_exact(&[0xa2, 0x01, 0x02, 0x01, 0x03], "test").unwrap();
        assert!(get_int_key(map(&value, "m").unwrap(), 1, "k").is_err());
    }

    #[test]
    fn huge_announced_lengths_do_not_allocate() {
        // a byte string, a text string, an array and a map each claiming 2^63 - 1 entries
        for major in [0x5b, 0x7b, 0x9b, 0xbb] {
            let bytes = [major, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
            assert!(decode_prefix(&bytes, "test").is_err());
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let bytes = vec![0x81; 100_000]; // [[[[…
        assert!(decode_prefix(&bytes, "test").is_err());
    }
}
