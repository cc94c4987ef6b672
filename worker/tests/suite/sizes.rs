//! An original over the byte limit fails `too_large` from its size alone: the worker reads
//! the stored size (HEAD) before the object, and never reads it.

use super::*;

pub async fn an_original_over_the_byte_limit_fails_too_large_unread(h: Arc<dyn Harness>) {
    let base = h.ports();
    let f = batch_with(&base, small_options(), None, vec![vec![0xA5; 5000]]).await;
    // Every read of the object would fail: the photo may only end through its size.
    let unreadable = Arc::new(flaky_store(base.objects.clone(), u32::MAX));
    let ports = Ports {
        objects: unreadable.clone(),
        ..base.clone()
    };
    let mut settings = h.settings();
    settings.max_source_bytes = 4999;
    let worker = start(ports.clone(), settings, Some(fake_engine())).await;
    publish_all(&ports, &f).await;
    let batch = wait_completed(&ports, f.batch.id, WAIT).await;
    assert_eq!((batch.done, batch.failed), (0, 1), "{batch:?}");
    let rec = ports
        .state
        .get_photo(f.batch.id, f.photos[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.error, Some(FailureCode::TooLarge), "{rec:?}");
    assert_eq!(
        unreadable.hooks.failed.load(Ordering::SeqCst),
        0,
        "the original was never read"
    );
    worker.shutdown().await;
}
