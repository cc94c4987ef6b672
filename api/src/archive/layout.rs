//! Where every record of an archive goes, decided before its first byte is sent: each
//! entry's offset, where the central directory starts, and the archive's exact length (the
//! `Content-Length` of the download). The lengths come from the record writers themselves
//! ([`super::records`]), so the plan and the bytes cannot disagree.

use chrono::{DateTime, Utc};

use super::records::{self, DosTime, EntryFields};

/// Why an archive cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("entry name {0:?} is empty or longer than 65,535 bytes")]
    BadName(String),
    #[error("two entries are named {0:?}")]
    DuplicateName(String),
    #[error("the archive would be longer than 2^64 bytes")]
    TooLarge,
}

/// One file of the archive: its name and its exact size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEntry {
    pub name: String,
    pub size: u64,
    /// Where its local header starts.
    pub offset: u64,
}

/// An archive laid out: [`super::stream::write`] produces exactly [`Layout::total_len`]
/// bytes from it, or fails.
#[derive(Debug, Clone)]
pub struct Layout {
    entries: Vec<PlannedEntry>,
    modified: DosTime,
    central_offset: u64,
    central_size: u64,
    total_len: u64,
}

impl Layout {
    /// Lays out `entries` (name, size), in order; every entry carries `modified` as its
    /// time. Names must be unique.
    pub fn plan(
        entries: impl IntoIterator<Item = (String, u64)>,
        modified: DateTime<Utc>,
    ) -> Result<Layout, LayoutError> {
        let modified = DosTime::from_utc(modified);
        let mut names = std::collections::HashSet::new();
        let mut planned = Vec::new();
        let mut offset: u64 = 0;
        let mut central_size: u64 = 0;
        for (name, size) in entries {
            if name.is_empty() || name.len() > usize::from(u16::MAX) {
                return Err(LayoutError::BadName(name));
            }
            if !names.insert(name.clone()) {
                return Err(LayoutError::DuplicateName(name));
            }
            let fields = EntryFields {
                name: &name,
                size,
                offset,
                modified,
            };
            let local = records::local_header(&fields).len() as u64;
            let descriptor = records::data_descriptor(&fields, 0).len() as u64;
            central_size = central_size
                .checked_add(records::central_header(&fields, 0).len() as u64)
                .ok_or(LayoutError::TooLarge)?;
            let next = [local, size, descriptor]
                .into_iter()
                .try_fold(offset, u64::checked_add)
                .ok_or(LayoutError::TooLarge)?;
            planned.push(PlannedEntry { name, size, offset });
            offset = next;
        }
        let count = planned.len() as u64;
        let end = records::end_records_len(count, offset, central_size) as u64;
        let total_len = [central_size, end]
            .into_iter()
            .try_fold(offset, u64::checked_add)
            .ok_or(LayoutError::TooLarge)?;
        Ok(Layout {
            entries: planned,
            modified,
            central_offset: offset,
            central_size,
            total_len,
        })
    }

    /// The archive's length in bytes.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    pub fn entries(&self) -> &[PlannedEntry] {
        &self.entries
    }

    pub(super) fn fields(&self, index: usize) -> Option<EntryFields<'_>> {
        self.entries.get(index).map(|e| EntryFields {
            name: &e.name,
            size: e.size,
            offset: e.offset,
            modified: self.modified,
        })
    }

    /// The ZIP64 end record (if any) and the end of central directory record.
    pub(super) fn end_records(&self) -> Vec<u8> {
        records::end_records(
            self.entries.len() as u64,
            self.central_offset,
            self.central_size,
        )
    }

    #[cfg(test)]
    pub(super) fn central_offset(&self) -> u64 {
        self.central_offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_718_000_000, 0).unwrap()
    }

    #[test]
    fn offsets_and_length_add_up() {
        let layout = Layout::plan(
            [("a_720.jpg".to_owned(), 100), ("b_720.jpg".to_owned(), 0)],
            at(),
        )
        .unwrap();
        let [a, b] = layout.entries() else {
            panic!("two entries")
        };
        assert_eq!(a.offset, 0);
        // Local header (30 + name), bytes, descriptor (16).
        assert_eq!(b.offset, 30 + 9 + 100 + 16);
        assert_eq!(layout.central_offset(), b.offset + 30 + 9 + 16);
        let central = 2 * (46 + 9);
        assert_eq!(layout.total_len(), layout.central_offset() + central + 22);
    }

    #[test]
    fn an_empty_archive_is_its_end_record() {
        let layout = Layout::plan(Vec::new(), at()).unwrap();
        assert_eq!(layout.total_len(), 22);
    }

    #[test]
    fn names_must_be_unique_and_sane() {
        let dup = Layout::plan([("x".to_owned(), 1), ("x".to_owned(), 2)], at());
        assert_eq!(dup.unwrap_err(), LayoutError::DuplicateName("x".into()));
        let empty = Layout::plan([(String::new(), 1)], at());
        assert!(matches!(empty, Err(LayoutError::BadName(_))));
    }

    /// Fake sizes: the plan of a multi-GiB archive, checked without writing a byte of it.
    #[test]
    fn large_archives_are_laid_out_with_zip64() {
        let gib = 1024 * 1024 * 1024_u64;
        let layout = Layout::plan(
            [
                ("one_1080.jpg".to_owned(), 3 * gib),
                ("big_1080.jpg".to_owned(), 5 * gib),
                ("late_360.jpg".to_owned(), 10),
            ],
            at(),
        )
        .unwrap();
        let e = layout.entries();
        // The first entry fits 32 bits; the second needs ZIP64 sizes (20-byte local extra,
        // 24-byte descriptor); the third starts past 4 GiB.
        assert_eq!(e[1].offset, 30 + 12 + 3 * gib + 16);
        assert_eq!(e[2].offset, e[1].offset + 30 + 12 + 20 + 5 * gib + 24);
        assert!(e[2].offset > records::MAX32);
        // Central headers: plain, sizes in ZIP64 (4 + 16), offset in ZIP64 (4 + 8).
        let central = (46 + 12) + (46 + 12 + 20) + (46 + 12 + 12);
        assert_eq!(layout.central_offset(), e[2].offset + 30 + 12 + 10 + 16);
        assert_eq!(
            layout.total_len(),
            layout.central_offset() + central + 56 + 20 + 22,
            "the central directory starts past 4 GiB: ZIP64 end records"
        );
    }

    #[test]
    fn more_than_65534_entries_take_the_zip64_end_records() {
        let entries = (0..70_000).map(|i| (format!("p{i}_360.jpg"), 1));
        let layout = Layout::plan(entries, at()).unwrap();
        let end = layout.end_records();
        assert_eq!(end.len(), 56 + 20 + 22);
        let local_and_central: u64 = layout
            .entries()
            .iter()
            .map(|e| 30 + 2 * e.name.len() as u64 + 1 + 16 + 46)
            .sum();
        assert_eq!(layout.total_len(), local_and_central + 98);
    }
}
