//! Streaming uploads: one PUT while the body fits in a part, a multipart upload beyond, so
//! no more than one part is ever held in memory.

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};

use super::client::classify_http;
use super::{PART_SIZE, S3ObjectStore};
use tirage_ports::object_store::{ByteStream, ObjectStoreError, next_within_limit};

pub(super) struct Multipart {
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl S3ObjectStore {
    async fn upload_part(
        &self,
        upload: &mut Multipart,
        body: Bytes,
    ) -> Result<(), ObjectStoreError> {
        let number = i32::try_from(upload.parts.len() + 1)
            .map_err(|_| ObjectStoreError::Unsupported("too many parts".into()))?;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .part_number(number)
            .body(S3Body::from(body))
            .send()
            .await
            .map_err(|e| classify_http(&upload.key, e))?;
        upload.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    pub(super) async fn abort(&self, upload: &Multipart) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            tracing::warn!(key = %upload.key, error = %DisplayErrorContext(&e), "multipart abort failed");
        }
    }

    /// The streaming upload proper; on error the caller aborts `multipart` if one started.
    pub(super) async fn stream_upload(
        &self,
        key: &str,
        mut body: ByteStream,
        content_type: &str,
        max_bytes: u64,
        multipart: &mut Option<Multipart>,
    ) -> Result<u64, ObjectStoreError> {
        let mut buffer = BytesMut::new();
        let mut size: u64 = 0;
        while let Some(chunk) = next_within_limit(&mut body, &mut size, max_bytes).await? {
            buffer.extend_from_slice(&chunk);
            while buffer.len() >= PART_SIZE {
                let part = buffer.split_to(PART_SIZE).freeze();
                if multipart.is_none() {
                    let created = self
                        .client
                        .create_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .content_type(content_type)
                        .send()
                        .await
                        .map_err(|e| classify_http(key, e))?;
                    let upload_id = created.upload_id().ok_or_else(|| {
                        ObjectStoreError::Unavailable("S3 returned no upload id".into())
                    })?;
                    *multipart = Some(Multipart {
                        key: key.to_owned(),
                        upload_id: upload_id.to_owned(),
                        parts: Vec::new(),
                    });
                }
                if let Some(upload) = multipart.as_mut() {
                    self.upload_part(upload, part).await?;
                }
            }
        }
        match multipart.as_mut() {
            None => {
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .content_type(content_type)
                    .body(S3Body::from(buffer.freeze()))
                    .send()
                    .await
                    .map_err(|e| classify_http(key, e))?;
            }
            Some(upload) => {
                if !buffer.is_empty() {
                    self.upload_part(upload, buffer.freeze()).await?;
                }
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload.upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(upload.parts.clone()))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| classify_http(key, e))?;
                // Completed: nothing left to abort.
                *multipart = None;
            }
        }
        Ok(size)
    }
}
