//! Security identifiers (MS-DTYP 2.4.2): binary form as in `objectSid`, `tokenGroups` and ACEs,
//! and the string form `S-1-5-21-...`.

use std::fmt;
use std::str::FromStr;

use crate::error::{ParseError, Reader, TextError};

/// MS-DTYP caps a SID at 15 sub-authorities; anything longer is corrupt.
pub const MAX_SUB_AUTHORITIES: usize = 15;

/// A security identifier.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    revision: u8,
    /// The 48-bit identifier authority (big-endian on the wire).
    authority: u64,
    sub_authorities: Vec<u32>,
}

impl Sid {
    /// A SID from its parts; `None` when the authority exceeds 48 bits or there are more than 15
    /// sub-authorities.
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Option<Sid> {
        (authority < 1 << 48 && sub_authorities.len() <= MAX_SUB_AUTHORITIES).then(|| Sid {
            revision: 1,
            authority,
            sub_authorities: sub_authorities.to_vec(),
        })
    }

    /// Decodes a SID at the start of `bytes`; returns it and its length in bytes. Trailing bytes
    /// are allowed (SIDs are embedded in ACEs and descriptors).
    pub fn from_prefix(bytes: &[u8]) -> Result<(Sid, usize), ParseError> {
        let r = Reader::new(bytes, "SID");
        let revision = r.u8(0)?;
        let count = usize::from(r.u8(1)?);
        if count > MAX_SUB_AUTHORITIES {
            return Err(ParseError::invalid(
                "SID",
                format!("{count} sub-authorities (at most {MAX_SUB_AUTHORITIES})"),
            ));
        }
        let authority = r
            .slice(2, 6)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let mut sub_authorities = Vec::with_capacity(count);
        for i in 0..count {
            sub_authorities.push(r.u32(8 + 4 * i)?);
        }
        Ok((
            Sid {
                revision,
                authority,
                sub_authorities,
            },
            8 + 4 * count,
        ))
    }

    /// Decodes a SID that fills `bytes` exactly (an `objectSid` or `tokenGroups` value).
    pub fn from_bytes(bytes: &[u8]) -> Result<Sid, ParseError> {
        let (sid, len) = Sid::from_prefix(bytes)?;
        if len != bytes.len() {
            return Err(ParseError::invalid(
                "SID",
                format!("{} bytes for a {len}-byte SID", bytes.len()),
            ));
        }
        Ok(sid)
    }

    /// Binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.binary_len());
        self.write(&mut out);
        out
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(self.revision);
        // Length is bounded by construction (parse and new both cap it at 15).
        out.push(u8::try_from(self.sub_authorities.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in &self.sub_authorities {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    /// Size of the binary form.
    pub fn binary_len(&self) -> usize {
        8 + 4 * self.sub_authorities.len()
    }

    pub fn authority(&self) -> u64 {
        self.authority
    }

    pub fn sub_authorities(&self) -> &[u32] {
        &self.sub_authorities
    }

    /// The last sub-authority (the RID of an account SID).
    pub fn rid(&self) -> Option<u32> {
        self.sub_authorities.last().copied()
    }

    /// The SID without its last sub-authority (the domain SID of an account SID).
    pub fn parent(&self) -> Option<Sid> {
        let (_, head) = self.sub_authorities.split_last()?;
        Some(Sid {
            revision: self.revision,
            authority: self.authority,
            sub_authorities: head.to_vec(),
        })
    }

    /// This SID with one more sub-authority appended (a domain SID plus a RID).
    pub fn with_rid(&self, rid: u32) -> Option<Sid> {
        if self.sub_authorities.len() >= MAX_SUB_AUTHORITIES {
            return None;
        }
        let mut s = self.clone();
        s.sub_authorities.push(rid);
        Some(s)
    }

    /// The objectSid as an LDAP filter value (`\xx` escapes), e.g. `(objectSid=...)`.
    pub fn to_ldap_filter_value(&self) -> String {
        self.to_bytes()
            .iter()
            .map(|b| format!("\\{b:02x}"))
            .collect()
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-{}-", self.revision)?;
        // Same rule as Samba's dom_sid_string (MS-DTYP 2.4.2.1 agrees on decimal below 2^32):
        // hexadecimal for large authorities.
        if self.authority >= u64::from(u32::MAX) {
            write!(f, "0x{:x}", self.authority)?;
        } else {
            write!(f, "{}", self.authority)?;
        }
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({self})")
    }
}

impl FromStr for Sid {
    type Err = TextError;

    /// `S-R-I-S-S...`, I decimal or `0x` hexadecimal; case-insensitive prefix.
    fn from_str(s: &str) -> Result<Sid, TextError> {
        let err = |reason: &str| TextError::new("SID", s, reason);
        let rest = s
            .strip_prefix("S-")
            .or_else(|| s.strip_prefix("s-"))
            .ok_or_else(|| err("must start with S-"))?;
        let mut parts = rest.split('-');
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        let revision = parts
            .next()
            .filter(|p| digits(p))
            .and_then(|p| p.parse::<u8>().ok())
            .ok_or_else(|| err("bad revision"))?;
        let auth = parts.next().ok_or_else(|| err("missing authority"))?;
        let authority =
            if let Some(hex) = auth.strip_prefix("0x").or_else(|| auth.strip_prefix("0X")) {
                if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err("bad authority"));
                }
                u64::from_str_radix(hex, 16).map_err(|_| err("bad authority"))?
            } else if digits(auth) {
                auth.parse::<u64>().map_err(|_| err("bad authority"))?
            } else {
                return Err(err("bad authority"));
            };
        if authority >= 1 << 48 {
            return Err(err("authority exceeds 48 bits"));
        }
        let mut sub_authorities = Vec::new();
        for p in parts {
            if !digits(p) {
                return Err(err("bad sub-authority"));
            }
            sub_authorities.push(
                p.parse::<u32>()
                    .map_err(|_| err("sub-authority exceeds 32 bits"))?,
            );
        }
        if sub_authorities.len() > MAX_SUB_AUTHORITIES {
            return Err(err("more than 15 sub-authorities"));
        }
        Ok(Sid {
            revision,
            authority,
            sub_authorities,
        })
    }
}

/// Well-known SIDs the checks refer to.
pub mod well_known {
    use super::Sid;

