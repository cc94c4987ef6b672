//! The contract tells the truth: schemathesis, a schema-driven fuzzer, reads `/openapi.json`,
//! generates requests from it — valid ones, which must be accepted, and invalid ones, which
//! must be refused — and checks every answer against the document (status, content type,
//! headers, body), plus `405` with `Allow` for methods a path does not have.
//!
//! The app runs on the embedded adapters. schemathesis comes from PyPI, pinned, installed by
//! `scripts/install-ports.sh` into `.venv-tools/` (`TIRAGE_SCHEMATHESIS` may name another
//! binary); when it is missing the test fails and says so. `TIRAGE_FUZZ_SEED` replays a run.

// Tests may unwrap (the workspace denies it in library code only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::embedded::Embedded;
use common::{Backend, TestApp, TestDeps};

const INSTALL: &str = "scripts/install-ports.sh";
/// Generated cases per operation and phase: about 1000 requests in all, well under a minute
/// on two cores.
const MAX_EXAMPLES: &str = "25";
/// The whole run, generation included, is cut off after this.
const TIME_BOUND: Duration = Duration::from_secs(150);
/// A fixed seed keeps CI reproducible; set `TIRAGE_FUZZ_SEED` to explore others.
const DEFAULT_SEED: &str = "20240610";
/// Every check that applies to one request at a time (the stateful ones need links the
/// document does not declare).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,positive_data_acceptance,\
negative_data_rejection,missing_required_header,unsupported_method,allow_header_conformance";

fn schemathesis() -> PathBuf {
    match std::env::var_os("TIRAGE_SCHEMATHESIS") {
        Some(path) => path.into(),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-tools/bin/schemathesis"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_as_its_openapi_document_says() {
    let bin = schemathesis();
    assert!(
        bin.is_file(),
        "schemathesis is missing ({}): run `{INSTALL}`, which installs it into .venv-tools/",
        bin.display()
    );
    let TestDeps { ports, guard } = Embedded.ports().await;
    let app = TestApp::on(ports, guard, |s| {
        // Event streams end quickly, so the fuzzer reads them whole.
        s.api.events_max_secs = 1;
    });
    let token = app.session().await;
    let seed = std::env::var("TIRAGE_FUZZ_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());
    // Its reports and example database go to a directory of its own, not the source tree.
    let work = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(&bin)
        .current_dir(work.path())
        .args(["--config-file", &config_file(work.path())])
        .args(["run", &app.url("/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", &seed])
        // One worker: the generator is not thread-safe on every Python (hypothesis parses
        // lambdas' sources), and one is fast enough.
        .args(["--workers", "1", "--request-timeout", "10"])
        .args(["--generation-database", "none", "--no-color"])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(TIME_BOUND, run)
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {TIME_BOUND:?}"))
        .expect("schemathesis starts");
    let report = format!(
        "{}\n{}",
        tail(&String::from_utf8_lossy(&out.stdout), 24_000),
        tail(&String::from_utf8_lossy(&out.stderr), 4_000)
    );
    assert!(
        out.status.success(),
        "schemathesis (seed {seed}) found mismatches between the API and /openapi.json:\n{report}"
    );
    app.stop().await;
}

/// The last `max` bytes of `text` (its report ends with the failures and a summary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// A `schemathesis.toml` for the run: a `413` (a declared size or a body over the limits the
/// document states) is a right way to refuse invalid data, next to the fuzzer's defaults.
fn config_file(dir: &std::path::Path) -> String {
    let path = dir.join("schemathesis.toml");
    std::fs::write(
        &path,
        r#"[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
"#,
    )
    .unwrap();
    path.display().to_string()
}
