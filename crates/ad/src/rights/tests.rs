//! One test per rule, on hand-built descriptors (SDDL keeps them readable).

use super::*;
use crate::guid::well_known::*;

const DOM: &str = "S-1-5-21-1-2-3";

fn sid(rid: u32) -> Sid {
    format!("{DOM}-{rid}").parse().unwrap()
}

fn dacl(sddl: &str) -> Acl {
    let domain: Sid = DOM.parse().unwrap();
    let sddl = sddl
        .replace("$SVC", &sid(1106).to_string())
        .replace("$GRP", &sid(2000).to_string())
        .replace("$OUTER", &sid(2001).to_string());
    SecurityDescriptor::from_sddl(&format!("D:{sddl}"), Some(&domain))
        .unwrap()
        .dacl
        .unwrap()
}

/// The connector account: member of GRP (directly) and OUTER (GRP is nested in OUTER), as
/// tokenGroups reports it.
fn svc() -> Principal {
    Principal::from_token_groups(sid(1106), [sid(513), sid(2000), sid(2001)])
}

const RESET: Right = Right::ControlAccess(RESET_PASSWORD);
const PWD_LAST_SET_W: Right = Right::WriteProperty {
    attribute: PWD_LAST_SET,
    property_set: Some(USER_ACCOUNT_RESTRICTIONS),
};
const LOCKOUT_W: Right = Right::WriteProperty {
    attribute: LOCKOUT_TIME,
    property_set: None,
};

fn on_object(acl: &str, right: Right) -> Decision {
    evaluate(&svc(), &object_aces(&dacl(acl)), right)
}

fn on_future_user(container: &str, right: Right) -> Decision {
    evaluate(
        &svc(),
        &future_child_aces(&dacl(container), None, CLASS_USER),
        right,
    )
}

#[test]
fn explicit_object_ace_grants_only_its_right() {
    let acl = "(OA;;CR;00299570-246d-11d0-a768-00aa006e0529;;$SVC)";
    let d = on_object(acl, RESET);
    let Decision::Granted(ev) = &d else {
        panic!("{d:?}")
    };
    assert_eq!(ev.ace.index, 0);
    assert_eq!(ev.matched, sid(1106));
    assert!(!on_object(acl, Right::ControlAccess(CHANGE_PASSWORD)).is_granted());
    assert_eq!(on_object(acl, LOCKOUT_W), Decision::NotGranted);
}

#[test]
fn no_ace_means_not_granted() {
    assert_eq!(on_object("(A;;RPWP;;;$GRP)", RESET), Decision::NotGranted);
    assert_eq!(on_object("", RESET), Decision::NotGranted);
}

#[test]
fn deny_before_allow_wins_and_order_is_respected() {
    let deny_first = "(OD;;CR;00299570-246d-11d0-a768-00aa006e0529;;$GRP)(OA;;CR;00299570-246d-11d0-a768-00aa006e0529;;$SVC)";
    let d = on_object(deny_first, RESET);
    assert!(
        matches!(&d, Decision::Denied(e) if e.ace.index == 0 && e.matched == sid(2000)),
        "{d:?}"
    );
    // Non-canonical order: the first ACE naming the right decides, as in Windows.
    let allow_first = "(OA;;CR;00299570-246d-11d0-a768-00aa006e0529;;$SVC)(OD;;CR;00299570-246d-11d0-a768-00aa006e0529;;$GRP)";
    assert!(on_object(allow_first, RESET).is_granted());
    assert!(!dacl(allow_first).is_canonical());
    assert!(dacl(deny_first).is_canonical());
}

#[test]
fn explicit_deny_beats_inherited_allow() {
    // Canonical order puts the explicit deny before the inherited allow.
    let acl = "(OD;;WP;28630ebf-41d5-11d1-a9c1-0000f80367c1;;$SVC)(OA;CIID;WP;28630ebf-41d5-11d1-a9c1-0000f80367c1;bf967aba-0de6-11d0-a285-00aa003049e2;$SVC)";
    assert!(matches!(on_object(acl, LOCKOUT_W), Decision::Denied(_)));
    // A deny on another attribute does not matter.
    let other = "(OD;;WP;bf967a0a-0de6-11d0-a285-00aa003049e2;;$SVC)(OA;CIID;WP;28630ebf-41d5-11d1-a9c1-0000f80367c1;;$SVC)";
    assert!(on_object(other, LOCKOUT_W).is_granted());
}

#[test]
fn inherit_only_does_not_apply_to_the_object_itself() {
    let acl = "(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;$SVC)";
    assert_eq!(on_object(acl, RESET), Decision::NotGranted);
    assert!(on_future_user(acl, RESET).is_granted());
}

