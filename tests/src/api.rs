//! The client side of the v1 API through nginx, as `tirage upload` uses it, and the checks
//! of a finished batch: every photo's outcome, every rendition fetched and decoded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    /// How many times an upload is retried after a transport error or a 502/503/504.
    pub upload_retries: u32,
}

impl Api {
    /// A new session on `base` (nginx's URL).
    pub async fn new(base: String) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let resp = http
            .post(format!("{base}/v1/sessions"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "POST /v1/sessions");
        let body: Value = resp.json().await.unwrap();
        let token = body["token"].as_str().expect("token").to_string();
        Api {
            http,
            base,
            token,
            upload_retries: 3,
        }
    }

    /// A batch with the default options.
    pub async fn create_batch(&self) -> String {
        self.create_batch_with(json!({})).await
    }

    /// A batch with these options (`sizes`, `format`, `callback_url`, ...).
    pub async fn create_batch_with(&self, options: Value) -> String {
        let resp = self
            .http
            .post(format!("{}/v1/batches", self.base))
            .bearer_auth(&self.token)
            .json(&options)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::CREATED, "POST /v1/batches: {body}");
        body["id"].as_str().expect("batch id").to_string()
    }

    /// `GET path` with this session, whatever it answers.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// `POST path` without a body, which must answer 200 (`close`).
    pub async fn post_empty(&self, path: &str) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "POST {path}");
    }

    /// Uploads one photo the way `tirage upload` does: one `Idempotency-Key` for the upload
    /// and its retries, retried on transport errors and 502/503/504 (a replica that stops or
    /// dies drops its connections; nginx cannot replay a streamed body to the other one).
    /// Returns the photo id and how many retries it took.
    pub async fn upload(
        &self,
        batch: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<(String, u32), String> {
        let key = uuid::Uuid::new_v4().to_string();
        let mut retries = 0;
        loop {
            let mime = if name.ends_with(".png") {
                "image/png"
            } else {
                "image/jpeg"
            };
            let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                .file_name(name.to_string())
                .mime_str(mime)
                .unwrap();
            let form = reqwest::multipart::Form::new().part("file", part);
            let sent = self
                .http
                .post(format!("{}/v1/batches/{batch}/photos", self.base))
                .bearer_auth(&self.token)
                .header("Idempotency-Key", &key)
                .multipart(form)
                .send()
                .await;
            let failure = match sent {
                Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                    match resp.text().await {
                        Ok(text) => {
                            let body: Value =
                                serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
                            let id = body["photos"][0]["id"].as_str().unwrap_or_default();
                            return Ok((id.to_string(), retries));
                        }
                        // The answer was lost on the way: the retry says what was registered.
                        Err(e) => format!("{name}: body: {e}"),
                    }
                }
                Ok(resp)
                    if matches!(
                        resp.status(),
                        StatusCode::BAD_GATEWAY
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT
                    ) =>
                {
                    format!("{name}: {}", resp.status())
                }
                Ok(resp) => {
                    let status = resp.status();
                    return Err(format!(
                        "{name}: {status} {}",
                        resp.text().await.unwrap_or_default()
                    ));
                }
                Err(e) => format!("{name}: transport error: {e}"),
            };
            retries += 1;
            if retries > self.upload_retries {
                return Err(format!("{failure} (after {retries} attempts)"));
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(retries))).await;
        }
    }

    pub async fn close(&self, batch: &str) {
        self.post_empty(&format!("/v1/batches/{batch}/close")).await;
    }

    pub async fn batch(&self, batch: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/v1/batches/{batch}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET batch");
        resp.json().await.unwrap()
    }

    /// Like [`Api::batch`], but `None` instead of a panic when the API does not answer 200
    /// (a dependency down makes it answer 503 for a while).
    pub async fn try_batch(&self, batch: &str) -> Option<Value> {
        let resp = self
            .http
            .get(format!("{}/v1/batches/{batch}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        if resp.status() != StatusCode::OK {
            return None;
        }
        resp.json().await.ok()
    }

    /// Waits until the batch is `completed`; panics with its last state after `within`.
    pub async fn wait_completed(&self, batch: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let mut last = Value::Null;
        loop {
            if let Some(b) = self.try_batch(batch).await {
                if b["state"] == "completed" {
                    return b;
                }
                last = b;
            }
            assert!(
                Instant::now() < deadline,
                "batch {batch} not completed after {within:?}: {last}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every photo of the batch, all pages.
    pub async fn photos(&self, batch: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let resp = self
                .http
                .get(format!(
                    "{}/v1/batches/{batch}/photos?limit=1000&cursor={cursor}",
                    self.base
                ))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "GET photos");
            let body: Value = resp.json().await.unwrap();
            all.extend(body["photos"].as_array().expect("photos").iter().cloned());
            match body["next_cursor"].as_str() {
                Some(next) => cursor = next.to_string(),
                None => return all,
            }
        }
    }

    /// The batch lists a number of photos within `listed`; the ones named in `failed` (file
    /// name → code, or `*` for any code) failed with that code and have no rendition; every
    /// other one is done, and each
    /// of its renditions is fetched through nginx and checked: it decodes, its size is what
    /// the listing says, its short side is the requested size (never upscaled) and its aspect
    /// ratio is the original's. Returns how many renditions were checked.
    pub async fn check_photos(
        &self,
        batch: &str,
        listed: std::ops::RangeInclusive<usize>,
        failed: &BTreeMap<String, String>,
    ) -> usize {
        let list = self.photos(batch).await;
        assert!(
            listed.contains(&list.len()),
            "batch {batch} lists {} photos, not {listed:?}",
            list.len()
        );
        let listed = list.len();
        let mut fetched = 0;
        for p in &list {
            let name = p["filename"].as_str().unwrap_or_default();
            if let Some(code) = failed.get(name) {
                assert_eq!(p["state"], "failed", "photo {p}");
                if code != "*" {
                    assert_eq!(p["error"], code.as_str(), "failure code of {p}");
                }
                assert_eq!(
                    p["outputs"],
                    json!([]),
                    "a failed photo has no rendition: {p}"
                );
                continue;
            }
            assert_eq!(p["state"], "done", "photo {p}");
            fetched += self.check_renditions_of(p).await;
        }
        eprintln!("batch {batch}: {listed} photos, {fetched} renditions checked");
        fetched
    }

    async fn check_renditions_of(&self, p: &Value) -> usize {
        let (w0, h0) = (p["width"].as_u64().unwrap(), p["height"].as_u64().unwrap());
        let outputs = p["outputs"].as_array().expect("outputs");
        assert_eq!(outputs.len(), 3, "three renditions (1080, 720, 360): {p}");
        for o in outputs {
            let url = o["url"].as_str().unwrap();
            // A 503 says a dependency is still coming back (a replica reconnecting to Redis
            // after its restart): a client retries it, as the API asks.
            let mut tries = 0;
            let resp = loop {
                let resp = self
                    .http
                    .get(format!("{}{url}", self.base))
                    .bearer_auth(&self.token)
                    .send()
                    .await
                    .unwrap();
                tries += 1;
                if resp.status() != StatusCode::SERVICE_UNAVAILABLE || tries == 30 {
                    break resp;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            };
            assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
            let ctype = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            assert_eq!(ctype, "image/jpeg", "content type of {url}");
            let bytes = resp.bytes().await.unwrap();
            assert_eq!(
                bytes.len() as u64,
                o["bytes"].as_u64().unwrap(),
                "{url} bytes"
            );
            let (w, h) = image::ImageReader::new(std::io::Cursor::new(&bytes))
                .with_guessed_format()
                .unwrap()
                .into_dimensions()
                .unwrap_or_else(|e| panic!("{url} does not decode: {e}"));
            assert_eq!(
                (u64::from(w), u64::from(h)),
                (o["width"].as_u64().unwrap(), o["height"].as_u64().unwrap()),
                "{url} dimensions"
            );
            let size = o["size"].as_u64().unwrap();
            let short = u64::from(w.min(h));
            assert_eq!(short, size.min(w0.min(h0)), "{url}: short side");
            // Same aspect ratio, up to the rounding of one pixel. EXIF orientation may have
            // turned the photo: compare with the original either way round.
            let (w, h) = (u64::from(w), u64::from(h));
            let close = |a: u64, b: u64| a.abs_diff(b) <= w0.max(h0);
            assert!(
                close(w * h0, h * w0) || close(w * w0, h * h0),
                "{url}: {w}x{h} is not the shape of {w0}x{h0}"
            );
        }
        outputs.len()
    }

    /// `DELETE /v1/batches/{id}`: 204.
    pub async fn delete(&self, batch: &str) {
        let resp = self
            .http
            .delete(format!("{}/v1/batches/{batch}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::NO_CONTENT,
            "DELETE batch {batch}"
        );
    }
}
