//! `tirage-worker`: loads the configuration, connects, consumes until SIGTERM, exits 0.
//! `tirage-worker reconcile`: one reconciler pass, then exits (a scheduled job's command
//! where workers scale to zero; docs/DEPLOY.md). The body is [`tirage_worker::binary`]'s,
//! run here with the real engine.

fn main() -> std::process::ExitCode {
    tirage_engine::keep_working_memory();
    tirage_worker::binary::main_with(std::sync::Arc::new(tirage_engine::resize))
}