#[test]
fn nested_group_membership_counts() {
    // Granted to OUTER, of which the account is a member only through GRP.
    let acl = "(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;$OUTER)";
    let d = on_future_user(acl, RESET);
    assert!(
        matches!(&d, Decision::Granted(e) if e.matched == sid(2001)),
        "{d:?}"
    );
    let stranger = Principal::from_token_groups(sid(1200), [sid(513)]);
    let aces = future_child_aces(&dacl(acl), None, CLASS_USER);
    assert!(!evaluate(&stranger, &aces, RESET).is_granted());
}

#[test]
fn logon_sids_are_implied() {
    let acl = "(OA;;CR;ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501;;AU)";
    assert!(on_object(acl, Right::ControlAccess(UNEXPIRE_PASSWORD)).is_granted());
    let exact = Principal::exact(sid(1106), []);
    assert!(
        !evaluate(
            &exact,
            &object_aces(&dacl(acl)),
            Right::ControlAccess(UNEXPIRE_PASSWORD)
        )
        .is_granted()
    );
}

#[test]
fn principal_self_and_creator_owner_do_not_match_the_connector() {
    let acl = "(OA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;PS)(A;;GA;;;CO)";
    assert_eq!(
        on_object(acl, Right::ControlAccess(CHANGE_PASSWORD)),
        Decision::NotGranted
    );
}

#[test]
fn generic_all_and_plain_write_property_cover_every_property() {
    assert!(on_object("(A;;GA;;;$GRP)", RESET).is_granted());
    assert!(on_object("(A;;GA;;;$GRP)", LOCKOUT_W).is_granted());
    assert!(on_object("(A;;WP;;;$GRP)", PWD_LAST_SET_W).is_granted());
    assert!(!on_object("(A;;WP;;;$GRP)", RESET).is_granted());
    assert!(on_object("(A;;CR;;;$GRP)", RESET).is_granted());
    // Object ACE without an object type but with an inherited object type: every property.
    assert!(
        on_future_user(
            "(OA;CIIO;WP;;bf967aba-0de6-11d0-a285-00aa003049e2;$GRP)",
            LOCKOUT_W
        )
        .is_granted()
    );
    // GW maps to WP for directory objects.
    assert!(on_object("(A;;GW;;;$GRP)", LOCKOUT_W).is_granted());
    // A generic deny on everything wins when first.
    assert!(matches!(
        on_object("(D;;GA;;;WD)(A;;GA;;;$SVC)", RESET),
        Decision::Denied(_)
    ));
}

#[test]
fn property_set_grants_its_members() {
    // User-Account-Restrictions contains pwdLastSet but not lockoutTime.
    let acl = "(OA;;WP;4c164200-20c0-11d0-a768-00aa006e0529;;$SVC)";
    assert!(on_object(acl, PWD_LAST_SET_W).is_granted());
    assert!(!on_object(acl, LOCKOUT_W).is_granted());
    let deny = "(OD;;WP;4c164200-20c0-11d0-a768-00aa006e0529;;$SVC)(OA;;WP;bf967a0a-0de6-11d0-a285-00aa003049e2;;$SVC)";
    assert!(matches!(
        on_object(deny, PWD_LAST_SET_W),
        Decision::Denied(_)
    ));
}

#[test]
fn inherited_object_type_selects_the_class() {
    let to_user = "(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;$SVC)";
    let to_inet = "(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;4828cc14-1437-45bc-9b07-ad6f015e5f28;$SVC)";
    let for_class = |acl: &str, class: Guid| {
        evaluate(&svc(), &future_child_aces(&dacl(acl), None, class), RESET).is_granted()
    };
    assert!(for_class(to_user, CLASS_USER));
    // Inheritance compares the exact class: a grant to user objects does not reach inetOrgPerson.
    assert!(!for_class(to_user, CLASS_INET_ORG_PERSON));
    assert!(for_class(to_inet, CLASS_INET_ORG_PERSON));
    assert!(!for_class(to_inet, CLASS_USER));
    // No inherited object type: every class.
    let all = "(OA;CI;CR;00299570-246d-11d0-a768-00aa006e0529;;$SVC)";
    assert!(for_class(all, CLASS_USER) && for_class(all, CLASS_INET_ORG_PERSON));
}

#[test]
fn container_inherit_is_required() {
    assert!(
        !on_future_user("(OA;;CR;00299570-246d-11d0-a768-00aa006e0529;;$SVC)", RESET).is_granted()
    );
    // OI alone is passed on as inherit-only, never effective on a (container) directory object.
    assert!(
        !on_future_user(
            "(OA;OI;CR;00299570-246d-11d0-a768-00aa006e0529;;$SVC)",
            RESET
        )
        .is_granted()
    );
}

