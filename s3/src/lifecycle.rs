//! The bucket's lifecycle rule: the backstop behind the reconciler's sweep of expired
//! batches. Objects under the store's prefix expire `expire_after_days` after they were
//! written, and multipart uploads left unfinished (a client gone mid-upload) are aborted
//! after a day, whatever happens to the processes that should have removed them.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
};

use super::S3ObjectStore;
use super::client::{classify, unbuildable, unless_absent};
use tirage_ports::object_store::ObjectStoreError;

/// The rule's id: the one rule Tirage owns in the bucket's configuration.
pub const RULE_ID: &str = "tirage-expire-objects";

impl S3ObjectStore {
    /// Sets the bucket's lifecycle to one rule: objects under this store's prefix expire
    /// after `days`, unfinished multipart uploads after one day. Idempotent; it replaces
    /// the bucket's lifecycle configuration, so a bucket shared with other applications
    /// should have its rules managed outside Tirage (`expire_after_days = 0`).
    pub async fn ensure_lifecycle(&self, days: u32) -> Result<(), ObjectStoreError> {
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        let rule = LifecycleRule::builder()
            .id(RULE_ID)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix(&self.prefix).build())
            .expiration(LifecycleExpiration::builder().days(days).build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(1)
                    .build(),
            )
            .build()
            .map_err(unbuildable("lifecycle rule"))?;
        let configuration = BucketLifecycleConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(unbuildable("lifecycle configuration"))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .lifecycle_configuration(configuration)
            .send()
            .await
            .map_err(|e| classify(&self.bucket, e))?;
        Ok(())
    }

    /// The expiry in days of Tirage's rule, as the bucket reports it (`None` without it).
    pub async fn lifecycle_days(&self) -> Result<Option<i32>, ObjectStoreError> {
        let answer = self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.bucket)
            .send()
            .await;
        let Some(answer) = unless_absent(&self.bucket, answer, "NoSuchLifecycleConfiguration")?
        else {
            return Ok(None);
        };
        Ok(answer
            .rules()
            .iter()
            .find(|r| r.id() == Some(RULE_ID))
            .and_then(|r| r.expiration())
            .and_then(|e| e.days()))
    }
}
