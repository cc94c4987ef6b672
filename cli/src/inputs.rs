//! Finding the photos a command was given, for `resize` and `upload` alike: named files are
//! taken as they are (so a non-image is reported with its own code), directories are walked
//! recursively and contribute only the files whose first bytes are an image signature.
//! Also the record of an input that produced nothing, which both commands print the same way.

use std::io::Read;
use std::path::{Path, PathBuf};

use tirage_engine::sniff;

use crate::codes::{Code, LocalCode};

/// Why one input has no renditions: its path, a stable code, a message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub path: PathBuf,
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(path: &Path, code: impl Into<Code>, message: impl Into<String>) -> Self {
        Failure {
            path: path.to_path_buf(),
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn io(path: &Path, e: &impl std::fmt::Display) -> Self {
        Failure::new(path, LocalCode::IoError, e.to_string())
    }

    /// `error: <path>: <code>: <message>` on stderr.
    pub fn report(&self) {
        eprintln!(
            "error: {}: {}: {}",
            self.path.display(),
            self.code,
            self.message
        );
    }
}

/// The files to process, in order: each named file, then each directory's images sorted by
/// path. Unreadable directories are recorded in `failures`.
pub fn discover(inputs: &[PathBuf], failures: &mut Vec<Failure>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found, failures);
            found.sort();
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    out
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, failures: &mut Vec<Failure>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            failures.push(Failure::io(dir, &e));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, found, failures);
        } else if read_head(&path).is_ok_and(|h| sniff(&h).is_some()) {
            found.push(path);
        }
    }
}

/// The first bytes of a file: enough for every image signature the engine knows.
pub fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; 12];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    head.truncate(n);
    Ok(head)
}

/// The name renditions are written under: `<stem>_<size>.<ext>`.
pub fn stem_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_contribute_their_images_sorted_and_named_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("b.jpg"), [0xFF, 0xD8, 0xFF, 0xE0]).unwrap();
        std::fs::write(sub.join("a.png"), b"\x89PNG\r\n\x1a\n....").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let named = dir.path().join("notes.txt");
        let mut failures = Vec::new();
        let found = discover(&[dir.path().to_path_buf(), named.clone()], &mut failures);
        assert_eq!(
            found,
            vec![dir.path().join("b.jpg"), sub.join("a.png"), named.clone()]
        );
        assert!(failures.is_empty());
        assert_eq!(stem_of(&named), "notes");
    }
}
