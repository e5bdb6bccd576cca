//! The shared samples (`tests/fixtures/ad-samples`): raw `nTSecurityDescriptor` values captured
//! from Samba, each with Samba's own SDDL rendering as the expected output.

use std::path::PathBuf;

use base64::Engine;
use latchkey_ad::guid::well_known::*;
use latchkey_ad::rights::{self, Decision, Principal, Right};
use latchkey_ad::{Control, SecurityDescriptor, Sid};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ad-samples")
}

pub fn load(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(dir().join(format!("{name}.b64"))).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap()
}

pub fn all_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".b64").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_sample_renders_like_samba() {
    let names = all_names();
    assert!(names.len() >= 9, "samples missing: {names:?}");
    for name in names {
        let sd =
            SecurityDescriptor::from_bytes(&load(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = std::fs::read_to_string(dir().join(format!("{name}.sddl"))).unwrap();
        assert_eq!(sd.to_sddl(), expected.trim(), "{name}");
    }
}

#[test]
fn every_sample_round_trips_through_binary_and_sddl() {
    for name in all_names() {
        let sd = SecurityDescriptor::from_bytes(&load(&name)).unwrap();
        let again = SecurityDescriptor::from_bytes(&sd.to_bytes().unwrap()).unwrap();
        assert_eq!(again, sd, "{name}: binary");
        let parsed = SecurityDescriptor::from_sddl(&sd.to_sddl(), None).unwrap();
        assert_eq!(parsed.to_sddl(), sd.to_sddl(), "{name}: sddl");
        assert_eq!(parsed.dacl, sd.dacl, "{name}: dacl");
    }
}

#[test]
fn header_fields_of_the_domain_root() {
    let sd = SecurityDescriptor::from_bytes(&load("domain-root.dacl")).unwrap();
    assert_eq!(sd.control.0, 0x8404);
    assert!(sd.control.has(Control::DACL_AUTO_INHERITED));
    assert!(sd.owner.is_none() && sd.group.is_none() && sd.sacl.is_none());
    assert_eq!(sd.dacl.as_ref().unwrap().aces.len(), 51);
    let full = SecurityDescriptor::from_bytes(&load("domain-root.full-with-sacl")).unwrap();
    assert_eq!(full.owner.unwrap().to_string(), "S-1-5-32-544");
    assert_eq!(full.sacl.unwrap().aces.len(), 5);
    let carol = SecurityDescriptor::from_bytes(&load("user-carol-protected.dacl")).unwrap();
    assert!(carol.dacl_protected());
}

fn connector() -> Principal {
    let sid: Sid = "S-1-5-21-1340790912-937897708-3915185344-1106"
        .parse()
        .unwrap();
    let users: Sid = "S-1-5-21-1340790912-937897708-3915185344-513"
        .parse()
        .unwrap();
    Principal::from_token_groups(sid, [users])
}

const WRITEBACK: [Right; 4] = [
    Right::ControlAccess(RESET_PASSWORD),
    Right::ControlAccess(CHANGE_PASSWORD),
    Right::WriteProperty {
        attribute: LOCKOUT_TIME,
        property_set: None,
    },
    Right::WriteProperty {
        attribute: PWD_LAST_SET,
        property_set: Some(USER_ACCOUNT_RESTRICTIONS),
    },
];

#[test]
fn samples_give_the_verdicts_samba_enforced() {
    let p = connector();
    let sd = |n: &str| SecurityDescriptor::from_bytes(&load(n)).unwrap();
    // Delegated at the root: a future user in OU=LabUsers and the existing alice get all four.
    let ou = sd("ou-labusers.dacl");
    for right in WRITEBACK {
        let aces = rights::future_child_aces(ou.dacl.as_ref().unwrap(), None, CLASS_USER);
        assert!(
            rights::evaluate(&p, &aces, right).is_granted(),
            "{right:?} on new user"
        );
        assert!(
            rights::check_object(&p, &sd("user-alice.dacl"), right).is_granted(),
            "{right:?} on alice"
        );
        // Not for inetOrgPerson objects: the delegation names class user.
        let inet =
            rights::future_child_aces(ou.dacl.as_ref().unwrap(), None, CLASS_INET_ORG_PERSON);
        assert!(
            !rights::evaluate(&p, &inet, right).is_granted(),
            "{right:?} on inetOrgPerson"
        );
    }
    // Carol (emulated SDProp) gets none of the delegated rights.
    let carol = sd("user-carol-protected.dacl");
    assert_eq!(
        rights::check_object(&p, &carol, WRITEBACK[0]),
        Decision::NotGranted
    );
    // Unexpire Password on the root: explicit ACE for the connector (the first ACE).
    let d = rights::check_object(
        &p,
        &sd("domain-root.dacl"),
        Right::ControlAccess(UNEXPIRE_PASSWORD),
    );
    assert!(
        matches!(&d, Decision::Granted(e) if e.ace.index == 0),
        "{d:?}"
    );
    // Undelegated root: still granted, through Authenticated Users (a default).
    let d = rights::check_object(
        &p,
        &sd("domain-root.dacl.undelegated"),
        Right::ControlAccess(UNEXPIRE_PASSWORD),
    );
    assert!(
        matches!(&d, Decision::Granted(e) if e.matched.to_string() == "S-1-5-11"),
        "{d:?}"
    );
    // Undelegated root: a future user directly under it has no reset right.
    let undelegated = sd("domain-root.dacl.undelegated");
    let aces = rights::future_child_aces(undelegated.dacl.as_ref().unwrap(), None, CLASS_USER);
    assert!(!rights::evaluate(&p, &aces, WRITEBACK[0]).is_granted());
}
