//! The label values of the worker's metrics, one enum each, so a label can only be one the
//! table lists (and the docs, generated from the same table by the test below, list).

/// Writes a label enum from one table of `Variant = "value"` rows: its values, in order
/// (`ALL`), and each one's value (`as_str`).
macro_rules! labels {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[doc = $vdoc:literal])* $variant:ident = $value:literal,)+ }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[doc = $vdoc])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }
        }
    };
}

labels! {
    /// `kind` of `tirage_worker_jobs_total` and `tirage_worker_job_duration_seconds`.
    JobKind {
        Resize = "resize",
        Finalize = "finalize",
        Callback = "callback",
    }
}

labels! {
    /// `outcome` of `tirage_worker_jobs_total`: how a delivery was settled.
    JobOutcome {
        /// The work was done (a photo recorded done, effects run).
        Done = "done",
        /// The photo was recorded failed.
        Failed = "failed",
        /// The work had been done already (a redelivery, a copy of the job).
        Duplicate = "duplicate",
        /// A copy of a job another run was running right then: put back in the delay
        /// queue, to find the photo settled (or its run dead) later. Never a crash.
        Held = "held",
        /// The batch is gone, or not completed (a finalisation): nothing to do.
        Dropped = "dropped",
        /// The batch never registered the photo: the job was dropped.
        UnknownPhoto = "unknown_photo",
        /// Another attempt waits in the delay queue.
        Retried = "retried",
        /// The message went to the dead-letter queue.
        DeadLettered = "dead_lettered",
        /// The worker stopped before settling it: back to the queue.
        Requeued = "requeued",
        /// An effect found on the resize queue, moved to its lane.
        Moved = "moved",
    }
}

labels! {
    /// `outcome` of `tirage_worker_callbacks_total`.
    CallbackOutcome {
        /// The receiver answered 2xx (once per callback).
        Delivered = "delivered",
        /// The receiver answered a status not worth retrying (once per callback).
        Refused = "refused",
        /// Retries outlasted `callback_retry_for_ms` (once per callback).
        GaveUp = "gave_up",
        /// An attempt failed; another one waits in the delay queue.
        Retried = "retried",
        /// Its host had `callback_per_host` callbacks in flight: no attempt, tried later.
        Deferred = "deferred",
    }
}

labels! {
    /// `action` of `tirage_worker_reconciled_total`.
    Repair {
        /// The job of a stalled batch's queued photo was published again.
        Republished = "republished",
        /// A completed batch's undone finalisation was published again.
        Redriven = "redriven",
        /// An expired batch's objects were removed.
        Swept = "swept",
        /// A batch without progress (or its undone effects) was left alone: the queue has
        /// not reached its jobs.
        Waiting = "waiting",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/METRICS.md names every value of every label.
    #[test]
    fn the_docs_list_every_label_value() {
        let doc = include_str!("../../../docs/METRICS.md");
        let values = JobKind::ALL
            .iter()
            .map(|v| v.as_str())
            .chain(JobOutcome::ALL.iter().map(|v| v.as_str()))
            .chain(CallbackOutcome::ALL.iter().map(|v| v.as_str()))
            .chain(Repair::ALL.iter().map(|v| v.as_str()));
        for value in values {
            assert!(
                doc.contains(&format!("`{value}`")),
                "docs/METRICS.md lacks `{value}`"
            );
        }
    }
}
