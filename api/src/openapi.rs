//! The OpenAPI description, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ERROR_CODES, ErrorBody, ErrorDetail};
use crate::routes::{batches, events, health, photos, sessions, uploads};
use crate::views;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tirage API",
        description = "Batch photo resizing. Every error answer is `{\"error\":{\"code\",\"message\"}}`; the codes and their statuses are listed under `x-error-codes`.",
    ),
    paths(
        sessions::create_session,
        batches::create_batch,
        batches::get_batch,
        batches::close_batch,
        batches::delete_batch,
        events::batch_events,
        uploads::upload_photos,
        uploads::create_uploads,
        uploads::complete_upload,
        photos::list_photos,
        photos::get_rendition,
        health::healthz,
        health::readyz,
        health::metrics,
        health::openapi_json,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        views::SessionCreated,
        views::CreateBatchRequest,
        views::BatchView,
        views::PhotosAccepted,
        views::AcceptedPhoto,
        views::UploadsRequest,
        views::UploadFile,
        views::UploadsCreated,
        views::UploadTicket,
        views::PhotoList,
        views::PhotoView,
        views::OutputView,
        views::Readiness,
    )),
    modifiers(&Security, &ErrorCodes),
    tags(
        (name = "sessions", description = "Bearer tokens and the session cookie"),
        (name = "batches", description = "Batches and their progress"),
        (name = "photos", description = "Uploading photos and fetching renditions"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// Publishes the code → status table, so clients can see every code without reading code.
struct ErrorCodes;

impl Modify for ErrorCodes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let table: serde_json::Map<String, serde_json::Value> = ERROR_CODES
            .iter()
            .map(|(code, status)| ((*code).to_owned(), serde_json::Value::from(*status)))
            .collect();
        let mut extensions = utoipa::openapi::extensions::Extensions::default();
        extensions.insert("x-error-codes".to_owned(), serde_json::Value::Object(table));
        match openapi.extensions.as_mut() {
            Some(existing) => existing.merge(extensions),
            None => openapi.extensions = Some(extensions),
        }
    }
}
