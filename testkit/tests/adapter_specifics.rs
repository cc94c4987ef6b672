//! Behaviour specific to the production adapters, beyond the shared contracts: outages are
//! reported as transient errors quickly (the API answers 503 from them), and an aborted
//! multipart upload leaves nothing on S3, and the bucket takes the lifecycle rule.

mod specifics {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use tirage_amqp::{AmqpQueue, AmqpSettings};
    use tirage_core::keys;
    use tirage_ports::{
        Batches, ObjectStore, ObjectStoreError, QueueError, StateError, StateStore,
    };
    use tirage_redis::{RedisSettings, RedisStateStore};
    use tirage_s3::{S3ObjectStore, S3Settings};
    use tirage_testkit::{self as testing, contract_objects};
    use uuid::Uuid;

    /// A local port nothing listens on.
    const DEAD: &str = "127.0.0.1:1";
    const QUICKLY: Duration = Duration::from_secs(15);

    /// A store whose servers do not answer: it builds (it connects on first use), and every
    /// call is a quick transient error.
    #[allow(clippy::unwrap_used)]
    async fn assert_down_is_unavailable_and_quick(url: String, cluster_urls: Vec<String>) {
        let store = RedisStateStore::connect(&RedisSettings {
            url,
            cluster_urls,
            key_prefix: "x:".into(),
        })
        .unwrap();
        let started = Instant::now();
        let err = store.ping().await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        let err = store.get_batch(Uuid::new_v4()).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(started.elapsed() < QUICKLY, "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn redis_down_is_unavailable_and_quick() {
        assert_down_is_unavailable_and_quick(format!("redis://{DEAD}"), Vec::new()).await;
    }

    #[tokio::test]
    async fn redis_cluster_down_is_unavailable_and_quick() {
        let seeds = vec![format!("redis://{DEAD}"), "redis://127.0.0.1:2".into()];
        assert_down_is_unavailable_and_quick(String::new(), seeds).await;
    }

    /// A Redis of its own (redis-server on a free port, no persistence), killed on drop.
    struct OwnRedis {
        child: std::process::Child,
        url: String,
    }

    #[allow(clippy::unwrap_used, clippy::expect_used)]
    impl OwnRedis {
        async fn start(extra: &[&str]) -> OwnRedis {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(extra)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server (Debian's redis-server package) must be installed");
            let url = format!("redis://127.0.0.1:{port}");
            let client = redis::Client::open(url.as_str()).unwrap();
            let deadline = Instant::now() + QUICKLY;
            while client.get_multiplexed_async_connection().await.is_err() {
                assert!(
                    Instant::now() < deadline,
                    "redis-server on {port} never answered"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            OwnRedis { child, url }
        }
    }

    impl Drop for OwnRedis {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Redis at its maxmemory (noeviction, as every deploy runs it) refuses writes: the
    /// store says it is full, distinctly from an outage, and reads still answer.
    #[tokio::test]
    async fn redis_at_maxmemory_is_full_not_down() {
        let redis = OwnRedis::start(&["--maxmemory-policy", "noeviction"]).await;
        let client = redis::Client::open(redis.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        // 2 MB stored, then a maxmemory of 1 MB: every write is over the bound.
        let ballast = vec![b'x'; 256 * 1024];
        for i in 0..8 {
            let (): () = redis::cmd("SET")
                .arg(format!("ballast:{i}"))
                .arg(&ballast)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let (): () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg("1mb")
            .query_async(&mut conn)
            .await
            .unwrap();
        let refused: redis::RedisResult<()> = redis::cmd("SET")
            .arg("one-more")
            .arg("x")
            .query_async(&mut conn)
            .await;
        assert!(refused.is_err(), "Redis over its maxmemory took a write");
        let store = RedisStateStore::connect(&RedisSettings {
            url: redis.url.clone(),
            cluster_urls: Vec::new(),
            key_prefix: "full:".into(),
        })
        .unwrap();
        let batch = testing::contract_state::new_batch(Duration::from_secs(60));
        match store
            .create_batch(&batch, tirage_ports::Cap::Unlimited)
            .await
        {
            Err(StateError::Full(why)) => assert!(why.contains("maxmemory"), "{why}"),
            other => panic!("expected Full, got {other:?}"),
        }
        let err = store
            .create_batch(&batch, tirage_ports::Cap::Unlimited)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "retried like an outage: {err:?}");
        assert_eq!(
            store.get_batch(batch.id).await.unwrap(),
            None,
            "reads answer"
        );
        store.ping().await.unwrap();
    }

    /// Braces in the prefix would move the hash tag, splitting a batch across slots.
    #[tokio::test]
    async fn a_key_prefix_with_braces_is_refused() {
        let refused = RedisStateStore::connect(&RedisSettings {
            url: format!("redis://{DEAD}"),
            cluster_urls: Vec::new(),
            key_prefix: "tirage:{x}:".into(),
        });
        assert!(refused.is_err());
    }

    #[tokio::test]
    async fn amqp_down_is_unavailable_and_quick() {
        let started = Instant::now();
        let result = AmqpQueue::connect(&AmqpSettings {
            url: format!("amqp://guest:guest@{DEAD}/%2f").into(),
            ..testing::amqp_settings()
        })
        .await;
        match result {
            Err(tirage_ports::QueueError::Unavailable(_)) => {}
            Err(other) => panic!("expected unavailable, got {other:?}"),
            Ok(_) => panic!("connected to a closed port"),
        }
        assert!(started.elapsed() < QUICKLY, "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn s3_down_is_unavailable_and_quick() {
        let store = S3ObjectStore::new(&S3Settings {
            endpoint: format!("http://{DEAD}"),
            public_endpoint: None,
            region: "garage".into(),
            bucket: "tirage".into(),
            access_key_id: "GK000000000000000000000000".into(),
            secret_access_key: "0".repeat(64).into(),
            key_prefix: String::new(),
            expire_after_days: 0,
            cors_origins: Vec::new(),
        });
        let started = Instant::now();
        let err = store.ping().await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        let err = store
            .put("a/b", Bytes::from_static(b"x"), "text/plain")
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(started.elapsed() < QUICKLY, "took {:?}", started.elapsed());
    }

    /// Keys rotated under a running deployment, or a clock too far off: Garage answers 403
    /// to every request. That is an outage to wait out (the worker pauses intake), not a
    /// failure of the photo at hand.
    #[tokio::test]
    async fn s3_refusing_our_credentials_is_an_outage() {
        let working = testing::s3_store().await;
        working
            .put("photo", Bytes::from_static(b"x"), "text/plain")
            .await
            .unwrap();
        let mut rotated = testing::s3_settings();
        rotated.secret_access_key = "f".repeat(64).into();
        let mut unknown_key = testing::s3_settings();
        unknown_key.access_key_id = "GK0123456789abcdef01234567".into();
        for settings in [rotated, unknown_key] {
            let store = S3ObjectStore::new(&settings);
            let refusals = [
                store.ping().await.map(|_| ()),
                store.head("photo").await.map(|_| ()),
                store.get("photo").await.map(|_| ()),
                store
                    .put("other", Bytes::from_static(b"y"), "text/plain")
                    .await
                    .map(|_| ()),
            ];
            for refusal in refusals {
                let err = refusal.unwrap_err();
                assert!(err.is_transient(), "{err:?}");
                assert!(err.to_string().contains("access keys"), "{err}");
            }
        }
    }

    #[tokio::test]
    async fn s3_aborts_multipart_uploads_that_fail() {
        let store = testing::s3_store().await;
        let batch = Uuid::new_v4();
        let key = keys::original_key(batch, Uuid::new_v4());
        let data = contract_objects::pattern(20 * 1024 * 1024, 9);
        // Two full parts are uploaded before the limit trips.
        let result = store
            .put_stream(
                &key,
                contract_objects::chunked(&data, 1024 * 1024),
                "image/jpeg",
                17 * 1024 * 1024,
            )
            .await;
        assert!(
            matches!(result, Err(ObjectStoreError::TooLarge { .. })),
            "{result:?}"
        );
        assert_eq!(
            store
                .incomplete_uploads(&keys::batch_prefix(batch))
                .await
                .unwrap(),
            0
        );
        assert_eq!(store.head(&key).await.unwrap(), None);
    }

    /// The lifecycle backstop: Garage takes the rule and reports it back.
    #[tokio::test]
    async fn s3_sets_the_bucket_lifecycle() {
        let store = testing::s3_store().await;
        store.ensure_lifecycle(3).await.unwrap();
        assert_eq!(store.lifecycle_days().await.unwrap(), Some(3));
        store.ensure_lifecycle(5).await.unwrap();
        assert_eq!(
            store.lifecycle_days().await.unwrap(),
            Some(5),
            "setting it again replaces the rule"
        );
    }

    #[tokio::test]
    async fn s3_sets_the_bucket_cors_rule() {
        let store = testing::s3_store().await;
        let page = "https://photos.example".to_owned();
        store
            .ensure_cors(std::slice::from_ref(&page))
            .await
            .unwrap();
        assert_eq!(store.cors_put_origins().await.unwrap(), vec![page]);
        // Back to the default every process sets (the browser tests rely on it).
        store.ensure_cors(&["*".to_owned()]).await.unwrap();
        assert_eq!(
            store.cors_put_origins().await.unwrap(),
            vec!["*".to_owned()],
            "setting it again replaces the rule"
        );
    }

    #[tokio::test]
    async fn s3_presigns_for_the_public_endpoint() {
        let mut settings = testing::s3_settings();
        settings.public_endpoint = Some("https://s3.example.com".into());
        let store = S3ObjectStore::new(&settings);
        let put = store
            .presign_put("a/b", "image/jpeg", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(
            put.url.starts_with("https://s3.example.com/"),
            "{}",
            put.url
        );
        assert!(
            put.url.contains(&format!("/{}/", settings.bucket)),
            "path-style: {}",
            put.url
        );
        assert!(
            put.headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "image/jpeg"),
            "{:?}",
            put.headers
        );
        assert!(
            put.headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("content-length") && v == "10"),
            "the length is a header the client must send: {:?}",
            put.headers
        );
        assert!(
            put.url.contains("content-length"),
            "the length is signed: {}",
            put.url
        );
    }

    /// A delivery whose retry cannot be published (its delay queue is gone) is handed back
    /// to the queue at once, not left unsettled holding the consumer's only prefetch slot.
    #[tokio::test]
    async fn a_failed_retry_publish_hands_the_delivery_back() {
        use tirage_ports::{JobQueue, Lane, TraceContext, WorkItem};
        use tirage_testkit::AmqpTestExt;

        let settings = testing::amqp_settings();
        let queue = testing::amqp_queue_with(&settings).await;
        let item = WorkItem::FinalizeBatch {
            batch_id: Uuid::new_v4(),
            redrive: false,
        };
        queue.publish(&item, &TraceContext::none()).await.unwrap();
        let mut stream = queue.consume(Lane::Effects, 1).await.unwrap();
        let first = tokio::time::timeout(QUICKLY, stream.next())
            .await
            .expect("a delivery")
            .unwrap()
            .unwrap();
        assert!(!first.redelivered);
        queue
            .delete_queue(&settings.delay_queue(Lane::Effects))
            .await
            .unwrap();

        let err = first
            .handle
            .retry_later(Duration::from_secs(1), Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, QueueError::Rejected(_)), "{err:?}");
        let again = tokio::time::timeout(QUICKLY, stream.next())
            .await
            .expect("the delivery comes back instead of holding the prefetch slot")
            .unwrap()
            .unwrap();
        assert_eq!((again.item, again.redelivered), (item, true));
        again.handle.ack().await.unwrap();
    }

    /// A deployment upgraded from a version before the unsettled list: the batches its index
    /// already holds are copied into the list on the reconciler's first read, so a stalled
    /// one among them is still found.
    #[tokio::test]
    #[allow(clippy::unwrap_used)]
    async fn batches_indexed_before_the_unsettled_list_are_checked_too() {
        use tirage_ports::Upkeep;
        let settings = testing::redis::redis_settings();
        let store = testing::redis::redis_state_on(&settings).await;
        let client = redis::Client::open(settings.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let old = (Uuid::new_v4(), Uuid::new_v4());
        let index = format!("{}batches", settings.key_prefix);
        let (): () = redis::cmd("ZADD")
            .arg(&index)
            .arg(2_000_000_000_000_i64)
            .arg(old.0.to_string())
            .arg(2_000_000_000_001_i64)
            .arg(old.1.to_string())
            .query_async(&mut conn)
            .await
            .unwrap();
        let (): () = redis::cmd("PEXPIRE")
            .arg(&index)
            .arg(60_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        let unsettled = || async {
            let listed = store.unsettled_batches(0, 10).await.unwrap();
            listed.iter().map(|b| b.id).collect::<Vec<Uuid>>()
        };
        assert_eq!(unsettled().await, vec![old.0, old.1]);
        // Settled, it stays off: the copy is made once, not on every read.
        store.settle_batch(old.0).await.unwrap();
        assert_eq!(unsettled().await, vec![old.1]);
        let _: i64 = redis::cmd("DEL")
            .arg(&index)
            .arg(format!("{index}:unsettled"))
            .arg(format!("{index}:unsettled:seeded"))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}
