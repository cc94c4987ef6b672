//! One method per endpoint of the v1 API, each sent through [`Client::send`] (so retried)
//! and read into the server's own wire types.

use bytes::Bytes;
use reqwest::{Method, header};
use tirage_core::codes::ErrorCode;
use tirage_core::wire::{
    BatchView, CreateBatchRequest, PhotoList, PhotoView, PhotosAccepted, SessionCreated,
    UploadTicket, UploadsCreated, UploadsRequest,
};
use uuid::Uuid;

use super::error::ClientError;
use super::sse::EventStream;
use super::transport::Client;
use crate::codes::Code;

/// One file sent as the `file` part of a multipart upload.
#[derive(Debug, Clone, Copy)]
pub struct UploadPart<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub len: u64,
}

impl Client {
    /// `POST /v1/sessions`; the session is used for every later request.
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
        self.authenticate(created.token);
        Ok(())
    }

    /// `POST /v1/batches`.
    pub async fn create_batch(
        &self,
        request: &CreateBatchRequest,
    ) -> Result<BatchView, ClientError> {
        self.send_json(|| self.request(Method::POST, "/v1/batches").json(request))
            .await
    }

    /// `GET /v1/batches/{id}`.
    pub async fn get_batch(&self, id: Uuid) -> Result<BatchView, ClientError> {
        self.send_json(|| self.request(Method::GET, &format!("/v1/batches/{id}")))
            .await
    }

    /// `POST /v1/batches/{id}/close`.
    pub async fn close_batch(&self, id: Uuid) -> Result<BatchView, ClientError> {
        self.send_json(|| self.request(Method::POST, &format!("/v1/batches/{id}/close")))
            .await
    }

    /// `GET /v1/batches/{id}/photos`, every page, following the cursor.
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

    /// `GET /v1/batches/{id}/events`, open.
    pub async fn batch_events(&self, id: Uuid) -> Result<EventStream, ClientError> {
        let path = format!("/v1/batches/{id}/events");
        let response = self
            .send(|| {
                self.request(Method::GET, &path)
                    .header(header::ACCEPT, "text/event-stream")
            })
            .await?;
        Ok(EventStream::new(response))
    }

    /// `POST /v1/batches/{id}/photos` with one multipart `file` part. `body` makes the part's
    /// bytes afresh for each attempt; `idempotency_key` is the same on every attempt, so a
    /// retry after a lost answer registers the same photo instead of a second one.
    pub async fn upload_photo(
        &self,
        batch: Uuid,
        part: UploadPart<'_>,
        idempotency_key: &str,
        body: impl Fn() -> reqwest::Body,
    ) -> Result<PhotosAccepted, ClientError> {
        let path = format!("/v1/batches/{batch}/photos");
        self.send_json(|| {
            let file = || {
                reqwest::multipart::Part::stream_with_length(body(), part.len)
                    .file_name(part.filename.to_owned())
            };
            // Every type we send is a valid literal; without it the server sniffs the bytes.
            let file = file()
                .mime_str(part.content_type)
                .unwrap_or_else(|_| file());
            self.request(Method::POST, &path)
                .header("Idempotency-Key", idempotency_key)
                .multipart(reqwest::multipart::Form::new().part("file", file))
        })
        .await
    }

    /// `POST /v1/batches/{id}/uploads`: one presigned URL per file, in order. `Ok(None)`
    /// when the server has no such endpoint (the caller falls back to multipart).
    pub async fn request_uploads(
        &self,
        batch: Uuid,
        request: &UploadsRequest,
    ) -> Result<Option<Vec<UploadTicket>>, ClientError> {
        let path = format!("/v1/batches/{batch}/uploads");
        match self
            .send_json::<UploadsCreated>(|| self.request(Method::POST, &path).json(request))
            .await
        {
            Ok(created) if created.uploads.len() == request.files.len() => {
                Ok(Some(created.uploads))
            }
            Ok(created) => Err(ClientError::Protocol(format!(
                "asked for {} upload URLs, got {}",
                request.files.len(),
                created.uploads.len()
            ))),
            Err(ClientError::Api {
                status: 404 | 405 | 501,
                code,
                ..
            }) if code != Code::Api(ErrorCode::BatchNotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one file to its presigned URL, with the ticket's headers exactly as given.
    pub async fn put_presigned(
        &self,
        ticket: &UploadTicket,
        len: u64,
        body: impl Fn() -> reqwest::Body,
    ) -> Result<(), ClientError> {
        let method = Method::from_bytes(ticket.method.as_bytes()).unwrap_or(Method::PUT);
        self.send(|| {
            let mut request = self
                .external(method.clone(), &ticket.url)
                .header(header::CONTENT_LENGTH, len)
                .body(body());
            // The ticket's Content-Length (its signed length) is the one set above from the
            // file: sent once, as the store checks it against the signature.
            for (name, value) in &ticket.headers {
                if !name.eq_ignore_ascii_case("content-length") {
                    request = request.header(name.as_str(), value.as_str());
                }
            }
            request
        })
        .await?;
        Ok(())
    }

    /// `POST /v1/batches/{id}/photos/{photo}/complete`, once the presigned upload is done.
    pub async fn complete_upload(&self, batch: Uuid, photo: Uuid) -> Result<(), ClientError> {
        let path = format!("/v1/batches/{batch}/photos/{photo}/complete");
        self.send(|| self.request(Method::POST, &path)).await?;
        Ok(())
    }

    /// `GET /v1/batches/{id}/archive`: the answer whose body is the batch's renditions as
    /// one ZIP, not read yet (it may be large: the caller streams it).
    pub async fn batch_archive(&self, id: Uuid) -> Result<reqwest::Response, ClientError> {
        let path = format!("/v1/batches/{id}/archive");
        self.send(|| self.request(Method::GET, &path)).await
    }

    /// `GET` of a rendition, by the API path its [`PhotoView`] lists.
    pub async fn download(&self, url: &str) -> Result<Bytes, ClientError> {
        let response = self.send(|| self.request(Method::GET, url)).await?;
        response
            .bytes()
            .await
            .map_err(|e| ClientError::Network(e.to_string()))
    }
}
