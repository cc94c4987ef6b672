//! The [`ObjectStore`] contract, written once and run against every adapter.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use tirage_core::keys;
use tirage_core::model::OutputFormat;
use tirage_ports::object_store::{ByteStream, ObjectStore, ObjectStoreError, PresignedRequest};

#[async_trait]
pub trait ObjectHarness: Send + Sync + 'static {
    fn store(&self) -> Arc<dyn ObjectStore>;
    /// Performs `request` (with its URL replaced by `url`) the way a client would, over
    /// HTTP for a real store; returns the status and body.
    async fn execute(
        &self,
        request: &PresignedRequest,
        url: &str,
        body: Option<Bytes>,
    ) -> (u16, Bytes);
}

/// Deterministic bytes that differ at every offset, so a misplaced part shows up.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 24) as u8)
        .collect()
}

/// A body arriving in chunks of `chunk` bytes.
pub fn chunked(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

mod reads;
pub use reads::{get_range_reads_only_the_range, get_stream_reads_what_was_stored};

fn ids() -> (Uuid, Uuid) {
    (Uuid::new_v4(), Uuid::new_v4())
}

pub async fn put_get_head_delete<H: ObjectHarness>(h: &H) {
    let store = h.store();
    store.ping().await.unwrap();
    let (batch, photo) = ids();
    let original = keys::original_key(batch, photo);
    let rendition = keys::rendition_key(batch, photo, 720, OutputFormat::Webp);
    let data = Bytes::from(pattern(100_000, 1));
    store
        .put(&original, data.clone(), "image/jpeg")
        .await
        .unwrap();
    store
        .put(&rendition, Bytes::from_static(b"webp"), "image/webp")
        .await
        .unwrap();
    assert_eq!(store.get(&original).await.unwrap(), data);
    let meta = store
        .head(&original)
        .await
        .unwrap()
        .expect("head of a stored object");
    assert_eq!(meta.size, 100_000);
    assert_eq!(meta.content_type.as_deref(), Some("image/jpeg"));

    // Rewrites replace (a redelivered job writes the same keys).
    store
        .put(&rendition, Bytes::from_static(b"webp2"), "image/webp")
        .await
        .unwrap();
    assert_eq!(
        store.get(&rendition).await.unwrap(),
        Bytes::from_static(b"webp2")
    );

    let missing = keys::original_key(batch, Uuid::new_v4());
    assert_eq!(store.head(&missing).await.unwrap(), None);
    assert!(matches!(
        store.get(&missing).await,
        Err(ObjectStoreError::NotFound(_))
    ));

    // Another batch's object survives the delete.
    let (other_batch, other_photo) = ids();
    let other = keys::original_key(other_batch, other_photo);
    store
        .put(&other, Bytes::from_static(b"keep"), "image/png")
        .await
        .unwrap();

    assert_eq!(
        store
            .delete_prefix(&keys::batch_prefix(batch))
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.head(&original).await.unwrap(), None);
    assert_eq!(store.head(&rendition).await.unwrap(), None);
    assert_eq!(
        store
            .delete_prefix(&keys::batch_prefix(batch))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.get(&other).await.unwrap(),
        Bytes::from_static(b"keep")
    );
    assert_eq!(
        store
            .delete_prefix(&keys::batch_prefix(other_batch))
            .await
            .unwrap(),
        1
    );
}

pub async fn delete_removes_one_object_only<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = (Uuid::new_v4(), Uuid::new_v4());
    let small = keys::rendition_key(batch, photo, 108, OutputFormat::Jpeg);
    let large = keys::rendition_key(batch, photo, 1080, OutputFormat::Jpeg);
    let original = keys::original_key(batch, photo);
    for key in [&small, &large, &original] {
        store
            .put(key, Bytes::from_static(b"x"), "image/jpeg")
            .await
            .unwrap();
    }
    store.delete(&small).await.unwrap();
    assert_eq!(store.head(&small).await.unwrap(), None);
    assert!(store.head(&large).await.unwrap().is_some());
    assert!(store.head(&original).await.unwrap().is_some());
    // Deleting what is not there is not an error.
    store.delete(&small).await.unwrap();
    assert_eq!(
        store
            .delete_prefix(&keys::batch_prefix(batch))
            .await
            .unwrap(),
        2
    );
}

