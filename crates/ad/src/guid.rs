//! GUIDs as Active Directory stores them.
//!
//! On the wire (objectGUID, schemaIDGUID, the object types inside object ACEs) a GUID is the
//! Windows `GUID` struct in little-endian: the first three fields (u32, u16, u16) are byte-swapped
//! relative to the text form, the last 8 bytes are not ("mixed-endian"). Getting this wrong
//! silently produces a different, valid-looking GUID, so the wire order is the only stored form
//! and the text form is computed.

use std::fmt;
use std::str::FromStr;

use crate::error::TextError;

/// A GUID, stored in AD wire (mixed-endian) byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid([u8; 16]);

impl Guid {
    /// From the 16 bytes as found in LDAP attributes and ACEs.
    pub const fn from_wire(bytes: [u8; 16]) -> Guid {
        Guid(bytes)
    }

    /// From the text fields `d1-d2-d3-d4[0..2]-d4[2..8]`, usable in constants.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// The 16 bytes in wire order.
    pub const fn to_wire(self) -> [u8; 16] {
        self.0
    }

    /// The wire bytes as an LDAP filter value (`\xx` escapes), e.g. for `(schemaIDGUID=...)`.
    pub fn to_ldap_filter_value(self) -> String {
        self.0.iter().map(|b| format!("\\{b:02x}")).collect()
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        // Lower-case, as Samba, dsacls and the Microsoft schema pages print them.
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[3],
            b[2],
            b[1],
            b[0],
            b[5],
            b[4],
            b[7],
            b[6],
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl FromStr for Guid {
    type Err = TextError;

    /// Accepts `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, optionally in braces, any case.
    fn from_str(s: &str) -> Result<Guid, TextError> {
        let err = |reason: &str| TextError::new("GUID", s, reason);
        let t = s
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(s);
        // from_str_radix alone would accept a leading '+'.
        if !t.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
            return Err(err("not hex"));
        }
        let groups: Vec<&str> = t.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if groups.len() != 5 || groups.iter().zip(lens).any(|(g, n)| g.len() != n) {
            return Err(err("expected 8-4-4-4-12 hex digits"));
        }
        let mut hex = [0u8; 16];
        let digits: String = groups.concat();
        for (i, byte) in hex.iter_mut().enumerate() {
            let pair = digits.get(2 * i..2 * i + 2).ok_or_else(|| err("not hex"))?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| err("not hex"))?;
        }
        let d1 = u32::from_be_bytes([hex[0], hex[1], hex[2], hex[3]]);
        let d2 = u16::from_be_bytes([hex[4], hex[5]]);
        let d3 = u16::from_be_bytes([hex[6], hex[7]]);
        let mut d4 = [0u8; 8];
        d4.copy_from_slice(&hex[8..]);
        Ok(Guid::from_fields(d1, d2, d3, d4))
    }
}

/// Schema and extended-rights GUIDs the gateway reasons about. Sources: Microsoft Learn,
/// Active Directory schema pages (r-user-force-change-password, r-user-change-password,
/// a-lockouttime, a-pwdlastset, c-user, c-inetorgperson) and MS-ADTS 5.1.3.2.1 (Unexpire-Password);
/// all confirmed in a live Samba schema (see the shared samba-ad reference).
pub mod well_known {
    use super::Guid;