    fn sid(authority: u64, subs: &[u32]) -> Sid {
        Sid {
            revision: 1,
            authority,
            sub_authorities: subs.to_vec(),
        }
    }

    /// Everyone (`WD`).
    pub fn everyone() -> Sid {
        sid(1, &[0])
    }
    /// Authenticated Users (`AU`), in every authenticated token.
    pub fn authenticated_users() -> Sid {
        sid(5, &[11])
    }
    /// Principal Self (`PS`): stands for the object itself, so it matches only when the
    /// principal is the object being accessed.
    pub fn principal_self() -> Sid {
        sid(5, &[10])
    }
    /// Creator Owner (`CO`): replaced by the creator on inheritance, never in a token.
    pub fn creator_owner() -> Sid {
        sid(3, &[0])
    }
    /// BUILTIN\Administrators (`BA`).
    pub fn builtin_administrators() -> Sid {
        sid(5, &[32, 544])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "S-1-5-21-1340790912-937897708-3915185344-1106";

    #[test]
    fn string_round_trip_and_binary() {
        let sid: Sid = ALICE.parse().unwrap();
        assert_eq!(sid.to_string(), ALICE);
        assert_eq!(sid.rid(), Some(1106));
        assert_eq!(
            sid.parent().unwrap().to_string(),
            "S-1-5-21-1340790912-937897708-3915185344"
        );
        let bytes = sid.to_bytes();
        assert_eq!(&bytes[..8], &[1, 5, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&bytes[8..12], &21u32.to_le_bytes());
        assert_eq!(Sid::from_bytes(&bytes).unwrap(), sid);
        assert_eq!(sid.parent().unwrap().with_rid(1106).unwrap(), sid);
    }

    #[test]
    fn authority_formats_like_samba() {
        let big = Sid::from_bytes(&[1, 1, 0x12, 0x34, 0, 0, 0, 0, 5, 0, 0, 0]).unwrap();
        assert_eq!(big.to_string(), "S-1-0x123400000000-5");
        assert_eq!("S-1-0x123400000000-5".parse::<Sid>().unwrap(), big);
        let mid = Sid::from_bytes(&[1, 1, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0]).unwrap();
        assert_eq!(mid.to_string(), "S-1-16777216-5");
        let edge = Sid::from_bytes(&[1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 5, 0, 0, 0]).unwrap();
        assert_eq!(edge.to_string(), "S-1-0xffffffff-5");
        assert_eq!(
            "S-1-5".parse::<Sid>().unwrap().to_bytes(),
            [1, 0, 0, 0, 0, 0, 0, 5]
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "S-",
            "S-1",
            "X-1-5",
            "S-1-5-",
            "S-1-5--1",
            "S-1-5-+1",
            "S-1-5-4294967296",
            "S-1-281474976710656-1",
            "S-1-0x-1",
            "S-256-5",
            "S-1-5-1-2-3-4-5-6-7-8-9-10-11-12-13-14-15-16",
        ] {
            assert!(s.parse::<Sid>().is_err(), "{s}");
        }
        assert!(Sid::from_bytes(&[]).is_err());
        assert!(Sid::from_bytes(&[1, 16, 0, 0, 0, 0, 0, 5]).is_err());
        assert!(Sid::from_bytes(&[1, 1, 0, 0, 0, 0, 0, 5, 1, 2]).is_err());
        assert!(Sid::from_bytes(&[1, 0, 0, 0, 0, 0, 0, 5, 0]).is_err());
    }
}