pub async fn keys_outside_the_alphabet_are_refused<H: ObjectHarness>(h: &H) {
    let store = h.store();
    for bad in ["../escape", "/abs", "a//b", "a b"] {
        assert!(
            store
                .put(bad, Bytes::from_static(b"x"), "text/plain")
                .await
                .is_err(),
            "{bad:?} accepted"
        );
    }
}

pub async fn put_stream_stores_what_arrives<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = ids();
    let key = keys::original_key(batch, photo);
    let data = pattern(300_001, 2);
    let size = store
        .put_stream(&key, chunked(&data, 64 * 1024), "image/jpeg", 1_000_000)
        .await
        .unwrap();
    assert_eq!(size, 300_001);
    assert_eq!(store.get(&key).await.unwrap(), Bytes::from(data));
    // Exactly at the limit is allowed.
    let exact = pattern(1000, 3);
    assert_eq!(
        store
            .put_stream(&key, chunked(&exact, 300), "image/jpeg", 1000)
            .await
            .unwrap(),
        1000
    );
    store
        .delete_prefix(&keys::batch_prefix(batch))
        .await
        .unwrap();
}

pub async fn put_stream_over_the_limit_leaves_nothing<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = ids();
    let key = keys::original_key(batch, photo);
    let small = pattern(1800, 4);
    match store
        .put_stream(&key, chunked(&small, 600), "image/jpeg", 1000)
        .await
    {
        Err(ObjectStoreError::TooLarge { limit: 1000 }) => {}
        other => panic!("expected too_large, got {other:?}"),
    }
    assert_eq!(store.head(&key).await.unwrap(), None);
    // Past the limit after whole parts were already uploaded (multipart path for S3).
    let big = pattern(19 * 1024 * 1024, 5);
    match store
        .put_stream(
            &key,
            chunked(&big, 1024 * 1024),
            "image/jpeg",
            18 * 1024 * 1024,
        )
        .await
    {
        Err(ObjectStoreError::TooLarge { .. }) => {}
        other => panic!("expected too_large, got {other:?}"),
    }
    assert_eq!(store.head(&key).await.unwrap(), None);
}

pub async fn put_stream_body_failure_leaves_nothing<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = ids();
    let key = keys::original_key(batch, photo);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(pattern(10_000, 6))),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];
    let body: ByteStream = Box::pin(futures::stream::iter(chunks));
    match store.put_stream(&key, body, "image/jpeg", 1_000_000).await {
        Err(ObjectStoreError::Body(_)) => {}
        other => panic!("expected a body error, got {other:?}"),
    }
    assert_eq!(store.head(&key).await.unwrap(), None);
}

/// More than one part's worth (8 MiB): S3 goes through a multipart upload.
pub async fn large_stream_round_trips<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = ids();
    let key = keys::original_key(batch, photo);
    let data = pattern(8 * 1024 * 1024 * 2 + 123_457, 7);
    let size = store
        .put_stream(
            &key,
            chunked(&data, 256 * 1024 + 17),
            "image/jpeg",
            64 * 1024 * 1024,
        )
        .await
        .unwrap();
    assert_eq!(size, data.len() as u64);
    let meta = store.head(&key).await.unwrap().unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.content_type.as_deref(), Some("image/jpeg"));
    let back = store.get(&key).await.unwrap();
    assert!(back == data, "the large object came back different");
    store
        .delete_prefix(&keys::batch_prefix(batch))
        .await
        .unwrap();
}

