//! The bytes of each ZIP record Tirage writes (PKWARE APPNOTE 6.3.10): local file header,
//! data descriptor, central directory header, and the end records (ZIP64 when needed).
//!
//! Every entry is STORED (method 0) with general-purpose flag bit 3: its CRC-32 is only
//! known once its bytes have gone out, so the local header carries zeros and the data
//! descriptor after the bytes carries the CRC and the sizes. Sizes and offsets are known up
//! front, so each record's length is too: [`super::layout`] sums these same functions.

use chrono::{DateTime, Datelike, Timelike, Utc};

const LOCAL_SIG: u32 = 0x0403_4b50;
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END_SIG: u32 = 0x0605_4b50;

/// A 32-bit field whose value does not fit is written as all ones, and the value goes to
/// the ZIP64 extra field (entries) or the ZIP64 end record (archive).
pub const MAX32: u64 = 0xFFFF_FFFF;
/// The same for the 16-bit entry counts of the end record.
pub const MAX16: u64 = 0xFFFF;

const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
/// The name is UTF-8 (set only for names outside ASCII, which every reader takes as is).
const FLAG_UTF8: u16 = 1 << 11;
const METHOD_STORED: u16 = 0;
/// 2.0: data descriptors; 4.5: ZIP64.
const VERSION_BASE: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// "Made by" a Unix host, so readers apply the permissions of the external attributes.
const HOST_UNIX: u16 = 3 << 8;
/// A regular file, rw-r--r--, in the Unix half of the external attributes.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_644 << 16;
const ZIP64_EXTRA_TAG: u16 = 0x0001;

const LOCAL_FIXED: usize = 30;
const CENTRAL_FIXED: usize = 46;
const ZIP64_END_LEN: usize = 56;
const ZIP64_LOCATOR_LEN: usize = 20;
const END_LEN: usize = 22;

/// An MS-DOS date and time, the only timestamp every ZIP reader understands (local time,
/// two-second steps, 1980 to 2107).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DosTime {
    time: u16,
    date: u16,
}

impl DosTime {
    pub fn from_utc(at: DateTime<Utc>) -> DosTime {
        // Outside the representable years, the nearest end of the range.
        let (year, month, day, hour, minute, second) = match at.year() {
            y if y < 1980 => (1980, 1, 1, 0, 0, 0),
            y if y > 2107 => (2107, 12, 31, 23, 59, 58),
            y => (y, at.month(), at.day(), at.hour(), at.minute(), at.second()),
        };
        let field = |v: u32| u16::try_from(v).unwrap_or(0);
        DosTime {
            time: field((hour << 11) | (minute << 5) | (second / 2)),
            date: field((u32::try_from(year - 1980).unwrap_or(0) << 9) | (month << 5) | day),
        }
    }
}

/// One entry, as its records describe it.
#[derive(Debug, Clone, Copy)]
pub struct EntryFields<'a> {
    pub name: &'a str,
    pub size: u64,
    /// Where its local header starts in the archive.
    pub offset: u64,
    pub modified: DosTime,
}

impl EntryFields<'_> {
    /// The entry's size does not fit the 32-bit fields: ZIP64 extra fields in both headers,
    /// 8-byte sizes in the data descriptor.
    pub fn zip64_size(&self) -> bool {
        self.size >= MAX32
    }

    fn zip64_offset(&self) -> bool {
        self.offset >= MAX32
    }

    fn flags(&self) -> u16 {
        if self.name.is_ascii() {
            FLAG_DATA_DESCRIPTOR
        } else {
            FLAG_DATA_DESCRIPTOR | FLAG_UTF8
        }
    }

    fn version_needed(&self) -> u16 {
        if self.zip64_size() || self.zip64_offset() {
            VERSION_ZIP64
        } else {
            VERSION_BASE
        }
    }
}

/// Little-endian fields appended to a buffer.
struct Record(Vec<u8>);

