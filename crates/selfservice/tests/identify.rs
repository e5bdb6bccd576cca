//! Identification: the same outcome for every account; the decision is kept server-side.

use latchkey_selfservice::flow::Refusal;
use latchkey_selfservice::identify::{self, StartError};

use crate::lab::{ADELE, CARLA, CLIENT, Lab};

#[tokio::test(flavor = "multi_thread")]
async fn known_and_unknown_accounts_both_get_a_flow_and_only_the_audit_trail_tells_them_apart() {
    let lab = Lab::start(r#""reset""#).await;
    let real = lab.start_flow(ADELE).await;
    let decoy = lab.start_flow("nobody@contoso.com").await;
    assert!(!real.data.decoy);
    assert!(decoy.data.decoy, "an unknown account gets a decoy flow");
    assert_eq!(real.flow.subject, lab.user(ADELE));
    assert_ne!(decoy.flow.subject, lab.user(ADELE));
    // Enrolled nowhere: a decoy too (Ben is in scope but has nothing enrolled).
    let unenrolled = lab.start_flow("ben.okafor@contoso.com").await;
    assert!(unenrolled.data.decoy);
    let real_trail = lab.trail(&real.data.correlation_id).await;
    assert_eq!(real_trail, vec![("flow.start".into(), "success".into())]);
    let decoy_trail = lab.trail(&decoy.data.correlation_id).await;
    assert_eq!(decoy_trail, vec![("flow.start".into(), "denied".into())]);
    let events = lab.audit(&decoy.data.correlation_id).await;
    assert_eq!(
        events[0].subject, None,
        "a decoy's random subject is not recorded"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_synced_user_is_found_by_the_names_they_type_at_windows() {
    let lab = Lab::start(r#""reset""#).await;
    lab.enroll(CARLA, Some("carla@mail.example"), Some("+351 912345678"))
        .await;
    let carla = lab.user(CARLA);
    // onPremisesSamAccountName "cmendes", onPremisesDomainName "corp.contoso.com".
    for typed in [
        "cmendes",
        "CMendes",
        "CORP\\cmendes",
        "corp.contoso.com\\cmendes",
        "cmendes@corp.contoso.com",
        "ｃｍｅｎｄｅｓ",
    ] {
        let flow = lab.start_flow(typed).await;
        assert!(!flow.data.decoy, "{typed}");
        assert_eq!(flow.flow.subject, carla, "{typed}");
    }
    // A NetBIOS name that is no label of her domain: still the one account named cmendes.
    let flow = lab.start_flow("CONTOSO\\cmendes").await;
    assert_eq!(flow.flow.subject, carla);
    // Another DNS domain, or nobody of that name: a decoy, like any unknown account.
    for typed in [
        "cmendes@fabrikam.example",
        "nosuchuser",
        "fabrikam.example\\cmendes",
    ] {
        let flow = lab.start_flow(typed).await;
        assert!(flow.data.decoy, "{typed}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_that_is_no_account_name_starts_nothing() {
    let lab = Lab::start(r#""reset""#).await;
    for bad in ["", "   ", "a@", "@b", "a\\b\\c", "two words", "semi;colon"] {
        let e = identify::start(&lab.s, bad, CLIENT).await.unwrap_err();
        assert!(matches!(e, StartError::InvalidLogin), "{bad:?}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_are_limited_per_client_address() {
    let lab = Lab::start(r#""reset""#).await;
    for _ in 0..20 {
        identify::start(&lab.s, "x@contoso.com", "198.51.100.7")
            .await
            .unwrap();
    }
    let e = identify::start(&lab.s, ADELE, "198.51.100.7")
        .await
        .unwrap_err();
    assert!(
        matches!(e, StartError::Refused(Refusal::Throttled(_))),
        "{e}"
    );
    // Another address is not affected.
    identify::start(&lab.s, ADELE, "198.51.100.8")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_office_behind_one_address_gets_the_configured_start_limit() {
    let limits = latchkey_selfservice::flow::Limits {
        starts_per_client: 30,
        ..Default::default()
    };
    let lab = Lab::start_limited(r#""reset""#, limits).await;
    for _ in 0..30 {
        identify::start(&lab.s, "x@contoso.com", "198.51.100.7")
            .await
            .unwrap();
    }
    let e = identify::start(&lab.s, ADELE, "198.51.100.7")
        .await
        .unwrap_err();
    assert!(
        matches!(e, StartError::Refused(Refusal::Throttled(_))),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_that_cannot_be_asked_starts_nothing_rather_than_a_decoy() {
    let lab = Lab::start(r#""reset""#).await;
    lab.sim.add_fault(latchkey_entra_sim::faults::Fault {
        method: None,
        path_contains: "/users".into(),
        kind: latchkey_entra_sim::faults::FaultKind::Status(503),
        times: 0,
    });
    let e = identify::start(&lab.s, ADELE, CLIENT).await.unwrap_err();
    assert!(matches!(e, StartError::Plan(_)), "{e}");
}
