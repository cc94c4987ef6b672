//! The HTTP client: a base URL, a session token once created, and sending with retries on
//! network errors, 5xx and 429.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use super::error::{ClientError, api_error};
use super::retry::{RetryPolicy, retryable};

/// The API client: a base URL, a session token once created, and the retry policy.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    pub retry: RetryPolicy,
}

impl Client {
    pub fn new(base: &str, retry: RetryPolicy) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Event streams send a keep-alive comment every 15 s by default.
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("tirage/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Network(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: None,
            retry,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Uses `token` for every later request.
    pub(super) fn authenticate(&mut self, token: String) {
        self.token = Some(token);
    }

    /// An absolute URL for an API path (`/v1/...`), or the URL itself when already absolute.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A request to the API, authenticated once a session exists.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// A request to a URL outside the API (a presigned URL): no session credentials.
    pub fn external(&self, method: Method, url: &str) -> RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends the request `build` makes, again on network errors, 5xx and 429, up to the
    /// policy's attempts. Returns the first answer that is not retried; error statuses come
    /// back as [`ClientError::Api`].
    pub async fn send(
        &self,
        mut build: impl FnMut() -> RequestBuilder,
    ) -> Result<Response, ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.attempts;
            match build().send().await {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) if retryable(response.status()) && !last => {
                    let wait = self.retry.wait_after(&response, attempt);
                    tracing::debug!(status = %response.status(), ?wait, attempt, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Ok(response) => return Err(api_error(response).await),
                Err(e) if !last => {
                    tracing::debug!(error = %e, attempt, "network error; retrying");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                }
                Err(e) => {
                    return Err(ClientError::Network(format!(
                        "{e} (after {attempt} attempts)"
                    )));
                }
            }
        }
    }

    /// [`Client::send`], then the JSON body.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        build: impl FnMut() -> RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(build).await?;
        response
            .json::<T>()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }
}
