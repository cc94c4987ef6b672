//! The one rule for the media type an original is stored with, whichever way it arrives: a
//! ticket's announced `content_type` (checked strictly: the client chose it), a multipart
//! part's type or a presigned PUT's `Content-Type` header (taken leniently: anything else is
//! stored as `application/octet-stream`, and the worker sniffs the bytes anyway).

/// The longest media type stored with an original.
pub const MAX_MEDIA_TYPE_LEN: usize = 100;

/// What [`ImageMediaType::parse`] accepts, as the OpenAPI document states it.
pub const IMAGE_MEDIA_TYPE_PATTERN: &str = r"^image/[A-Za-z0-9/.+-]*$";

/// What an original is stored with when its declared type is not an image type.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// An `image/*` media type, lower-cased, without parameters, at most
/// [`MAX_MEDIA_TYPE_LEN`] bytes of `[a-z0-9/.+-]`: safe to sign into a URL and to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMediaType(String);

impl ImageMediaType {
    /// Strict: the whole value must be such a type (`image/jpeg`, not `image/jpeg; q=1`).
    pub fn parse(declared: &str) -> Option<ImageMediaType> {
        let lower = declared.to_ascii_lowercase();
        let plain = lower.len() <= MAX_MEDIA_TYPE_LEN
            && lower.starts_with("image/")
            && lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/.+-".contains(&b));
        plain.then_some(ImageMediaType(lower))
    }

    /// Lenient: a header's essence (parameters and spaces dropped), or
    /// [`OCTET_STREAM`] when there is none or it is not an image type.
    pub fn stored_as(declared: Option<&str>) -> String {
        declared
            .and_then(|v| v.split(';').next())
            .and_then(|essence| ImageMediaType::parse(essence.trim()))
            .map_or_else(|| OCTET_STREAM.to_owned(), ImageMediaType::into_string)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parse_takes_plain_image_types_only() {
        assert_eq!(
            ImageMediaType::parse("Image/HEIC").map(ImageMediaType::into_string),
            Some("image/heic".to_owned())
        );
        assert!(ImageMediaType::parse("image/svg+xml").is_some());
        for refused in [
            "text/html",
            "image/jpeg; charset=x",
            "image/jpeg\r\nx: y",
            "",
            "imagex/jpeg",
        ] {
            assert_eq!(ImageMediaType::parse(refused), None, "{refused:?}");
        }
        let long = format!("image/{}", "a".repeat(MAX_MEDIA_TYPE_LEN));
        assert_eq!(ImageMediaType::parse(&long), None);
    }

    #[test]
    fn lenient_storage_keeps_the_essence_or_falls_back() {
        assert_eq!(
            ImageMediaType::stored_as(Some(" image/PNG ; q=1")),
            "image/png"
        );
        assert_eq!(ImageMediaType::stored_as(Some("text/plain")), OCTET_STREAM);
        assert_eq!(ImageMediaType::stored_as(Some("image/a b")), OCTET_STREAM);
        assert_eq!(ImageMediaType::stored_as(None), OCTET_STREAM);
    }
}
