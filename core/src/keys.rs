//! Object keys. Every key is built from server-generated UUIDs and validated numbers only:
//! no user-supplied name ever reaches the object store (or, through the embedded store, the
//! file system).

use uuid::Uuid;

use crate::model::OutputFormat;

/// Prefix holding everything a batch owns; deleting it deletes the batch's objects.
pub fn batch_prefix(batch_id: Uuid) -> String {
    format!("batches/{batch_id}/")
}

/// Where the uploaded original of a photo lives.
pub fn original_key(batch_id: Uuid, photo_id: Uuid) -> String {
    format!("batches/{batch_id}/photos/{photo_id}/original")
}

/// Where one rendition lives. Deterministic, so a redelivered job rewrites the same keys.
pub fn rendition_key(batch_id: Uuid, photo_id: Uuid, size: u32, format: OutputFormat) -> String {
    format!(
        "batches/{batch_id}/photos/{photo_id}/{size}.{}",
        format.extension()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_batch_prefix() {
        let (b, p) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(original_key(b, p).starts_with(&batch_prefix(b)));
        let key = rendition_key(b, p, 720, OutputFormat::Webp);
        assert!(key.starts_with(&batch_prefix(b)));
        assert!(key.ends_with("/720.webp"));
        assert_ne!(original_key(b, p), original_key(b, Uuid::new_v4()));
    }
}
