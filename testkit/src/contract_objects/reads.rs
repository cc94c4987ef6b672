//! Reading objects back as streams: whole, or one byte range (what `Range` requests of a
//! rendition read).

use bytes::Bytes;
use futures::StreamExt;
use uuid::Uuid;

use super::{ObjectHarness, chunked, ids, pattern};
use tirage_core::keys;
use tirage_core::model::OutputFormat;
use tirage_ports::object_store::{ByteStream, ObjectStoreError};

/// Reads what `body` yields, in order; the first error fails the test.
async fn read_all(mut body: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk.expect("a chunk of the stored object"));
    }
    out
}

pub async fn get_stream_reads_what_was_stored<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = ids();
    let key = keys::rendition_key(batch, photo, 1080, OutputFormat::Jpeg);
    // Bigger than one read of either adapter, so it arrives in several chunks.
    let data = pattern(10 * 1024 * 1024 + 4321, 10);
    store
        .put_stream(&key, chunked(&data, 1024 * 1024), "image/jpeg", u64::MAX)
        .await
        .unwrap();
    let body = store.get_stream(&key).await.unwrap();
    assert_eq!(
        body.size,
        data.len() as u64,
        "the size comes before the bytes"
    );
    let back = read_all(body.stream).await;
    assert!(back == data, "the streamed object came back different");

    // An empty object is a size of 0 and no bytes, not an error.
    let empty = keys::rendition_key(batch, photo, 360, OutputFormat::Jpeg);
    store.put(&empty, Bytes::new(), "image/jpeg").await.unwrap();
    let body = store.get_stream(&empty).await.unwrap();
    assert_eq!(body.size, 0);
    assert!(read_all(body.stream).await.is_empty());

    let missing = keys::rendition_key(batch, Uuid::new_v4(), 1080, OutputFormat::Jpeg);
    assert!(matches!(
        store.get_stream(&missing).await,
        Err(ObjectStoreError::NotFound(_))
    ));
    assert!(store.get_stream("../escape").await.is_err());
    store
        .delete_prefix(&keys::batch_prefix(batch))
        .await
        .unwrap();
}

pub async fn get_range_reads_only_the_range<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = ids();
    let key = keys::rendition_key(batch, photo, 720, OutputFormat::Jpeg);
    // Several reads of either adapter long, so ranges start and end inside chunks.
    let data = pattern(3 * 1024 * 1024 + 77, 11);
    store
        .put_stream(&key, chunked(&data, 512 * 1024), "image/jpeg", u64::MAX)
        .await
        .unwrap();
    let len = data.len() as u64;
    for range in [
        0..1,
        0..len,
        5..1_000_000,
        1_048_570..2_097_160,
        len - 1..len,
        len - 100_000..len,
    ] {
        let body = store.get_range(&key, range.clone()).await.unwrap();
        assert_eq!(
            body.size,
            range.end - range.start,
            "{range:?}: the size is the range's"
        );
        let back = read_all(body.stream).await;
        let want = &data[range.start as usize..range.end as usize];
        assert!(back == want, "{range:?}: other bytes came back");
    }
    let missing = keys::rendition_key(batch, Uuid::new_v4(), 720, OutputFormat::Jpeg);
    assert!(matches!(
        store.get_range(&missing, 0..10).await,
        Err(ObjectStoreError::NotFound(_))
    ));
    store
        .delete_prefix(&keys::batch_prefix(batch))
        .await
        .unwrap();
}
