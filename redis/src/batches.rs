//! Batches, photos and pending uploads on Redis ([`Batches`], [`PendingUploads`]): each
//! change one script on the batch's slot (`scripts`), the caps in `caps.rs`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisStateStore;
use super::codec::{
    BATCH_FIELDS, batch_from, page_reply, parse, photo_from, redis_error, status_reply, to_json,
};
use tirage_core::model::{Batch, PhotoRecord};
use tirage_ports::records::page_bounds;
use tirage_ports::{
    Batches, Cap, CloseResult, PendingUpload, PendingUploads, PhotoPage, StateError,
};

#[async_trait]
impl Batches for RedisStateStore {
    async fn create_batch(&self, batch: &Batch, max_open: Cap) -> Result<bool, StateError> {
        self.index_batch(batch).await?;
        match max_open {
            Cap::Unlimited => {
                self.write_batch(batch).await?;
                Ok(true)
            }
            Cap::AtMost(max) => self.store_batch_capped(batch, max.get()).await,
        }
    }

    async fn get_batch(&self, batch_id: Uuid) -> Result<Option<Batch>, StateError> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys.batch_hash(batch_id))
            .arg(&BATCH_FIELDS)
            .query_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let fields: Option<Vec<String>> = fields.into_iter().collect();
        fields.map(|f| batch_from(&f)).transpose()
    }

    async fn add_photos(
        &self,
        batch_id: Uuid,
        photos: &[PhotoRecord],
        limit: u64,
    ) -> Result<Batch, StateError> {
        let mut invocation = self.scripts.add_photos(&self.keys.batch(batch_id));
        invocation.arg(limit).arg(Utc::now().timestamp_millis());
        for photo in photos {
            invocation.arg(photo.id.to_string()).arg(to_json(photo)?);
        }
        let reply: Vec<String> = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match status_reply(&reply)? {
            ("ok", _, Some(batch)) => {
                self.announce(batch_id).await;
                Ok(batch)
            }
            ("not_found", ..) => Err(StateError::NotFound),
            ("closed", ..) => Err(StateError::BatchClosed),
            ("too_many", ..) => Err(StateError::TooManyPhotos { limit }),
            (other, ..) => Err(StateError::Corrupt(format!("add_photos reply {other:?}"))),
        }
    }

    async fn close_batch(&self, batch_id: Uuid) -> Result<CloseResult, StateError> {
        let reply: Vec<String> = self
            .scripts
            .close_batch(&self.keys.batch_hash(batch_id))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match status_reply(&reply)? {
            ("ok", completed_now, Some(batch)) => {
                self.announce(batch_id).await;
                Ok(CloseResult {
                    batch,
                    completed_now,
                })
            }
            ("not_found", ..) => Err(StateError::NotFound),
            (other, ..) => Err(StateError::Corrupt(format!("close reply {other:?}"))),
        }
    }

    async fn get_photo(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PhotoRecord>, StateError> {
        let reply: Vec<String> = self
            .scripts
            .get_photo(&self.keys.batch(batch_id))
            .arg(photo_id.to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        match reply.as_slice() {
            [record, _] if record.is_empty() => Ok(None),
            [record, outcome] => photo_from(record, outcome).map(Some),
            _ => Err(StateError::Corrupt("get_photo reply".into())),
        }
    }

    async fn list_photos(
        &self,
        batch_id: Uuid,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PhotoPage, StateError> {
        let (start, end) = page_bounds(cursor, limit)?;
        let reply: Vec<String> = self
            .scripts
            .list_photos(&self.keys.batch(batch_id))
            .arg(start)
            .arg(end.saturating_sub(1))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        let (len, photos) = page_reply(&reply)?;
        let end = end.min(len);
        Ok(PhotoPage {
            photos,
            next_cursor: (end < len).then(|| end.to_string()),
        })
    }

    async fn delete_batch(&self, batch_id: Uuid) -> Result<(), StateError> {
        let _: i64 = self
            .conn()
            .del(&self.keys.batch(batch_id).all())
            .await
            .map_err(redis_error)?;
        self.announce(batch_id).await;
        Ok(())
    }
}

#[async_trait]
impl PendingUploads for RedisStateStore {
    async fn put_pending_uploads(
        &self,
        batch_id: Uuid,
        uploads: &[PendingUpload],
        limit: u64,
    ) -> Result<(), StateError> {
        self.store_pending(batch_id, uploads, Some(limit)).await
    }

    async fn put_pending_upload(
        &self,
        batch_id: Uuid,
        upload: &PendingUpload,
    ) -> Result<(), StateError> {
        self.store_pending(batch_id, std::slice::from_ref(upload), None)
            .await
    }

    async fn take_pending_upload(
        &self,
        batch_id: Uuid,
        photo_id: Uuid,
    ) -> Result<Option<PendingUpload>, StateError> {
        let json: String = self
            .scripts
            .take_pending(&self.keys.batch(batch_id))
            .arg(photo_id.to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis_error)?;
        if json.is_empty() {
            return Ok(None);
        }
        let upload: PendingUpload = parse("pending upload", &json)?;
        let now: DateTime<Utc> = Utc::now();
        Ok((upload.expires_at > now).then_some(upload))
    }
}
