//! `--zip FILE`: the batch's renditions as one ZIP (`GET /v1/batches/{id}/archive`),
//! streamed to a temp file beside FILE and renamed to FILE once whole and as long as the
//! server announced. A download cut short (the server closes the connection when a
//! rendition cannot be read mid-way) is tried again from the start, up to `--attempts`.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::outcome::UploadError;
use crate::client::{Client, ClientError};

/// Why one attempt did not produce the file.
enum Attempt {
    /// The body broke off or came out short: worth another try.
    Cut(String),
    /// The local file could not be written.
    Io(std::io::Error),
}

/// Saves the archive of `batch` to `dest`; returns its length in bytes.
pub async fn save(client: &Client, batch: Uuid, dest: &Path) -> Result<u64, UploadError> {
    let io = |e: std::io::Error| UploadError::Io {
        path: dest.display().to_string(),
        message: e.to_string(),
    };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = client.batch_archive(batch).await?;
        match write_body(response, &dir, dest).await {
            Ok(len) => return Ok(len),
            Err(Attempt::Io(e)) => return Err(io(e)),
            Err(Attempt::Cut(why)) if attempt < client.retry.attempts => {
                tracing::debug!(%why, attempt, "archive download cut short; retrying");
                tokio::time::sleep(client.retry.backoff(attempt)).await;
            }
            Err(Attempt::Cut(why)) => {
                return Err(UploadError::Server {
                    e: ClientError::Network(format!(
                        "the archive download failed: {why} (after {attempt} attempts)"
                    )),
                });
            }
        }
    }
}

/// Streams one answer's body into a temp file in `dir`, then renames it to `dest`. The temp
/// file is removed whenever this does not finish (an error, or Ctrl-C dropping it).
async fn write_body(response: reqwest::Response, dir: &Path, dest: &Path) -> Result<u64, Attempt> {
    let announced = response.content_length();
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tirage-").suffix(".zip.part");
    // An ordinary file (the umask applies), not a private temp file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let temp = builder.tempfile_in(dir).map_err(Attempt::Io)?;
    let mut file = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(Attempt::Io)?);
    let mut body = response.bytes_stream();
    let mut written: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Attempt::Cut(e.to_string()))?;
        file.write_all(&chunk).await.map_err(Attempt::Io)?;
        written += chunk.len() as u64;
    }
    if let Some(announced) = announced
        && announced != written
    {
        return Err(Attempt::Cut(format!(
            "received {written} of {announced} bytes"
        )));
    }
    file.flush().await.map_err(Attempt::Io)?;
    file.sync_all().await.map_err(Attempt::Io)?;
    drop(file);
    temp.persist(dest).map_err(|e| Attempt::Io(e.error))?;
    Ok(written)
}
