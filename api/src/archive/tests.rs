//! The writer end to end: archives built from in-memory sources, read back by two readers
//! that share no code with this one — Python's `zipfile` (every entry read, CRC checked)
//! and Info-ZIP's `unzip -t`.

use std::process::Command;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;
use tirage_ports::{ByteStream, ObjectBody};

use super::{Layout, WriteError, write};

const READ_WITH_PYTHON: &str = r#"
import json, sys, zipfile, zlib
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    entries = []
    for i in z.infolist():
        data = z.read(i)
        entries.append({"name": i.filename, "size": i.file_size, "compressed": i.compress_size,
                        "method": i.compress_type, "crc": i.CRC, "flags": i.flag_bits,
                        "read": len(data), "read_crc": zlib.crc32(data)})
    print(json.dumps({"bad": bad, "entries": entries}))
"#;

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_718_000_000, 0).unwrap()
}

/// A source yielding `data` in chunks of `chunk` bytes, announcing `announced` bytes.
fn source(data: &[u8], chunk: usize, announced: u64) -> ObjectBody {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stream: ByteStream = Box::pin(futures::stream::iter(chunks));
    ObjectBody {
        size: announced,
        stream,
    }
}

/// Everything the writer yields: the bytes until the end or the first error.
fn collect(layout: Layout, files: Vec<Vec<u8>>) -> (Vec<u8>, Option<WriteError>) {
    collect_from(layout, move |i| {
        let data = &files[i];
        source(data, 7_919, data.len() as u64)
    })
}

fn collect_from(
    layout: Layout,
    mut make: impl FnMut(usize) -> ObjectBody,
) -> (Vec<u8>, Option<WriteError>) {
    let stream = write(layout, move |i| {
        let body = make(i);
        async move { Ok::<_, String>(body) }
    });
    futures::executor::block_on(async move {
        let mut stream = std::pin::pin!(stream);
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    })
}

/// Python's view of an archive; fails the test when Python cannot read it.
fn read_with_python(zip: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zip");
    std::fs::write(&path, zip).unwrap();
    let out = Command::new("python3")
        .args(["-c", READ_WITH_PYTHON])
        .arg(&path)
        .output()
        .expect("python3 runs (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "zipfile refused the archive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bad"], Value::Null, "an entry failed its CRC check");
    test_with_unzip(&path);
    report
}

fn test_with_unzip(path: &std::path::Path) {
    let out = Command::new("unzip")
        .arg("-tq")
        .arg(path)
        .output()
        .expect("unzip runs (scripts/install-deps.sh installs it)");
    // unzip exits 1 with a warning, not an error, on an archive without entries.
    let empty = String::from_utf8_lossy(&out.stdout).contains("zipfile is empty");
    assert!(
        out.status.success() || (out.status.code() == Some(1) && empty),
        "unzip -t: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

#[test]
fn archives_read_back_entry_for_entry() {
    let files = [
        ("a_1080.jpg", pattern(300_001, 1)),
        ("empty_720.jpg", Vec::new()),
        ("été_360.jpg", pattern(1, 2)),
        ("b_1080.jpg", pattern(65_536, 3)),
    ];
    let layout = Layout::plan(
        files.iter().map(|(n, d)| ((*n).to_owned(), d.len() as u64)),
        at(),
    )
    .unwrap();
    let planned = layout.total_len();
    let (zip, error) = collect(layout, files.iter().map(|(_, d)| d.clone()).collect());
    assert!(error.is_none(), "{error:?}");
    assert_eq!(zip.len() as u64, planned, "exactly the announced length");

    let report = read_with_python(&zip);
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), files.len());
    for ((name, data), entry) in files.iter().zip(entries) {
        assert_eq!(entry["name"], *name);
        assert_eq!(entry["method"], 0, "stored");
        assert_eq!(
            entry["flags"].as_u64().unwrap() & 0x8,
            0x8,
            "data descriptor"
        );
        assert_eq!(entry["size"], data.len());
        assert_eq!(entry["compressed"], data.len());
        assert_eq!(entry["read"], data.len());
        assert_eq!(entry["crc"], crc32fast::hash(data));
        assert_eq!(entry["read_crc"], crc32fast::hash(data));
    }
}

#[test]
fn an_empty_archive_is_a_valid_zip() {
    let layout = Layout::plan(Vec::new(), at()).unwrap();
    let (zip, error) = collect(layout, Vec::new());
    assert!(error.is_none());
    assert_eq!(zip.len(), 22);
    let report = read_with_python(&zip);
    assert_eq!(report["entries"].as_array().unwrap().len(), 0);
}

/// Past 65,534 entries the counts live in the ZIP64 end record: both readers must find
/// every entry.
#[test]
fn seventy_thousand_entries_take_zip64_end_records() {
    let n = 70_000;
    let layout = Layout::plan((0..n).map(|i| (format!("p{i}_360.jpg"), 1)), at()).unwrap();
    let planned = layout.total_len();
    let (zip, error) = collect_from(layout, |i| source(&[(i % 251) as u8], 1, 1));
    assert!(error.is_none(), "{error:?}");
    assert_eq!(zip.len() as u64, planned);
    let report = read_with_python(&zip);
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), n);
    assert_eq!(entries[n - 1]["name"], format!("p{}_360.jpg", n - 1));
    assert_eq!(
        entries[n - 1]["crc"],
        crc32fast::hash(&[((n - 1) % 251) as u8])
    );
}

