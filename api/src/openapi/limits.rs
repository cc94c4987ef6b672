//! Every limit a request is checked against, written into the OpenAPI document from the
//! same constant or setting the check uses. A request the document calls valid is never
//! refused for its size or shape, and one it calls invalid is refused. Settings-driven
//! limits (`[limits]` in the configuration) are written when the document is served, so the
//! document states the values this server runs with.

use serde_json::{Value, json};
use tirage_core::model::{
    IMAGE_MEDIA_TYPE_PATTERN, MAX_MEDIA_TYPE_LEN, MAX_QUALITY, MAX_SIZE, MAX_SIZES, MIN_QUALITY,
    MIN_SIZE, MetadataChoice, OutputFormat,
};

use crate::routes::batches::MAX_CALLBACK_URL_LEN;
use crate::routes::photos::MAX_CURSOR_DIGITS;
use crate::routes::uploads::IDEMPOTENCY_KEY_MAX_LEN;
use crate::settings::LimitSettings;

/// What `check_callback_url` accepts, as a pattern: http(s), a host name whose last label
/// starts with a letter (so it is never read as an IPv4 number), an optional port, a plain
/// path. Looser URLs the check also takes are not promised.
const CALLBACK_URL_PATTERN: &str = r"^https?://([A-Za-z0-9]+(-[A-Za-z0-9]+)*\.)*[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*(:[0-9]{1,4})?(/[A-Za-z0-9._~/-]*)?$";
/// `image/` and a subtype of the characters the presigned-upload check allows.
const SCHEMAS: &str = "/components/schemas";
const PHOTOS: &str = "/paths/~1v1~1batches~1{batch_id}~1photos";

/// Writes the limits into `doc`. Returns the places it did not find (a renamed type or
/// parameter), which a unit test keeps empty.
pub fn write(doc: &mut Value, limits: &LimitSettings) -> Vec<String> {
    let formats: Vec<Value> = OutputFormat::ALL.iter().map(|f| json!(f)).collect();
    let metadata: Vec<Value> = MetadataChoice::ALL.iter().map(|m| json!(m)).collect();
    let batch = format!("{SCHEMAS}/CreateBatchRequest/properties");
    let upload = format!("{SCHEMAS}/UploadFile/properties");
    let constraints = [
        (
            format!("{batch}/sizes"),
            json!({"minItems": 1, "maxItems": MAX_SIZES, "uniqueItems": true}),
        ),
        (
            format!("{batch}/sizes/items"),
            json!({"minimum": MIN_SIZE, "maximum": MAX_SIZE}),
        ),
        (
            format!("{batch}/quality"),
            json!({"minimum": MIN_QUALITY, "maximum": MAX_QUALITY}),
        ),
        (format!("{batch}/format"), json!({"enum": formats})),
        (format!("{batch}/metadata"), json!({"enum": metadata})),
        (
            format!("{batch}/callback_url"),
            json!({"maxLength": MAX_CALLBACK_URL_LEN, "pattern": CALLBACK_URL_PATTERN}),
        ),
        (
            format!("{SCHEMAS}/UploadsRequest/properties/files"),
            json!({"minItems": 1, "maxItems": limits.max_uploads_per_request}),
        ),
        (
            format!("{upload}/size"),
            json!({"minimum": 1, "maximum": limits.max_file_bytes}),
        ),
        (
            // Other parts are ignored, as long as their names are valid header text (no
            // control character but tab).
            format!("{SCHEMAS}/PhotoUploadForm"),
            json!({"propertyNames": {"pattern": "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$"}}),
        ),
        (
            format!("{SCHEMAS}/PhotoUploadForm/properties/file"),
            json!({"maxLength": limits.max_file_bytes}),
        ),
        (
            format!("{upload}/content_type"),
            json!({"maxLength": MAX_MEDIA_TYPE_LEN, "pattern": IMAGE_MEDIA_TYPE_PATTERN}),
        ),
    ];
    let parameters = [
        (
            format!("{PHOTOS}/get"),
            "limit",
            json!({"minimum": 1, "maximum": limits.page_max}),
        ),
        (
            format!("{PHOTOS}/get"),
            "cursor",
            // Empty (no cursor) or a page offset as `is_cursor` reads it.
            json!({"pattern": format!("^(0|[1-9][0-9]{{0,{}}})?$", MAX_CURSOR_DIGITS - 1)}),
        ),
        (
            format!("{PHOTOS}/post"),
            "Idempotency-Key",
            json!({
                "minLength": 1,
                "maxLength": IDEMPOTENCY_KEY_MAX_LEN,
                "pattern": format!("^[A-Za-z0-9._:-]{{1,{IDEMPOTENCY_KEY_MAX_LEN}}}$"),
            }),
        ),
    ];
    let mut missing = Vec::new();
    for (pointer, keywords) in constraints {
        if !merge(doc.pointer_mut(&pointer), keywords) {
            missing.push(pointer);
        }
    }
    for (operation, name, keywords) in parameters {
        let schema = doc
            .pointer_mut(&format!("{operation}/parameters"))
            .and_then(Value::as_array_mut)
            .and_then(|ps| ps.iter_mut().find(|p| p["name"] == name))
            .and_then(|p| p.get_mut("schema"));
        if !merge(schema, keywords) {
            missing.push(format!("{operation} parameter {name}"));
        }
    }
    missing
}

/// Adds `keywords` to the schema object `target`; false when there is none.
fn merge(target: Option<&mut Value>, keywords: Value) -> bool {
    match (target.and_then(Value::as_object_mut), keywords) {
        (Some(schema), Value::Object(keywords)) => {
            schema.extend(keywords);
            true
        }
        _ => false,
    }
}
