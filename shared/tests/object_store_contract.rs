//! The ObjectStore contract against the file-system store and S3 (Garage).

#[cfg(not(all(feature = "testing", feature = "s3")))]
#[test]
fn contract_needs_features() {
    panic!("run the contract suites with `--all-features` (needs `testing` and `s3`)");
}

#[cfg(all(feature = "testing", feature = "s3"))]
mod file_system {
    tirage_shared::object_store_contract!(tirage_shared::testing::FsHarness::new().await);
}

#[cfg(all(feature = "testing", feature = "s3"))]
mod s3 {
    tirage_shared::object_store_contract!(tirage_shared::testing::S3Harness::new().await);
}
