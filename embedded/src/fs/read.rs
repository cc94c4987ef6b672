//! Reading an object file back as a stream: whole, or one byte range.

use std::io::SeekFrom;
use std::path::Path;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::io_error;
use tirage_ports::object_store::{ObjectBody, ObjectStoreError};

/// Most bytes one read yields.
const READ_CHUNK: usize = 64 * 1024;

/// The object file at `path` (named `key` in errors), whole or only `range`, with its length
/// up front.
pub(super) async fn open(
    path: &Path,
    key: &str,
    range: Option<std::ops::Range<u64>>,
) -> Result<ObjectBody, ObjectStoreError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_error(key, e))?;
    // The open file is the object as it was when opened: a rewrite renames another file
    // into place and a delete unlinks the name, neither changes what this handle reads.
    let len = file.metadata().await.map_err(|e| io_error(key, e))?.len();
    let range = range.unwrap_or(0..len);
    if range.end > len || range.start > range.end {
        return Err(ObjectStoreError::Unsupported(format!(
            "{key}: bytes {}..{} are not within its {len} bytes",
            range.start, range.end
        )));
    }
    file.seek(SeekFrom::Start(range.start))
        .await
        .map_err(|e| io_error(key, e))?;
    let size = range.end - range.start;
    let stream = futures::stream::try_unfold((file, size), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let want = usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK);
        let mut chunk = BytesMut::with_capacity(want);
        let read = (&mut file).take(want as u64).read_buf(&mut chunk).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the object file ended early",
            ));
        }
        Ok::<_, std::io::Error>(Some((chunk.freeze(), (file, left - read as u64))))
    });
    Ok(ObjectBody {
        size,
        stream: Box::pin(stream),
    })
}
