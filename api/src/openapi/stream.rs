//! The schema of one server-sent event of `GET /v1/batches/{batch_id}/events`: what an
//! `EventSource` (or the fuzzer's stream parser) reads, `event` and `data`, with the JSON
//! inside `data` described as well. The stream itself is `text/event-stream`; OpenAPI 3.2
//! describes its items with `itemSchema`, which points here.

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};

/// `progress` and `completed` carry the batch; `error` the common error object.
pub struct BatchEvent;

impl utoipa::PartialSchema for BatchEvent {
    fn schema() -> RefOr<Schema> {
        let data = OneOfBuilder::new()
            .item(Ref::from_schema_name("BatchView"))
            .item(Ref::from_schema_name("ErrorBody"));
        ObjectBuilder::new()
            .description(Some(
                "One event: `progress` (the batch, now and whenever its counters change), \
                 `completed` (the batch, last), or `error` (the batch went away while watched).",
            ))
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["progress", "completed", "error"])),
            )
            .required("event")
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/json")
                    .content_schema(Some(data)),
            )
            .required("data")
            .into()
    }
}

impl utoipa::ToSchema for BatchEvent {}
