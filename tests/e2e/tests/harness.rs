//! The harness checks itself: axe-core does catch an inaccessible page, the form helpers work,
//! a failing browser test leaves a screenshot.

use actix_web::{App, HttpResponse, HttpServer, web};
use latchkey_e2e::{AxeError, WAIT, axe_check, browser_test};

/// A tiny site of fixture pages on a free port, stopped on drop.
struct Fixtures {
    url: String,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        // Sends the stop command at once; the server winds down with the runtime.
        drop(self.handle.stop(false));
    }
}

fn page(body: &str) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Fixture</title></head>\
         <body><main><h1>Fixture</h1>{body}</main></body></html>"
    ))
}

fn fixtures() -> Fixtures {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(|| {
        App::new()
            // An input without a label: axe's `label` rule (critical).
            .route("/unlabelled", web::get().to(|| async { page("<form><input type=\"text\" name=\"who\"></form>") }))
            .route(
                "/form",
                web::get().to(|q: web::Query<std::collections::HashMap<String, String>>| async move {
                    match q.get("name") {
                        Some(name) => page(&format!("<p>Hello, {}.</p>", name.replace('<', "&lt;"))),
                        None => page(
                            "<form method=\"get\"><label for=\"n\">Your name</label> <input id=\"n\" name=\"name\"> \
                             <label>Not a field <span>here</span></label> \
                             <button type=\"submit\">Say hello</button></form>",
                        ),
                    }
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Fixtures { url, handle }
}

#[tokio::test(flavor = "multi_thread")]
async fn axe_reports_an_input_without_a_label() -> anyhow::Result<()> {
    let site = fixtures();
    browser_test("axe_reports_an_input_without_a_label", async |b| {
        b.open(&format!("{}/unlabelled", site.url)).await?;
        let err = axe_check(b.driver())
            .await
            .expect_err("axe must fail an unlabelled input");
        let AxeError::Violations { url, violations } = &err else {
            panic!("axe did not run: {err}")
        };
        assert!(url.ends_with("/unlabelled"), "{url}");
        let label = violations
            .iter()
            .find(|v| v.id == "label")
            .unwrap_or_else(|| panic!("no `label` violation in:\n{err}"));
        assert_eq!(label.impact.as_deref(), Some("critical"));
        let report = err.to_string();
        assert!(
            report.contains("label") && report.contains("input"),
            "report:\n{report}"
        );
        // The helpers refuse the field too: it has no label to find it by.
        let fill = b
            .fill("who", "x")
            .await
            .expect_err("an unlabelled field cannot be filled");
        assert!(fill.to_string().contains("no the field labelled"), "{fill}");
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn form_helpers_fill_by_label_and_click_by_text() -> anyhow::Result<()> {
    let site = fixtures();
    browser_test("form_helpers_fill_by_label_and_click_by_text", async |b| {
        b.open(&format!("{}/form", site.url)).await?;
        b.assert_fits_kiosk().await?;
        let axe = std::time::Instant::now();
        b.assert_accessible().await?;
        eprintln!("axe check (inject + run) took {:?}", axe.elapsed());
        let orphan = b
            .fill("Not a field here", "x")
            .await
            .expect_err("a label without a control");
        assert!(
            orphan.to_string().contains("belongs to no form control"),
            "{orphan}"
        );
        b.fill("Your name", "Adele").await?;
        b.click_button("Say hello").await?;
        b.wait_for_text("Hello, Adele.", WAIT).await?;
        assert!(b.url().await?.contains("name=Adele"));
        let missing = b
            .click_button("Say hello")
            .await
            .expect_err("the button is gone");
        assert!(missing.to_string().contains("no the button"), "{missing}");
        Ok(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_browser_test_leaves_a_screenshot() -> anyhow::Result<()> {
    let site = fixtures();
    let name = "harness_self_check_deliberate_failure";
    let png = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../target/e2e-screenshots/{name}.png"));
    let _ = std::fs::remove_file(&png);
    let result = browser_test(name, async |b| {
        b.open(&format!("{}/form", site.url)).await?;
        b.wait_for_text(
            "text that never appears",
            std::time::Duration::from_millis(300),
        )
        .await
    })
    .await;
    let err = result.expect_err("the test body failed");
    assert!(
        format!("{err:#}").contains("text that never appears"),
        "{err:#}"
    );
    let bytes = std::fs::read(&png)?;
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        png.display()
    );
    Ok(())
}
