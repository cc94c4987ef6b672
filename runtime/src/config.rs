//! The one configuration loader. Every process reads the same layers, each overriding the
//! one before:
//!
//! 1. the defaults compiled into the binary (`config/default.toml` of the repository, so a
//!    binary runs from any directory and every setting has a value);
//! 2. `config/default.toml` in the working directory, when there is one (an edited copy
//!    next to the binary);
//! 3. the file named by `TIRAGE_CONFIG` (required when the variable is set: a file that was
//!    named explicitly and is missing is a mistake worth failing on);
//! 4. environment variables `TIRAGE__SECTION__KEY` (lists comma-separated).
//!
//! Each binary deserializes the sections it needs into its own typed settings; sections of
//! other processes are ignored.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use ::config::ConfigError;

/// The repository's default configuration, compiled in.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// Where layer 2 is looked for, relative to the working directory.
pub const WORKING_DIR_FILE: &str = "config/default.toml";

/// Names `TIRAGE_CONFIG`, the layer-3 file.
pub const CONFIG_FILE_VAR: &str = "TIRAGE_CONFIG";

/// Settings that are lists, read comma-separated from the environment.
const LIST_KEYS: &[&str] = &[
    "sessions.api_keys",
    "worker.callback_ports",
    "worker.callback_allow_networks",
    "rate_limit.trusted_proxies",
    "redis.cluster_urls",
    "amqp.urls",
];

/// Which layers over the compiled defaults to read.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    pub working_dir_file: Option<PathBuf>,
    pub extra_file: Option<PathBuf>,
    pub environment: bool,
}

impl Layers {
    /// What a process reads: every layer, as described in the module docs.
    pub fn process() -> Layers {
        let working_dir_file = Path::new(WORKING_DIR_FILE);
        Layers {
            working_dir_file: working_dir_file
                .is_file()
                .then(|| working_dir_file.to_path_buf()),
            extra_file: std::env::var_os(CONFIG_FILE_VAR)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            environment: true,
        }
    }

    /// The compiled defaults alone.
    pub fn defaults_only() -> Layers {
        Layers::default()
    }
}

/// The whole configuration of this process, from every layer.
pub fn load<T: DeserializeOwned>() -> Result<T, ConfigError> {
    load_layers(&Layers::process())
}

/// One section (`[worker]`, say) of the configuration, from every layer.
pub fn load_section<T: DeserializeOwned>(section: &str) -> Result<T, ConfigError> {
    build(&Layers::process())?.get(section)
}

/// The configuration from the given layers.
pub fn load_layers<T: DeserializeOwned>(layers: &Layers) -> Result<T, ConfigError> {
    build(layers)?.try_deserialize()
}

/// One section from the given layers.
pub fn load_section_from<T: DeserializeOwned>(
    layers: &Layers,
    section: &str,
) -> Result<T, ConfigError> {
    build(layers)?.get(section)
}

fn build(layers: &Layers) -> Result<::config::Config, ConfigError> {
    use ::config::{Config, File, FileFormat};
    let mut builder =
        Config::builder().add_source(File::from_str(DEFAULT_CONFIG, FileFormat::Toml));
    for file in [&layers.working_dir_file, &layers.extra_file]
        .into_iter()
        .flatten()
    {
        builder = builder.add_source(File::from(file.as_path()).required(true));
    }
    if layers.environment {
        builder = with_environment(builder, std::env::vars().collect())?;
    }
    builder.build()
}

type Builder = ::config::ConfigBuilder<::config::builder::DefaultState>;

/// Adds the `TIRAGE__SECTION__KEY` layer read from `vars`. Scalars are parsed as numbers
/// and booleans where they look like one; the settings that are lists ([`LIST_KEYS`]) are
/// split on commas whatever they hold, so a one-element list such as
/// `TIRAGE__WORKER__CALLBACK_PORTS=18999` stays a list instead of becoming a number, and an
/// empty value is an empty list.
fn with_environment(
    builder: Builder,
    vars: std::collections::HashMap<String, String>,
) -> Result<Builder, ConfigError> {
    let mut lists = Vec::new();
    for key in LIST_KEYS {
        let name = format!("TIRAGE__{}", key.replace('.', "__").to_uppercase());
        if let Some(value) = vars.get(&name) {
            let items: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect();
            lists.push((*key, items));
        }
    }
    let scalars = ::config::Environment::with_prefix("TIRAGE")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(Some(vars.into_iter().collect()));
    let mut builder = builder.add_source(scalars);
    for (key, items) in lists {
        builder = builder.set_override(key, items)?;
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Limits {
        max_photos_per_batch: u64,
        page_max: usize,
    }

    #[test]
    fn each_file_layer_overrides_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let working = dir.path().join("working.toml");
        let extra = dir.path().join("extra.toml");
        std::fs::write(
            &working,
            "[limits]\nmax_photos_per_batch = 7\npage_max = 9\n",
        )
        .unwrap();
        std::fs::write(&extra, "[limits]\nmax_photos_per_batch = 8\n").unwrap();

        let defaults: Limits = load_section_from(&Layers::defaults_only(), "limits").unwrap();
        assert_eq!(defaults.max_photos_per_batch, 5000);
        let layered: Limits = load_section_from(
            &Layers {
                working_dir_file: Some(working),
                extra_file: Some(extra),
                environment: false,
            },
            "limits",
        )
        .unwrap();
        assert_eq!(layered.max_photos_per_batch, 8, "the extra file wins");
        assert_eq!(
            layered.page_max, 9,
            "the working-directory file beats the defaults"
        );
    }

    #[derive(Debug, serde::Deserialize)]
    struct Worker {
        callback_ports: Vec<u16>,
        concurrency: usize,
        allow_private_callbacks: bool,
    }

    /// The worker section as the given environment variables leave it.
    fn worker_with(vars: &[(&str, &str)]) -> Result<Worker, ConfigError> {
        let vars = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let defaults = ::config::Config::builder().add_source(::config::File::from_str(
            DEFAULT_CONFIG,
            ::config::FileFormat::Toml,
        ));
        with_environment(defaults, vars)?.build()?.get("worker")
    }

    #[test]
    fn lists_of_one_many_or_no_numbers_and_plain_values_come_from_the_environment() {
        let one = worker_with(&[("TIRAGE__WORKER__CALLBACK_PORTS", "18999")]).unwrap();
        assert_eq!(one.callback_ports, vec![18999], "one element is a list too");
        let two = worker_with(&[("TIRAGE__WORKER__CALLBACK_PORTS", "80,18999")]).unwrap();
        assert_eq!(two.callback_ports, vec![80, 18999]);
        let none = worker_with(&[("TIRAGE__WORKER__CALLBACK_PORTS", "")]).unwrap();
        assert!(
            none.callback_ports.is_empty(),
            "an empty value is an empty list"
        );
        let typed = worker_with(&[
            ("TIRAGE__WORKER__CONCURRENCY", "3"),
            ("TIRAGE__WORKER__ALLOW_PRIVATE_CALLBACKS", "true"),
        ])
        .unwrap();
        assert_eq!(
            (typed.concurrency, typed.allow_private_callbacks),
            (3, true)
        );
        assert!(worker_with(&[("TIRAGE__WORKER__CONCURRENCY", "many")]).is_err());
    }

    #[test]
    fn a_named_file_that_is_missing_is_an_error() {
        let layers = Layers {
            extra_file: Some(PathBuf::from("/nonexistent/tirage.toml")),
            ..Layers::default()
        };
        assert!(load_section_from::<Limits>(&layers, "limits").is_err());
    }
}
