//! A small client of the v1 HTTP API: the wire types the CLI reads, and requests retried
//! with exponential backoff on network errors, 5xx and 429 (honouring `Retry-After`).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body (or an error status without one).
    #[error("{message} (HTTP {status})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer, even after every retry.
    #[error("{0}")]
    Network(String),
    /// An answer we cannot read.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Stable snake_case code: the server's own code for API errors.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Api { code, .. } => code,
            ClientError::Network(_) => "network_error",
            ClientError::Protocol(_) => "protocol_error",
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// How hard to try before giving up on a request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled on each further one, up to `cap`.
    pub base: Duration,
    pub cap: Duration,
    /// The longest `Retry-After` we agree to wait.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): exponential with full jitter in
    /// its upper half, so many clients do not come back in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cap);
        let half = exp / 2;
        half + half.mul_f64(random_fraction())
    }
}

/// A fraction in [0, 1) from the OS random source (no extra dependency needed).
fn fraction_from(id: Uuid) -> f64 {
    let bytes = id.as_bytes();
    let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    f64::from(n) / (f64::from(u32::MAX) + 1.0)
}

fn random_fraction() -> f64 {
    fraction_from(Uuid::new_v4())
}

/// Seconds from a `Retry-After` header (the delta-seconds form; dates are rare enough to
/// fall back to our own backoff).
fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// Turns an error answer into [`ClientError::Api`], keeping the server's code when it sent
/// the standard body.
pub async fn api_error(response: Response) -> ClientError {
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    match serde_json::from_slice::<ErrorEnvelope>(&body) {
        Ok(e) => ClientError::Api {
            status: status.as_u16(),
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: format!("http_{}", status.as_u16()),
            message: String::from_utf8_lossy(&body).chars().take(200).collect(),
        },
    }
}

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
                    let wait = retry_after(&response)
                        .map(|d| d.min(self.retry.max_retry_after))
                        .unwrap_or_else(|| self.retry.backoff(attempt));
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

    /// Creates a session and uses it for every later request.
    pub async fn create_session(&mut self, api_key: Option<&str>) -> Result<(), ClientError> {
        let created: SessionCreated = self
            .send_json(|| {
                let r = self.request(Method::POST, "/v1/sessions");
                match api_key {
                    Some(key) => r.header("x-api-key", key),
                    None => r,
                }
            })
            .await?;
        self.token = Some(created.token);
        Ok(())
    }

    pub async fn create_batch(&self, body: &serde_json::Value) -> Result<BatchView, ClientError> {
        self.send_json(|| self.request(Method::POST, "/v1/batches").json(body))
            .await
    }

    pub async fn get_batch(&self, id: Uuid) -> Result<BatchView, ClientError> {
        self.send_json(|| self.request(Method::GET, &format!("/v1/batches/{id}")))
            .await
    }

    pub async fn close_batch(&self, id: Uuid) -> Result<BatchView, ClientError> {
        self.send_json(|| self.request(Method::POST, &format!("/v1/batches/{id}/close")))
            .await
    }

    /// Every photo of the batch, following the pagination cursor.
    pub async fn list_photos(&self, id: Uuid) -> Result<Vec<PhotoView>, ClientError> {
        let mut photos = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/batches/{id}/photos?limit=1000&cursor={c}"),
                None => format!("/v1/batches/{id}/photos?limit=1000"),
            };
            let page: PhotoList = self.send_json(|| self.request(Method::GET, &path)).await?;
            photos.extend(page.photos);
            match page.next_cursor {
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(photos),
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionCreated {
    pub token: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BatchView {
    pub id: Uuid,
    pub state: String,
    pub sizes: Vec<u32>,
    pub format: String,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
}

impl BatchView {
    pub fn is_completed(&self) -> bool {
        self.state == "completed"
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AcceptedPhoto {
    pub id: Uuid,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhotosAccepted {
    pub photos: Vec<AcceptedPhoto>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UploadTicket {
    pub photo_id: Uuid,
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UploadsCreated {
    pub uploads: Vec<UploadTicket>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutputView {
    pub size: u32,
    pub width: u32,
    pub height: u32,
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhotoView {
    pub id: Uuid,
    pub filename: String,
    pub state: String,
    pub error: Option<String>,
    #[serde(default)]
    pub outputs: Vec<OutputView>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PhotoList {
    pub photos: Vec<PhotoView>,
    pub next_cursor: Option<String>,
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Splits a byte stream into server-sent events; feed it chunks as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: String,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer
            .push_str(&String::from_utf8_lossy(chunk).replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = String::from("message");
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
                // Comments (`:`) and other fields (`id`, `retry`) carry nothing we use.
            }
            if !data.is_empty() {
                events.push(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_chunks_and_skip_comments() {
        let mut p = SseParser::default();
        assert!(p.push(b": keep-alive\n\nevent: prog").is_empty());
        let got = p.push(b"ress\r\ndata: {\"done\":1}\r\n\r\nevent: completed\ndata: {}\n\n");
        assert_eq!(
            got,
            vec![
                SseEvent {
                    event: "progress".into(),
                    data: "{\"done\":1}".into()
                },
                SseEvent {
                    event: "completed".into(),
                    data: "{}".into()
                },
            ]
        );
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        let p = RetryPolicy::default();
        for attempt in 1..30 {
            let d = p.backoff(attempt);
            assert!(d <= p.cap, "attempt {attempt}: {d:?}");
        }
        let first = p.backoff(1);
        assert!(first >= p.base / 2 && first <= p.base);
        assert!(p.backoff(5) >= p.base * 16 / 2);
    }

    #[test]
    fn jitter_fraction_is_in_range() {
        assert_eq!(fraction_from(Uuid::nil()), 0.0);
        assert!(fraction_from(Uuid::max()) < 1.0);
    }
}
