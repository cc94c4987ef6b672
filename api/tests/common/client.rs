//! The one request-builder layer of the API tests: every request a scenario sends is built
//! here, so a scenario reads as what it asks and what it expects back.

use std::future::Future;

use reqwest::multipart::{Form, Part};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use super::TestApp;

/// Sends a request that must reach the server: a transport error fails the test.
pub trait Sent {
    fn sent(self) -> impl Future<Output = Response> + Send;
}

impl Sent for RequestBuilder {
    async fn sent(self) -> Response {
        self.send().await.expect("the API answers")
    }
}

/// The JSON body of an answer (`Null` when it is not JSON).
pub async fn json_of(res: Response) -> Value {
    res.json().await.unwrap_or(Value::Null)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request without credentials.
    pub fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request with the session's bearer token.
    pub fn authed(&self, method: Method, token: &str, path: &str) -> RequestBuilder {
        self.anon(method, path).bearer_auth(token)
    }

    pub fn get(&self, token: &str, path: &str) -> RequestBuilder {
        self.authed(Method::GET, token, path)
    }

    pub fn post(&self, token: &str, path: &str) -> RequestBuilder {
        self.authed(Method::POST, token, path)
    }

    pub fn delete(&self, token: &str, path: &str) -> RequestBuilder {
        self.authed(Method::DELETE, token, path)
    }

    /// `GET path` without credentials, sent.
    pub async fn fetch(&self, path: &str) -> Response {
        self.anon(Method::GET, path).sent().await
    }

    /// `POST path` with a JSON body, sent.
    pub async fn post_json(&self, token: &str, path: &str, body: &Value) -> Response {
        self.post(token, path).json(body).sent().await
    }

    pub async fn session(&self) -> String {
        let res = self.anon(Method::POST, "/v1/sessions").sent().await;
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        json_of(res).await["token"].as_str().unwrap().to_owned()
    }

    pub async fn create_batch(&self, token: &str, body: Value) -> Value {
        let res = self.post_json(token, "/v1/batches", &body).await;
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        json_of(res).await
    }

    pub async fn batch(&self, token: &str, batch_id: &str) -> Value {
        let res = self
            .get(token, &format!("/v1/batches/{batch_id}"))
            .sent()
            .await;
        assert_eq!(res.status(), 200, "{:?}", res.text().await);
        json_of(res).await
    }

    /// The first page of a batch's photos.
    pub async fn photos(&self, token: &str, batch_id: &str) -> Value {
        let path = format!("/v1/batches/{batch_id}/photos");
        json_of(self.get(token, &path).sent().await).await
    }

    /// Asks for a presigned upload (`POST …/uploads`) of one small JPEG.
    pub async fn request_upload(&self, token: &str, batch_id: &str) -> Response {
        let one = serde_json::json!(
            {"files": [{"filename": "a.jpg", "size": 10, "content_type": "image/jpeg"}]}
        );
        self.post_json(token, &format!("/v1/batches/{batch_id}/uploads"), &one)
            .await
    }

    /// A multipart upload of `files` (one `file` part each), not sent yet.
    pub fn upload_request(
        &self,
        token: &str,
        batch_id: &str,
        files: &[(&str, Vec<u8>)],
    ) -> RequestBuilder {
        let form = files.iter().fold(Form::new(), |form, (name, bytes)| {
            form.part("file", jpeg_part(name, bytes.clone()))
        });
        self.post(token, &format!("/v1/batches/{batch_id}/photos"))
            .multipart(form)
    }

    pub async fn upload(&self, token: &str, batch_id: &str, files: &[(&str, Vec<u8>)]) -> Response {
        self.upload_request(token, batch_id, files).sent().await
    }

    /// Uploads `n` small photos and returns their ids.
    pub async fn upload_ok(&self, token: &str, batch_id: &str, n: usize) -> Vec<String> {
        let files: Vec<(String, Vec<u8>)> = (0..n)
            .map(|i| (format!("p{i}.jpg"), jpeg(64 + i as u32, 48)))
            .collect();
        let refs: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let res = self.upload(token, batch_id, &refs).await;
        assert_eq!(res.status(), 202, "{:?}", res.text().await);
        photo_ids(&json_of(res).await)
    }
}

/// A multipart part holding a JPEG file.
pub fn jpeg_part(name: &str, bytes: Vec<u8>) -> Part {
    Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str("image/jpeg")
        .unwrap()
}

/// A small real JPEG (a gradient), so the stand-in worker decodes what the API stored.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

/// Asserts the common error shape and returns the body.
pub async fn expect_error(res: Response, status: u16, code: &str) -> Value {
    let got = res.status().as_u16();
    let body = json_of(res).await;
    assert_eq!(got, status, "status for {code}: body {body}");
    assert_eq!(body["error"]["code"], code, "body {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "body {body}"
    );
    body
}

/// The photo ids of a `202 {"photos": [...]}` answer, in order.
pub fn photo_ids(body: &Value) -> Vec<String> {
    body["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}
