//! Domains, organization, on-premises synchronization.

use latchkey_graph::DomainAuthenticationType;

use super::support::*;

#[tokio::test]
async fn domains_and_organization() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let domains = c.list_domains().await.unwrap();
    let initial = domains
        .iter()
        .find(|d| d.id.eq_ignore_ascii_case(&f.tenant.initial_domain))
        .expect("initial domain listed");
    assert!(initial.is_initial);
    assert_eq!(
        initial.authentication_type,
        DomainAuthenticationType::Managed
    );
    for d in &f.domains {
        let got = c.get_domain(&d.name).await.unwrap();
        let expected = if d.authentication_type == "Federated" {
            DomainAuthenticationType::Federated
        } else {
            DomainAuthenticationType::Managed
        };
        assert_eq!(got.authentication_type, expected, "{}", d.name);
    }
    let e = c
        .get_domain("not-a-domain-of-this-tenant.example")
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(c.get_domain("bad domain").await.is_err());

    let org = c.organization().await.unwrap();
    assert_eq!(org.id, f.tenant.id);
    assert_eq!(
        org.display_name.as_deref(),
        Some(f.tenant.display_name.as_str())
    );
    assert!(org.verified_domains.iter().any(|v| v.is_initial));
}

#[tokio::test]
async fn writeback_flag_is_read_from_on_premises_synchronization() {
    let mut fx = fixture();
    fx.sync.on_premises_sync_enabled = true;
    fx.sync.password_writeback_enabled = true;
    let (sim, f) = start_with(fx).await;
    let c = delegated_client(&sim, &f).await;
    let sync = c
        .on_premises_sync()
        .await
        .unwrap()
        .expect("synchronization object");
    assert!(sync.features.password_writeback_enabled);

    let mut fx = fixture();
    fx.sync.password_writeback_enabled = false;
    let (sim2, f2) = start_with(fx).await;
    let c2 = delegated_client(&sim2, &f2).await;
    let off = c2.on_premises_sync().await.unwrap();
    assert!(off.is_none_or(|s| !s.features.password_writeback_enabled));
    drop(sim);
}

#[tokio::test]
async fn password_rule_settings_are_entras_defaults_until_configured() {
    let mut fx = fixture();
    fx.password_policy.banned_words.clear();
    let (sim, f) = start_with(fx).await;
    let c = app_client(&sim, &f);
    // A tenant has no settings object until one is configured: Entra's defaults apply.
    assert_eq!(
        c.password_rule_settings().await.unwrap(),
        latchkey_graph::PasswordRuleSettings::default()
    );

    let mut fx = fixture();
    fx.password_policy.banned_words = vec!["contoso".into(), "fabrikam".into()];
    fx.smart_lockout.threshold = 5;
    fx.smart_lockout.duration_seconds = 300;
    let (sim, f) = start_with(fx).await;
    let c = app_client(&sim, &f);
    let s = c.password_rule_settings().await.unwrap();
    assert!(s.banned_check_enabled);
    assert_eq!(s.banned_passwords, ["contoso", "fabrikam"]);
    assert_eq!(s.lockout_threshold, 5);
    assert_eq!(s.lockout_duration_seconds, 300);
}

#[tokio::test]
async fn password_rule_settings_need_a_settings_permission() {
    let mut fx = fixture();
    let app = fx
        .apps
        .iter_mut()
        .find(|a| a.client_id == CLIENT_ID)
        .unwrap();
    app.application_permissions.retain(|p| {
        !p.starts_with("GroupSettings.") && !p.starts_with("Directory.") && !p.starts_with("Group.")
    });
    let (sim, f) = start_with(fx).await;
    let c = app_client(&sim, &f);
    let e = c.password_rule_settings().await.unwrap_err();
    assert!(e.is_forbidden(), "{e:?}");
}

#[tokio::test]
async fn the_registration_report_pages_and_needs_a_premium_tenant_and_its_permission() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let mut all = Vec::new();
    let mut next = None;
    loop {
        let page = c.registration_details_page(next.as_ref()).await.unwrap();
        all.extend(page.items);
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    let ids: std::collections::HashSet<_> = all.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), all.len(), "each user once across the pages");
    for u in &f.users {
        let listed = all
            .iter()
            .any(|r| r.user_principal_name.as_deref() == Some(u.upn.as_str()));
        assert_eq!(listed, u.account_enabled != Some(false), "{}", u.upn);
    }
    // A user with a mobile phone method shows it as the report names it.
    let with_phone = f
        .users
        .iter()
        .find(|u| u.methods.phones.iter().any(|p| p.phone_type == "mobile"))
        .expect("the fixture has a mobile phone method");
    let entry = all
        .iter()
        .find(|r| r.user_principal_name.as_deref() == Some(with_phone.upn.as_str()))
        .unwrap();
    assert!(entry.methods_registered.iter().any(|m| m == "mobilePhone"));

    sim.tenant().set_premium(false);
    let e = c.registration_details_page(None).await.unwrap_err();
    assert!(e.is_forbidden(), "{e:?}");
    assert!(
        format!("{e:?}").contains("Authentication_RequestFromNonPremiumTenantOrB2CTenant"),
        "{e:?}"
    );

    sim.tenant().set_premium(true);
    assert!(
        sim.tenant()
            .remove_app_permission(CLIENT_ID, "AuditLog.Read.All")
    );
    // A new client: a token already issued keeps the roles it was issued with, as in Entra.
    let c = app_client(&sim, &f);
    let e = c.registration_details_page(None).await.unwrap_err();
    assert!(e.is_forbidden(), "{e:?}");
}
