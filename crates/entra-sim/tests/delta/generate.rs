//! `[generate]`: determinism, counts, shape; `POST /_sim/churn` against a delta mirror.

use std::collections::{BTreeMap, BTreeSet};

use latchkey_entra_sim::fixture::GenerateFixture;
use reqwest::Method;
use serde_json::{Value, json};

use super::*;

fn generated(users: usize, groups: usize, seed: u64) -> latchkey_entra_sim::Fixture {
    let mut f = fixture();
    f.generate = Some(GenerateFixture {
        users,
        groups,
        seed,
        ..GenerateFixture::default()
    });
    f
}

#[tokio::test]
async fn generator_is_deterministic_and_every_user_is_reachable() {
    let (base_users, base_groups, base_ids) = {
        let s = start_with(Fixture::test()).await;
        let c = s.tenant().counts();
        let t = app_token(&s).await;
        let ids: BTreeSet<String> = all_user_ids(&s, &t).await.into_iter().collect();
        s.stop().await;
        (c.0, c.1, ids)
    };
    let sim = start_with(generated(2_000, 100, 42)).await;
    assert_eq!(
        sim.tenant().counts(),
        (base_users + 2_000, base_groups + 100)
    );
    let t = app_token(&sim).await;
    let listed = all_user_ids(&sim, &t).await;
    assert_eq!(listed.len(), base_users + 2_000);
    let (items, _, _) = walk(&sim, &t, "/users/delta?$select=userPrincipalName,accountEnabled,onPremisesSyncEnabled,proxyAddresses", &[("Prefer", "odata.maxpagesize=999")]).await;
    let mut a = ids(&items);
    a.sort();
    let mut b = listed.clone();
    b.sort();
    assert_eq!(a, b);
    let disabled = items
        .iter()
        .filter(|u| u["accountEnabled"] == false)
        .count();
    let synced = items
        .iter()
        .filter(|u| u["onPremisesSyncEnabled"] == true)
        .count();
    let aliased = items
        .iter()
        .filter(|u| {
            u["proxyAddresses"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        })
        .count();
    assert!((10..=100).contains(&disabled), "~2 %: {disabled}");
    assert!((450..=750).contains(&synced), "~30 %: {synced}");
    assert!((250..=550).contains(&aliased), "~20 %: {aliased}");
    // Sign-in works with the generated password; GET by id works.
    let gen_users: Vec<&Value> = items
        .iter()
        .filter(|u| !base_ids.contains(u["id"].as_str().unwrap()))
        .collect();
    assert_eq!(gen_users.len(), 2_000);
    let one = *gen_users
        .iter()
        .find(|u| u["accountEnabled"] == true)
        .unwrap();
    let upn = one["userPrincipalName"].as_str().unwrap();
    assert_eq!(sim.sign_in(upn, "Generated-Passw0rd!").aadsts(), None);
    let (s, _, _) = graph_get(&sim, &t, &format!("/users/{}", one["id"].as_str().unwrap())).await;
    assert_eq!(s, 200);

    // Groups: nesting, a cycle, each user in a team; role holders.
    let (groups, _, _) = walk(
        &sim,
        &t,
        "/groups/delta?$select=displayName,members",
        &[("Prefer", "odata.maxpagesize=999")],
    )
    .await;
    let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for g in &groups {
        let id = g["id"].as_str().unwrap().to_owned();
        names.insert(id.clone(), g["displayName"].as_str().unwrap().to_owned());
        let e = members.entry(id).or_default();
        for m in g["members@delta"].as_array().unwrap() {
            e.insert(m["id"].as_str().unwrap().to_owned());
        }
    }
    let cycle = members.iter().any(|(a, ms)| {
        ms.iter()
            .any(|b| members.get(b).is_some_and(|bm| bm.contains(a)))
    });
    assert!(cycle, "at least one A ∈ B ∈ A");
    let in_a_team: BTreeSet<&String> = members
        .iter()
        .filter(|(g, _)| names[*g].starts_with("Team "))
        .flat_map(|(_, m)| m)
        .collect();
    assert!(
        gen_users
            .iter()
            .all(|u| in_a_team.contains(&u["id"].as_str().unwrap().to_owned()))
    );
    // A team member is at least 4 levels deep (team → department → division → All Employees).
    let (_, _, tm) = graph_get(
        &sim,
        &t,
        &format!("/users/{}/transitiveMemberOf", one["id"].as_str().unwrap()),
    )
    .await;
    let tnames: Vec<String> = ids(tm["value"].as_array().unwrap())
        .iter()
        .filter_map(|i| names.get(i).cloned())
        .collect();
    assert!(
        tnames.iter().any(|n| n == "All Employees")
            && tnames.iter().any(|n| n.starts_with("Division")),
        "{tnames:?}"
    );
    let (roles, _, _) = walk(
        &sim,
        &t,
        "/directoryRoles/delta?$select=displayName,members",
        &[],
    )
    .await;
    let holders: usize = roles
        .iter()
        .map(|r| {
            r["members@delta"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| gen_users.iter().any(|u| u["id"] == m["id"]))
                .count()
        })
        .sum();
    assert_eq!(holders, 10);

    // Same seed, same tenant; another seed, another.
    let again = start_with(generated(2_000, 100, 42)).await;
    let t3 = app_token(&again).await;
    let (items2, _, _) = walk(&again, &t3, "/users/delta?$select=userPrincipalName,accountEnabled,onPremisesSyncEnabled,proxyAddresses", &[("Prefer", "odata.maxpagesize=999")]).await;
    assert_eq!(items, items2);
    let other = start_with(generated(2_000, 100, 43)).await;
    let t4 = app_token(&other).await;
    let (items3, _, _) = walk(
        &other,
        &t4,
        "/users/delta?$select=userPrincipalName",
        &[("Prefer", "odata.maxpagesize=999")],
    )
    .await;
    assert_ne!(ids(&items3), ids(&items));
}

/// A mirror of users (id → displayName, accountEnabled) and group members, merged from delta.
#[derive(Default, Debug)]
struct Mirror {
    users: BTreeMap<String, (Value, Value)>,
    members: BTreeMap<String, BTreeSet<String>>,
}

impl Mirror {
    fn users(&mut self, items: &[Value]) {
        for u in items {
            let id = u["id"].as_str().unwrap().to_owned();
            if u.get("@removed").is_some() {
                self.users.remove(&id);
            } else {
                self.users
                    .insert(id, (u["displayName"].clone(), u["accountEnabled"].clone()));
            }
        }
    }

    fn groups(&mut self, items: &[Value]) {
        for g in items {
            let id = g["id"].as_str().unwrap().to_owned();
            if g.get("@removed").is_some() {
                self.members.remove(&id);
                continue;
            }
            let e = self.members.entry(id).or_default();
            for m in g["members@delta"].as_array().into_iter().flatten() {
                let mid = m["id"].as_str().unwrap().to_owned();
                if m.get("@removed").is_some() {
                    e.remove(&mid);
                } else {
                    e.insert(mid);
                }
            }
        }
    }
}

#[tokio::test]
async fn churn_summary_matches_a_delta_round() {
    let sim = start_with(generated(300, 30, 7)).await;
    let t = app_token(&sim).await;
    let prefer = [("Prefer", "odata.maxpagesize=50")];
    let users_url = "/users/delta?$select=displayName,accountEnabled";
    let groups_url = "/groups/delta?$select=displayName,members";
    let mut m = Mirror::default();
    let (items, mut udelta, _) = walk(&sim, &t, users_url, &prefer).await;
    m.users(&items);
    let (items, mut gdelta, _) = walk(&sim, &t, groups_url, &prefer).await;
    m.groups(&items);

    for round in 0..3 {
        let r = client()
            .post(format!("{}/_sim/churn", sim.base_url()))
            .json(&json!({"count": 60, "seed": round}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let summary: Value = r.json().await.unwrap();
        assert_eq!(summary["applied"], 60, "{summary}");
        let (uitems, d, _) = walk(&sim, &t, &udelta, &prefer).await;
        udelta = d;
        let (gitems, d, _) = walk(&sim, &t, &gdelta, &prefer).await;
        gdelta = d;
        let reported: BTreeSet<String> = ids(&uitems).into_iter().collect();
        for key in ["users_changed", "users_created", "users_deleted"] {
            for id in summary[key].as_array().unwrap() {
                assert!(
                    reported.contains(id.as_str().unwrap()),
                    "{key} {id} missing from the round"
                );
            }
        }
        for id in summary["users_deleted"].as_array().unwrap() {
            let item = uitems.iter().find(|u| u["id"] == *id).unwrap();
            assert_eq!(item["@removed"]["reason"], "changed");
        }
        let greported: BTreeSet<String> = ids(&gitems).into_iter().collect();
        for id in summary["groups_changed"].as_array().unwrap() {
            assert!(greported.contains(id.as_str().unwrap()), "group {id}");
        }
        m.users(&uitems);
        m.groups(&gitems);
        // The mirror equals the directory.
        let live: BTreeSet<String> = all_user_ids(&sim, &t).await.into_iter().collect();
        assert_eq!(m.users.keys().cloned().collect::<BTreeSet<_>>(), live);
        for id in summary["users_changed"].as_array().unwrap() {
            let id = id.as_str().unwrap();
            if !live.contains(id) {
                continue;
            }
            let (_, _, u) = graph_get(
                &sim,
                &t,
                &format!("/users/{id}?$select=displayName,accountEnabled"),
            )
            .await;
            assert_eq!(
                m.users[id],
                (u["displayName"].clone(), u["accountEnabled"].clone())
            );
        }
        for g in summary["groups_changed"].as_array().unwrap() {
            let g = g.as_str().unwrap();
            let want: BTreeSet<String> = member_ids(&sim, &t, g).await.into_iter().collect();
            assert_eq!(m.members[g], want, "group {g} after round {round}");
        }
    }
    let (s, _, _) = graph(&sim, &t, Method::GET, &udelta, None, &[]).await;
    assert_eq!(s, 200);
}
