//! Entry names: `<stem>_<size>.<ext>`, the stem made from the client's file name. A file
//! name is only a label the client sent, so it is made safe before it names anything in an
//! archive a person will unpack: no directories, no control or reserved characters, no
//! hidden or trailing-dot names, bounded length; and two photos never share a stem.

use std::collections::HashSet;

/// The longest stem, in bytes. File systems allow 255 bytes per name; this leaves room for
/// a disambiguating `_<n>`, `_<size>` and the extension.
pub const MAX_STEM_BYTES: usize = 200;
/// The stem of a file name with nothing usable in it.
const FALLBACK_STEM: &str = "photo";

/// A safe stem from a client's file name: its last path component without its extension;
/// letters and digits (any script) and `-`, `_`, `.` kept, every other run of characters
/// replaced with one `_`; no leading or trailing `.`, `_` or `-`; at most
/// [`MAX_STEM_BYTES`] bytes. `photo` when nothing is left.
pub fn safe_stem(filename: &str) -> String {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let stem = match base.rsplit_once('.') {
        Some((stem, _ext)) if !stem.trim_matches('.').is_empty() => stem,
        _ => base,
    };
    let mut out = String::with_capacity(stem.len().min(MAX_STEM_BYTES));
    let mut replaced = false;
    for c in stem.chars() {
        if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
            if out.len() + c.len_utf8() > MAX_STEM_BYTES {
                break;
            }
            out.push(c);
            replaced = false;
        } else if !replaced {
            if out.len() >= MAX_STEM_BYTES {
                break;
            }
            out.push('_');
            replaced = true;
        }
    }
    let trimmed = out.trim_matches(['.', '_', '-']);
    if trimmed.is_empty() {
        FALLBACK_STEM.to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Hands out stems no earlier photo of the archive got: the first `name` is `name`, later
/// ones `name_2`, `name_3`… (compared without case, as macOS and Windows compare names), so
/// the same photos in the same order always get the same names.
#[derive(Debug, Default)]
pub struct UniqueStems {
    taken: HashSet<String>,
}

impl UniqueStems {
    pub fn claim(&mut self, stem: String) -> String {
        if self.taken.insert(stem.to_lowercase()) {
            return stem;
        }
        let mut n: u64 = 2;
        loop {
            let candidate = format!("{stem}_{n}");
            if self.taken.insert(candidate.to_lowercase()) {
                return candidate;
            }
            n += 1;
        }
    }
}

/// `<stem>_<size>.<ext>`: with the stem unique and the size all digits, the split at the
/// last `_` is unambiguous, so distinct (stem, size) pairs give distinct names.
pub fn entry_name(stem: &str, size: u32, extension: &str) -> String {
    format!("{stem}_{size}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_keep_the_name_and_drop_the_rest() {
        for (filename, stem) in [
            ("IMG_0001.JPG", "IMG_0001"),
            ("holiday photo (1).jpeg", "holiday_photo_1"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\me\\cat.png", "cat"),
            ("dir/sub/été à Paris.webp", "été_à_Paris"),
            ("写真.jpg", "写真"),
            (".hidden.jpg", "hidden"),
            (".jpg", "jpg"),
            ("archive.tar.gz", "archive.tar"),
            ("name.", "name"),
            ("a\u{202e}gpj.exe", "a_gpj"),
            ("tab\tand\nnewline.jpg", "tab_and_newline"),
            ("", "photo"),
            ("...", "photo"),
            ("%%%.jpg", "photo"),
            ("CON.jpg", "CON"),
        ] {
            assert_eq!(safe_stem(filename), stem, "{filename:?}");
        }
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let stem = safe_stem(&format!("{}.jpg", "é".repeat(300)));
        assert!(stem.len() <= MAX_STEM_BYTES);
        assert_eq!(stem, "é".repeat(MAX_STEM_BYTES / 2));
    }

    #[test]
    fn clashing_stems_get_numbered_in_order() {
        let mut stems = UniqueStems::default();
        let got: Vec<String> = ["a", "A", "a", "a_2", "b"]
            .into_iter()
            .map(|s| stems.claim(s.to_owned()))
            .collect();
        assert_eq!(got, ["a", "A_2", "a_3", "a_2_2", "b"]);
        assert_eq!(entry_name("a_3", 720, "jpg"), "a_3_720.jpg");
    }
}
