//! The schema of one server-sent event of `GET /v1/batches/{batch_id}/events`: what an
//! `EventSource` (or the fuzzer's stream parser) reads, `event` and `data`, with the JSON
//! inside `data` described as well. The stream itself is `text/event-stream`; OpenAPI 3.2
//! describes its items with `itemSchema`, which points here. The document is served as 3.1
//! (what client generators read), where an event stream's `schema` is, by the convention
//! schemathesis checks, the schema of each event: `itemSchema` is served as that `schema`
//! ([`as_openapi_31`]).

use serde_json::Value;
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

/// Rewrites every media type's 3.2 `itemSchema` (the event stream's) as its 3.1 `schema`:
/// the schema each event follows.
pub fn as_openapi_31(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|methods| methods.values_mut());
    for operation in operations {
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let media_types = responses
            .values_mut()
            .filter_map(|r| r.get_mut("content").and_then(Value::as_object_mut))
            .flat_map(|content| content.values_mut())
            .filter_map(Value::as_object_mut);
        for media in media_types {
            if let Some(items) = media.remove("itemSchema") {
                media.entry("schema").or_insert(items);
            }
        }
    }
}
