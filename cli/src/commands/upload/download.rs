//! Bringing the renditions back: every rendition of every accepted photo, written to
//! `<out>/<stem>_<size>.<ext>` through a temp file, so `--out` never holds half a file.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use futures::StreamExt;
use tirage_core::PhotoState;
use tirage_core::codes::PhotoWarning;
use tirage_core::wire::{OutputView, PhotoView};
use uuid::Uuid;

use super::inputs::Input;
use super::outcome::file_failure;
use crate::client::Client;
use crate::codes::{Code, LocalCode};
use crate::inputs::Failure;

/// Downloads the renditions `jobs` lists (see [`renditions_to_fetch`]); returns how many
/// were written.
pub async fn download_all(
    client: &Client,
    jobs: Vec<(usize, OutputView)>,
    inputs: &[Input],
    out: &Path,
    ext: &'static str,
    concurrency: usize,
    failures: &mut Vec<Failure>,
) -> usize {
    let results: Vec<Result<(), Failure>> = futures::stream::iter(jobs)
        .map(|(i, output)| async move {
            let input = &inputs[i];
            let data = client
                .download(&output.url)
                .await
                .map_err(|e| file_failure(&input.path, &e))?;
            let name = format!("{}_{}.{ext}", input.stem, output.size);
            let dir = out.to_path_buf();
            tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &data))
                .await
                .map_err(|e| Failure::io(&input.path, &e))?
                .map_err(|e| Failure::io(&input.path, &e))
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut written = 0;
    for r in results {
        match r {
            Ok(()) => written += 1,
            Err(f) => failures.push(f),
        }
    }
    written
}

/// (input index, rendition) for every rendition of the accepted photos that are done.
/// Photos the server could not resize, or does not list, are recorded in `failures`.
pub fn renditions_to_fetch(
    photos: &[PhotoView],
    accepted: &HashMap<Uuid, usize>,
    inputs: &[Input],
    failures: &mut Vec<Failure>,
) -> Vec<(usize, OutputView)> {
    let mut jobs = Vec::new();
    let mut seen = HashSet::new();
    for photo in photos {
        let Some(&i) = accepted.get(&photo.id) else {
            continue;
        };
        seen.insert(photo.id);
        match photo.state {
            PhotoState::Done => jobs.extend(photo.outputs.iter().map(|o| (i, o.clone()))),
            _ => failures.push(Failure::new(
                &inputs[i].path,
                photo
                    .error
                    .as_deref()
                    .map_or(Code::Local(LocalCode::NotProcessed), Code::from_photo),
                format!("the server could not resize {}", photo.filename),
            )),
        }
    }
    for (id, &i) in accepted {
        if !seen.contains(id) {
            failures.push(Failure::new(
                &inputs[i].path,
                LocalCode::PhotoMissing,
                "the batch does not list this photo",
            ));
        }
    }
    jobs
}

/// What the server warns of the accepted photos done (a truncated original), each one line
/// of `warning: <path>: <code>: <meaning>`.
pub fn warnings_of(
    photos: &[PhotoView],
    accepted: &HashMap<Uuid, usize>,
    inputs: &[Input],
) -> Vec<String> {
    let mut lines = Vec::new();
    for photo in photos {
        let Some(&i) = accepted.get(&photo.id) else {
            continue;
        };
        for warning in &photo.warnings {
            let meaning = PhotoWarning::parse(warning)
                .map_or("a warning this client does not know", PhotoWarning::meaning);
            lines.push(format!(
                "warning: {}: {warning}: {meaning}",
                inputs[i].path.display()
            ));
        }
    }
    lines
}

/// Writes `data` to `<dir>/<name>` through a temp file in `dir`: the final name appears
/// only once the bytes are all on disk, and a temp file whose write is abandoned is removed.
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tirage-").suffix(".part");
    // Renditions are ordinary files (the umask applies), not private temp files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir)?;
    temp.write_all(data)?;
    temp.as_file().sync_all()?;
    temp.persist(dir.join(name)).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_leave_only_the_final_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomically(dir.path(), "a_360.jpg", b"abc").unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a_360.jpg".to_owned()]);
        assert_eq!(std::fs::read(dir.path().join("a_360.jpg")).unwrap(), b"abc");
    }
}
