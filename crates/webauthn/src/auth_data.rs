//! Authenticator data (WebAuthn §6.1):
//! `rpIdHash[32] | flags[1] | signCount[4, BE] | attestedCredentialData? | extensions?`,
//! where attested credential data is `aaguid[16] | credIdLen[2, BE] | credId | COSE_Key`.
//! Neither the COSE key nor the extensions map carries a length, so each is found by decoding it.

use crate::cose::CoseKey;
use crate::{Error, RelyingParty, cbor, sha256};

/// Flag bits (§6.1).
pub(crate) mod flag {
    /// User present.
    pub const UP: u8 = 0x01;
    /// User verified.
    pub const UV: u8 = 0x04;
    /// Backup eligible.
    pub const BE: u8 = 0x08;
    /// Backed up.
    pub const BS: u8 = 0x10;
    /// Attested credential data included.
    pub const AT: u8 = 0x40;
    /// Extension data included.
    pub const ED: u8 = 0x80;
}

/// Credential ids are at most 1023 bytes (WebAuthn Level 3, §7.1 step 23).
const MAX_CREDENTIAL_ID: usize = 1023;

/// Parsed authenticator data, borrowing the raw bytes.
#[derive(Debug)]
pub(crate) struct AuthData<'a> {
    pub rp_id_hash: &'a [u8],
    pub flags: u8,
    pub sign_count: u32,
    pub attested: Option<AttestedCredential<'a>>,
}

/// Attested credential data (present when AT is set).
#[derive(Debug)]
pub(crate) struct AttestedCredential<'a> {
    pub aaguid: [u8; 16],
    pub credential_id: &'a [u8],
    pub public_key: CoseKey,
}

/// Splits `n` bytes off the front of `*rest`, or fails as malformed authenticator data.
fn take<'a>(rest: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], Error> {
    let (head, tail) = rest.split_at_checked(n).ok_or(Error::Malformed(what))?;
    *rest = tail;
    Ok(head)
}

impl<'a> AuthData<'a> {
    /// Parses authenticator data; anything after the last announced part is refused.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        const WHAT: &str = "authenticator data";
        let mut rest = bytes;
        let rp_id_hash = take(&mut rest, 32, WHAT)?;
        let flags = *take(&mut rest, 1, WHAT)?
            .first()
            .ok_or(Error::Malformed(WHAT))?;
        let count: [u8; 4] = take(&mut rest, 4, WHAT)?
            .try_into()
            .map_err(|_| Error::Malformed(WHAT))?;
        let sign_count = u32::from_be_bytes(count);

        // Level 3: a credential that is not backup eligible cannot be backed up.
        if flags & flag::BE == 0 && flags & flag::BS != 0 {
            return Err(Error::Malformed("flags (BS set without BE)"));
        }

        let attested = if flags & flag::AT != 0 {
            let aaguid: [u8; 16] = take(&mut rest, 16, WHAT)?
                .try_into()
                .map_err(|_| Error::Malformed(WHAT))?;
            let len: [u8; 2] = take(&mut rest, 2, WHAT)?
                .try_into()
                .map_err(|_| Error::Malformed(WHAT))?;
            let len = usize::from(u16::from_be_bytes(len));
            if len == 0 || len > MAX_CREDENTIAL_ID {
                return Err(Error::Malformed("credential id length"));
            }
            let credential_id = take(&mut rest, len, WHAT)?;
            let (public_key, used) = CoseKey::from_prefix(rest)?;
            take(&mut rest, used, WHAT)?;
            Some(AttestedCredential {
                aaguid,
                credential_id,
                public_key,
            })
        } else {
            None
        };

        if flags & flag::ED != 0 {
            // Extensions are not interpreted (none are requested), only delimited.
            let (extensions, used) = cbor::decode_prefix(rest, "authenticator extensions")?;
            cbor::map(&extensions, "authenticator extensions")?;
            take(&mut rest, used, WHAT)?;
        }

        if !rest.is_empty() {
            return Err(Error::Malformed("trailing bytes after authenticator data"));
        }
        Ok(Self {
            rp_id_hash,
            flags,
            sign_count,
            attested,
        })
    }

    pub(crate) fn user_verified(&self) -> bool {
        self.flags & flag::UV != 0
    }

    pub(crate) fn backup_eligible(&self) -> bool {
        self.flags & flag::BE != 0
    }

    pub(crate) fn backed_up(&self) -> bool {
        self.flags & flag::BS != 0
    }

    /// The checks both ceremonies share: the data is for this relying party, the user was
    /// present, and verified when that is required.
    pub(crate) fn check(
        &self,
        rp: &RelyingParty,
        user_verification_required: bool,
    ) -> Result<(), Error> {
        if self.rp_id_hash != sha256(rp.id.as_bytes()) {
            return Err(Error::RpIdHash);
        }
        if self.flags & flag::UP == 0 {
            return Err(Error::UserNotPresent);
        }
        if user_verification_required && !self.user_verified() {
            return Err(Error::UserNotVerified);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(flags: u8) -> Vec<u8> {
        let mut out = sha256(b"example.com").to_vec();
        out.push(flags);
        out.extend(7u32.to_be_bytes());
        out
    }

    #[test]
    fn plain_assertion_data_parses() {
        let data = header(flag::UP | flag::UV);
        let parsed = AuthData::parse(&data).unwrap();
        assert_eq!(parsed.sign_count, 7);
        assert!(parsed.user_verified() && parsed.attested.is_none());
        let rp = RelyingParty {
            id: "example.com".into(),
            origins: vec![],
        };
        parsed.check(&rp, true).unwrap();
    }

    #[test]
    fn extensions_are_delimited_and_trailing_bytes_refused() {
        let mut data = header(flag::UP | flag::ED);
        data.extend([0xa1, 0x61, b'x', 0xf5]); // {"x": true}
        AuthData::parse(&data).unwrap();
        data.push(0);
        assert!(AuthData::parse(&data).is_err());
        assert!(AuthData::parse(&header(flag::UP | flag::ED)).is_err());
        let mut not_a_map = header(flag::UP | flag::ED);
        not_a_map.push(0x01);
        assert!(AuthData::parse(&not_a_map).is_err());
    }

    #[test]
    fn backed_up_without_eligibility_is_malformed() {
        assert!(AuthData::parse(&header(flag::UP | flag::BS)).is_err());
        AuthData::parse(&header(flag::UP | flag::BS | flag::BE)).unwrap();
    }
}
