//! The admin console's reports and audit trail in a real browser: an admin signs in at the
//! simulated tenant, reads the reports, searches the audit trail through the form, follows an
//! event's correlation id, and meets the error summary of a bad search. axe-core on every page.

use latchkey::demo;
use latchkey_e2e::{WAIT, browser_test};

const EVA: (&str, &str) = ("it.admin@contoso.com", "Eva-Demo-2024!");

#[tokio::test(flavor = "multi_thread")]
async fn admin_reads_the_reports_and_searches_the_audit_trail() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse()?).await?;
    let url = demo.portal_url().to_string();

    let result = browser_test("admin_reports_audit", async |b| {
        b.open(&format!("{url}/admin/reports")).await?;
        b.wait_for_text("Sign in", WAIT).await?;
        b.fill("Email, phone, or Skype", EVA.0).await?;
        b.fill("Password", EVA.1).await?;
        b.click_button("Sign in").await?;
        b.wait_for_text("Administration", WAIT).await?;

        b.open(&format!("{url}/admin/reports")).await?;
        b.wait_for_text("Enrollment coverage", WAIT).await?;
        b.wait_for_text("Users who will be unable to reset", WAIT)
            .await?;
        b.wait_for_text("Activity per day", WAIT).await?;
        b.assert_accessible().await?;

        // The audit trail: the admin's own sign-in, found by actor through the form.
        b.open(&format!("{url}/admin/audit")).await?;
        b.wait_for_text("Audit trail", WAIT).await?;
        b.assert_accessible().await?;
        b.fill("Actor", EVA.0).await?;
        b.click_button("Search").await?;
        // The unfiltered trail already shows "admin.signin": wait for the search's own page
        // (its address) before reading it, not for text that was there before the click.
        let deadline = std::time::Instant::now() + WAIT;
        while !b.url().await?.contains("actor=") && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        b.wait_for_load().await?;
        b.wait_for_text("admin.signin", WAIT).await?;
        anyhow::ensure!(
            b.url().await?.contains("actor=it.admin%40contoso.com"),
            "the search is not in the address (not bookmarkable)"
        );
        b.assert_accessible().await?;

        // A bad search: the form again with an error summary linked to the field.
        b.open(&format!("{url}/admin/audit?from=2026-01-12&to=2026-01-10"))
            .await?;
        b.wait_for_text("There is a problem", WAIT).await?;
        b.wait_for_text("The end of the range is before its start.", WAIT)
            .await?;
        b.assert_accessible().await?;
        Ok(())
    })
    .await;
    demo.stop().await;
    result
}
