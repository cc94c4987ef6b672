//! The OpenAPI description: generated from the handlers' annotations and the wire types
//! ([`ApiDoc`]), completed with the limits every request is checked against ([`limits`],
//! from the same constants and settings as the checks) when it is served ([`document`]),
//! and read back to answer a wrong method with `405` and the path's methods
//! ([`allowed_methods`]).

mod limits;
mod methods;
mod stream;

use std::sync::LazyLock;

use actix_web::{HttpResponse, get, web};
use tirage_core::codes::{Effect, ErrorCode, FailureCode, PhotoWarning};
use tirage_core::wire::{self, ErrorBody, ErrorDetail};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ApiError;
use crate::routes::{archive, batches, events, health, photos, sessions, uploads};
use crate::settings::LimitSettings;
use crate::state::AppState;
use methods::Routes;
use stream::BatchEvent;

/// The generated part of the document; [`document`] is what is served. OpenAPI 3.1: the
/// version the client generators in the registries read (openapi-python-client,
/// openapi-typescript); the event stream's items are described by its `schema`, as 3.2's
/// `itemSchema` would ([`stream::as_openapi_31`]).
#[derive(OpenApi)]
#[openapi(
    version = "3.1.0",
    info(
        title = "Tirage API",
        description = "Batch photo resizing. Every error answer is `{\"error\":{\"code\",\"message\"}}`; the codes and their statuses are listed under `x-error-codes`, a failed photo's `error` codes under `x-photo-failure-codes`, a done photo's `warnings` under `x-photo-warnings`, a completed batch's effects under `x-batch-effects`.",
    ),
    paths(
        sessions::create_session,
        batches::create_batch,
        batches::get_batch,
        batches::close_batch,
        batches::delete_batch,
        archive::get_archive,
        events::batch_events,
        uploads::upload_photos,
        uploads::create_uploads,
        uploads::complete_upload,
        photos::list_photos,
        photos::get_rendition,
        photos::get_signed_rendition,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        wire::SessionCreated,
        wire::CreateBatchRequest,
        wire::BatchView,
        wire::PhotosAccepted,
        wire::AcceptedPhoto,
        wire::UploadsRequest,
        wire::PhotoUploadForm,
        wire::UploadFile,
        wire::UploadsCreated,
        wire::UploadTicket,
        wire::PhotoList,
        wire::PhotoView,
        wire::OutputView,
        wire::Readiness,
        BatchEvent,
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

/// Publishes the code tables — error code → status, photo failure code → meaning, batch
/// effect → meaning — so clients can see every code without reading code.
struct ErrorCodes;

impl Modify for ErrorCodes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let errors: serde_json::Map<String, serde_json::Value> = ErrorCode::ALL
            .iter()
            .map(|code| (code.as_str().to_owned(), code.status().into()))
            .collect();
        let failures: serde_json::Map<String, serde_json::Value> = FailureCode::TABLE
            .iter()
            .map(|(code, meaning)| (code.as_str().to_owned(), (*meaning).into()))
            .collect();
        let effects: serde_json::Map<String, serde_json::Value> = Effect::TABLE
            .iter()
            .map(|(effect, meaning)| (effect.as_str().to_owned(), (*meaning).into()))
            .collect();
        let warnings: serde_json::Map<String, serde_json::Value> = PhotoWarning::TABLE
            .iter()
            .map(|(warning, meaning)| (warning.as_str().to_owned(), (*meaning).into()))
            .collect();
        let mut extensions = utoipa::openapi::extensions::Extensions::default();
        extensions.insert("x-error-codes".to_owned(), errors.into());
        extensions.insert("x-photo-failure-codes".to_owned(), failures.into());
        extensions.insert("x-batch-effects".to_owned(), effects.into());
        extensions.insert("x-photo-warnings".to_owned(), warnings.into());
        match openapi.extensions.as_mut() {
            Some(existing) => existing.merge(extensions),
            None => openapi.extensions = Some(extensions),
        }
    }
}

