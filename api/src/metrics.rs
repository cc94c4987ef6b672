//! Prometheus metrics. One registry per [`crate::Application`], so several apps in one
//! process (tests, `tirage standalone`) never clash over global registrations.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route pattern (never the raw path: ids would explode cardinality).
    pub requests: IntCounterVec,
    /// Error answers by route pattern and error code (a bounded set: `ErrorCode`'s table),
    /// so an operator sees which 429 or 5xx it was.
    pub errors: IntCounterVec,
    pub latency: HistogramVec,
    pub upload_bytes: IntCounter,
    pub photos_accepted: IntCounter,
    /// Time from publish to broker confirm, per job.
    pub publish_latency: Histogram,
    pub publish_failures: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("tirage_api".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "http_error_answers_total",
                "Error answers by route and error code (the code of the JSON error body)",
            ),
            &["route", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to produce the response head, by route and method",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ]),
            &["route", "method"],
        )?;
        let upload_bytes = IntCounter::new(
            "upload_bytes_total",
            "Bytes of photos received through multipart uploads",
        )?;
        let photos_accepted = IntCounter::new(
            "photos_accepted_total",
            "Photos registered in a batch and handed to the job queue",
        )?;
        let publish_latency = Histogram::with_opts(
            HistogramOpts::new(
                "job_publish_duration_seconds",
                "Time from publishing a job to the broker's confirm",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
        )?;
        let publish_failures = IntCounter::new(
            "job_publish_failures_total",
            "Jobs the broker did not confirm (their photos are recorded as failed)",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(upload_bytes.clone()))?;
        registry.register(Box::new(photos_accepted.clone()))?;
        registry.register(Box::new(publish_latency.clone()))?;
        registry.register(Box::new(publish_failures.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            errors,
            latency,
            upload_bytes,
            photos_accepted,
            publish_latency,
            publish_failures,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
