//! A minimal browser for HTTP-level portal tests: a cookie jar, no redirect following, and
//! helpers that walk the self-service flow the way a person would.

use std::collections::BTreeMap;

use latchkey::demo::Demo;

pub struct Browser {
    http: reqwest::Client,
    pub base: String,
    jar: BTreeMap<String, String>,
    pub origin: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    /// The first CSRF token in the page.
    pub fn csrf(&self) -> String {
        self.body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string()
    }
}

impl Browser {
    pub fn new(demo: &Demo) -> Self {
        Self::at(demo.portal_url())
    }

    /// A browser for a portal at `base` (e.g. a `latchkey serve` started by the test).
    pub fn at(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            base: base.to_string(),
            jar: BTreeMap::new(),
            origin: Some(base.to_string()),
        }
    }

    /// This browser with `Accept-Language: accept` on every request.
    pub fn in_language(mut self, accept: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "accept-language",
            reqwest::header::HeaderValue::from_str(accept).unwrap(),
        );
        self.http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        self
    }

    pub fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Page {
        for v in resp.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.to_ascii_lowercase().contains("max-age=0") || value.is_empty() {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let location = headers
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        Page {
            status,
            location,
            body: resp.text().await.unwrap(),
            headers,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form);
        if let Some(o) = &self.origin {
            req = req.header("origin", o);
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    /// Home page → identify. Returns the response to POST /start.
    pub async fn identify(&mut self, login: &str) -> Page {
        let csrf = self.get("/").await.csrf();
        self.post("/start", &[("csrf", &csrf), ("login", login)])
            .await
    }

    /// Asks for a code by `kind` (email or sms) from the verify page; returns the code page.
    pub async fn ask_code(&mut self, kind: &str) -> Page {
        let csrf = self.get("/verify").await.csrf();
        self.post(&format!("/verify/{kind}/start"), &[("csrf", &csrf)])
            .await
    }

    /// Submits a code for `kind`.
    pub async fn submit_code(&mut self, kind: &str, code: &str) -> Page {
        let csrf = self.get("/verify").await.csrf();
        self.post(
            &format!("/verify/{kind}"),
            &[("csrf", &csrf), ("code", code)],
        )
        .await
    }

    /// The value of a cookie in the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.get(name).cloned()
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.jar.contains_key(name)
    }
}

/// The newest code the outbox shows for `to` (waits briefly: sends are queued).
pub async fn code_for(demo: &Demo, to: &str) -> Option<String> {
    for _ in 0..50 {
        if let Some(m) = demo
            .outbox
            .messages()
            .into_iter()
            .find(|m| m.to == to && m.body.contains("code"))
        {
            let digits: String = m
                .body
                .split(|c: char| !c.is_ascii_digit())
                .find(|s| s.len() >= 6)
                .unwrap_or_default()
                .to_string();
            return Some(digits);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}

/// The current authenticator code of a pre-enrolled demo user, read from the outbox page.
pub async fn totp_for(browser: &mut Browser, upn: &str) -> String {
    let page = browser.get("/demo/outbox").await;
    let marker = format!("{upn}</td><td><code class=\"totp\">");
    page.body
        .split(&marker)
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_default()
        .to_string()
}
