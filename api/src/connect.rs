//! Building the production dependencies from settings.

use crate::settings::Settings;
use crate::startup::{Dependencies, StartupError};

pub async fn production(_settings: &Settings) -> Result<Dependencies, StartupError> {
    Err(StartupError::Connect {
        dependency: "redis",
        message: "production adapters are not wired yet".into(),
    })
}