/// The central directory signature: present only in a completed archive.
fn has_central_directory(zip: &[u8]) -> bool {
    zip.windows(4).any(|w| w == [0x50, 0x4b, 0x01, 0x02])
}

#[test]
fn a_source_that_fails_ends_the_stream_with_an_error() {
    let layout = Layout::plan(
        [("a_720.jpg".to_owned(), 10), ("b_720.jpg".to_owned(), 10)],
        at(),
    )
    .unwrap();
    let (zip, error) = collect_from(layout, |i| {
        if i == 0 {
            return source(&[1; 10], 3, 10);
        }
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"12345")),
            Err(std::io::Error::other("connection reset")),
        ];
        ObjectBody {
            size: 10,
            stream: Box::pin(futures::stream::iter(chunks)),
        }
    });
    match error {
        Some(WriteError::Source { entry, message }) => {
            assert_eq!(entry, "b_720.jpg");
            assert!(message.contains("connection reset"), "{message}");
        }
        other => panic!("expected a source error, got {other:?}"),
    }
    assert!(!has_central_directory(&zip), "no archive may be completed");
}

#[test]
fn a_source_of_another_size_ends_the_stream_with_an_error() {
    let one = || Layout::plan([("a_720.jpg".to_owned(), 10)], at()).unwrap();
    // Announced differently when opened, shorter than announced, longer than announced.
    for (data, announced) in [(vec![0; 10], 11), (vec![0; 9], 10), (vec![0; 11], 10)] {
        let (zip, error) = collect_from(one(), |_| source(&data, 4, announced));
        assert!(
            matches!(error, Some(WriteError::SizeChanged { planned: 10, .. })),
            "{error:?}"
        );
        assert!(!has_central_directory(&zip));
    }
}

#[test]
fn a_source_that_cannot_open_ends_the_stream_before_its_header() {
    let layout = Layout::plan([("gone_720.jpg".to_owned(), 10)], at()).unwrap();
    let stream = write(layout, |_| async {
        Err::<ObjectBody, _>("object vanished")
    });
    let items: Vec<_> = futures::executor::block_on(stream.collect());
    assert_eq!(items.len(), 1, "one error, then the end");
    assert!(
        matches!(&items[0], Err(WriteError::Source { message, .. }) if message == "object vanished")
    );
}
