//! `GET /v1/batches/{batch_id}/archive[?sizes=1080,720]`: every done photo's renditions as
//! one ZIP, streamed (see [`crate::usecases::archive`]).

use actix_web::body::SizedStream;
use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use tirage_core::model::MAX_SIZES;
use tirage_core::wire::ErrorBody;
use uuid::Uuid;

use crate::auth::Authenticated;
use crate::error::{ApiError, SessionErrors};
use crate::extract::owned_batch;
use crate::state::AppState;
use crate::usecases::archive;

/// Most digits of one size in `sizes` (sizes are at most 8192; the pattern in the OpenAPI
/// document says the same).
const MAX_SIZE_DIGITS: usize = 5;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArchiveQuery {
    /// Comma-separated sizes to include, each one of the batch's (default: all of them).
    #[param(pattern = r"^[0-9]{1,5}(,[0-9]{1,5}){0,7}$", example = "1080,720")]
    pub sizes: Option<String>,
}

/// `1080,720` as sizes: 1 to [`MAX_SIZES`] comma-separated numbers of 1 to
/// [`MAX_SIZE_DIGITS`] digits, exactly the documented pattern.
fn parse_sizes(text: &str) -> Result<Vec<u32>, ApiError> {
    let malformed = || {
        ApiError::MalformedQuery(format!(
            "sizes must be 1 to {MAX_SIZES} comma-separated sizes, such as 1080,720"
        ))
    };
    let sizes: Vec<u32> = text
        .split(',')
        .map(|s| {
            let digits = !s.is_empty()
                && s.len() <= MAX_SIZE_DIGITS
                && s.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| s.parse::<u32>().ok()).flatten()
        })
        .collect::<Option<_>>()
        .ok_or_else(malformed)?;
    if sizes.len() > MAX_SIZES {
        return Err(malformed());
    }
    Ok(sizes)
}

/// Download a batch's renditions as one ZIP.
///
/// Entries are `<stem>_<size>.<ext>`, stored uncompressed, for every photo done so far, in
/// upload order; the stem comes from the photo's file name, made safe, and numbered
/// (`name_2`) when two photos share one. The length is known before the first byte; if a
/// rendition cannot be read once the download has started, the connection is closed before
/// `Content-Length` bytes were sent (retry the download). An archive costs the session's
/// request budget one request per file it holds, as downloading them one by one would
/// (`rate_limited` when the budget cannot pay for it).
#[utoipa::path(
    tag = "batches",
    params(("batch_id" = Uuid, Path, description = "Batch id"), ArchiveQuery),
    responses(
        (status = 200, description = "The ZIP archive", content_type = "application/zip",
            headers(
                ("Content-Disposition" = String, description = "`attachment; filename=\"tirage-<batch id>.zip\"`"),
                ("Content-Length" = u64, description = "The archive's exact length"),
            )),
        (status = 400, description = "`malformed_query` (sizes is not a list of numbers)", body = ErrorBody),
        (status = 404, description = "No such batch for this session (`batch_not_found`), no renditions of a size the batch did not ask for (`unknown_size`), or a done photo's rendition is missing from storage (`rendition_not_found`)", body = ErrorBody),
        SessionErrors,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/v1/batches/{batch_id}/archive")]
pub async fn get_archive(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<Uuid>,
    query: web::Query<ArchiveQuery>,
) -> Result<HttpResponse, ApiError> {
    let requested = query.sizes.as_deref().map(parse_sizes).transpose()?;
    let batch = owned_batch(&state, &auth, path.into_inner()).await?;
    let download = archive::prepare(&state, auth.payer(), &batch, requested.as_deref()).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", download.filename),
        ))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        // Straight through nginx to the client, not spooled to nginx's disk first.
        .insert_header(("X-Accel-Buffering", "no"))
        // A sized body: `Content-Length` up front, the connection kept alive when it ends.
        .body(SizedStream::new(download.length, download.body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_the_documented_pattern_says() {
        assert_eq!(parse_sizes("1080").unwrap(), [1080]);
        assert_eq!(parse_sizes("1080,720,0360").unwrap(), [1080, 720, 360]);
        assert_eq!(parse_sizes("1,2,3,4,5,6,7,8").unwrap().len(), 8);
        for bad in [
            "",
            ",",
            "1080,",
            ",720",
            "1080,,720",
            "abc",
            "-1",
            "+1",
            " 1",
            "123456",
            "1,2,3,4,5,6,7,8,9",
        ] {
            let err = parse_sizes(bad).unwrap_err();
            assert_eq!(err.code(), "malformed_query", "{bad:?}");
        }
    }
}
