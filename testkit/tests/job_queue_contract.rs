//! The JobQueue contract against the in-process queue and RabbitMQ (classic and quorum
//! queues), then what only the AMQP adapter does.

mod in_process {
    tirage_testkit::job_queue_contract!(tirage_testkit::InProcessHarness::default());
}

mod rabbitmq {
    tirage_testkit::job_queue_contract!(tirage_testkit::AmqpHarness::new().await);
}

mod rabbitmq_quorum {
    tirage_testkit::job_queue_contract!(tirage_testkit::AmqpHarness::quorum().await);
}

/// Adapter-specific: a dead connection heals itself on the next publish or consume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_reconnects_after_the_connection_died() {
    use tirage_ports::{JobQueue, Lane, TraceContext};
    use tirage_testkit::AmqpTestExt;
    use tirage_testkit::contract_queue::{job, next};

    let queue = tirage_testkit::amqp_queue().await;
    let mut stream = queue.consume(Lane::Resize, 4).await.unwrap();
    queue.close_connection().await;
    // The consumer on the dead connection ends instead of hanging.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await;
    assert!(
        matches!(ended, Ok(None) | Ok(Some(Err(_)))),
        "consumer survived its connection"
    );
    let item = job();
    queue.publish(&item, &TraceContext::none()).await.unwrap();
    queue.ping().await.unwrap();
    let mut stream = queue.consume(Lane::Resize, 4).await.unwrap();
    let d = next(&mut stream).await;
    assert_eq!(d.item, item);
    d.handle.ack().await.unwrap();
}

/// Adapter-specific: with `urls`, a process whose node dies goes on with the next node
/// that answers, and stays there. Two links to the one broker stand for two nodes of a
/// cluster; cutting one is its node dying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_moves_to_the_next_url_when_its_node_dies() {
    use tirage_amqp::QueueType;
    use tirage_ports::{JobQueue, Lane, QueueError, TraceContext};
    use tirage_testkit::contract_queue::{job, next};
    use tirage_testkit::outage::{ServiceLink, url_addr, url_via};
    use tirage_testkit::{amqp_queue_with, amqp_settings_of, amqp_url};

    let url = amqp_url();
    let (one, two) = (
        ServiceLink::start(&url_addr(&url)).await,
        ServiceLink::start(&url_addr(&url)).await,
    );
    let mut settings = amqp_settings_of(QueueType::Quorum);
    settings.url = "amqp://guest:guest@127.0.0.1:1/%2f".into(); // not used when urls is set
    settings.urls = vec![
        url_via(&url, &one.addr()).into(),
        url_via(&url, &two.addr()).into(),
    ];
    let queue = amqp_queue_with(&settings).await;
    let items = [job(), job(), job()];
    queue
        .publish(&items[0], &TraceContext::none())
        .await
        .unwrap();

    one.cut();
    queue
        .publish(&items[1], &TraceContext::none())
        .await
        .unwrap();

    // Back on the first node, the process stays on the second until that one dies too.
    one.restore().await;
    two.cut();
    queue
        .publish(&items[2], &TraceContext::none())
        .await
        .unwrap();

    one.cut();
    let err = loop {
        // A call may still find the connection alive for a moment after the cut.
        match queue.ping().await {
            Ok(()) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            Err(e) => break e,
        }
    };
    let QueueError::Unavailable(why) = err else {
        panic!("expected unavailable, got {err:?}");
    };
    for link in [&one, &two] {
        assert!(why.contains(&link.addr()), "names every node tried: {why}");
    }
    assert!(!why.contains("guest"), "no credentials in errors: {why}");

    two.restore().await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await; // the reconnect cooldown
    let mut stream = queue.consume(Lane::Resize, 10).await.unwrap();
    // A cut can fall between the broker taking a publish and its confirm reaching the
    // process, which then publishes it again on the next node (at least once, as the
    // port promises): a copy of an item already delivered is allowed, nothing else.
    let mut first_arrivals = Vec::new();
    let mut deliveries = 0;
    while first_arrivals.len() < items.len() {
        let d = next(&mut stream).await;
        deliveries += 1;
        assert!(
            deliveries <= 2 * items.len(),
            "endless copies: {first_arrivals:?}"
        );
        assert!(
            items.contains(&d.item),
            "an item nobody published: {:?}",
            d.item
        );
        if !first_arrivals.contains(&d.item) {
            first_arrivals.push(d.item.clone());
        }
        d.handle.ack().await.unwrap();
    }
    assert_eq!(
        first_arrivals, items,
        "every publish reached the one queue, in order"
    );
}

/// Adapter-specific: a node that accepts connections but never answers (a hung host) costs
/// one caller its patience, not every caller: the next call starts with the next node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_skips_a_hanging_node_after_a_caller_gave_up() {
    use std::time::{Duration, Instant};
    use tirage_amqp::{AmqpQueue, QueueType};
    use tirage_ports::JobQueue;
    use tirage_testkit::outage::url_via;
    use tirage_testkit::{amqp_settings_of, amqp_url};

    // The kernel completes the TCP handshake into the backlog; the AMQP handshake hangs.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = amqp_url();
    let mut settings = amqp_settings_of(QueueType::Classic);
    settings.urls = vec![
        url_via(&url, &hung.local_addr().unwrap().to_string()).into(),
        url.into(),
    ];
    let queue = AmqpQueue::lazy(&settings);
    let gave_up = tokio::time::timeout(Duration::from_secs(1), queue.ping()).await;
    assert!(gave_up.is_err(), "the hung node answered: {gave_up:?}");

    let started = Instant::now();
    queue.ping().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "tried the hung node first again ({:?})",
        started.elapsed()
    );
}

/// Adapter-specific: queues declared as one type cannot be declared as the other; the
/// error says what to do about it.
#[tokio::test]
async fn changing_the_queue_type_is_refused_with_what_to_do() {
    use tirage_amqp::{AmqpQueue, AmqpSettings, QueueType};
    use tirage_ports::QueueError;
    use tirage_testkit::{amqp_queue_with, amqp_settings_of};

    let classic = amqp_settings_of(QueueType::Classic);
    let _declared = amqp_queue_with(&classic).await;
    let quorum = AmqpSettings {
        queue_type: QueueType::Quorum,
        ..classic.clone()
    };
    match AmqpQueue::connect(&quorum).await {
        Err(QueueError::Unavailable(why)) => {
            assert!(why.contains("x-queue-type"), "{why}");
            assert!(why.contains("queue_prefix"), "{why}");
        }
        Err(other) => panic!("expected unavailable, got {other:?}"),
        Ok(_) => panic!("classic queues were redeclared as quorum queues"),
    }
}