pub async fn presigned_put_then_get<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = ids();
    let key = keys::original_key(batch, photo);
    let data = Bytes::from(pattern(50_000, 8));
    let put = store
        .presign_put(&key, "image/jpeg", 50_000, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(put.method, "PUT");
    assert!(put.expires_at > chrono::Utc::now());
    let (status, _) = h.execute(&put, &put.url, Some(data.clone())).await;
    assert!(
        (200..300).contains(&status),
        "presigned PUT answered {status}"
    );
    let meta = store
        .head(&key)
        .await
        .unwrap()
        .expect("uploaded through the presigned URL");
    assert_eq!(meta.size, 50_000);

    let get = store
        .presign_get(&key, Duration::from_secs(300))
        .await
        .unwrap();
    assert_eq!(get.method, "GET");
    let (status, body) = h.execute(&get, &get.url, None).await;
    assert_eq!(status, 200);
    assert_eq!(body, data);

    // A signature is bound to its key: pointing it at another object fails.
    let other_photo = Uuid::new_v4();
    let other = keys::original_key(batch, other_photo);
    store
        .put(&other, Bytes::from_static(b"secret"), "image/jpeg")
        .await
        .unwrap();
    let tampered = get
        .url
        .replace(&photo.to_string(), &other_photo.to_string());
    assert_ne!(tampered, get.url);
    let (status, _) = h.execute(&get, &tampered, None).await;
    assert_eq!(status, 403, "a tampered URL must be refused");
    store
        .delete_prefix(&keys::batch_prefix(batch))
        .await
        .unwrap();
}

pub async fn presigned_urls_expire<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = ids();
    let key = keys::original_key(batch, photo);
    store
        .put(&key, Bytes::from_static(b"x"), "image/jpeg")
        .await
        .unwrap();
    let get = store
        .presign_get(&key, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = h.execute(&get, &get.url, None).await;
    // AWS answers 403, Garage 400: either way, a refusal and no body.
    assert!(
        matches!(status, 400 | 403),
        "an expired URL answered {status}"
    );
    store
        .delete_prefix(&keys::batch_prefix(batch))
        .await
        .unwrap();
}

/// A presigned PUT stores exactly the length it was signed for: a longer body (an upload
/// bigger than announced) or a shorter one is refused and stores nothing, also after a
/// successful upload through the same URL.
pub async fn presigned_put_is_bound_to_its_length<H: ObjectHarness>(h: &H) {
    let store = h.store();
    let (batch, photo) = ids();
    let key = keys::original_key(batch, photo);
    let put = store
        .presign_put(&key, "image/jpeg", 20_000, Duration::from_secs(300))
        .await
        .unwrap();
    assert!(
        put.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-length") && v == "20000"),
        "the ticket names the length the client must send: {:?}",
        put.headers
    );
    for wrong in [20_001, 2_000_000, 19_999] {
        let body = Bytes::from(pattern(wrong, 3));
        let (status, _) = h.execute(&put, &put.url, Some(body)).await;
        assert!(
            (400..500).contains(&status),
            "a {wrong}-byte PUT to a 20000-byte ticket answered {status}"
        );
        assert_eq!(
            store.head(&key).await.unwrap(),
            None,
            "{wrong} bytes stored"
        );
    }
    let right = Bytes::from(pattern(20_000, 4));
    let (status, _) = h.execute(&put, &put.url, Some(right.clone())).await;
    assert!(
        (200..300).contains(&status),
        "the announced length: {status}"
    );
    let (status, _) = h
        .execute(&put, &put.url, Some(Bytes::from(pattern(40_000, 5))))
        .await;
    assert!(
        (400..500).contains(&status),
        "a second, larger PUT: {status}"
    );
    assert_eq!(
        store.head(&key).await.unwrap().map(|m| m.size),
        Some(20_000)
    );
    assert!(store.get(&key).await.unwrap() == right);
    store
        .delete_prefix(&keys::batch_prefix(batch))
        .await
        .unwrap();
}

#[macro_export]
macro_rules! object_store_contract {
    ($harness:expr) => {
        $crate::object_store_contract!(@cases $harness;
            put_get_head_delete, delete_removes_one_object_only,
            keys_outside_the_alphabet_are_refused,
            put_stream_stores_what_arrives, put_stream_over_the_limit_leaves_nothing,
            put_stream_body_failure_leaves_nothing, large_stream_round_trips,
            get_stream_reads_what_was_stored, get_range_reads_only_the_range,
            presigned_put_then_get, presigned_urls_expire,
            presigned_put_is_bound_to_its_length);
    };
    (@cases $harness:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness;
                $crate::contract_objects::$case(&harness).await;
            }
        )*
    };
}