/// The document this server describes itself with: the generated one, with the limits it
/// runs with written in.
pub fn document(limits: &LimitSettings) -> Result<serde_json::Value, serde_json::Error> {
    let mut doc = serde_json::to_value(ApiDoc::openapi())?;
    stream::as_openapi_31(&mut doc);
    for place in limits::write(&mut doc, limits) {
        tracing::warn!(place, "a limit has no place in the OpenAPI document");
    }
    Ok(doc)
}

/// The methods of the documented path `path` stands for, as an `Allow` header value
/// (`GET, DELETE`); `None` when it stands for no documented path.
pub fn allowed_methods(path: &str) -> Option<String> {
    static ROUTES: LazyLock<Routes> = LazyLock::new(|| {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        Routes::from_document(&doc)
    });
    ROUTES.allowed(path)
}

/// This API's OpenAPI description. Served from here, next to the document, so the routes
/// need not import the module that imports them.
#[utoipa::path(tag = "operations", responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
#[get("/openapi.json")]
pub async fn openapi_json(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let doc = document(&state.settings.limits)
        .map_err(|e| ApiError::Internal(format!("cannot serialize the OpenAPI document: {e}")))?;
    Ok(HttpResponse::Ok().json(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served() -> serde_json::Value {
        let settings =
            crate::settings::Settings::load_from(&tirage_runtime::config::Layers::defaults_only())
                .unwrap();
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let missing = limits::write(&mut doc, &settings.limits);
        assert!(missing.is_empty(), "limits without a place: {missing:?}");
        document(&settings.limits).unwrap()
    }

    #[test]
    fn every_limit_is_in_the_document() {
        let doc = served();
        let batch = &doc["components"]["schemas"]["CreateBatchRequest"]["properties"];
        assert_eq!(batch["sizes"]["maxItems"], 8);
        assert_eq!(batch["sizes"]["items"]["minimum"], 16);
        assert_eq!(batch["sizes"]["items"]["maximum"], 8192);
        assert_eq!(batch["quality"]["maximum"], 100);
        let upload = &doc["components"]["schemas"]["UploadFile"]["properties"];
        assert_eq!(upload["size"]["maximum"], 50 * 1024 * 1024);
    }

    #[test]
    fn every_code_table_is_in_the_document() {
        let doc = served();
        for code in ErrorCode::ALL {
            assert_eq!(doc["x-error-codes"][code.as_str()], code.status(), "{code}");
        }
        for (code, meaning) in FailureCode::TABLE {
            assert_eq!(
                doc["x-photo-failure-codes"][code.as_str()],
                *meaning,
                "{code}"
            );
        }
        for (effect, meaning) in Effect::TABLE {
            assert_eq!(
                doc["x-batch-effects"][effect.as_str()],
                *meaning,
                "{effect}"
            );
        }
    }

    #[test]
    fn a_batch_may_be_created_without_a_body() {
        let doc = served();
        let body = &doc["paths"]["/v1/batches"]["post"]["requestBody"];
        assert_ne!(body["required"], true, "{body}");
    }

    #[test]
    fn the_event_stream_is_described_item_by_item() {
        let doc = served();
        let ok = &doc["paths"]["/v1/batches/{batch_id}/events"]["get"]["responses"]["200"];
        let stream = &ok["content"]["text/event-stream"];
        assert_eq!(
            stream["schema"]["$ref"], "#/components/schemas/BatchEvent",
            "{ok}"
        );
    }

    /// What the generators in the registries read: 3.1, and no field 3.1 does not define.
    #[test]
    fn the_document_is_openapi_31() {
        let doc = served();
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        assert!(!text.contains("\"itemSchema\""), "a 3.2 field is served");
    }

    #[test]
    fn wrong_methods_name_the_documented_ones() {
        assert_eq!(allowed_methods("/v1/batches").as_deref(), Some("POST"));
        assert_eq!(
            allowed_methods(&format!("/v1/batches/{}", uuid::Uuid::new_v4())).as_deref(),
            Some("GET, DELETE")
        );
        assert_eq!(allowed_methods("/healthz").as_deref(), Some("GET"));
        assert_eq!(allowed_methods("/nope"), None);
    }
}