#[test]
fn no_propagate_stops_after_one_level() {
    let root = dacl("(OA;CINP;CR;00299570-246d-11d0-a768-00aa006e0529;;$SVC)");
    // Child OU gets an effective copy without inheritance flags ...
    let ou = child_dacl(
        &root,
        &[],
        false,
        "bf967aa5-0de6-11d0-a285-00aa003049e2".parse().unwrap(),
    );
    assert_eq!(ou.aces.len(), 1);
    assert_eq!(ou.aces[0].flags.0, AceFlags::INHERITED);
    // ... so a user created in it gets nothing.
    assert!(!evaluate(&svc(), &future_child_aces(&ou, None, CLASS_USER), RESET).is_granted());
    // A user created directly under the root does get it.
    assert!(evaluate(&svc(), &future_child_aces(&root, None, CLASS_USER), RESET).is_granted());
    // NP with a non-matching class is dropped altogether.
    let np_user = dacl(
        "(OA;CINP;CR;00299570-246d-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;$SVC)",
    );
    assert!(
        child_dacl(
            &np_user,
            &[],
            false,
            "bf967aa5-0de6-11d0-a285-00aa003049e2".parse().unwrap()
        )
        .aces
        .is_empty()
    );
}

#[test]
fn inheritance_through_an_ou_matches_what_ad_materializes() {
    // Root delegation -> OU (class organizationalUnit) -> user, as in the Samba samples.
    let ou_class: Guid = "bf967aa5-0de6-11d0-a285-00aa003049e2".parse().unwrap();
    let root = dacl(
        "(OA;CIIO;WP;28630ebf-41d5-11d1-a9c1-0000f80367c1;bf967aba-0de6-11d0-a285-00aa003049e2;$SVC)",
    );
    let ou = child_dacl(&root, &[], false, ou_class);
    assert_eq!(
        crate::sddl::ace_to_sddl(&ou.aces[0]),
        format!(
            "OA;CIIOID;WP;28630ebf-41d5-11d1-a9c1-0000f80367c1;bf967aba-0de6-11d0-a285-00aa003049e2;{}",
            sid(1106)
        )
    );
    let user = child_dacl(&ou, &[], false, CLASS_USER);
    assert_eq!(
        crate::sddl::ace_to_sddl(&user.aces[0]),
        format!(
            "OA;CIID;WP;28630ebf-41d5-11d1-a9c1-0000f80367c1;bf967aba-0de6-11d0-a285-00aa003049e2;{}",
            sid(1106)
        )
    );
    assert!(evaluate(&svc(), &object_aces(&user), LOCKOUT_W).is_granted());
}

#[test]
fn protected_dacl_blocks_inheritance() {
    let ou_class: Guid = "bf967aa5-0de6-11d0-a285-00aa003049e2".parse().unwrap();
    let root = dacl(
        "(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;$SVC)",
    );
    let own = dacl("(A;;RPLCLORC;;;AU)");
    let blocked = child_dacl(&root, &own.aces, true, ou_class);
    assert_eq!(blocked.aces.len(), 1);
    assert!(
        !evaluate(
            &svc(),
            &future_child_aces(&blocked, None, CLASS_USER),
            RESET
        )
        .is_granted()
    );
    let open = child_dacl(&root, &own.aces, false, ou_class);
    assert!(evaluate(&svc(), &future_child_aces(&open, None, CLASS_USER), RESET).is_granted());
    // An existing protected user object (emulated SDProp) has no inherited grant either.
    let sd = SecurityDescriptor::from_sddl(
        "D:P(A;;RPWPCRCCDCLCLORCWOWDSDDTSW;;;SY)(A;;RPLCLORC;;;AU)",
        None,
    )
    .unwrap();
    assert!(sd.dacl_protected());
    assert_eq!(check_object(&svc(), &sd, RESET), Decision::NotGranted);
}

#[test]
fn class_default_aces_come_first_and_count() {
    let default = dacl("(OA;;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;WD)");
    let container = dacl("(OD;CI;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;;$SVC)");
    let aces = future_child_aces(&container, Some(&default), CLASS_USER);
    let d = evaluate(&svc(), &aces, Right::ControlAccess(CHANGE_PASSWORD));
    // Explicit (class default) allow precedes the inherited deny.
    assert!(
        matches!(&d, Decision::Granted(e) if e.ace.source == AceSource::ClassDefault),
        "{d:?}"
    );
}

#[test]
fn null_dacl_grants_everything() {
    let sd = SecurityDescriptor::from_sddl("O:BA", None).unwrap();
    assert_eq!(check_object(&svc(), &sd, RESET), Decision::NoDacl);
    assert!(Decision::NoDacl.is_granted());
}

#[test]
fn evidence_reads_well() {
    let d = on_object(
        "(A;;RP;;;WD)(OA;;CR;00299570-246d-11d0-a768-00aa006e0529;;$SVC)",
        RESET,
    );
    let text = d.evidence().unwrap().to_string();
    assert!(
        text.contains("OA;;CR;00299570-246d-11d0-a768-00aa006e0529;;S-1-5-21-1-2-3-1106"),
        "{text}"
    );
    assert!(text.contains("ACE #1"), "{text}");
}
