//! `check` against the lab: one scenario per rule the issue names.

use crate::support::*;

const USER_RIGHT_IDS: [&str; 4] = [
    "reset_password",
    "change_password",
    "write_lockout_time",
    "write_pwd_last_set",
];

#[tokio::test]
async fn correctly_delegated_ou_passes() {
    let mut s = Scenario::new("ok").await;
    let ou = s.ou.clone();
    s.user("alice", &ou).await;
    s.user("bob", &ou).await;
    let aces = Scenario::writeback_aces(&s.connector_sid, &[]);
    s.add_aces(&ou, &aces).await;
    let (code, r) = s.check_json(&[]);
    for id in USER_RIGHT_IDS {
        assert_eq!(status(&r, id), "pass", "{id}: {}", evidence(&r, id));
    }
    for id in [
        "unexpire_password",
        "protected_accounts",
        "min_password_age",
        "lockout_policy",
        "ldaps_certificate",
        "connector_account",
    ] {
        assert_eq!(status(&r, id), "pass", "{id}: {}", evidence(&r, id));
    }
    for id in ["adfs_endpoints", "entra_writeback"] {
        assert_eq!(status(&r, id), "skip", "{id}");
    }
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["exit_code"], 0);
    // The evidence names the deciding ACE and where it sits.
    let ev = evidence(&r, "reset_password");
    assert!(
        ev.contains(&format!(
            "(OA;CIIO;CR;{RESET};{USER_CLASS};{})",
            s.connector_sid
        )) || ev.contains(&format!("{RESET};{USER_CLASS};{}", s.connector_sid)),
        "{ev}"
    );
    assert!(ev.contains("2 user objects"), "{ev}");
    // The human report says the same, with a PASS line per check.
    let (code, text, _) = s.check_raw(&[]);
    assert_eq!(code, 0);
    assert!(text.contains("PASS  reset_password"), "{text}");
}

#[tokio::test]
async fn each_missing_right_fails_its_check() {
    let mut s = Scenario::new("miss").await;
    let ou = s.ou.clone();
    s.user("alice", &ou).await;
    // Everything but lockoutTime and pwdLastSet.
    let aces = Scenario::writeback_aces(&s.connector_sid, &[LOCKOUT_TIME, PWD_LAST_SET]);
    s.add_aces(&ou, &aces).await;
    let (code, r) = s.check_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "reset_password"), "pass");
    assert_eq!(status(&r, "change_password"), "pass");
    for id in ["write_lockout_time", "write_pwd_last_set"] {
        assert_eq!(status(&r, id), "fail", "{id}");
        let ev = evidence(&r, id);
        assert!(ev.contains(&ou) && ev.contains("no ACE grants it"), "{ev}");
        let grants = check(&r, id)["grants"].as_array().unwrap();
        assert_eq!(grants.len(), 1, "{grants:?}");
        assert_eq!(grants[0]["object_dn"], ou.as_str());
        assert!(
            check(&r, id)["fix"].as_str().unwrap().contains("dsacls")
                || grants[0]["dsacls"].as_str().unwrap().starts_with("dsacls")
        );
    }
    // No delegation at all: Reset Password fails too (Change Password is a default for everyone).
    let mut bare = Scenario::new("bare").await;
    let ou = bare.ou.clone();
    bare.user("carl", &ou).await;
    let (code, r) = bare.check_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "reset_password"), "fail");
    assert_eq!(
        status(&r, "change_password"),
        "pass",
        "{}",
        evidence(&r, "change_password")
    );
}

#[tokio::test]
async fn right_through_a_nested_group_counts() {
    let mut s = Scenario::new("nest").await;
    let ou = s.ou.clone();
    s.user("alice", &ou).await;
    let (inner, _) = s.group("inner").await;
    let (outer, outer_sid) = s.group("outer").await;
    let connector = s.connector_dn();
    s.add_member(&inner, &connector).await;
    s.add_member(&outer, &inner).await;
    let aces = Scenario::writeback_aces(&outer_sid, &[]);
    s.add_aces(&ou, &aces).await;
    let (code, r) = s.check_json(&[]);
    for id in USER_RIGHT_IDS {
        assert_eq!(status(&r, id), "pass", "{id}: {}", evidence(&r, id));
    }
    assert!(evidence(&r, "reset_password").contains(&outer_sid.to_string()));
    assert_eq!(code, 0);
}

#[tokio::test]
async fn a_deny_ace_wins() {
    let mut s = Scenario::new("deny").await;
    let ou = s.ou.clone();
    let sub = s.ou("Sub", &ou).await;
    s.user("dora", &sub).await;
    let aces = Scenario::writeback_aces(&s.connector_sid, &[]);
    s.add_aces(&ou, &aces).await;
    let deny = format!("(OD;CIIO;CR;{RESET};{USER_CLASS};{})", s.connector_sid);
    s.add_aces(&sub, &[deny]).await;
    let (code, r) = s.check_json(&[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "reset_password"), "fail");
    let ev = evidence(&r, "reset_password");
    assert!(ev.contains("DENIED") && ev.contains(&sub), "{ev}");
    assert!(
        check(&r, "reset_password")["fix"]
            .as_str()
            .unwrap()
            .contains("deny")
    );
    assert_eq!(status(&r, "write_lockout_time"), "pass");
}

