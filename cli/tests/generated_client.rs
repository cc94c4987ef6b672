//! The contract as people use it: a Python client generated from the running server's own
//! `/openapi.json` by openapi-python-client (pinned, installed into `.venv-generators/` by
//! scripts/install-deps.sh) runs a whole batch against `tirage standalone`
//! (`generated_client/run_batch.py`): a session, a multipart upload and ticket uploads, the
//! progress followed to completion, every rendition downloaded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use common::{Standalone, assert_rendition, dimensions, fixtures, text};

fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-generators/bin")
}

#[tokio::test]
async fn a_client_generated_from_the_served_document_runs_a_whole_batch() {
    let generator = tools().join("openapi-python-client");
    assert!(
        generator.exists(),
        "{} is missing: run scripts/install-deps.sh",
        generator.display()
    );
    let server = Standalone::start();
    let doc = reqwest::get(server.url("/openapi.json"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("openapi.json"), doc).unwrap();
    std::fs::write(
        work.path().join("config.yml"),
        "project_name_override: tirage-client\npackage_name_override: tirage_client\n",
    )
    .unwrap();

    let generated = Command::new(&generator)
        .args([
            "generate",
            "--path",
            "openapi.json",
            "--config",
            "config.yml",
        ])
        .args(["--meta", "none", "--output-path", "tirage_client"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let said = text(&generated.stdout) + &text(&generated.stderr);
    assert!(generated.status.success(), "the generator failed:\n{said}");
    // What it leaves out is the image and ZIP bodies, which it has no type for (a client
    // reads them as bytes); any other warning is a part of the contract it could not read.
    for warning in said.split("WARNING").skip(1) {
        assert!(
            warning.contains("Unsupported content_type image/*")
                || warning.contains("Unsupported content_type application/zip"),
            "the generator could not read part of the document:\n{warning}"
        );
    }

    let out = work.path().join("renditions");
    std::fs::create_dir(&out).unwrap();
    let photos = [
        "ladybird.jpg",
        "garden.webp",
        "kleiber_tall.jpg",
        "wood.png",
    ];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/generated_client/run_batch.py");
    let ran = Command::new(tools().join("python"))
        .arg(&script)
        .arg(&server.base)
        .arg(&out)
        .args(photos.iter().map(|p| fixtures().join(p)))
        .env("PYTHONPATH", work.path())
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "the generated client's batch failed:\n{}{}",
        text(&ran.stdout),
        text(&ran.stderr)
    );
    let summary: Value = serde_json::from_slice(&ran.stdout).unwrap();

    let batch = &summary["batch"];
    assert_eq!(batch["state"], "completed", "{batch}");
    assert_eq!(
        (batch["total"].as_u64(), batch["done"].as_u64()),
        (Some(4), Some(4))
    );
    let progress: Vec<Vec<u64>> = serde_json::from_value(summary["progress"].clone()).unwrap();
    assert!(
        progress.windows(2).all(|w| w[0][0] <= w[1][0]),
        "progress only rises: {progress:?}"
    );
    assert_eq!(progress.last(), Some(&vec![4, 0, 4]));

    let listed: BTreeMap<String, &Value> = summary["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["filename"].as_str().unwrap().to_owned(), p))
        .collect();
    assert_eq!(
        listed.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut sorted = photos.to_vec();
            sorted.sort_unstable();
            sorted
        },
        "every photo listed once"
    );
    for (name, photo) in listed {
        assert_eq!(photo["state"], "done", "{photo}");
        let original = dimensions(&fixtures().join(&name));
        let renditions = photo["renditions"].as_array().unwrap();
        assert_eq!(renditions.len(), 3, "{photo}");
        for r in renditions {
            let path = PathBuf::from(r["path"].as_str().unwrap());
            let size = u32::try_from(r["size"].as_u64().unwrap()).unwrap();
            let got = dimensions(&path);
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                r["bytes"].as_u64().unwrap(),
                "{name} {size}: the bytes downloaded are the bytes listed"
            );
            assert_eq!(
                (u64::from(got.0), u64::from(got.1)),
                (r["width"].as_u64().unwrap(), r["height"].as_u64().unwrap()),
                "{name} {size}: the listed dimensions are the image's"
            );
            assert_rendition(original, size, got, &format!("{name} {size}"));
        }
    }
}
