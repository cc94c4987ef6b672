//! The HTTP handlers, one module per resource. They parse the request, call the use case
//! ([`crate::usecases`]) and shape the answer; what they share to read a request is in
//! [`crate::extract`].

pub mod archive;
pub mod batches;
pub mod events;
pub mod health;
pub mod objects;
pub mod page;
pub mod photos;
pub mod sessions;
pub mod uploads;

use actix_web::web;

/// Registers every handler but the OpenAPI document ([`crate::openapi::openapi_json`]) and
/// the embedded store's object routes ([`objects::configure`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(sessions::create_session)
        .service(batches::create_batch)
        .service(batches::get_batch)
        .service(batches::close_batch)
        .service(batches::delete_batch)
        .service(events::batch_events)
        .service(uploads::upload_photos)
        .service(uploads::create_uploads)
        // Registered before the rendition route: `complete` would otherwise parse as a size.
        .service(uploads::complete_upload)
        .service(photos::list_photos)
        .service(photos::get_rendition)
        .service(photos::get_signed_rendition)
        .service(archive::get_archive)
        // The uploader's web page and its assets (api/web/, built into the binary).
        .service(page::index)
        .service(page::asset);
}