#[tokio::test]
async fn an_ou_with_blocked_inheritance_is_caught() {
    let mut s = Scenario::new("block").await;
    let ou = s.ou.clone();
    let sub = s.ou("Blocked", &ou).await;
    s.user("erin", &sub).await;
    s.user("fred", &ou).await;
    let aces = Scenario::writeback_aces(&s.connector_sid, &[]);
    s.add_aces(&ou, &aces).await;
    s.block_inheritance(&sub).await;
    let (code, r) = s.check_json(&[]);
    assert_eq!(code, 1);
    for id in ["reset_password", "write_lockout_time", "write_pwd_last_set"] {
        assert_eq!(status(&r, id), "fail", "{id}");
        let ev = evidence(&r, id);
        assert!(ev.contains("BLOCKED") && ev.contains(&sub), "{ev}");
        // The fix grants on the blocked OU itself, not above it.
        let grants = check(&r, id)["grants"].as_array().unwrap();
        assert!(
            grants.iter().any(|g| g["object_dn"] == sub.as_str()),
            "{grants:?}"
        );
    }
    // Change Password comes from the user class default (Everyone), blocked or not.
    assert_eq!(status(&r, "change_password"), "pass");
}

#[tokio::test]
async fn a_protected_account_is_listed() {
    let mut s = Scenario::new("prot").await;
    let ou = s.ou.clone();
    s.user("gina", &ou).await;
    let admin_user = s.user("hank", &ou).await;
    let aces = Scenario::writeback_aces(&s.connector_sid, &[]);
    s.add_aces(&ou, &aces).await;
    s.protect(&admin_user).await;
    let (code, r) = s.check_json(&[]);
    assert_eq!(status(&r, "protected_accounts"), "warn");
    let ev = evidence(&r, "protected_accounts");
    assert!(
        ev.contains(&admin_user) && ev.contains("adminCount=1") && ev.contains("reset_password"),
        "{ev}"
    );
    assert!(
        check(&r, "protected_accounts")["fix"]
            .as_str()
            .unwrap()
            .contains("AdminSDHolder")
    );
    // The protected account does not fail the rights checks themselves.
    assert_eq!(
        status(&r, "reset_password"),
        "pass",
        "{}",
        evidence(&r, "reset_password")
    );
    assert_eq!(code, 0);
}

#[tokio::test]
async fn the_fix_script_and_apply_fix_turn_it_green() {
    let mut s = Scenario::new("fix").await;
    let ou = s.ou.clone();
    let sub = s.ou("Blocked", &ou).await;
    s.user("ivan", &ou).await;
    s.user("judy", &sub).await;
    s.block_inheritance(&sub).await;
    let (code, r) = s.check_json(&[]);
    assert_eq!(code, 1);
    // The script holds one dsacls line per missing grant, each with a comment.
    let (_, script, _) = s.check_raw(&["--fix-script"]);
    let lines: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("dsacls "))
        .collect();
    let grants: usize = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["grants"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(lines.len(), grants, "{script}");
    assert_eq!(
        lines.len(),
        6,
        "3 rights x (the OU + the blocked sub-OU): {script}"
    );
    assert!(
        script.contains(&format!(
            "dsacls '{ou}' /I:S /G 'LAB\\{}:CA;Reset Password;user'",
            s.connector
        )),
        "{script}"
    );
    for l in script.lines().filter(|l| l.starts_with("dsacls ")) {
        let i = script.lines().position(|x| x == l).unwrap();
        assert!(
            script.lines().nth(i - 1).unwrap().starts_with("# "),
            "no comment before {l}"
        );
    }
    // Apply those same grants as Administrator, re-check: green.
    let admin_dn = s.lab.admin_dn.clone();
    let pw = s.lab.admin_password_file.display().to_string();
    let (code, out, err) = s.check_raw(&[
        "--apply-fix",
        "--admin-bind-dn",
        &admin_dn,
        "--admin-password-file",
        &pw,
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("reset_password: FAIL -> PASS"), "{out}");
    let (code, r) = s.check_json(&[]);
    assert_eq!(code, 0, "{r:#}");
    for id in USER_RIGHT_IDS {
        assert_eq!(status(&r, id), "pass", "{id}");
    }
}

#[tokio::test]
async fn a_wrong_password_cannot_check() {
    let s = Scenario::new("badpw").await;
    std::fs::write(s.dir.join("bad.pw"), "wrong").unwrap();
    let bad = s.dir.join("bad.pw").display().to_string();
    let (code, out, _) = s.check_raw(&["--json", "--password-file", &bad]);
    assert_eq!(code, 2, "{out}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let msg = r["error"].as_str().unwrap();
    assert!(msg.contains("wrong user name or password"), "{msg}");
    assert!(
        !msg.contains(USER_PASSWORD) && !msg.contains("wrong\""),
        "{msg}"
    );
}

#[tokio::test]
async fn a_member_of_a_group_nested_in_domain_admins_is_protected() {
    let mut s = Scenario::new("nest").await;
    let ou = s.ou.clone();
    let member = s.user("ivan", &ou).await;
    s.user("judy", &ou).await;
    let (group, _) = s.group("ops").await;
    let domain_admins = format!("CN=Domain Admins,CN=Users,{}", s.lab.base_dn);
    s.add_member(&domain_admins, &group).await;
    s.add_member(&group, &member).await;
    let aces = Scenario::writeback_aces(&s.connector_sid, &[]);
    s.add_aces(&ou, &aces).await;
    let (_, r) = s.check_json(&[]);
    // Leave Domain Admins as it was, whatever the assertions say.
    s.admin
        .modify_values(&domain_admins, false, "member", &[group.as_bytes()])
        .await
        .unwrap();
    assert_eq!(status(&r, "protected_accounts"), "warn");
    let ev = evidence(&r, "protected_accounts");
    assert!(ev.contains(&member), "{ev}");
    assert!(!ev.contains("CN=judy"), "{ev}");
}
