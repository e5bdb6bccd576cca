//! axe-core, injected into the page under test.

use std::fmt;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::json;
use thirtyfour::WebDriver;

/// The WCAG 2.0, 2.1 and 2.2 level A and AA rules.
pub const WCAG_TAGS: &[&str] = &[
    "wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa",
];

/// Impacts that fail a check.
pub const FAILING_IMPACTS: &[&str] = &["serious", "critical"];

/// One rule axe found broken, with the elements that break it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// Rule id, e.g. `label`, `color-contrast`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: Option<String>,
    /// One line: what the rule requires.
    pub help: String,
    pub help_url: String,
    pub nodes: Vec<ViolationNode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationNode {
    /// CSS selectors (nested arrays for frames and shadow roots).
    pub target: Vec<serde_json::Value>,
    /// The element's HTML, shortened by axe.
    pub html: String,
    pub failure_summary: Option<String>,
}

impl Violation {
    pub fn is_failing(&self) -> bool {
        self.impact
            .as_deref()
            .is_some_and(|i| FAILING_IMPACTS.contains(&i))
    }
}

#[derive(Debug)]
pub enum AxeError {
    /// axe ran and found serious or critical violations (only those are listed).
    Violations {
        url: String,
        violations: Vec<Violation>,
    },
    /// axe could not run: not installed (run `bash tests/run`), or the page broke it.
    Setup(String),
}

impl AxeError {
    /// The failing violations (empty for [`AxeError::Setup`]).
    pub fn violations(&self) -> &[Violation] {
        match self {
            AxeError::Violations { violations, .. } => violations,
            AxeError::Setup(_) => &[],
        }
    }
}

impl fmt::Display for AxeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AxeError::Setup(msg) => write!(f, "axe-core could not run: {msg}"),
            AxeError::Violations { url, violations } => {
                writeln!(
                    f,
                    "{} serious/critical accessibility violation(s) on {url}:",
                    violations.len()
                )?;
                for v in violations {
                    writeln!(
                        f,
                        "- [{}] {}: {} ({})",
                        v.impact.as_deref().unwrap_or("?"),
                        v.id,
                        v.help,
                        v.help_url
                    )?;
                    for node in &v.nodes {
                        let target: Vec<String> = node
                            .target
                            .iter()
                            .map(|t| {
                                t.as_str()
                                    .map(str::to_owned)
                                    .unwrap_or_else(|| t.to_string())
                            })
                            .collect();
                        writeln!(f, "    at {}: {}", target.join(" "), node.html)?;
                        if let Some(summary) = &node.failure_summary {
                            for line in summary.lines() {
                                writeln!(f, "      {line}")?;
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for AxeError {}

/// `LATCHKEY_AXE_JS`, or `tests/e2e/node_modules/axe-core/axe.min.js`, read once per process.
fn axe_source() -> Result<&'static str, AxeError> {
    static SOURCE: OnceLock<Result<String, String>> = OnceLock::new();
    let source = SOURCE.get_or_init(|| {
        let default = crate::crate_dir().join("node_modules/axe-core/axe.min.js");
        let path = crate::tool("LATCHKEY_AXE_JS", &default.to_string_lossy());
        std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {e}. Install axe-core with `bash tests/run` (it runs `npm ci` in tests/e2e), \
                 or set LATCHKEY_AXE_JS to an axe.min.js",
                path.display()
            )
        })
    });
    source.as_deref().map_err(|e| AxeError::Setup(e.clone()))
}

/// Runs axe-core (WCAG 2.0/2.1/2.2 A and AA rules) on the current page and returns every
/// violation, whatever its impact.
pub async fn axe_run(driver: &WebDriver) -> Result<(String, Vec<Violation>), AxeError> {
    let setup = |e: thirtyfour::error::WebDriverError| AxeError::Setup(e.to_string());
    let present = driver
        .execute("return typeof window.axe === 'object';", vec![])
        .await
        .map_err(setup)?;
    if present.json().as_bool() != Some(true) {
        // WebDriver scripts run through the DevTools protocol, so the page's CSP does not apply.
        driver.execute(axe_source()?, vec![]).await.map_err(setup)?;
    }
    const RUN: &str = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: "tag", values: arguments[0] }, resultTypes: ["violations"] })
            .then((r) => done({ ok: JSON.stringify({ url: r.url, violations: r.violations }) }))
            .catch((e) => done({ error: String((e && e.stack) || e) }));
    "#;
    let ret = driver
        .execute_async(RUN, vec![json!(WCAG_TAGS)])
        .await
        .map_err(setup)?;
    let value = ret.json();
    if let Some(error) = value.get("error") {
        return Err(AxeError::Setup(format!("axe.run failed: {error}")));
    }
    #[derive(Deserialize)]
    struct Results {
        url: String,
        violations: Vec<Violation>,
    }
    let ok = value
        .get("ok")
        .and_then(|v| v.as_str())
        .ok_or_else(|| AxeError::Setup(format!("unexpected answer {value}")))?;
    let results: Results = serde_json::from_str(ok)
        .map_err(|e| AxeError::Setup(format!("cannot read axe's results: {e}")))?;
    Ok((results.url, results.violations))
}

/// Runs axe-core on the current page: `Err` with a readable report when there are serious or
/// critical violations (minor and moderate ones are printed to stderr, not failed on), or when
/// axe cannot run — a missing axe-core is a failure, never a skip.
pub async fn axe_check(driver: &WebDriver) -> Result<(), AxeError> {
    let (url, all) = axe_run(driver).await?;
    let (violations, minor): (Vec<_>, Vec<_>) = all.into_iter().partition(Violation::is_failing);
    for v in &minor {
        eprintln!(
            "axe ({url}): {} [{}] {} — {} element(s)",
            v.id,
            v.impact.as_deref().unwrap_or("?"),
            v.help,
            v.nodes.len()
        );
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(AxeError::Violations { url, violations })
    }
}
