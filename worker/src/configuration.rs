//! Loading the configuration: `config/default.toml` (or the file named by `TIRAGE_CONFIG`),
//! then `TIRAGE__SECTION__KEY` environment variables on top.

use config::{Config, Environment, File};
use serde::de::DeserializeOwned;

/// The configuration file used when `TIRAGE_CONFIG` is not set.
pub const DEFAULT_CONFIG_FILE: &str = "config/default.toml";

/// Reads the file (optional: every setting has a default or can come from the environment)
/// and the environment into `T`.
pub fn load<T: DeserializeOwned>() -> Result<T, config::ConfigError> {
    let path = std::env::var("TIRAGE_CONFIG").unwrap_or_else(|_| DEFAULT_CONFIG_FILE.into());
    // The file is optional only when nobody asked for a specific one: a missing file that
    // was named explicitly is a mistake worth failing on.
    let required = std::env::var_os("TIRAGE_CONFIG").is_some();
    Config::builder()
        .add_source(File::with_name(&path).required(required))
        .add_source(
            Environment::with_prefix("TIRAGE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()?
        .try_deserialize()
}
