//! The JSON each view produces is the API contract: these pin it byte for byte, and check
//! that the client side reads back what the server side writes.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::model::{
    Batch, BatchOptions, BatchState, OutputFormat, PhotoRecord, PhotoState, Rendition,
};

fn batch() -> Batch {
    Batch {
        id: Uuid::nil(),
        owner: "session".into(),
        state: BatchState::Processing,
        options: BatchOptions::default(),
        callback_url: Some("http://hidden.example/".into()),
        total: 3,
        done: 1,
        failed: 1,
        created_at: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
        expires_at: Utc.with_ymd_and_hms(2024, 1, 3, 3, 4, 5).unwrap(),
    }
}

#[test]
fn batch_view_hides_owner_and_callback() {
    let view = BatchView::from(&batch());
    let json = serde_json::to_string(&view).unwrap();
    assert_eq!(
        json,
        r#"{"id":"00000000-0000-0000-0000-000000000000","state":"processing","sizes":[1080,720,360],"format":"jpeg","quality":85,"metadata":"strip","total":3,"done":1,"failed":1,"created_at":"2024-01-02T03:04:05Z","expires_at":"2024-01-03T03:04:05Z"}"#
    );
    let back: BatchView = serde_json::from_str(&json).unwrap();
    assert_eq!(back, view);
    assert!(!back.is_completed());
}

#[test]
fn photo_view_links_renditions_and_keeps_nulls() {
    let batch_id = Uuid::nil();
    let mut record = PhotoRecord::queued(Uuid::max(), "a.jpg");
    record.state = PhotoState::Done;
    record.width = Some(4000);
    record.height = Some(3000);
    record.outputs = vec![Rendition {
        size: 360,
        width: 480,
        height: 360,
        bytes: 1234,
        digest: Some(Rendition::digest_of(b"360")),
    }];
    record.warnings = vec![crate::codes::PhotoWarning::Truncated];
    let view = PhotoView::new(batch_id, &record);
    let json = serde_json::to_string(&view).unwrap();
    assert_eq!(
        json,
        r#"{"id":"ffffffff-ffff-ffff-ffff-ffffffffffff","filename":"a.jpg","state":"done","error":null,"width":4000,"height":3000,"outputs":[{"size":360,"width":480,"height":360,"bytes":1234,"url":"/v1/batches/00000000-0000-0000-0000-000000000000/photos/ffffffff-ffff-ffff-ffff-ffffffffffff/360"}],"warnings":["truncated"]}"#
    );
    let list = PhotoList {
        photos: vec![view],
        next_cursor: None,
    };
    let json = serde_json::to_string(&list).unwrap();
    assert!(json.ends_with(r#""next_cursor":null}"#), "{json}");
    assert_eq!(serde_json::from_str::<PhotoList>(&json).unwrap(), list);
}

#[test]
fn error_envelope_and_readiness() {
    let body = ErrorBody::new("batch_not_found", "batch not found");
    let json = serde_json::to_string(&body).unwrap();
    assert_eq!(
        json,
        r#"{"error":{"code":"batch_not_found","message":"batch not found"}}"#
    );
    assert_eq!(serde_json::from_str::<ErrorBody>(&json).unwrap(), body);

    let ready = Readiness {
        status: "ready".into(),
        checks: BTreeMap::from([("redis".to_owned(), "ok".to_owned())]),
        error: None,
    };
    assert_eq!(
        serde_json::to_string(&ready).unwrap(),
        r#"{"status":"ready","checks":{"redis":"ok"}}"#
    );
    let down = Readiness {
        error: Some(body.error),
        ..ready
    };
    assert!(
        serde_json::to_string(&down)
            .unwrap()
            .ends_with(r#""error":{"code":"batch_not_found","message":"batch not found"}}"#)
    );
}

#[test]
fn requests_send_only_what_was_chosen_and_refuse_unknown_fields() {
    assert_eq!(
        serde_json::to_string(&CreateBatchRequest::default()).unwrap(),
        "{}"
    );
    let request = CreateBatchRequest {
        sizes: Some(vec![640]),
        format: Some("webp".into()),
        ..CreateBatchRequest::default()
    };
    let json = serde_json::to_string(&request).unwrap();
    assert_eq!(json, r#"{"sizes":[640],"format":"webp"}"#);
    assert_eq!(
        serde_json::from_str::<CreateBatchRequest>(&json).unwrap(),
        request
    );
    assert!(serde_json::from_str::<CreateBatchRequest>(r#"{"size":[1]}"#).is_err());

    let uploads = UploadsRequest {
        files: vec![UploadFile {
            filename: "a.jpg".into(),
            size: 10,
            content_type: "image/jpeg".into(),
        }],
    };
    assert_eq!(
        serde_json::to_string(&uploads).unwrap(),
        r#"{"files":[{"filename":"a.jpg","size":10,"content_type":"image/jpeg"}]}"#
    );
    assert!(serde_json::from_str::<UploadsRequest>(r#"{"files":[],"x":1}"#).is_err());
}

#[test]
fn tickets_and_accepted_photos_round_trip() {
    let ticket = UploadTicket {
        photo_id: Uuid::nil(),
        method: "PUT".into(),
        url: "http://store/x".into(),
        headers: BTreeMap::from([("content-type".to_owned(), "image/jpeg".to_owned())]),
        expires_at: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
    };
    let created = UploadsCreated {
        uploads: vec![ticket],
    };
    let json = serde_json::to_string(&created).unwrap();
    assert_eq!(
        json,
        r#"{"uploads":[{"photo_id":"00000000-0000-0000-0000-000000000000","method":"PUT","url":"http://store/x","headers":{"content-type":"image/jpeg"},"expires_at":"2024-01-02T03:04:05Z"}]}"#
    );
    assert_eq!(
        serde_json::from_str::<UploadsCreated>(&json).unwrap(),
        created
    );
    let accepted = PhotosAccepted {
        photos: vec![AcceptedPhoto {
            id: Uuid::nil(),
            filename: "a.jpg".into(),
            state: PhotoState::Queued,
        }],
    };
    let json = serde_json::to_string(&accepted).unwrap();
    assert_eq!(
        json,
        r#"{"photos":[{"id":"00000000-0000-0000-0000-000000000000","filename":"a.jpg","state":"queued"}]}"#
    );
    assert_eq!(
        serde_json::from_str::<PhotosAccepted>(&json).unwrap(),
        accepted
    );
    let format: OutputFormat = serde_json::from_str("\"png\"").unwrap();
    assert_eq!(format, OutputFormat::Png);
}
