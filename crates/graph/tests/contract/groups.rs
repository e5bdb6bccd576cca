//! Transitive memberships (groups and roles in one call) and checkMemberGroups.

use latchkey_types::ObjectId;

use super::support::*;

/// Helpdesk Administrator's role template id.
const HELPDESK_ADMIN_TEMPLATE: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

#[tokio::test]
async fn transitive_memberships_returns_nested_groups_and_roles() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let m = c.transitive_memberships(&oid(OBRIEN)).await.unwrap();
    assert!(m.is_member_of(&oid(GROUP_INNER)), "{m:?}");
    assert!(m.is_member_of(&oid(GROUP_OUTER)), "nested: {m:?}");
    assert!(!m.is_member_of(&oid(GROUP_OTHER)));
    assert!(
        m.roles
            .iter()
            .any(|r| r.role_template_id == Some(oid(HELPDESK_ADMIN_TEMPLATE))),
        "{m:?}"
    );
    let r = &requests_to(&sim, "/transitiveMemberOf")[0];
    assert_eq!(
        r.query_param("$select").as_deref(),
        Some("id,displayName,roleTemplateId")
    );
    assert_eq!(r.query_param("$top").as_deref(), Some("999"));
    assert_eq!(r.path, format!("/v1.0/users/{OBRIEN}/transitiveMemberOf"));

    let roles = c.directory_roles(&oid(OBRIEN)).await.unwrap();
    assert_eq!(roles, m.roles);
    let none = c.transitive_memberships(&oid(TARGET)).await.unwrap();
    assert!(none.groups.is_empty() && none.roles.is_empty());
}

#[tokio::test]
async fn check_member_groups_chunks_by_twenty_and_unites() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let mut ids: Vec<ObjectId> = (0..42).map(|_| ObjectId::new_random()).collect();
    ids.insert(5, oid(GROUP_INNER));
    ids.push(oid(GROUP_OTHER));
    ids.push(oid(GROUP_OUTER));
    ids.push(oid(GROUP_INNER)); // duplicate, asked once
    let found = c.check_member_groups(&oid(OBRIEN), &ids).await.unwrap();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    let mut expected = vec![oid(GROUP_INNER), oid(GROUP_OUTER)];
    expected.sort();
    assert_eq!(found_sorted, expected);
    let calls = requests_to(&sim, "/checkMemberGroups");
    assert_eq!(calls.len(), 3, "45 distinct ids → 20 + 20 + 5");
    for r in &calls {
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert!(v["groupIds"].as_array().unwrap().len() <= 20);
    }
    // Nothing to ask: no request.
    assert!(
        c.check_member_groups(&oid(OBRIEN), &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(requests_to(&sim, "/checkMemberGroups").len(), 3);
}
