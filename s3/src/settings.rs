//! The `[s3]` section.

use secrecy::SecretString;
use serde::Deserialize;

fn default_region() -> String {
    "garage".to_owned()
}

fn any_origin() -> Vec<String> {
    vec!["*".to_owned()]
}

#[derive(Debug, Clone, Deserialize)]
pub struct S3Settings {
    /// Where this process reaches S3, e.g. `http://127.0.0.1:3900`.
    pub endpoint: String,
    /// Where clients reach S3, for presigned URLs; defaults to `endpoint`.
    #[serde(default)]
    pub public_endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    /// Prepended to every key (tests isolate under `tirage-test/{uuid}/`).
    #[serde(default)]
    pub key_prefix: String,
    /// When > 0, processes set the bucket's lifecycle at start: objects under `key_prefix`
    /// expire this many days after they were written (a backstop behind the reconciler's
    /// sweep; keep it above the longest batch life), unfinished multipart uploads after a
    /// day. 0 leaves the bucket's lifecycle alone (a bucket shared with other software).
    #[serde(default)]
    pub expire_after_days: u32,
    /// Origins whose pages may PUT and GET through presigned URLs: processes set the
    /// bucket's CORS rule to them at start, so the web page uploads straight to S3. `*` by
    /// default (a presigned URL is itself the credential: one key, one method, minutes);
    /// empty leaves the bucket's CORS configuration alone (a shared bucket).
    #[serde(default = "any_origin")]
    pub cors_origins: Vec<String>,
}
