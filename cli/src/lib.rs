//! The `tirage` command line. One module per subcommand; `main.rs` only calls [`main`].

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod client;
pub mod codes;
pub mod commands;
pub mod inputs;

#[derive(Debug, Parser)]
#[command(name = "tirage", version, about = "Resize photo batches fast")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resize photos locally with the engine the workers run.
    Resize(commands::resize::ResizeArgs),
    /// Serve the whole v1 API with in-process workers, on embedded stores (no external service).
    Standalone(commands::standalone::StandaloneArgs),
    /// Upload photos to a Tirage server and download their renditions.
    Upload(commands::upload::UploadArgs),
}

/// Parses the command line and runs the subcommand. Exit codes: 0 all good, 1 some input
/// failed, 2 bad usage or options.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Resize(args) => commands::resize::run(args),
        Command::Standalone(args) => commands::standalone::run(args),
        Command::Upload(args) => commands::upload::run(args),
    }
}
