//! The embedded [`ObjectStore`]: objects as files under a root directory. Keys are checked
//! against a strict alphabet and never climb out of the root; every write lands in a temp
//! file first and is renamed into place, so readers never see half an object. Presigned URLs
//! point back at the service ([`presign`]); objects are read back as streams ([`read`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use secrecy::SecretString;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use tirage_ports::object_store::{
    ByteStream, ObjectBody, ObjectMeta, ObjectStore, ObjectStoreError, PresignedRequest,
    key_char_allowed, next_within_limit, validate_key,
};

mod presign;
mod read;

pub use presign::PresignError;

#[derive(Debug, Clone, Deserialize)]
pub struct FsSettings {
    /// Directory holding everything; created when missing.
    pub root: PathBuf,
    /// Base URL clients reach the service at, e.g. `http://127.0.0.1:8080`.
    pub public_base_url: String,
    /// Key signing presigned URLs.
    pub presign_secret: SecretString,
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

/// A prefix follows the key rules, except that its last segment may be empty or partial.
fn validate_prefix(prefix: &str) -> Result<(), ObjectStoreError> {
    let mut segments: Vec<&str> = prefix.split('/').collect();
    let last = segments.pop().unwrap_or_default();
    let ok = !prefix.is_empty()
        && prefix.chars().all(key_char_allowed)
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
        read::open(&self.objects.join(key), key, None).await
    }

    async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> Result<ObjectBody, ObjectStoreError> {
        validate_key(key)?;
        read::open(&self.objects.join(key), key, Some(range)).await
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
