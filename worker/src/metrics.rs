//! Prometheus metrics, in a registry owned by each worker (not the global one) so that
//! several workers in one process (tests, `tirage standalone`) never collide.

mod backlog;
mod labels;

pub use backlog::BacklogGauges;
pub use labels::{CallbackOutcome, JobKind, JobOutcome, Repair};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    // Every metric and label value: docs/METRICS.md.
    jobs: IntCounterVec,
    pub job_duration: HistogramVec,
    pub in_flight: IntGauge,
    /// From the API publishing a resize job to a worker starting it.
    pub publish_to_start: Histogram,
    /// Photos that failed, by error code.
    pub failures: IntCounterVec,
    pub events_published: IntCounter,
    callbacks: IntCounterVec,
    pub consumer_restarts: IntCounter,
    /// 1 while intake is paused because Redis or the object store does not answer.
    pub paused: IntGauge,
    reconciled: IntCounterVec,
    /// What the reconciler saw at its last pass.
    pub backlog: BacklogGauges,
}

#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let jobs = IntCounterVec::new(
            Opts::new(
                "tirage_worker_jobs_total",
                "Jobs handled, by kind and outcome",
            ),
            &["kind", "outcome"],
        )?;
        let job_duration = HistogramVec::new(
            histogram(
                "tirage_worker_job_duration_seconds",
                "Time from a worker starting a job to settling it",
                &[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ],
            ),
            &["kind"],
        )?;
        let in_flight = IntGauge::new("tirage_worker_jobs_in_flight", "Jobs being processed")?;
        let publish_to_start = Histogram::with_opts(histogram(
            "tirage_worker_publish_to_start_seconds",
            "Time from the API publishing a resize job to a worker starting it",
            &[
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
            ],
        ))?;
        let failures = IntCounterVec::new(
            Opts::new(
                "tirage_worker_photo_failures_total",
                "Photos recorded as failed, by error code",
            ),
            &["code"],
        )?;
        let events_published = IntCounter::new(
            "tirage_worker_events_published_total",
            "batch.completed events published",
        )?;
        let callbacks = IntCounterVec::new(
            Opts::new(
                "tirage_worker_callbacks_total",
                "Batch callbacks by outcome",
            ),
            &["outcome"],
        )?;
        let consumer_restarts = IntCounter::new(
            "tirage_worker_consumer_restarts_total",
            "Times the worker had to consume again after the broker stream ended or failed",
        )?;
        let reconciled = IntCounterVec::new(
            Opts::new(
                "tirage_worker_reconciled_total",
                "Repairs made by the reconciler, by action",
            ),
            &["action"],
        )?;
        let paused = IntGauge::new(
            "tirage_worker_paused",
            "1 while intake is paused because Redis or the object store does not answer",
        )?;
        registry.register(Box::new(paused.clone()))?;
        registry.register(Box::new(reconciled.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        registry.register(Box::new(job_duration.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(publish_to_start.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(events_published.clone()))?;
        registry.register(Box::new(callbacks.clone()))?;
        registry.register(Box::new(consumer_restarts.clone()))?;
        let backlog = BacklogGauges::register(&registry)?;
        Ok(Metrics {
            registry,
            jobs,
            job_duration,
            in_flight,
            publish_to_start,
            failures,
            events_published,
            callbacks,
            consumer_restarts,
            reconciled,
            paused,
            backlog,
        })
    }

    /// The text exposition format served at `/metrics`.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    pub fn job(&self, kind: JobKind, outcome: JobOutcome) {
        self.jobs
            .with_label_values(&[kind.as_str(), outcome.as_str()])
            .inc();
    }

    pub fn callback(&self, outcome: CallbackOutcome) {
        self.callbacks.with_label_values(&[outcome.as_str()]).inc();
    }

    pub fn repaired(&self, action: Repair, count: u64) {
        self.reconciled
            .with_label_values(&[action.as_str()])
            .inc_by(count);
    }

    /// How many repairs of `action` the reconciler made so far (tests read it).
    pub fn reconciled_count(&self, action: Repair) -> u64 {
        self.reconciled.with_label_values(&[action.as_str()]).get()
    }

    /// How many jobs of `kind` ended with `outcome` so far (tests and benchmarks read it).
    pub fn job_count(&self, kind: JobKind, outcome: JobOutcome) -> u64 {
        self.jobs
            .with_label_values(&[kind.as_str(), outcome.as_str()])
            .get()
    }

    /// How many callbacks ended with, or went through, `outcome` so far.
    pub fn callback_count(&self, outcome: CallbackOutcome) -> u64 {
        self.callbacks.with_label_values(&[outcome.as_str()]).get()
    }
}

/// A histogram of seconds with the given bucket bounds.
fn histogram(name: &str, help: &str, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(buckets.to_vec())
}
