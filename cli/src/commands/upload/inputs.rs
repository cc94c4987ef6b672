//! The files to upload: found by [`crate::inputs::discover`], then sized and typed. Empty
//! files and clashing stems fail here, before any upload.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tirage_core::codes::ErrorCode;
use tirage_core::wire::UploadFile;
use tirage_engine::{SourceFormat, sniff};

use crate::codes::LocalCode;
use crate::inputs::{Failure, discover, read_head, stem_of};

/// One input file, ready to send.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub stem: String,
    pub size: u64,
    pub content_type: &'static str,
}

impl Input {
    /// The name the server keeps as the photo's label, in a multipart upload.
    pub fn filename(&self) -> String {
        self.file_name().unwrap_or_else(|| self.stem.clone())
    }

    /// How the file is announced when asking for a presigned URL.
    pub fn upload_file(&self) -> UploadFile {
        UploadFile {
            filename: self.file_name().unwrap_or_default(),
            size: self.size,
            content_type: self.content_type.to_owned(),
        }
    }

    fn file_name(&self) -> Option<String> {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    }
}

/// Every input to upload, in order; what cannot be uploaded goes to `failures`.
pub fn collect(inputs: &[PathBuf], failures: &mut Vec<Failure>) -> Vec<Input> {
    let mut stems = HashSet::new();
    let mut out = Vec::new();
    for path in discover(inputs, failures) {
        let stem = stem_of(&path);
        let (size, head) =
            match std::fs::metadata(&path).and_then(|m| Ok((m.len(), read_head(&path)?))) {
                Ok(x) => x,
                Err(e) => {
                    failures.push(Failure::io(&path, &e));
                    continue;
                }
            };
        if size == 0 {
            failures.push(Failure::new(
                &path,
                ErrorCode::EmptyFile,
                "the file is empty",
            ));
            continue;
        }
        // Two inputs with one stem would overwrite each other's renditions.
        if !stems.insert(stem.clone()) {
            failures.push(Failure::new(
                &path,
                LocalCode::DuplicateName,
                format!("another input already writes {stem}_<size> files"),
            ));
            continue;
        }
        let content_type = content_type_of(&path, &head);
        out.push(Input {
            path,
            stem,
            size,
            content_type,
        });
    }
    out
}

fn content_type_of(path: &Path, head: &[u8]) -> &'static str {
    match sniff(head) {
        Some(SourceFormat::Jpeg) => "image/jpeg",
        Some(SourceFormat::Png) => "image/png",
        Some(SourceFormat::Webp) => "image/webp",
        Some(SourceFormat::Gif) => "image/gif",
        Some(SourceFormat::Heic) => "image/heic",
        Some(SourceFormat::Avif) => "image/avif",
        // Not an image by its signature: sent anyway when named explicitly, so the server
        // reports it with its own code; the type is an image one because the presigned
        // path accepts nothing else.
        None => match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => "image/png",
            Some("webp") => "image/webp",
            Some("gif") => "image/gif",
            Some("heic" | "heif") => "image/heic",
            Some("avif") => "image/avif",
            _ => "image/jpeg",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_refuse_empty_files_and_clashing_stems() {
        // Directory walking is `crate::inputs`'s; here every input is named.
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let named = [
            file("a.jpg", &[0xFF, 0xD8, 0xFF, 0xE0]),
            file("a.png", b"\x89PNG\r\n\x1a\n...."),
            file("empty.jpg", b""),
        ];
        let mut failures = Vec::new();
        let inputs = collect(&named, &mut failures);
        assert_eq!(inputs.len(), 1, "{inputs:?}");
        assert_eq!(inputs[0].content_type, "image/jpeg");
        let codes: Vec<&str> = failures.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, vec!["duplicate_name", "empty_file"]);
    }

    #[test]
    fn unsigned_files_are_typed_by_extension() {
        assert_eq!(content_type_of(Path::new("x.PNG"), b"nope"), "image/png");
        assert_eq!(content_type_of(Path::new("x.txt"), b"nope"), "image/jpeg");
    }
}
