//! A minimal CTAP2-like software authenticator, for tests (feature `soft`; never in a product
//! build). ES256 keys from ring, discoverable credentials, a per-credential counter, `none` or
//! packed self attestation, and knobs for the flags so tests can produce what real authenticators
//! (and broken or cloned ones) send.

use ciborium::Value;
use latchkey_types::random::{self, NoRandomness};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};

use crate::attestation::attestation_object;
use crate::auth_data::flag;
use crate::{Algorithm, AttestationFormat, AttestationStatement, Error, cbor, sha256};

/// Flag bits of authenticator data, for tests that build their own.
pub mod flags {
    pub use crate::auth_data::flag::{AT, BE, BS, ED, UP, UV};
}

/// Authenticator data: `SHA-256(rp_id) | flags | sign_count | [aaguid | len | id | cose_key]`.
/// The AT flag is set when `attested` is given; the caller sets the others (and appends
/// extensions itself, with ED).
pub fn authenticator_data(
    rp_id: &str,
    flags: u8,
    sign_count: u32,
    attested: Option<(&[u8; 16], &[u8], &[u8])>,
) -> Vec<u8> {
    let mut out = sha256(rp_id.as_bytes()).to_vec();
    out.push(if attested.is_some() {
        flags | flag::AT
    } else {
        flags
    });
    out.extend_from_slice(&sign_count.to_be_bytes());
    if let Some((aaguid, credential_id, public_key)) = attested {
        out.extend_from_slice(aaguid);
        let len = u16::try_from(credential_id.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(credential_id);
        out.extend_from_slice(public_key);
    }
    out
}

/// Which attestation the authenticator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftAttestation {
    /// Format `none`.
    None,
    /// Format `packed`, signed by the new credential's own key.
    PackedSelf,
}

/// The flags the authenticator reports (and whether it counts signatures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftFlags {
    /// UP in every response.
    pub user_present: bool,
    /// UV in assertions (`make_credential` takes its own argument).
    pub user_verified: bool,
    /// BE in every response.
    pub backup_eligible: bool,
    /// BS in every response.
    pub backed_up: bool,
    /// Whether each assertion increments the credential's counter; when false the counter keeps
    /// its value (0 unless set), as synced passkeys do.
    pub counter: bool,
}

impl Default for SoftFlags {
    fn default() -> Self {
        Self {
            user_present: true,
            user_verified: true,
            backup_eligible: false,
            backed_up: false,
            counter: true,
        }
    }
}

/// A new credential, as authenticatorMakeCredential returns it.
#[derive(Debug, Clone)]
pub struct SoftCredential {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The authenticator data (with attested credential data).
    pub auth_data: Vec<u8>,
    /// The attestation statement.
    pub statement: AttestationStatement,
}

impl SoftCredential {
    /// The attestation format of the statement.
    pub fn format(&self) -> AttestationFormat {
        match self.statement {
            AttestationStatement::None => AttestationFormat::None,
            AttestationStatement::Packed { .. } => AttestationFormat::Packed,
        }
    }

    /// The attestationObject a browser would hand to the relying party.
    pub fn attestation_object(&self) -> Result<Vec<u8>, Error> {
        attestation_object(self.format(), &self.auth_data, &self.statement)
    }
}

/// An assertion, as authenticatorGetAssertion returns it.
#[derive(Debug, Clone)]
pub struct SoftAssertion {
    /// The credential used.
    pub credential_id: Vec<u8>,
    /// The authenticator data (no attested credential data).
    pub auth_data: Vec<u8>,
    /// ASN.1 DER ECDSA signature over auth_data ‖ clientDataHash.
    pub signature: Vec<u8>,
    /// The credential's user handle (always returned: every credential here is discoverable).
    pub user_handle: Option<Vec<u8>>,
}

struct SoftKey {
    id: Vec<u8>,
    rp_id: String,
    user_handle: Vec<u8>,
    key: EcdsaKeyPair,
    counter: u32,
}

/// The software authenticator: a list of discoverable ES256 credentials.
pub struct SoftAuthenticator {
    aaguid: [u8; 16],
    /// The flags it reports; change them between calls.
    pub flags: SoftFlags,
    credentials: Vec<SoftKey>,
}

// Private keys stay out of Debug output.
impl std::fmt::Debug for SoftAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftAuthenticator")
            .field("aaguid", &self.aaguid)
            .field("flags", &self.flags)
            .field("credentials", &self.credentials.len())
            .finish()
    }
}

impl SoftAuthenticator {
    /// An empty authenticator of model `aaguid`, with default flags (UP, UV, counting).
    pub fn new(aaguid: [u8; 16]) -> Self {
        Self {
            aaguid,
            flags: SoftFlags::default(),
            credentials: Vec::new(),
        }
    }

