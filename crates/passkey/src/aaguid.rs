//! AAGUID → authenticator model name, for the common keys and passkey providers.
//!
//! An AAGUID names a model (often one per firmware generation), never a single device. The
//! table is small on purpose: it names what an admin is likely to hold, so the CLI can say
//! "YubiKey 5 Series with NFC" instead of a GUID; anything else is shown as its GUID. It is
//! informational only and grants no trust (Entra checks attestation itself).
//!
//! Source: the community list passkeydeveloper/passkey-authenticator-aaguids
//! (`aaguid.json` for providers, `combined_aaguid.json` for keys, whose entries come from the
//! FIDO Alliance Metadata Service (MDS3)), cross-checked against Yubico's AAGUID list
//! (<https://yubi.co/aaguids>) for the YubiKey rows. Retrieved 2026-12.

use uuid::{Uuid, uuid};

/// `(AAGUID, model name)`. Names as in the source list.
const MODELS: &[(Uuid, &str)] = &[
    // Yubico
    (
        uuid!("cb69481e-8ff7-4039-93ec-0a2729a154a8"),
        "YubiKey 5 Series",
    ),
    (
        uuid!("ee882879-721c-4913-9775-3dfcce97072a"),
        "YubiKey 5 Series",
    ),
    (
        uuid!("fa2b99dc-9e39-4257-8f92-4a30d23c4118"),
        "YubiKey 5 Series with NFC",
    ),
    (
        uuid!("2fc0579f-8113-47ea-b116-bb5a8db9202a"),
        "YubiKey 5 Series with NFC",
    ),
    (
        uuid!("a25342c0-3cdc-4414-8e46-f4807fca511c"),
        "YubiKey 5 Series with NFC",
    ),
    (uuid!("c5ef55ff-ad9a-4b9f-b580-adebafe026d0"), "YubiKey 5Ci"),
    (
        uuid!("d8522d9f-575b-4866-88a9-ba99fa02f35b"),
        "YubiKey Bio Series",
    ),
    (
        uuid!("90636e1f-ef82-43bf-bdcf-5255f139d12f"),
        "YubiKey Bio Series - Multi-protocol Edition",
    ),
    (
        uuid!("b92c3f9a-c014-4056-887f-140a2501163b"),
        "Security Key by Yubico",
    ),
    (
        uuid!("149a2021-8ef6-4133-96b8-81f8d5b7f1f5"),
        "Security Key by Yubico with NFC",
    ),
    (
        uuid!("a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa"),
        "Security Key NFC by Yubico",
    ),
    // Feitian
    (
        uuid!("833b721a-ff5f-4d00-bb2e-bdda3ec01e29"),
        "Feitian ePass FIDO2 Authenticator",
    ),
    (
        uuid!("ee041bce-25e5-4cdb-8f86-897fd6418464"),
        "Feitian ePass FIDO2-NFC Authenticator",
    ),
    (
        uuid!("77010bd7-212a-4fc9-b236-d2ca5e9d4084"),
        "Feitian BioPass FIDO2 Authenticator",
    ),
    // Google, SoloKeys, Nitrokey
    (
        uuid!("42b4fb4a-2866-43b2-9bf7-6c6669c2e5d3"),
        "Google Titan Security Key v2",
    ),
    (
        uuid!("8876631b-d4a0-427f-5773-0ec71c9e0279"),
        "Solo Secp256R1 FIDO2 CTAP2 Authenticator",
    ),
    (
        uuid!("2cd2f727-f6ca-44da-8f48-5c2e5da000a2"),
        "Nitrokey 3 AM",
    ),
    // Platform authenticators and passkey providers
    (
        uuid!("08987058-cadc-4b81-b6e1-30de50dcbe96"),
        "Windows Hello",
    ),
    (
        uuid!("9ddd1817-af5a-4672-a2b9-3e3dd95000a9"),
        "Windows Hello",
    ),
    (
        uuid!("6028b017-b1d4-4c02-b4b3-afcdafc96bb2"),
        "Windows Hello",
    ),
    (
        uuid!("fbfc3007-154e-4ecc-8c0b-6e020557d7bd"),
        "iCloud Keychain",
    ),
    (
        uuid!("dd4ec289-e01d-41c9-bb89-70fa845d4bf2"),
        "iCloud Keychain (Managed)",
    ),
    (
        uuid!("ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4"),
        "Google Password Manager",
    ),
    (uuid!("bada5566-a7aa-401f-bd96-45619a55120d"), "1Password"),
    (uuid!("d548826e-79b4-db40-a3d8-11116f7e8349"), "Bitwarden"),
    (
        uuid!("90a3ccdf-635c-4729-a248-9b709135078f"),
        "Microsoft Authenticator for iOS",
    ),
    (
        uuid!("de1e552d-db1d-4423-a619-566b625cdc84"),
        "Microsoft Authenticator for Android",
    ),
];

/// The model named by `aaguid` (`8-4-4-4-12` hex in any case; braces and the 32-digit form are
/// accepted too, as `uuid` parses them). `None` for unknown, malformed or all-zero AAGUIDs.
pub fn model_name(aaguid: &str) -> Option<&'static str> {
    Uuid::try_parse(aaguid.trim())
        .ok()
        .and_then(|id| model_for(&id))
}

/// The model named by a 16-byte AAGUID as found in authenticator data.
pub fn model_for_bytes(aaguid: &[u8; 16]) -> Option<&'static str> {
    model_for(&Uuid::from_bytes(*aaguid))
}

/// The model named by `aaguid`; `None` when unknown (the all-zero AAGUID of U2F keys and of
/// authenticators that hide their model is never in the table).
pub fn model_for(aaguid: &Uuid) -> Option<&'static str> {
    MODELS
        .iter()
        .find(|(id, _)| id == aaguid)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_unique_and_not_nil() {
        for (i, (id, name)) in MODELS.iter().enumerate() {
            assert!(!id.is_nil(), "{name}");
            assert!(!name.is_empty());
            assert!(
                MODELS[i + 1..].iter().all(|(other, _)| other != id),
                "duplicate {id}"
            );
        }
    }

    #[test]
    fn lookup_ignores_case_and_form() {
        let nfc = Some("YubiKey 5 Series with NFC");
        assert_eq!(model_name("2fc0579f-8113-47ea-b116-bb5a8db9202a"), nfc);
        assert_eq!(model_name("2FC0579F-8113-47EA-B116-BB5A8DB9202A"), nfc);
        assert_eq!(model_name(" 2fc0579f811347eab116bb5a8db9202a "), nfc);
        assert_eq!(model_name("{2fc0579f-8113-47ea-b116-bb5a8db9202a}"), nfc);
        assert_eq!(model_name("00000000-0000-0000-0000-000000000000"), None);
        assert_eq!(model_name("not a guid"), None);
        let bytes = *uuid!("bada5566-a7aa-401f-bd96-45619a55120d").as_bytes();
        assert_eq!(model_for_bytes(&bytes), Some("1Password"));
    }
}
