//! The portal's pages in a real browser at the kiosk size, each checked with axe-core.

use latchkey_e2e::{WAIT, browser_test, spawn_app};

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_ok() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let response = app.get("/healthz").await?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await?, "ok");
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn index_renders_at_kiosk_size_and_is_accessible() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    browser_test("index_renders_at_kiosk_size_and_is_accessible", async |b| {
        b.open(&app.url("/")).await?;
        assert_eq!(
            b.heading().await?,
            "Reset your password or unlock your account"
        );
        let title = b.driver().title().await?;
        assert!(title.contains("Contoso (demo)"), "title {title:?}");
        b.wait_for_text("Your work account", WAIT).await?;
        b.assert_fits_kiosk().await?;
        b.assert_accessible().await
    })
    .await?;
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_starts_in_process_and_its_portal_and_tenant_answer() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    // The portal ...
    let index = app.get("/").await?;
    assert_eq!(index.status().as_u16(), 200);
    assert!(index.text().await?.contains("<main"));
    // ... the simulated tenant it is configured against ...
    let oidc = format!(
        "{}/{}/v2.0/.well-known/openid-configuration",
        app.sim().base_url(),
        app.sim().tenant_id()
    );
    let oidc = app.http().get(&oidc).send().await?;
    assert_eq!(
        oidc.status().as_u16(),
        200,
        "simulator's OpenID configuration"
    );
    // ... and the configuration file `latchkey check` would use.
    let config = std::fs::read_to_string(&app.demo().config_path)?;
    assert!(config.contains(&app.sim().base_url()), "{config}");
    assert!(
        config.contains(app.base_url().trim_start_matches("http://")),
        "{config}"
    );
    app.stop().await;
    Ok(())
}