    fn flag_bits(&self, user_verified: bool) -> u8 {
        let mut bits = 0;
        for (on, bit) in [
            (self.flags.user_present, flag::UP),
            (user_verified, flag::UV),
            (self.flags.backup_eligible, flag::BE),
            (self.flags.backed_up, flag::BS),
        ] {
            if on {
                bits |= bit;
            }
        }
        bits
    }

    /// authenticatorMakeCredential: a new discoverable ES256 credential for `rp_id` (replacing
    /// this user's previous one for that RP, as resident keys do). Refuses with
    /// [`Error::CredentialExcluded`] when one of `exclude` is already here for this RP.
    pub fn make_credential(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
        user_handle: &[u8],
        user_verified: bool,
        exclude: &[Vec<u8>],
        attestation: SoftAttestation,
    ) -> Result<SoftCredential, Error> {
        if self
            .credentials
            .iter()
            .any(|c| c.rp_id == rp_id && exclude.contains(&c.id))
        {
            return Err(Error::CredentialExcluded);
        }
        let rng = random::generator();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| NoRandomness)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| Error::Malformed("generated key"))?;
        let id = random::bytes::<32>()?.to_vec();

        let cose_key = es256_cose_key(key.public_key().as_ref())?;
        let auth_data = authenticator_data(
            rp_id,
            self.flag_bits(user_verified),
            0,
            Some((&self.aaguid, &id, &cose_key)),
        );
        let statement = match attestation {
            SoftAttestation::None => AttestationStatement::None,
            SoftAttestation::PackedSelf => AttestationStatement::Packed {
                alg: Algorithm::Es256,
                sig: sign(&key, &auth_data, client_data_hash)?,
                x5c: Vec::new(),
            },
        };
        self.credentials
            .retain(|c| !(c.rp_id == rp_id && c.user_handle == user_handle));
        self.credentials.push(SoftKey {
            id: id.clone(),
            rp_id: rp_id.to_owned(),
            user_handle: user_handle.to_vec(),
            key,
            counter: 0,
        });
        Ok(SoftCredential {
            credential_id: id,
            auth_data,
            statement,
        })
    }

    /// authenticatorGetAssertion: signs with the newest credential for `rp_id` that is in
    /// `allow` (any of them when `allow` is empty: a discoverable login).
    pub fn get_assertion(
        &mut self,
        rp_id: &str,
        client_data_hash: &[u8; 32],
        allow: &[Vec<u8>],
    ) -> Result<SoftAssertion, Error> {
        let flags = self.flag_bits(self.flags.user_verified);
        let counting = self.flags.counter;
        let credential = self
            .credentials
            .iter_mut()
            .rev()
            .find(|c| c.rp_id == rp_id && (allow.is_empty() || allow.contains(&c.id)))
            .ok_or(Error::NoCredential)?;
        if counting {
            credential.counter = credential.counter.saturating_add(1);
        }
        let auth_data = authenticator_data(rp_id, flags, credential.counter, None);
        let signature = sign(&credential.key, &auth_data, client_data_hash)?;
        Ok(SoftAssertion {
            credential_id: credential.id.clone(),
            auth_data,
            signature,
            user_handle: Some(credential.user_handle.clone()),
        })
    }

    /// Sets a credential's counter, e.g. back to an older value to play a cloned key.
    pub fn set_counter(&mut self, credential_id: &[u8], value: u32) -> Result<(), Error> {
        let credential = self
            .credentials
            .iter_mut()
            .find(|c| c.id == credential_id)
            .ok_or(Error::NoCredential)?;
        credential.counter = value;
        Ok(())
    }
}

/// ECDSA P-256 (DER) over `auth_data ‖ client_data_hash`.
fn sign(
    key: &EcdsaKeyPair,
    auth_data: &[u8],
    client_data_hash: &[u8; 32],
) -> Result<Vec<u8>, Error> {
    let mut signed = auth_data.to_vec();
    signed.extend_from_slice(client_data_hash);
    let signature = key
        .sign(&random::generator(), &signed)
        .map_err(|_| NoRandomness)?;
    Ok(signature.as_ref().to_vec())
}

/// The COSE_Key of an uncompressed P-256 point, in CTAP2 canonical key order.
fn es256_cose_key(point: &[u8]) -> Result<Vec<u8>, Error> {
    let (x, y) = point
        .strip_prefix(&[0x04])
        .filter(|c| c.len() == 64)
        .and_then(|c| c.split_at_checked(32))
        .ok_or(Error::Malformed("generated key"))?;
    cbor::encode(&Value::Map(vec![
        (Value::from(1), Value::from(2)),
        (Value::from(3), Value::from(Algorithm::Es256.cose())),
        (Value::from(-1), Value::from(1)),
        (Value::from(-2), Value::Bytes(x.to_vec())),
        (Value::from(-3), Value::Bytes(y.to_vec())),
    ]))
}
