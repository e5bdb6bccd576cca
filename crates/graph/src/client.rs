//! [`GraphClient`]: construction, authenticated requests, paging.

use std::sync::Arc;

use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::config::{GraphConfig, ValidatedEndpoints};
use crate::error::GraphError;
use crate::http::{Endpoint, Http, Request, Response, same_origin, set_query};
use crate::model::TokenClaims;
use crate::token::{RotateHook, TokenSource};
use latchkey_types::Secret;

/// Upper bound on pages followed for one collection (999 items per page for memberships).
const MAX_PAGES: usize = 500;

/// The Microsoft Graph client. Cheap to clone (one `Arc`); clones share the token cache, the
/// connection pool and the request counter.
#[derive(Clone, Debug)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: GraphConfig,
    endpoints: ValidatedEndpoints,
    http: Http,
    tokens: TokenSource,
}

impl GraphClient {
    /// An app-only client (client-credentials grant with the configured secret or certificate).
    ///
    /// Needs a rustls crypto provider installed in the process (the workspace uses ring:
    /// `rustls::crypto::ring::default_provider().install_default()`).
    pub fn new(config: GraphConfig) -> Result<GraphClient, GraphError> {
        Self::build(config, TokenSource::app_only())
    }

    /// A delegated client: tokens come from `refresh_token` (obtained once through
    /// [`crate::delegated`]) and the configured client credential. `scopes` are requested on
    /// every refresh (include `offline_access` to keep receiving refresh tokens). When the token
    /// endpoint returns a new refresh token it replaces the old one and `on_rotate` is called.
    pub fn with_delegated(
        config: GraphConfig,
        refresh_token: Secret<String>,
        scopes: Vec<String>,
        on_rotate: Option<RotateHook>,
    ) -> Result<GraphClient, GraphError> {
        if refresh_token.expose().is_empty() {
            return Err(GraphError::Config("empty refresh token".into()));
        }
        if scopes.is_empty() {
            return Err(GraphError::Config(
                "no scopes for the delegated credential".into(),
            ));
        }
        Self::build(
            config,
            TokenSource::delegated(refresh_token, scopes, on_rotate),
        )
    }

    fn build(config: GraphConfig, tokens: TokenSource) -> Result<GraphClient, GraphError> {
        let endpoints = config.validate()?;
        let http = Http::new(
            config.retry.clone(),
            config.timeouts.clone(),
            config.http_debug,
            config.clock.clone(),
        )?;
        Ok(GraphClient {
            inner: Arc::new(Inner {
                config,
                endpoints,
                http,
                tokens,
            }),
        })
    }

    /// HTTP requests sent by this client and its clones: every attempt, retries and token
    /// requests included. Graph requests are the tenant's throttling budget; report them per flow.
    pub fn request_count(&self) -> u64 {
        self.inner.http.sent()
    }

    /// Switches the redacted HTTP debug log (target [`crate::HTTP_LOG_TARGET`], debug level) on
    /// or off at run time, for this client and its clones.
    pub fn set_http_debug(&self, on: bool) {
        self.inner.http.set_debug(on);
    }

    /// Whether the redacted HTTP debug log is on.
    pub fn http_debug(&self) -> bool {
        self.inner.http.debug()
    }

    /// Tells `observer` about every HTTP attempt of this client and its clones (metrics); set
    /// once, `false` when one is set already.
    pub fn observe(&self, observer: std::sync::Arc<dyn crate::observe::GraphObserver>) -> bool {
        self.inner.http.observe(observer)
    }

    /// True for a client built with [`GraphClient::with_delegated`].
    pub fn is_delegated(&self) -> bool {
        self.inner.tokens.is_delegated()
    }

    /// The Graph base URL in use (no trailing slash).
    pub fn graph_base_url(&self) -> &Url {
        &self.inner.endpoints.graph_base
    }

    /// Claims of the current access token (fetching one if needed), decoded, not verified.
    pub async fn token_claims(&self) -> Result<TokenClaims, GraphError> {
        let token = self.access_token().await?;
        TokenClaims::decode_unverified(token.expose()).ok_or_else(|| {
            GraphError::UnexpectedResponse {
                status: 200,
                message: "the access token is not a readable JWT".into(),
                client_request_id: String::new(),
            }
        })
    }

    pub(crate) async fn access_token(&self) -> Result<Secret<String>, GraphError> {
        let i = &self.inner;
        i.tokens.token(&i.http, &i.config, &i.endpoints).await
    }

    /// Now, by the configured clock, as `SystemTime` (for HTTP dates).
    pub(crate) fn wall_now(&self) -> std::time::SystemTime {
        self.inner.http.wall_now()
    }

