//! A stand-in for the worker: takes the jobs the API published and does their work on real
//! data, so scenarios can follow a photo from upload to rendition without a worker process.

use std::collections::hash_map::Entry;
use std::time::Duration;

use tirage_core::keys;
use tirage_core::model::{PhotoOutcome, Rendition, ResizeJob};
use tirage_ports::{Lane, RecordResult, WorkItem};

use super::TestApp;

impl TestApp {
    /// The next `n` work items from one lane of the queue, each acknowledged.
    pub async fn take_items(&self, lane: Lane, n: usize) -> Vec<WorkItem> {
        let mut streams = self.jobs.lock().await;
        let stream = match streams.entry(lane) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(slot) => slot.insert(
                self.ports
                    .queue
                    .consume(lane, 64)
                    .await
                    .expect("consume from the job queue"),
            ),
        };
        let mut items = Vec::new();
        while items.len() < n {
            let delivery = tokio::time::timeout(Duration::from_secs(15), stream.next())
                .await
                .unwrap_or_else(|_| panic!("job queue: only {} of {n} items arrived", items.len()))
                .expect("job stream ended")
                .expect("delivery");
            items.push(delivery.item);
            delivery.handle.ack().await.expect("ack");
        }
        items
    }

    pub async fn take_jobs(&self, n: usize) -> Vec<ResizeJob> {
        self.take_items(Lane::Resize, n)
            .await
            .into_iter()
            .map(|item| match item {
                WorkItem::Resize(job) => job,
                other => panic!("expected a resize job, got {other:?}"),
            })
            .collect()
    }

    /// Does a worker's job for real data: writes every rendition, then records the outcome.
    pub async fn finish(&self, job: &ResizeJob) -> RecordResult {
        let original = self
            .ports
            .objects
            .get(&job.original_key())
            .await
            .expect("original stored");
        let img = image::load_from_memory(&original).expect("original decodes");
        let mut renditions = Vec::new();
        for &size in &job.options.sizes {
            let scaled = img.thumbnail(size, size);
            let mut out = std::io::Cursor::new(Vec::new());
            scaled.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
            let bytes = out.into_inner();
            let key = keys::rendition_key(job.batch_id, job.photo_id, size, job.options.format);
            self.ports
                .objects
                .put(
                    &key,
                    bytes.clone().into(),
                    job.options.format.content_type(),
                )
                .await
                .unwrap();
            renditions.push(Rendition {
                size,
                width: scaled.width(),
                height: scaled.height(),
                bytes: bytes.len() as u64,
                digest: Some(Rendition::digest_of(&bytes)),
            });
        }
        self.ports
            .state
            .record_outcome(
                job.batch_id,
                job.photo_id,
                &PhotoOutcome::Done {
                    width: img.width(),
                    height: img.height(),
                    renditions,
                    warnings: Vec::new(),
                },
            )
            .await
            .unwrap()
    }
}
