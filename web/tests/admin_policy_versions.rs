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
