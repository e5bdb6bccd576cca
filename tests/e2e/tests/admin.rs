//! An admin task in a real browser: an admin signs in at the simulated tenant, tests the
//! connection, opens the policy "Staff", widens it to "IT Admins" with privileged accounts
//! allowed, previews the blast radius and a simulated user under the draft, saves, and checks
//! the simulation under the policies in force. axe-core runs on every admin page.

use latchkey::demo;
use latchkey_e2e::{WAIT, browser_test};

const EVA: (&str, &str) = ("it.admin@contoso.com", "Eva-Demo-2024!");
const LENA: &str = "lena.novak@contoso.com";

#[tokio::test(flavor = "multi_thread")]
async fn admin_edits_a_policy_after_seeing_its_impact() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let demo = demo::start("127.0.0.1:0".parse()?).await?;
    let url = demo.portal_url().to_string();
    let sspr = demo
        .sim
        .tenant()
        .group_id("SSPR Enabled")
        .ok_or_else(|| anyhow::anyhow!("no SSPR Enabled group"))?;
    let it = demo
        .sim
        .tenant()
        .group_id("IT Admins")
        .ok_or_else(|| anyhow::anyhow!("no IT Admins group"))?;

    browser_test("admin_policy_edit", async |b| {
        // Sign-in through the tenant's page.
        b.open(&format!("{url}/admin")).await?;
        b.wait_for_text("Sign in", WAIT).await?;
        b.fill("Email, phone, or Skype", EVA.0).await?;
        b.fill("Password", EVA.1).await?;
        b.click_button("Sign in").await?;
        b.wait_for_text("Administration", WAIT).await?;
        b.assert_accessible().await?;

        // The connection page and its test.
        b.open(&format!("{url}/admin/connection")).await?;
        b.wait_for_text("Tenant connection", WAIT).await?;
        b.assert_accessible().await?;
        b.click_button("Test connection").await?;
        b.wait_for_text("everything required is granted", WAIT)
            .await?;
        b.assert_accessible().await?;

        // The policy list, then the edit form of "Staff".
        b.open(&format!("{url}/admin/policies")).await?;
        b.wait_for_text("Policies in evaluation order", WAIT)
            .await?;
        b.assert_accessible().await?;
        b.open(&format!("{url}/admin/policies/edit?name=Staff"))
            .await?;
        b.wait_for_text("Edit policy: Staff", WAIT).await?;
        b.assert_accessible().await?;
        b.fill(
            "Applies to groups",
            &format!("{sspr} SSPR Enabled\n{it} IT Admins"),
        )
        .await?;
        b.labelled_field(
            "Privileged accounts (directory roles) may match (requires 2 methods or more)",
        )
        .await?
        .click()
        .await?;
        b.fill("Simulate a user with this draft (optional)", LENA)
            .await?;
        b.click_button("Preview impact").await?;
        b.wait_for_text("Impact of this change", WAIT).await?;
        // The three IT Admins hold directory roles; the draft lets them in.
        b.wait_for_text(
            "This change stops 0 users who can reset now, and lets 3 new users reset.",
            WAIT,
        )
        .await?;
        b.wait_for_text("matched 'Staff' via group IT Admins", WAIT)
            .await?;
        b.assert_accessible().await?;

        // An invalid value first: the error is shown by the field and nothing is saved.
        b.fill("Methods required", "1").await?;
        b.click_button("Save policy").await?;
        b.wait_for_text("The policy was not saved", WAIT).await?;
        b.wait_for_text("must require at least 2 methods", WAIT)
            .await?;
        b.assert_accessible().await?;
        b.fill("Methods required", "2").await?;
        b.click_button("Save policy").await?;
        b.wait_for_text("Policy 'Staff' saved and in force.", WAIT)
            .await?;
        b.assert_accessible().await?;

        // The simulation under the policies now in force.
        b.open(&format!("{url}/admin/simulate")).await?;
        b.wait_for_text("Simulation", WAIT).await?;
        b.assert_accessible().await?;
        b.fill("User name, email address or object id", LENA)
            .await?;
        b.click_button("Simulate").await?;
        b.wait_for_text("matched 'Staff' via group IT Admins", WAIT)
            .await?;
        b.wait_for_text("User Administrator", WAIT).await?;
        b.assert_accessible().await?;
        b.click_button("Sign out").await?;
        b.wait_for_text("You are signed out", WAIT).await?;
        Ok(())
    })
    .await?;

    let policies = demo.services.policies();
    let staff = policies
        .get("Staff")
        .ok_or_else(|| anyhow::anyhow!("Staff is gone"))?;
    anyhow::ensure!(staff.allow_privileged && staff.applies_to.len() == 2);
    let types = demo.audit_types().await;
    for t in ["admin.signin", "admin.policy.save", "admin.connection.test"] {
        anyhow::ensure!(types.iter().any(|x| x == t), "no {t} event: {types:?}");
    }
    demo.stop().await;
    Ok(())
}
