//! The bucket's CORS rule, so that the web page (served by the API on its own origin) can PUT
//! originals and GET renditions through presigned URLs straight to S3. Set by every process
//! at start, like the lifecycle rule, so every deploy works out of the box: the local
//! cluster, compose and Kubernetes alike.

use aws_sdk_s3::types::{CorsConfiguration, CorsRule};

use super::S3ObjectStore;
use super::client::{classify, unbuildable, unless_absent};
use tirage_ports::object_store::ObjectStoreError;

/// The rule's id: the one CORS rule Tirage owns in the bucket's configuration.
pub const RULE_ID: &str = "tirage-web-page";

/// How long a browser may cache the answer to a preflight request.
const MAX_AGE_SECS: i32 = 3600;

impl S3ObjectStore {
    /// Sets the bucket's CORS configuration to one rule: PUT, GET and HEAD from `origins`,
    /// any request header, `ETag` exposed. Idempotent; it replaces the bucket's CORS
    /// configuration, so a bucket shared with other applications should have its rules
    /// managed outside Tirage (`cors_origins = []`).
    pub async fn ensure_cors(&self, origins: &[String]) -> Result<(), ObjectStoreError> {
        let rule = CorsRule::builder()
            .id(RULE_ID)
            .set_allowed_origins(Some(origins.to_vec()))
            .allowed_methods("PUT")
            .allowed_methods("GET")
            .allowed_methods("HEAD")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(MAX_AGE_SECS)
            .build()
            .map_err(unbuildable("CORS rule"))?;
        let configuration = CorsConfiguration::builder()
            .cors_rules(rule)
            .build()
            .map_err(unbuildable("CORS configuration"))?;
        self.client
            .put_bucket_cors()
            .bucket(&self.bucket)
            .cors_configuration(configuration)
            .send()
            .await
            .map_err(|e| classify(&self.bucket, e))?;
        Ok(())
    }

    /// The origins the bucket's CORS rules allow to PUT, as the bucket reports them (empty
    /// without any rule).
    pub async fn cors_put_origins(&self) -> Result<Vec<String>, ObjectStoreError> {
        let answer = self
            .client
            .get_bucket_cors()
            .bucket(&self.bucket)
            .send()
            .await;
        let Some(answer) = unless_absent(&self.bucket, answer, "NoSuchCORSConfiguration")? else {
            return Ok(Vec::new());
        };
        Ok(answer
            .cors_rules()
            .iter()
            .filter(|r| r.allowed_methods().iter().any(|m| m == "PUT"))
            .flat_map(|r| r.allowed_origins().iter().cloned())
            .collect())
    }
}
