//! Tirage's HTTP API (`tirage-api`): sessions, batches, uploads and progress.
//!
//! Stateless: sessions and batch state live in the [`StateStore`](tirage_ports::StateStore),
//! photos in the [`ObjectStore`](tirage_ports::ObjectStore), work goes to the
//! [`JobQueue`](tirage_ports::JobQueue). Any replica can serve any request.
//!
//! Start it with [`Application::build`] (production adapters from [`Settings`]) or
//! [`Application::build_with`] (ready-made ports, as `tirage standalone` and the tests do),
//! then [`Application::run_until_stopped`].

pub mod archive;
pub mod auth;
pub mod backpressure;
pub mod body;
pub mod client_addr;
pub mod conditional;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod pace;
pub mod progress;
pub mod routes;
pub mod settings;
pub mod signed_urls;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod usecases;

pub use error::ApiError;
pub use settings::Settings;
pub use startup::{Application, PortNames, Ports, StartupError, Wiring};
pub use state::AppState;
