//! Conditional and partial GETs of renditions, the way static files are served: renditions
//! never change once written, so each carries a strong `ETag` (the digest of its bytes), a
//! revalidation that names it gets `304 Not Modified`, and `Range: bytes=…` gets `206` with
//! just those bytes (one range per request; a request for several gets the whole body, as
//! RFC 9110 allows).

use std::ops::Range;

use actix_web::HttpRequest;
use actix_web::http::header;

/// What a GET of a representation of `size` bytes asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The client's copy is current: answer 304.
    NotModified,
    Whole,
    /// These bytes only: answer 206.
    Part(Range<u64>),
    /// A range that starts past the end: answer 416.
    Unsatisfiable,
}

/// The quoted strong entity tag of a digest.
pub fn entity_tag(digest: &str) -> String {
    format!("\"{digest}\"")
}

/// What the request wants of a representation of `size` bytes whose entity tag is `etag`
/// (quoted; `None` when it has none).
pub fn wanted(req: &HttpRequest, etag: Option<&str>, size: u64) -> Wanted {
    let headers = req.headers();
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let (Some(etag), Some(if_none_match)) = (etag, text(header::IF_NONE_MATCH))
        && none_match_hits(if_none_match, etag)
    {
        return Wanted::NotModified;
    }
    let Some(range) = text(header::RANGE) else {
        return Wanted::Whole;
    };
    // If-Range: the range only holds for the representation the client has part of
    // (strong comparison); otherwise the whole new one.
    if let Some(if_range) = text(header::IF_RANGE)
        && etag.is_none_or(|etag| if_range.trim() != etag)
    {
        return Wanted::Whole;
    }
    byte_range(range, size)
}

/// `If-None-Match` uses the weak comparison: `W/"x"` matches `"x"`; `*` matches anything.
fn none_match_hits(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// One `bytes=` range of a representation of `size` bytes; anything else (several ranges,
/// another unit, a malformed value) is ignored and the whole body sent.
fn byte_range(value: &str, size: u64) -> Wanted {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Wanted::Whole;
    };
    if spec.contains(',') || size == 0 {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (number(first), number(last)) {
        // The last N bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(size - n.min(size)..size)
            }
        }
        (Some(start), None) if last.is_empty() => {
            if start >= size {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(start..size)
            }
        }
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(start..end.saturating_add(1).min(size))
            }
        }
        _ => Wanted::Whole,
    }
}

/// The `Content-Range` of a part.
pub fn content_range(part: &Range<u64>, size: u64) -> String {
    format!("bytes {}-{}/{size}", part.start, part.end - 1)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const ETAG: &str = "\"0123456789abcdef0123456789abcdef\"";

    fn wanted_with(headers: &[(&str, &str)], size: u64) -> Wanted {
        let mut req = TestRequest::get();
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        wanted(&req.to_http_request(), Some(ETAG), size)
    }

    #[test]
    fn a_matching_if_none_match_is_not_modified_and_another_is_not() {
        for value in [
            ETAG,
            "*",
            "\"other\", W/\"0123456789abcdef0123456789abcdef\"",
        ] {
            assert_eq!(
                wanted_with(&[("if-none-match", value)], 100),
                Wanted::NotModified,
                "{value}"
            );
        }
        assert_eq!(
            wanted_with(&[("if-none-match", "\"other\"")], 100),
            Wanted::Whole
        );
        // Without an entity tag nothing is ever current.
        let req = TestRequest::get()
            .insert_header(("if-none-match", "*"))
            .to_http_request();
        assert_eq!(wanted(&req, None, 100), Wanted::Whole);
    }

    #[test]
    fn single_byte_ranges_are_parts_of_the_body() {
        for (range, part) in [
            ("bytes=0-9", 0..10),
            ("bytes=90-", 90..100),
            ("bytes=-10", 90..100),
            ("bytes=-1000", 0..100),
            ("bytes=95-1000", 95..100),
            ("bytes= 5 - 5 ", 5..6),
        ] {
            assert_eq!(
                wanted_with(&[("range", range)], 100),
                Wanted::Part(part),
                "{range}"
            );
        }
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable_and_odd_ones_ignored() {
        for range in ["bytes=100-", "bytes=100-200", "bytes=-0"] {
            assert_eq!(
                wanted_with(&[("range", range)], 100),
                Wanted::Unsatisfiable,
                "{range}"
            );
        }
        for range in [
            "bytes=0-1,5-6",
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=-",
            "bytes",
        ] {
            assert_eq!(
                wanted_with(&[("range", range)], 100),
                Wanted::Whole,
                "{range}"
            );
        }
    }

    #[test]
    fn if_range_keeps_the_range_only_for_the_same_representation() {
        let same = wanted_with(&[("range", "bytes=0-9"), ("if-range", ETAG)], 100);
        assert_eq!(same, Wanted::Part(0..10));
        let other = wanted_with(&[("range", "bytes=0-9"), ("if-range", "\"other\"")], 100);
        assert_eq!(other, Wanted::Whole);
        let dated = wanted_with(
            &[
                ("range", "bytes=0-9"),
                ("if-range", "Tue, 01 Dec 2026 10:00:00 GMT"),
            ],
            100,
        );
        assert_eq!(
            dated,
            Wanted::Whole,
            "a date is never a strong validator here"
        );
    }

    #[test]
    fn content_range_names_the_last_byte() {
        assert_eq!(content_range(&(0..10), 100), "bytes 0-9/100");
    }
}
