//! `latchkey policy check` and `latchkey policy explain`.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn check_accepts_the_shipped_policies_and_locates_errors() {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let out = latchkey(&["policy", "check", shipped.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Default"), "{}", stdout(&out));

    let dir = TempDir::new();
    dir.write("a.toml", "[[policy]]\nname = \"A\"\npriority = 1\nactions = [\"reset\"]\nmethods = [\"email\"]\nmethods_required = 1\n");
    dir.write("b.toml", "[[policy]]\nname = \"B\"\npriority = 1\nactions = [\"reset\"]\nmethods = [\"emial\"]\nmethods_required = 1\n");
    let out = latchkey(&["policy", "check", dir.0.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("b.toml:5:") && err.contains("emial"), "{err}");
    assert!(err.contains("nothing was loaded"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_names_the_policy_the_group_and_the_skipped_ones() {
    let sim = sim(latchkey_entra_sim::Fixture::test()).await;
    let pilot = sim.tenant().group_id("SSPR Pilot").unwrap();
    let staff = sim.tenant().group_id("All Staff").unwrap();
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("policies")).unwrap();
    dir.write(
        "policies/p.toml",
        &format!(
            "[[policy]]\nname = \"Pilot\"\npriority = 10\napplies_to = [{{ id = \"{pilot}\", name = \"SSPR Pilot\" }}]\n\
             actions = [\"reset\"]\nmethods = [\"email\", \"totp\"]\nmethods_required = 2\n\n\
             [[policy]]\nname = \"Everyone\"\npriority = 20\napplies_to = [{{ id = \"{staff}\", name = \"All Staff\" }}]\n\
             excludes = [{{ id = \"{pilot}\", name = \"SSPR Pilot\" }}]\nactions = [\"unlock\"]\nmethods = [\"email\"]\nmethods_required = 1\n"
        ),
    );
    let cfg = config_for(&sim, &dir, "[policies]\ndir = \"policies\"\n");
    // Adele is in Pilot Wave 1, nested in SSPR Pilot.
    let out = latchkey(
        &[
            "policy",
            "explain",
            "adele.vance@contoso.com",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("matched 'Pilot' via group SSPR Pilot"),
        "{}",
        stdout(&out)
    );
    // A Global Administrator is privileged: no policy names privileged accounts.
    let out = latchkey(
        &[
            "policy",
            "explain",
            "admin@contoso.com",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let text = stdout(&out);
    assert!(
        text.contains("privileged") && text.contains("no policy applies"),
        "{text}"
    );
}