    pub(crate) fn timeouts(&self) -> &crate::config::Timeouts {
        self.inner.http.timeouts()
    }

    /// `{graph base}/{segments…}`, each segment percent-encoded as a path segment.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.endpoints.graph_base.clone();
        // graph_base is validated as http(s) with a host, which always has path segments; were
        // it ever not, the request would go to the base URL and fail there, never panic here.
        if let Ok(mut p) = url.path_segments_mut() {
            p.pop_if_empty();
            for s in segments {
                p.push(s);
            }
        }
        url
    }

    /// `url` with query parameters (values encoded, `%20` for spaces).
    pub(crate) fn url_with_query(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.url(segments);
        set_query(&mut url, query);
        url
    }

    /// Refuses links that would take the bearer token to another origin.
    pub(crate) fn check_link(&self, link: &Url) -> Result<(), GraphError> {
        if same_origin(link, &self.inner.endpoints.graph_base) {
            Ok(())
        } else {
            Err(GraphError::ForeignLink {
                origin: link.origin().ascii_serialization(),
            })
        }
    }

    /// Sends an authenticated Graph request. A 401 (e.g. a token revoked early) makes the
    /// client drop that token and try once more with a fresh one.
    pub(crate) async fn send(&self, mut req: Request) -> Result<Response, GraphError> {
        debug_assert_eq!(req.endpoint, Endpoint::Graph);
        let token = self.access_token().await?;
        req.bearer = Some(token.clone());
        let first = self.inner.http.execute(&req).await;
        let rejected = match &first {
            Err(GraphError::Api(e)) if e.status == 401 => Some((**e).clone()),
            // Graph may answer a batch sent with a rejected token 200, every part 401.
            Ok(resp) => req
                .batch_parts()
                .and_then(|n| crate::batch::all_unauthorized(resp, n)),
            Err(_) => None,
        };
        let Some(e) = rejected else {
            return first;
        };
        tracing::info!(
            target: "latchkey_graph",
            client_request_id = %e.client_request_id,
            code = %e.code,
            "Graph rejected the access token; fetching a new one"
        );
        self.inner.tokens.invalidate(&token).await;
        req.bearer = Some(self.access_token().await?);
        self.inner.http.execute(&req).await
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, GraphError> {
        self.send(Request::new(Method::GET, url, Endpoint::Graph))
            .await?
            .json()
    }

    pub(crate) async fn post_json(
        &self,
        url: Url,
        body: Value,
        idempotent: bool,
    ) -> Result<Response, GraphError> {
        self.send(
            Request::new(Method::POST, url, Endpoint::Graph)
                .json(body)
                .idempotent(idempotent),
        )
        .await
    }

    /// All items of a collection, following `@odata.nextLink` (opaque, same origin only) and
    /// sending `headers` again on every page.
    pub(crate) async fn get_paged<T: DeserializeOwned>(
        &self,
        first: Url,
        headers: &[(&'static str, &str)],
    ) -> Result<Vec<T>, GraphError> {
        self.get_paged_with(first, headers, |v| {
            serde_json::from_value(v).map_err(|e| e.to_string())
        })
        .await
    }

    /// [`get_paged`](Self::get_paged) with a custom item decoder (polymorphic collections).
    pub(crate) async fn get_paged_with<T>(
        &self,
        first: Url,
        headers: &[(&'static str, &str)],
        decode: impl Fn(Value) -> Result<T, String>,
    ) -> Result<Vec<T>, GraphError> {
        let resp = self.send(Self::page_request(first, headers)).await?;
        self.pages_from(resp, headers, decode).await
    }

    fn page_request(url: Url, headers: &[(&'static str, &str)]) -> Request {
        let mut req = Request::new(Method::GET, url, Endpoint::Graph);
        for (k, v) in headers {
            req = req.header(k, *v);
        }
        req
    }

    /// The items of `first` (a collection's first page, already read: alone or as a part of a
    /// batch) and of every page after it.
    pub(crate) async fn pages_from<T>(
        &self,
        first: Response,
        headers: &[(&'static str, &str)],
        decode: impl Fn(Value) -> Result<T, String>,
    ) -> Result<Vec<T>, GraphError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            value: Vec<Value>,
            #[serde(rename = "@odata.nextLink", default)]
            next_link: Option<String>,
        }
        let mut items = Vec::new();
        let mut resp = first;
        for _ in 0..MAX_PAGES {
            let page: Page = resp.json()?;
            for v in page.value {
                items.push(decode(v).map_err(|e| GraphError::UnexpectedResponse {
                    status: resp.status.as_u16(),
                    message: format!(
                        "collection item does not match the documented shape: {}",
                        crate::http::without_quoted(&e)
                    ),
                    client_request_id: resp.client_request_id.clone(),
                })?);
            }
            match page.next_link {
                None => return Ok(items),
                Some(next) => {
                    let next = Url::parse(&next).map_err(|_| GraphError::UnexpectedResponse {
                        status: resp.status.as_u16(),
                        message: "@odata.nextLink is not an absolute URL".into(),
                        client_request_id: resp.client_request_id.clone(),
                    })?;
                    self.check_link(&next)?;
                    resp = self.send(Self::page_request(next, headers)).await?;
                }
            }
        }
        Err(GraphError::UnexpectedResponse {
            status: 200,
            message: format!("more than {MAX_PAGES} pages; stopped following @odata.nextLink"),
            client_request_id: String::new(),
        })
    }

    /// GETs `urls` (at most 20, each under the Graph base) in one `$batch` request: the parts,
    /// in the order of `urls`, each `Ok` with its 2xx answer or `Err` with its Graph error. The
    /// outer `Err` is for the batch as a whole (sent, retried and refused like any request).
    pub(crate) async fn get_batch(
        &self,
        urls: &[Url],
    ) -> Result<Vec<Result<Response, GraphError>>, GraphError> {
        let body = crate::batch::body(&self.inner.endpoints.graph_base, urls)?;
        let req = Request::new(Method::POST, self.url(&["$batch"]), Endpoint::Graph)
            .json(body)
            .batch_of(urls.to_vec());
        let resp = self.send(req).await?;
        Ok(crate::batch::split(&resp, urls.len())?
            .into_iter()
            .map(|part| {
                if part.status.is_success() {
                    Ok(part)
                } else {
                    Err(GraphError::Api(Box::new(crate::http::parse_graph_error(
                        &part, None,
                    ))))
                }
            })
            .collect())
    }

    /// Reads any Graph collection with the client's paging, for callers that need a query this
    /// crate does not wrap (e.g. `$search` with `ConsistencyLevel: eventual`). `path_and_query`
    /// is relative to the Graph base URL (`users?$search="displayName:ad"`); `headers` are
    /// sent on every page. Items are returned as JSON.
    pub async fn list_raw(
        &self,
        path_and_query: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Vec<Value>, GraphError> {
        let base = &self.inner.endpoints.graph_base;
        if Url::parse(path_and_query).is_ok() || path_and_query.starts_with("//") {
            return Err(GraphError::InvalidInput(
                "expected a path relative to the Graph base URL".into(),
            ));
        }
        let rel = path_and_query.trim_start_matches('/');
        let url = Url::parse(&format!("{}/{rel}", base.as_str().trim_end_matches('/')))
            .map_err(|_| GraphError::InvalidInput("not a valid relative Graph path".into()))?;
        self.check_link(&url)?;
        let prefix = format!("{}/", base.path().trim_end_matches('/'));
        if !url.path().starts_with(&prefix) {
            return Err(GraphError::InvalidInput(
                "path escapes the Graph base URL".into(),
            ));
        }
        self.get_paged_with(url, headers, Ok).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Credential;

    fn client() -> GraphClient {
        rustls::crypto::ring::default_provider()
            .install_default()
            .ok();
        GraphClient::new(GraphConfig::new(
            "contoso.onmicrosoft.com",
            "11111111-1111-1111-1111-111111111111",
            Credential::ClientSecret(Secret::new("s".into())),
        ))
        .unwrap()
    }

    #[test]
    fn links_to_other_origins_are_refused() {
        let c = client();
        let ok = Url::parse("https://graph.microsoft.com/v1.0/users/x/authentication/operations/1?aadgdc=DUB02P&aadgsu=ssprprod-a").unwrap();
        assert!(c.check_link(&ok).is_ok());
        for bad in [
            "https://graph.microsoft.com.evil.example/v1.0/users",
            "http://graph.microsoft.com/v1.0/users",
            "https://login.microsoftonline.com/x",
            "https://graph.microsoft.com:444/v1.0",
        ] {
            let e = c.check_link(&Url::parse(bad).unwrap()).unwrap_err();
            assert!(matches!(e, GraphError::ForeignLink { .. }), "{bad}");
        }
    }

    #[test]
    fn urls_are_built_from_encoded_segments() {
        let c = client();
        assert_eq!(
            c.url(&["users", "a#b?c/d@x.com"]).as_str(),
            "https://graph.microsoft.com/v1.0/users/a%23b%3Fc%2Fd@x.com"
        );
        assert_eq!(
            c.url_with_query(&["users"], &[("$top", "2")]).as_str(),
            "https://graph.microsoft.com/v1.0/users?$top=2"
        );
    }
}
