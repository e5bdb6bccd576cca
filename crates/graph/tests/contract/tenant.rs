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
