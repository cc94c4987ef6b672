//! The embedded [`ObjectStore`]: objects as files under a root directory. Keys are checked
//! against a strict alphabet and never climb out of the root; every write lands in a temp
//! file first and is renamed into place, so readers never see half an object. Presigned URLs
//! point back at the service (`/v1/objects/{key}`), signed with HMAC-SHA256, and the service
//! checks them with [`FsObjectStore::verify_presigned`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::ports::object_store::{
    ByteStream, ObjectBody, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
    next_within_limit,
};

type HmacSha256 = Hmac<Sha256>;

/// Most bytes one read of [`ObjectStore::get_stream`] yields.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, Deserialize)]
pub struct FsSettings {
    /// Directory holding everything; created when missing.
    pub root: PathBuf,
    /// Base URL clients reach the service at, e.g. `http://127.0.0.1:8080`.
    pub public_base_url: String,
    /// Key signing presigned URLs.
    pub presign_secret: SecretString,
}

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

impl PresignError {
    pub fn code(&self) -> &'static str {
        match self {
            PresignError::InvalidKey => "invalid_key",
            PresignError::Expired => "presign_expired",
            PresignError::BadSignature => "bad_signature",
        }
    }
}

pub struct FsObjectStore {
    objects: PathBuf,
    meta: PathBuf,
    tmp: PathBuf,
    public_base_url: String,
    secret: SecretString,
}

fn io_error(key: &str, e: std::io::Error) -> ObjectStoreError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ObjectStoreError::NotFound(key.to_owned())
    } else {
        ObjectStoreError::Unavailable(format!("{key}: {e}"))
    }
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')
}

/// A key is relative, made of `[A-Za-z0-9._/-]`, with no empty, `.` or `..` segment.
pub fn validate_key(key: &str) -> Result<(), ObjectStoreError> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.chars().all(allowed_char)
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(ObjectStoreError::Unsupported(format!(
            "invalid object key {key:?}"
        )))
    }
}

/// A prefix follows the key rules, except that its last segment may be empty or partial.
fn validate_prefix(prefix: &str) -> Result<(), ObjectStoreError> {
    let mut segments: Vec<&str> = prefix.split('/').collect();
    let last = segments.pop().unwrap_or_default();
    let ok = !prefix.is_empty()
        && prefix.chars().all(allowed_char)
        && last != "."
        && last != ".."
        && segments
            .iter()
            .all(|s| !s.is_empty() && *s != "." && *s != "..");
    if ok {
        Ok(())
    } else {
        Err(ObjectStoreError::Unsupported(format!(
            "invalid object prefix {prefix:?}"
        )))
    }
}

/// Removes a temp file unless the write it belongs to succeeded.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl FsObjectStore {
    pub async fn connect(settings: &FsSettings) -> Result<Self, ObjectStoreError> {
        let store = FsObjectStore {
            objects: settings.root.join("objects"),
            meta: settings.root.join("meta"),
            tmp: settings.root.join("tmp"),
            public_base_url: settings.public_base_url.trim_end_matches('/').to_owned(),
            secret: settings.presign_secret.clone(),
        };
        for dir in [&store.objects, &store.meta, &store.tmp] {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                ObjectStoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        Ok(store)
    }

    fn temp_path(&self) -> PathBuf {
        self.tmp.join(Uuid::new_v4().simple().to_string())
    }

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

    fn presign(
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

    /// Moves a finished temp file (and its content type) into place under `key`.
    async fn install(
        &self,
        temp: &Path,
        key: &str,
        content_type: &str,
    ) -> Result<(), ObjectStoreError> {
        let meta_temp = self.temp_path();
        let mut guard = TempGuard(Some(meta_temp.clone()));
        tokio::fs::write(&meta_temp, content_type.as_bytes())
            .await
            .map_err(|e| io_error(key, e))?;
        rename_into(&meta_temp, &self.meta.join(key), key).await?;
        guard.0 = None;
        rename_into(temp, &self.objects.join(key), key).await
    }
}

/// Renames `from` to `to`, creating `to`'s directory; retried because a concurrent
/// `delete_prefix` may remove an emptied directory between the two steps.
async fn rename_into(from: &Path, to: &Path, key: &str) -> Result<(), ObjectStoreError> {
    let mut last = None;
    for _ in 0..3 {
        if let Some(parent) = to.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_error(key, e))?;
        }
        match tokio::fs::rename(from, to).await {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last = Some(e),
            Err(e) => return Err(io_error(key, e)),
        }
    }
    Err(ObjectStoreError::Unavailable(format!(
        "{key}: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    )))
}

/// Every file under `dir`, as keys relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let key: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(key.join("/"));
        }
    }
    Ok(())
}

/// Removes empty directories from `dir` up to (not including) `stop`.
fn prune_empty(mut dir: PathBuf, stop: &Path) {
    while dir.starts_with(stop) && dir != stop {
        if std::fs::remove_dir(&dir).is_err() {
            break;
        }
        if !dir.pop() {
            break;
        }
    }
}

