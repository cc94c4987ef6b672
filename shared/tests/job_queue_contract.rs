//! The JobQueue contract against the in-process queue and RabbitMQ.

#[cfg(not(all(feature = "testing", feature = "amqp")))]
#[test]
fn contract_needs_features() {
    panic!("run the contract suites with `--all-features` (needs `testing` and `amqp`)");
}

#[cfg(all(feature = "testing", feature = "amqp"))]
mod in_process {
    tirage_shared::job_queue_contract!(tirage_shared::testing::InProcessHarness::default());
}

#[cfg(all(feature = "testing", feature = "amqp"))]
mod rabbitmq {
    tirage_shared::job_queue_contract!(tirage_shared::testing::AmqpHarness::new().await);
}

/// Adapter-specific: a dead connection heals itself on the next publish or consume.
#[cfg(all(feature = "testing", feature = "amqp"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_reconnects_after_the_connection_died() {
    use tirage_shared::ports::JobQueue;
    use tirage_shared::testing::AmqpTestExt;
    use tirage_shared::testing::contract_queue::{job, next};

    let queue = tirage_shared::testing::amqp_queue().await;
    let mut stream = queue.consume(4).await.unwrap();
    queue.close_connection().await;
    // The consumer on the dead connection ends instead of hanging.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await;
    assert!(
        matches!(ended, Ok(None) | Ok(Some(Err(_)))),
        "consumer survived its connection"
    );
    let item = job();
    queue.publish(&item).await.unwrap();
    queue.ping().await.unwrap();
    let mut stream = queue.consume(4).await.unwrap();
    let d = next(&mut stream).await;
    assert_eq!(d.item, item);
    d.handle.ack().await.unwrap();
}
