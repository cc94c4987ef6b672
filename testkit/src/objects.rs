//! Object stores for tests: the file-system store in a temporary directory and S3
//! (Garage) under a fresh prefix, with the contract harness of each.

use std::sync::Arc;

use async_trait::async_trait;

use super::contract_objects;
use super::env::unique;

/// A file-system store in a fresh temporary directory. `execute` plays the service's
/// `/v1/objects/{key}` route: verify the signature, then read or write the store.
pub struct FsHarness {
    pub store: Arc<tirage_embedded::FsObjectStore>,
    pub dir: tempfile::TempDir,
}

pub const FS_TEST_BASE_URL: &str = "http://tirage.test:8080";

impl FsHarness {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let settings = tirage_embedded::FsSettings {
            root: dir.path().to_path_buf(),
            public_base_url: FS_TEST_BASE_URL.to_owned(),
            presign_secret: format!("test-secret-{}", unique()).into(),
        };
        FsHarness {
            store: Arc::new(
                tirage_embedded::FsObjectStore::connect(&settings)
                    .await
                    .unwrap(),
            ),
            dir,
        }
    }
}

/// A presigned URL of the file-system store, taken apart.
pub struct FsPresigned {
    pub key: String,
    pub expires: i64,
    /// A PUT's signed body length.
    pub length: Option<u64>,
    pub signature: String,
}

/// Splits `{base}/v1/objects/{key}?expires=…[&length=…]&signature=…`.
pub fn parse_fs_presigned(url: &str) -> Option<FsPresigned> {
    let rest = url
        .strip_prefix(FS_TEST_BASE_URL)?
        .strip_prefix("/v1/objects/")?;
    let (key, query) = rest.split_once('?')?;
    let mut expires = None;
    let mut length = None;
    let mut signature = None;
    for pair in query.split('&') {
        match pair.split_once('=')? {
            ("expires", v) => expires = v.parse().ok(),
            ("length", v) => length = Some(v.parse().ok()?),
            ("signature", v) => signature = Some(v.to_owned()),
            _ => {}
        }
    }
    Some(FsPresigned {
        key: key.to_owned(),
        expires: expires?,
        length,
        signature: signature?,
    })
}

#[async_trait]
impl contract_objects::ObjectHarness for FsHarness {
    fn store(&self) -> Arc<dyn tirage_ports::ObjectStore> {
        self.store.clone()
    }

    async fn execute(
        &self,
        request: &tirage_ports::PresignedRequest,
        url: &str,
        body: Option<bytes::Bytes>,
    ) -> (u16, bytes::Bytes) {
        use tirage_ports::ObjectStore;
        let Some(FsPresigned {
            key,
            expires,
            length,
            signature,
        }) = parse_fs_presigned(url)
        else {
            return (400, bytes::Bytes::new());
        };
        if self
            .store
            .verify_presigned(&request.method, &key, expires, length, &signature)
            .is_err()
        {
            return (403, bytes::Bytes::new());
        }
        // As the service's route does: a body of another length than the signed one is
        // refused like a bad signature (S3 does the same).
        let sent = body.as_ref().map_or(0, |b| b.len() as u64);
        if request.method == "PUT" && length != Some(sent) {
            return (403, bytes::Bytes::new());
        }
        match request.method.as_str() {
            "PUT" => {
                let content_type = request
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.as_str())
                    .unwrap_or("application/octet-stream");
                self.store
                    .put(&key, body.unwrap_or_default(), content_type)
                    .await
                    .unwrap();
                (200, bytes::Bytes::new())
            }
            "GET" => match self.store.get(&key).await {
                Ok(bytes) => (200, bytes),
                Err(_) => (404, bytes::Bytes::new()),
            },
            _ => (405, bytes::Bytes::new()),
        }
    }
}

pub use s3::{S3Harness, s3_settings, s3_store};

mod s3 {
    use super::*;
    use crate::env::{s3_env, unique};
    use tirage_s3::S3ObjectStore;

    /// S3 settings for Garage from `TIRAGE_TEST_S3_*`, under a fresh key prefix.
    pub fn s3_settings() -> tirage_s3::S3Settings {
        let env = s3_env();
        tirage_s3::S3Settings {
            endpoint: env.endpoint,
            public_endpoint: None,
            region: env.region,
            bucket: env.bucket,
            access_key_id: env.access_key,
            secret_access_key: env.secret_key.into(),
            key_prefix: format!("tirage-test/{}/", unique()),
            expire_after_days: 0,
            cors_origins: Vec::new(),
        }
    }

    /// An S3 store on Garage under a fresh prefix; panics naming S3 when it does not answer.
    pub async fn s3_store() -> tirage_s3::S3ObjectStore {
        use tirage_ports::ObjectStore;
        let settings = s3_settings();
        let store = tirage_s3::S3ObjectStore::new(&settings);
        if let Err(e) = store.ping().await {
            panic!(
                "S3 (Garage) is not reachable at {} bucket {} ({e}); run `scripts/garage.sh up`",
                settings.endpoint, settings.bucket
            );
        }
        store
    }

    /// Garage under a fresh key prefix; presigned requests go over real HTTP.
    pub struct S3Harness {
        pub store: Arc<S3ObjectStore>,
        pub http: reqwest::Client,
    }

    impl S3Harness {
        pub async fn new() -> Self {
            S3Harness {
                store: Arc::new(s3_store().await),
                http: reqwest::Client::new(),
            }
        }
    }

    #[async_trait]
    impl contract_objects::ObjectHarness for S3Harness {
        fn store(&self) -> Arc<dyn tirage_ports::ObjectStore> {
            self.store.clone()
        }

        async fn execute(
            &self,
            request: &tirage_ports::PresignedRequest,
            url: &str,
            body: Option<bytes::Bytes>,
        ) -> (u16, bytes::Bytes) {
            let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
            // A store that refuses a body (a length other than the signed one) may answer
            // before reading all of it and close: the client, still sending, then sees a
            // reset instead of the answer. That loses the answer, not the refusal; ask again
            // a few times for it.
            let mut attempts = 0;
            let response = loop {
                let mut req = self.http.request(method.clone(), url);
                // The client states the length of the body it really sends, as any HTTP
                // client does: a ticket's signed length is then checked by the store, not
                // trusted here.
                for (k, v) in &request.headers {
                    if !k.eq_ignore_ascii_case("content-length") {
                        req = req.header(k, v);
                    }
                }
                if let Some(body) = &body {
                    req = req.body(body.clone());
                }
                match req.send().await {
                    Ok(response) => break response,
                    Err(e) if attempts < 4 && body.is_some() => {
                        attempts += 1;
                        eprintln!("S3 (Garage) closed while the body was sent ({e}); again");
                    }
                    Err(e) => panic!("S3 (Garage) did not answer a presigned request: {e}"),
                }
            };
            let status = response.status().as_u16();
            (status, response.bytes().await.unwrap_or_default())
        }
    }
}