#[async_trait]
impl ObjectStore for FsObjectStore {
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), ObjectStoreError> {
        // One chunk through the streamed path: same temp file, fsync and rename.
        let body: ByteStream = Box::pin(futures::stream::once(async move { Ok(body) }));
        self.put_stream(key, body, content_type, u64::MAX)
            .await
            .map(|_| ())
    }

    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<u64, ObjectStoreError> {
        validate_key(key)?;
        let temp = self.temp_path();
        let mut guard = TempGuard(Some(temp.clone()));
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| io_error(key, e))?;
        let mut size: u64 = 0;
        while let Some(chunk) = next_within_limit(&mut body, &mut size, max_bytes).await? {
            file.write_all(&chunk).await.map_err(|e| io_error(key, e))?;
        }
        file.sync_all().await.map_err(|e| io_error(key, e))?;
        drop(file);
        self.install(&temp, key, content_type).await?;
        guard.0 = None;
        Ok(size)
    }

    async fn get(&self, key: &str) -> Result<Bytes, ObjectStoreError> {
        validate_key(key)?;
        tokio::fs::read(self.objects.join(key))
            .await
            .map(Bytes::from)
            .map_err(|e| io_error(key, e))
    }

    async fn get_stream(&self, key: &str) -> Result<ObjectBody, ObjectStoreError> {
        validate_key(key)?;
        let file = tokio::fs::File::open(self.objects.join(key))
            .await
            .map_err(|e| io_error(key, e))?;
        // The open file is the object as it was when opened: a rewrite renames another file
        // into place and a delete unlinks the name, neither changes what this handle reads.
        let size = file.metadata().await.map_err(|e| io_error(key, e))?.len();
        let stream = futures::stream::try_unfold(file, |mut file| async move {
            let mut chunk = BytesMut::with_capacity(READ_CHUNK);
            let read = file.read_buf(&mut chunk).await?;
            Ok::<_, std::io::Error>((read > 0).then(|| (chunk.freeze(), file)))
        });
        Ok(ObjectBody {
            size,
            stream: Box::pin(stream),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, ObjectStoreError> {
        validate_key(key)?;
        let metadata = match tokio::fs::metadata(self.objects.join(key)).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(key, e)),
        };
        let content_type = tokio::fs::read_to_string(self.meta.join(key)).await.ok();
        Ok(Some(ObjectMeta {
            size: metadata.len(),
            content_type,
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectStoreError> {
        validate_key(key)?;
        let (objects, meta, key) = (self.objects.clone(), self.meta.clone(), key.to_owned());
        tokio::task::spawn_blocking(move || {
            match std::fs::remove_file(objects.join(&key)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_error(&key, e)),
            }
            let _ = std::fs::remove_file(meta.join(&key));
            for (root, path) in [(&objects, objects.join(&key)), (&meta, meta.join(&key))] {
                if let Some(parent) = path.parent() {
                    prune_empty(parent.to_path_buf(), root);
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| ObjectStoreError::Unavailable(format!("delete task failed: {e}")))?
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, ObjectStoreError> {
        validate_prefix(prefix)?;
        let objects = self.objects.clone();
        let meta = self.meta.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            // Only the directory the prefix fully names needs walking.
            let dir_part = prefix.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let base = objects.join(dir_part);
            let mut keys = Vec::new();
            walk(&objects, &base, &mut keys).map_err(|e| io_error(&prefix, e))?;
            let mut deleted = 0u64;
            for key in keys.iter().filter(|k| k.starts_with(&prefix)) {
                match std::fs::remove_file(objects.join(key)) {
                    Ok(()) => deleted += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(key, e)),
                }
                let _ = std::fs::remove_file(meta.join(key));
                if let Some(parent) = objects.join(key).parent() {
                    prune_empty(parent.to_path_buf(), &objects);
                }
                if let Some(parent) = meta.join(key).parent() {
                    prune_empty(parent.to_path_buf(), &meta);
                }
            }
            Ok(deleted)
        })
        .await
        .map_err(|e| ObjectStoreError::Unavailable(format!("delete task failed: {e}")))?
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: u64,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        self.presign(
            "PUT",
            key,
            ttl,
            Some(content_length),
            vec![
                ("content-type".to_owned(), content_type.to_owned()),
                ("content-length".to_owned(), content_length.to_string()),
            ],
        )
    }

    async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<PresignedRequest, ObjectStoreError> {
        self.presign("GET", key, ttl, None, Vec::new())
    }

    async fn ping(&self) -> Result<(), ObjectStoreError> {
        tokio::fs::metadata(&self.objects)
            .await
            .map(drop)
            .map_err(|e| ObjectStoreError::Unavailable(format!("{}: {e}", self.objects.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_confined_to_the_root() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/./b",
            "a/",
            "a b",
            "a\\b",
            "ü",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "batches/1/photos/2/original", "x/720.jpg", "a-b_c.d"] {
            assert!(validate_key(good).is_ok(), "{good:?} refused");
        }
        assert!(validate_prefix("batches/1/").is_ok());
        assert!(validate_prefix("batches/1/pho").is_ok());
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("../").is_err());
        assert!(validate_prefix("a/..").is_err());
    }
}
