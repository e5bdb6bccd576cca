//! Policy edits by two admins at once: the edit form carries the file's version, and a save
//! based on a version that is no longer on disk is refused (409, the draft kept), so the first
//! admin's edit is never silently overwritten.

use crate::admin::{EVA, LENA, demo_with_clock, sign_in};
use crate::admin_console::{form_of, policies_dir, post, set, snapshot, staff_form};
use crate::portal::Browser;

/// All policy files' text, concatenated.
fn on_disk(demo: &latchkey::demo::Demo) -> String {
    assert!(policies_dir(demo).is_dir());
    snapshot(demo)
        .into_iter()
        .map(|(_, b)| String::from_utf8(b).unwrap())
        .collect()
}

#[tokio::test]
async fn a_save_based_on_an_old_version_is_refused_and_the_first_edit_kept() {
    let (demo, _clock) = demo_with_clock().await;
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    let mut lena = Browser::new(&demo);
    sign_in(&demo, &mut lena, "/admin", LENA).await;

    // Both open the form of the same policy.
    let mut first = staff_form(&mut eva).await;
    let mut second = staff_form(&mut lena).await;
    assert!(
        first.iter().any(|(n, v)| n == "version" && v.len() == 64),
        "the form carries the file's version"
    );

    set(&mut first, "description", "Edited by Eva first");
    set(&mut first, "op", "save");
    let saved = post(&mut eva, "/admin/policies/save", &first).await;
    assert_eq!(saved.status, 303, "{}", saved.body);

    set(&mut second, "description", "Edited by Lena second");
    set(&mut second, "op", "save");
    let refused = post(&mut lena, "/admin/policies/save", &second).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("was changed by someone else since you opened the form"),
        "{}",
        refused.body
    );
    // The draft is kept in the form.
    let kept = form_of(&refused);
    assert!(
        kept.iter()
            .any(|(n, v)| n == "description" && v == "Edited by Lena second")
    );
    let text = on_disk(&demo);
    assert!(text.contains("Edited by Eva first"), "{text}");
    assert!(!text.contains("Edited by Lena second"), "{text}");
    assert_eq!(
        demo.services.policies().get("Staff").unwrap().description,
        "Edited by Eva first"
    );
    let events = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(events.iter().any(|e| {
        e.event.event_type == "admin.policy.save"
            && e.event.outcome == latchkey_store::Outcome::Failure
            && e.event
                .reason
                .as_deref()
                .unwrap_or("")
                .contains("changed since")
    }));

    // A form without a version (or a forged one) cannot overwrite either.
    let mut forged = kept.clone();
    set(&mut forged, "version", "");
    set(&mut forged, "op", "save");
    assert_eq!(
        post(&mut lena, "/admin/policies/save", &forged)
            .await
            .status,
        409
    );
    assert!(!on_disk(&demo).contains("Edited by Lena second"));

    // Saving again from the refused page (which now carries the current version) is a
    // deliberate overwrite and goes through.
    let mut again = kept;
    set(&mut again, "op", "save");
    let saved = post(&mut lena, "/admin/policies/save", &again).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert!(on_disk(&demo).contains("Edited by Lena second"));
    demo.stop().await;
}

/// The hidden fields of the delete confirmation form.
fn delete_form(page: &crate::portal::Page) -> Vec<(String, String)> {
    let form = page
        .body
        .split("<form method=\"post\" action=\"/admin/policies/delete\">")
        .nth(1)
        .expect("a confirmation form")
        .split("</form>")
        .next()
        .unwrap();
    form.split("<input ")
        .skip(1)
        .map(|tag| {
            let attr = |a: &str| {
                tag.split(&format!("{a}=\""))
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or_default()
                    .to_string()
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

#[tokio::test]
async fn deleting_a_policy_is_confirmed_validated_versioned_and_audited() {
    let (demo, _clock) = demo_with_clock().await;
    let mut eva = Browser::new(&demo);
    sign_in(&demo, &mut eva, "/admin", EVA).await;
    let demo_file = policies_dir(&demo).join("demo.toml");

    let edit = eva.get("/admin/policies/edit?name=Staff").await;
    assert!(
        edit.body
            .contains("href=\"/admin/policies/delete?name=Staff\"")
    );
    let confirm = eva.get("/admin/policies/delete?name=Staff").await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("No other policy is in demo.toml"));
    assert!(
        confirm.body.contains("-name = &quot;Staff&quot;"),
        "{}",
        confirm.body
    );
    let form = delete_form(&confirm);

    // Without CSRF, or without the confirmation field: nothing changes.
    let before = snapshot(&demo);
    let mut no_csrf = form.clone();
    set(&mut no_csrf, "csrf", "");
    assert_eq!(
        post(&mut eva, "/admin/policies/delete", &no_csrf)
            .await
            .status,
        403
    );
    let mut unconfirmed = form.clone();
    unconfirmed.retain(|(n, _)| n != "confirm");
    assert_eq!(
        post(&mut eva, "/admin/policies/delete", &unconfirmed)
            .await
            .status,
        400
    );
    assert_eq!(snapshot(&demo), before);

    // The file changed after the confirmation was shown: refused, the file kept.
    let mut text = std::fs::read_to_string(&demo_file).unwrap();
    text.push_str("# edited on disk\n");
    std::fs::write(&demo_file, &text).unwrap();
    let stale = post(&mut eva, "/admin/policies/delete", &form).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert!(stale.body.contains("changed by someone else"));
    assert_eq!(std::fs::read_to_string(&demo_file).unwrap(), text);
    assert!(demo.services.policies().get("Staff").is_some());

    // Confirmed against the current version: the block (here the whole file) goes, the set
    // in force follows, and the audit event has the diff.
    let done = post(&mut eva, "/admin/policies/delete", &delete_form(&stale)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some("/admin/policies?deleted=Staff")
    );
    assert!(!demo_file.exists());
    assert!(demo.services.policies().get("Staff").is_none());
    assert!(demo.services.policies().get("Default").is_some());
    let list = eva.get("/admin/policies?deleted=Staff").await;
    assert!(list.body.contains("Policy &quot;Staff&quot; deleted"));
    let events = demo
        .store
        .audit_events(&latchkey_store::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let deleted: Vec<_> = events
        .iter()
        .filter(|e| e.event.event_type == "admin.policy.delete")
        .collect();
    assert!(
        deleted
            .iter()
            .any(|e| e.event.outcome == latchkey_store::Outcome::Failure)
    );
    let ok = deleted
        .iter()
        .find(|e| e.event.outcome == latchkey_store::Outcome::Success)
        .expect("audited");
    assert!(
        ok.event.details["diff"]
            .as_str()
            .unwrap()
            .contains("name = \"Staff\"")
    );
    assert_eq!(ok.event.details["file_removed"], true);

    // The last policy cannot go: the set would refuse everyone.
    let before = snapshot(&demo);
    let last = eva.get("/admin/policies/delete?name=Default").await;
    assert_eq!(last.status, 422);
    assert!(last.body.contains("This is the only policy"));
    assert!(!last.body.contains("action=\"/admin/policies/delete\""));
    let forced = post(
        &mut eva,
        "/admin/policies/delete",
        &[
            ("csrf".into(), last.csrf()),
            ("name".into(), "Default".into()),
            ("version".into(), String::new()),
            ("confirm".into(), "yes".into()),
        ],
    )
    .await;
    assert_eq!(forced.status, 422);
    assert_eq!(snapshot(&demo), before);
    assert!(demo.services.policies().get("Default").is_some());
    demo.stop().await;
}
