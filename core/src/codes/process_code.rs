//! Why a process could not start, or stopped failing: the code its last log line (and the
//! CLI's `error: <code>: …`) carries, one table for the API, the worker and `tirage`.

/// Writes [`ProcessCode`] from one table of `Variant = "name";` rows.
macro_rules! process_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal;)+) => {
        /// Why a process could not start or stopped failing. Operators' alerts match on the
        /// name, so names are never changed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProcessCode {
            $($(#[doc = $doc])* $variant,)+
        }

        impl ProcessCode {
            /// Every code, in the table's order.
            pub const ALL: &'static [ProcessCode] = &[$(ProcessCode::$variant,)+];

            /// The stable name in logs and on the terminal.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ProcessCode::$variant => $name,)+
                }
            }
        }

        impl std::fmt::Display for ProcessCode {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

process_codes! {
    /// The configuration does not load or a setting is out of range.
    InvalidSettings = "invalid_settings";
    /// A listening port cannot be bound.
    BindFailed = "bind_failed";
    /// The metrics registry refused a metric.
    MetricsFailed = "metrics_failed";
    /// An HTTP server stopped with an error.
    HttpFailed = "http_failed";
    /// A dependency needed to start does not answer.
    DependencyUnavailable = "dependency_unavailable";
    /// A one-off reconciler pass (`tirage-worker reconcile`) failed.
    ReconcileFailed = "reconcile_failed";
    /// `tirage standalone` cannot use its data directory.
    DataDirUnusable = "data_dir_unusable";
    /// The API could not start.
    ApiStartFailed = "api_start_failed";
    /// The worker could not start or stopped failing.
    WorkerFailed = "worker_failed";
    /// The async runtime could not start.
    RuntimeFailed = "runtime_failed";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ProcessCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }
}