    /// Control access right `User-Force-Change-Password` ("Reset Password").
    pub const RESET_PASSWORD: Guid = Guid::from_fields(
        0x0029_9570,
        0x246d,
        0x11d0,
        [0xa7, 0x68, 0x00, 0xaa, 0x00, 0x6e, 0x05, 0x29],
    );
    /// Control access right `User-Change-Password` ("Change Password").
    pub const CHANGE_PASSWORD: Guid = Guid::from_fields(
        0xab72_1a53,
        0x1e2f,
        0x11d0,
        [0x98, 0x19, 0x00, 0xaa, 0x00, 0x40, 0x52, 0x9b],
    );
    /// Control access right `Unexpire-Password` (on the domain object).
    pub const UNEXPIRE_PASSWORD: Guid = Guid::from_fields(
        0xccc2_dc7d,
        0xa6ad,
        0x4a7a,
        [0x88, 0x46, 0xc0, 0x4e, 0x3c, 0xc5, 0x35, 0x01],
    );
    /// Attribute `lockoutTime` (schemaIDGUID). Not part of any property set.
    pub const LOCKOUT_TIME: Guid = Guid::from_fields(
        0x2863_0ebf,
        0x41d5,
        0x11d1,
        [0xa9, 0xc1, 0x00, 0x00, 0xf8, 0x03, 0x67, 0xc1],
    );
    /// Attribute `pwdLastSet` (schemaIDGUID).
    pub const PWD_LAST_SET: Guid = Guid::from_fields(
        0xbf96_7a0a,
        0x0de6,
        0x11d0,
        [0xa2, 0x85, 0x00, 0xaa, 0x00, 0x30, 0x49, 0xe2],
    );
    /// Property set `User-Account-Restrictions`, which contains pwdLastSet (its
    /// attributeSecurityGUID): a WP ACE on this set grants writing pwdLastSet.
    pub const USER_ACCOUNT_RESTRICTIONS: Guid = Guid::from_fields(
        0x4c16_4200,
        0x20c0,
        0x11d0,
        [0xa7, 0x68, 0x00, 0xaa, 0x00, 0x6e, 0x05, 0x29],
    );
    /// Class `user` (schemaIDGUID), the usual inherited object type of delegations.
    pub const CLASS_USER: Guid = Guid::from_fields(
        0xbf96_7aba,
        0x0de6,
        0x11d0,
        [0xa2, 0x85, 0x00, 0xaa, 0x00, 0x30, 0x49, 0xe2],
    );
    /// Class `inetOrgPerson` (schemaIDGUID): a subclass of user that inheritance treats as a
    /// different class, so delegations to "user objects" do not reach it.
    pub const CLASS_INET_ORG_PERSON: Guid = Guid::from_fields(
        0x4828_cc14,
        0x1437,
        0x45bc,
        [0x9b, 0x07, 0xad, 0x6f, 0x01, 0x5e, 0x5f, 0x28],
    );
}

#[cfg(test)]
mod tests {
    use super::well_known::*;
    use super::*;

    #[test]
    fn text_and_wire_orders() {
        let g: Guid = "00299570-246d-11d0-a768-00aa006e0529".parse().unwrap();
        assert_eq!(g, RESET_PASSWORD);
        assert_eq!(
            g.to_wire(),
            [
                0x70, 0x95, 0x29, 0x00, 0x6d, 0x24, 0xd0, 0x11, 0xa7, 0x68, 0x00, 0xaa, 0x00, 0x6e,
                0x05, 0x29
            ]
        );
        assert_eq!(g.to_string(), "00299570-246d-11d0-a768-00aa006e0529");
        assert_eq!(
            "{BF967ABA-0DE6-11D0-A285-00AA003049E2}"
                .parse::<Guid>()
                .unwrap(),
            CLASS_USER
        );
        assert_eq!(
            g.to_ldap_filter_value(),
            "\\70\\95\\29\\00\\6d\\24\\d0\\11\\a7\\68\\00\\aa\\00\\6e\\05\\29"
        );
    }

    #[test]
    fn constants_match_their_text() {
        for (g, s) in [
            (CHANGE_PASSWORD, "ab721a53-1e2f-11d0-9819-00aa0040529b"),
            (UNEXPIRE_PASSWORD, "ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501"),
            (LOCKOUT_TIME, "28630ebf-41d5-11d1-a9c1-0000f80367c1"),
            (PWD_LAST_SET, "bf967a0a-0de6-11d0-a285-00aa003049e2"),
            (
                USER_ACCOUNT_RESTRICTIONS,
                "4c164200-20c0-11d0-a768-00aa006e0529",
            ),
            (
                CLASS_INET_ORG_PERSON,
                "4828cc14-1437-45bc-9b07-ad6f015e5f28",
            ),
        ] {
            assert_eq!(g.to_string(), s);
            assert_eq!(s.parse::<Guid>().unwrap(), g);
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "00299570246d11d0a76800aa006e0529",
            "00299570-246d-11d0-a768-00aa006e052",
            "0029957g-246d-11d0-a768-00aa006e0529",
            "+0299570-246d-11d0-a768-00aa006e0529",
            "{00299570-246d-11d0-a768-00aa006e0529",
            "é0299570-246d-11d0-a768-00aa006e0529",
        ] {
            assert!(s.parse::<Guid>().is_err(), "{s}");
        }
    }
}
