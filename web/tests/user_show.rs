//! `latchkey user show` by UPN, by any address of the user, by object id; and its failures.

use latchkey_entra_sim::Fixture;

use crate::helpers::*;

const ADELE_ID: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";

async fn show(who: &str, json: bool) -> (std::process::Output, latchkey_entra_sim::Sim) {
    let sim = sim(Fixture::test()).await;
    let dir = TempDir::new();
    let cfg = config_for(&sim, &dir, "");
    let mut args = vec!["user", "show", who, "--config", cfg.to_str().unwrap()];
    if json {
        args.push("--json");
    }
    let out = latchkey(&args, &[]).await;
    (out, sim)
}

#[tokio::test(flavor = "multi_thread")]
async fn by_upn_shows_identity_nested_groups_and_methods() {
    let (out, _sim) = show("Adele.Vance@contoso.com", true).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], ADELE_ID);
    assert_eq!(v["user_principal_name"], "adele.vance@contoso.com");
    assert_eq!(v["source"], "cloud");
    assert_eq!(v["account_enabled"], true);
    let groups: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["display_name"].as_str())
        .collect();
    // Direct (Pilot Wave 1) and nested (SSPR Pilot ⊃ Pilot Wave 1, All SSPR Users ⊃ SSPR Pilot).
    for g in ["Pilot Wave 1", "SSPR Pilot", "All SSPR Users"] {
        assert!(groups.contains(&g), "{g} missing from {groups:?}");
    }
    let kinds: Vec<&str> = v["authentication_methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"passwordAuthenticationMethod"), "{kinds:?}");
    assert!(kinds.contains(&"emailAuthenticationMethod"), "{kinds:?}");
    assert!(kinds.contains(&"phoneAuthenticationMethod"), "{kinds:?}");
    assert_eq!(v["directory_roles"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn by_alternate_email_finds_the_same_user_in_one_lookup() {
    let (out, sim) = show("adele.personal@outlook.com", false).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Adele Vance <adele.vance@contoso.com>"),
        "{text}"
    );
    assert!(text.contains(ADELE_ID), "{text}");
    assert!(text.contains("cloud-only"), "{text}");
    let lookups = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1.0/users")
        .count();
    assert_eq!(
        lookups, 1,
        "one filtered lookup for UPN, mail, otherMails and proxyAddresses"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn by_proxy_address_and_by_object_id() {
    let (out, _sim) = show("g.archie@fabrikam.com", false).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("alias.user@contoso.com"));
    let (out, sim) = show(ADELE_ID, false).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("adele.vance@contoso.com"));
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.path == format!("/v1.0/users/{ADELE_ID}")),
        "looked up by id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_synced_user_and_an_admin_are_described() {
    let (out, _sim) = show("megan.bowen@contoso.com", false).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("synced from on-premises AD (corp.contoso.com\\meganb)"),
        "{}",
        stdout(&out)
    );
    let (out, _sim) = show("admin@contoso.com", false).await;
    assert!(
        stdout(&out).contains("Directory roles       Global Administrator"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_ambiguous_users_exit_1() {
    let (out, _sim) = show("nobody@contoso.com", false).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no user matches"), "{}", stderr(&out));
    let (out, _sim) = show("shared.family@outlook.com", false).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("more than one user"),
        "{}",
        stderr(&out)
    );
    let (out, _sim) = show("00000000-0000-0000-0000-000000000001", false).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}