impl Record {
    fn with_capacity(n: usize) -> Record {
        Record(Vec::with_capacity(n))
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A 32-bit field, all ones when `v` does not fit (its value then goes to ZIP64).
    fn u32_or_max(&mut self, v: u64) -> &mut Self {
        self.u32(u32::try_from(v.min(MAX32)).unwrap_or(u32::MAX))
    }
    fn u16_or_max(&mut self, v: u64) -> &mut Self {
        self.u16(u16::try_from(v.min(MAX16)).unwrap_or(u16::MAX))
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

/// A length that the layout checked fits 16 bits (names, extra fields).
fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// The local file header. With bit 3 set the CRC and sizes are zeros here; a ZIP64 entry
/// marks its sizes as all ones and carries a ZIP64 extra field with both sizes (zeros too:
/// the data descriptor has them).
pub fn local_header(e: &EntryFields<'_>) -> Vec<u8> {
    let extra: &[u8] = if e.zip64_size() {
        &[
            0x01, 0x00, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]
    } else {
        &[]
    };
    let size_field = if e.zip64_size() { u32::MAX } else { 0 };
    Record::with_capacity(LOCAL_FIXED + e.name.len() + extra.len())
        .u32(LOCAL_SIG)
        .u16(e.version_needed())
        .u16(e.flags())
        .u16(METHOD_STORED)
        .u16(e.modified.time)
        .u16(e.modified.date)
        .u32(0)
        .u32(size_field)
        .u32(size_field)
        .u16(len16(e.name.len()))
        .u16(len16(extra.len()))
        .bytes(e.name.as_bytes())
        .bytes(extra)
        .done()
}

/// The data descriptor after the entry's bytes: signature, CRC, then compressed and
/// uncompressed sizes (equal: stored), 8 bytes each for a ZIP64 entry.
pub fn data_descriptor(e: &EntryFields<'_>, crc: u32) -> Vec<u8> {
    let mut r = Record::with_capacity(24);
    r.u32(DESCRIPTOR_SIG).u32(crc);
    if e.zip64_size() {
        r.u64(e.size).u64(e.size);
    } else {
        r.u32_or_max(e.size).u32_or_max(e.size);
    }
    r.done()
}

/// The entry's central directory header. Fields that do not fit 32 bits are all ones and
/// their values follow in a ZIP64 extra field, in the order the format fixes: uncompressed
/// size, compressed size, local header offset.
pub fn central_header(e: &EntryFields<'_>, crc: u32) -> Vec<u8> {
    let mut extra = Record::with_capacity(28);
    let mut wide = Vec::new();
    if e.zip64_size() {
        wide.extend([e.size, e.size]);
    }
    if e.zip64_offset() {
        wide.push(e.offset);
    }
    if !wide.is_empty() {
        extra.u16(ZIP64_EXTRA_TAG).u16(len16(wide.len() * 8));
        for v in wide {
            extra.u64(v);
        }
    }
    let extra = extra.done();
    Record::with_capacity(CENTRAL_FIXED + e.name.len() + extra.len())
        .u32(CENTRAL_SIG)
        .u16(HOST_UNIX | VERSION_ZIP64)
        .u16(e.version_needed())
        .u16(e.flags())
        .u16(METHOD_STORED)
        .u16(e.modified.time)
        .u16(e.modified.date)
        .u32(crc)
        .u32_or_max(e.size)
        .u32_or_max(e.size)
        .u16(len16(e.name.len()))
        .u16(len16(extra.len()))
        .u16(0) // comment
        .u16(0) // disk number start
        .u16(0) // internal attributes
        .u32(EXTERNAL_ATTRIBUTES)
        .u32_or_max(e.offset)
        .bytes(e.name.as_bytes())
        .bytes(&extra)
        .done()
}

/// Whether the archive's totals need the ZIP64 end records.
pub fn zip64_end_needed(entries: u64, central_offset: u64, central_size: u64) -> bool {
    entries >= MAX16 || central_offset >= MAX32 || central_size >= MAX32
}

/// The length of [`end_records`] for these totals.
pub fn end_records_len(entries: u64, central_offset: u64, central_size: u64) -> usize {
    if zip64_end_needed(entries, central_offset, central_size) {
        ZIP64_END_LEN + ZIP64_LOCATOR_LEN + END_LEN
    } else {
        END_LEN
    }
}

/// What follows the central directory: the ZIP64 end record and its locator when a total
/// does not fit, then the end of central directory record (its overflowing fields all ones).
pub fn end_records(entries: u64, central_offset: u64, central_size: u64) -> Vec<u8> {
    let mut r = Record::with_capacity(end_records_len(entries, central_offset, central_size));
    if zip64_end_needed(entries, central_offset, central_size) {
        let zip64_end_offset = central_offset + central_size;
        r.u32(ZIP64_END_SIG)
            // Size of the rest of the record: its length less the 12 bytes read so far.
            .u64((ZIP64_END_LEN - 12) as u64)
            .u16(HOST_UNIX | VERSION_ZIP64)
            .u16(VERSION_ZIP64)
            .u32(0) // this disk
            .u32(0) // disk of the central directory
            .u64(entries)
            .u64(entries)
            .u64(central_size)
            .u64(central_offset)
            .u32(ZIP64_LOCATOR_SIG)
            .u32(0) // disk of the ZIP64 end record
            .u64(zip64_end_offset)
            .u32(1); // disks in all
    }
    r.u32(END_SIG)
        .u16(0)
        .u16(0)
        .u16_or_max(entries)
        .u16_or_max(entries)
        .u32_or_max(central_size)
        .u32_or_max(central_offset)
        .u16(0) // comment
        .done()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    fn entry(name: &str, size: u64, offset: u64) -> EntryFields<'_> {
        EntryFields {
            name,
            size,
            offset,
            modified: DosTime::from_utc(Utc.with_ymd_and_hms(2024, 6, 10, 13, 45, 31).unwrap()),
        }
    }

    #[test]
    fn dos_times_pack_fields_and_clamp_the_years() {
        let t = DosTime::from_utc(Utc.with_ymd_and_hms(2024, 6, 10, 13, 45, 31).unwrap());
        assert_eq!(t.date, ((2024 - 1980) << 9) | (6 << 5) | 10);
        assert_eq!(t.time, (13 << 11) | (45 << 5) | 15);
        let early = DosTime::from_utc(Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(early.date, (1 << 5) | 1);
    }

    #[test]
    fn a_small_entry_has_32_bit_fields_and_a_descriptor_flag() {
        let e = entry("a_720.jpg", 1234, 99);
        let local = local_header(&e);
        assert_eq!(local.len(), 30 + 9);
        assert_eq!(u32_at(&local, 0), LOCAL_SIG);
        assert_eq!(u16_at(&local, 4), 20);
        assert_eq!(u16_at(&local, 6), 0x0008, "bit 3 only: ASCII name");
        assert_eq!(u16_at(&local, 8), 0, "stored");
        assert_eq!(&local[14..26], &[0u8; 12], "CRC and sizes come later");
        assert_eq!(u16_at(&local, 28), 0, "no extra field");
        assert_eq!(&local[30..], b"a_720.jpg");

        let desc = data_descriptor(&e, 0xDEAD_BEEF);
        assert_eq!(desc.len(), 16);
        assert_eq!(u32_at(&desc, 4), 0xDEAD_BEEF);
        assert_eq!((u32_at(&desc, 8), u32_at(&desc, 12)), (1234, 1234));

        let central = central_header(&e, 0xDEAD_BEEF);
        assert_eq!(central.len(), 46 + 9);
        assert_eq!(u32_at(&central, 16), 0xDEAD_BEEF);
        assert_eq!((u32_at(&central, 20), u32_at(&central, 24)), (1234, 1234));
        assert_eq!(u16_at(&central, 30), 0, "no extra field");
        assert_eq!(u32_at(&central, 42), 99, "local header offset");
        assert_eq!(u32_at(&central, 38) >> 16, 0o100_644);
    }

    #[test]
    fn non_ascii_names_are_flagged_utf8() {
        let e = entry("été_720.jpg", 1, 0);
        assert_eq!(u16_at(&local_header(&e), 6), 0x0808);
        assert_eq!(u16_at(&central_header(&e, 0), 8), 0x0808);
    }

    #[test]
    fn an_entry_past_4_gib_uses_zip64_fields() {
        let size = 5 * 1024 * 1024 * 1024_u64;
        let e = entry("big_1080.jpg", size, 7);
        let local = local_header(&e);
        assert_eq!(u16_at(&local, 4), 45);
        assert_eq!(
            (u32_at(&local, 18), u32_at(&local, 22)),
            (u32::MAX, u32::MAX)
        );
        assert_eq!(
            u16_at(&local, 28),
            20,
            "ZIP64 extra: tag, length, two sizes"
        );
        let extra = &local[30 + 12..];
        assert_eq!((u16_at(extra, 0), u16_at(extra, 2)), (1, 16));

        let desc = data_descriptor(&e, 1);
        assert_eq!(desc.len(), 24, "8-byte sizes");
        assert_eq!((u64_at(&desc, 8), u64_at(&desc, 16)), (size, size));

        let central = central_header(&e, 1);
        assert_eq!(
            (u32_at(&central, 20), u32_at(&central, 24)),
            (u32::MAX, u32::MAX)
        );
        assert_eq!(u32_at(&central, 42), 7, "a small offset stays in its field");
        let extra = &central[46 + 12..];
        assert_eq!((u16_at(extra, 0), u16_at(extra, 2)), (1, 16));
        assert_eq!((u64_at(extra, 4), u64_at(extra, 12)), (size, size));
    }

    #[test]
    fn an_entry_starting_past_4_gib_carries_its_offset_in_zip64() {
        let offset = 6 * 1024 * 1024 * 1024_u64;
        let e = entry("late_360.jpg", 10, offset);
        assert_eq!(
            u16_at(&local_header(&e), 28),
            0,
            "sizes fit: no local extra"
        );
        assert_eq!(data_descriptor(&e, 0).len(), 16);
        let central = central_header(&e, 0);
        assert_eq!(u16_at(&central, 6), 45);
        assert_eq!(u32_at(&central, 20), 10);
        assert_eq!(u32_at(&central, 42), u32::MAX);
        let extra = &central[46 + 12..];
        assert_eq!((u16_at(extra, 0), u16_at(extra, 2)), (1, 8));
        assert_eq!(u64_at(extra, 4), offset);
    }

    #[test]
    fn end_records_switch_to_zip64_past_the_32_bit_totals() {
        let small = end_records(3, 500, 200);
        assert_eq!(small.len(), 22);
        assert_eq!(u32_at(&small, 0), END_SIG);
        assert_eq!((u16_at(&small, 8), u16_at(&small, 10)), (3, 3));
        assert_eq!((u32_at(&small, 12), u32_at(&small, 16)), (200, 500));

        for (entries, offset, size) in [(70_000, 500, 200), (3, 5 << 30, 200)] {
            let big = end_records(entries, offset, size);
            assert_eq!(big.len(), end_records_len(entries, offset, size));
            assert_eq!(big.len(), 56 + 20 + 22);
            assert_eq!(u32_at(&big, 0), ZIP64_END_SIG);
            assert_eq!(u64_at(&big, 4), 44);
            assert_eq!((u64_at(&big, 24), u64_at(&big, 32)), (entries, entries));
            assert_eq!((u64_at(&big, 40), u64_at(&big, 48)), (size, offset));
            assert_eq!(u32_at(&big, 56), ZIP64_LOCATOR_SIG);
            assert_eq!(
                u64_at(&big, 64),
                offset + size,
                "where the ZIP64 end record is"
            );
            let end = &big[76..];
            assert_eq!(u32_at(end, 0), END_SIG);
            let count = u16_at(end, 8);
            assert_eq!(count, if entries >= 0xFFFF { 0xFFFF } else { 3 });
            let at = u32_at(end, 16);
            assert_eq!(at, if offset >= MAX32 { u32::MAX } else { 500 });
        }
    }
}
