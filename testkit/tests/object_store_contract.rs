//! The ObjectStore contract against the file-system store and S3 (Garage).

mod file_system {
    tirage_testkit::object_store_contract!(tirage_testkit::FsHarness::new().await);
}

mod s3 {
    tirage_testkit::object_store_contract!(tirage_testkit::S3Harness::new().await);
}
