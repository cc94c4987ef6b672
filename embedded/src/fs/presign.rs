//! Presigned URLs of the embedded store: they point back at the service
//! (`/v1/objects/{key}`), signed with HMAC-SHA256 over the method, the key, the expiry and,
//! for a PUT, the exact body length; the service checks them with
//! [`FsObjectStore::verify_presigned`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use super::FsObjectStore;
use tirage_ports::object_store::{ObjectStoreError, PresignedRequest, validate_key};

type HmacSha256 = Hmac<Sha256>;

/// Why a presigned request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresignError {
    #[error("invalid object key")]
    InvalidKey,
    #[error("the presigned URL has expired")]
    Expired,
    #[error("the presigned URL's signature does not match")]
    BadSignature,
}

impl FsObjectStore {
    /// What a signature covers: the method, the key, the expiry and, for a PUT, the exact
    /// body length the request must have.
    fn signed_text(method: &str, key: &str, expires: i64, length: Option<u64>) -> String {
        let method = method.to_ascii_uppercase();
        match length {
            Some(length) => format!("{method}\n{key}\n{expires}\n{length}"),
            None => format!("{method}\n{key}\n{expires}"),
        }
    }

    fn sign(
        &self,
        method: &str,
        key: &str,
        expires: i64,
        length: Option<u64>,
    ) -> Result<String, ObjectStoreError> {
        let mut mac = HmacSha256::new_from_slice(self.secret.expose_secret().as_bytes())
            .map_err(|e| ObjectStoreError::Unsupported(format!("presign secret: {e}")))?;
        mac.update(Self::signed_text(method, key, expires, length).as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// Checks a presigned request this store issued: `expires` is the URL's unix-seconds
    /// `expires` parameter, `length` its `length` parameter (a PUT's signed body length) and
    /// `signature` its `signature` parameter. The caller then holds a PUT to `length` bytes.
    pub fn verify_presigned(
        &self,
        method: &str,
        key: &str,
        expires: i64,
        length: Option<u64>,
        signature: &str,
    ) -> Result<(), PresignError> {
        validate_key(key).map_err(|_| PresignError::InvalidKey)?;
        let given = hex::decode(signature).map_err(|_| PresignError::BadSignature)?;
        let mut mac = HmacSha256::new_from_slice(self.secret.expose_secret().as_bytes())
            .map_err(|_| PresignError::BadSignature)?;
        mac.update(Self::signed_text(method, key, expires, length).as_bytes());
        // Constant-time comparison, so the signature cannot be guessed byte by byte.
        mac.verify_slice(&given)
            .map_err(|_| PresignError::BadSignature)?;
        if Utc::now().timestamp() >= expires {
            return Err(PresignError::Expired);
        }
        Ok(())
    }

    pub(super) fn presign(
        &self,
        method: &str,
        key: &str,
        ttl: Duration,
        length: Option<u64>,
        headers: Vec<(String, String)>,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        validate_key(key)?;
        let expires_at: DateTime<Utc> =
            Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(7));
        let expires = expires_at.timestamp();
        let signature = self.sign(method, key, expires, length)?;
        let length = length.map(|n| format!("&length={n}")).unwrap_or_default();
        Ok(PresignedRequest {
            method: method.to_owned(),
            url: format!(
                "{}/v1/objects/{key}?expires={expires}{length}&signature={signature}",
                self.public_base_url
            ),
            headers,
            expires_at,
        })
    }
}
