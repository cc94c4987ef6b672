//! The command line of `tirage upload`, and the batch request and retry policy it makes.

use std::path::PathBuf;

use clap::Args;
use tirage_core::wire::CreateBatchRequest;
use tirage_core::{BatchOptions, MetadataChoice, OutputFormat};

use super::outcome::UploadError;
use crate::client::RetryPolicy;

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Photos, or directories whose images (recursively) are all uploaded.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The Tirage server (a cluster's nginx or `tirage standalone`).
    #[arg(long, env = "TIRAGE_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Short side of each rendition, in pixels (default: the server's, 1080,720,360).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Option<Vec<u32>>,
    /// Output format: jpeg, webp, png or avif (default: the server's, jpeg).
    #[arg(long)]
    pub format: Option<OutputFormat>,
    /// Encoder quality, 1..=100 (default: the server's, 85).
    #[arg(long)]
    pub quality: Option<u8>,
    /// What of each original's metadata the renditions keep: strip or copyright (EXIF Artist
    /// and Copyright, never GPS, and an sRGB ICC profile) (default: the server's, strip).
    #[arg(long)]
    pub metadata: Option<MetadataChoice>,
    /// Directory the renditions are written to, created if missing (default `tirage-out`;
    /// with `--zip` and no `--out`, the renditions go to the ZIP only).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Once the batch completes, save all its renditions as one ZIP archive to this file.
    #[arg(long, value_name = "FILE")]
    pub zip: Option<PathBuf>,
    /// Files uploaded (and renditions downloaded) at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Send files through the API as multipart even when presigned URLs are offered.
    #[arg(long)]
    pub multipart: bool,
    /// API key, when the server requires one to create a session.
    #[arg(long, env = "TIRAGE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Attempts per request before giving up (network errors, 5xx, 429).
    #[arg(long, default_value_t = 6)]
    pub attempts: u32,
}

impl UploadArgs {
    /// The new batch's options: only those given on the command line, so the server's
    /// defaults apply to the rest. Checked here too, so a typo is reported before anything
    /// is sent.
    pub fn batch_request(&self) -> Result<CreateBatchRequest, UploadError> {
        let defaults = BatchOptions::default();
        let options = BatchOptions {
            sizes: self.sizes.clone().unwrap_or(defaults.sizes),
            format: self.format.unwrap_or(defaults.format),
            quality: self.quality.unwrap_or(defaults.quality),
            metadata: self.metadata.unwrap_or(defaults.metadata),
        };
        options
            .validate()
            .map_err(|e| UploadError::Options(e.to_string()))?;
        Ok(CreateBatchRequest {
            sizes: self
                .sizes
                .as_ref()
                .map(|s| s.iter().copied().map(i64::from).collect()),
            format: self.format.map(|f| f.name().to_owned()),
            quality: self.quality.map(i64::from),
            callback_url: None,
            metadata: self.metadata.map(|m| m.name().to_owned()),
        })
    }

    /// The default policy, with the attempts asked for (at least one).
    pub fn retry_policy(&self) -> Result<RetryPolicy, UploadError> {
        if self.attempts == 0 {
            return Err(UploadError::Options("--attempts must be at least 1".into()));
        }
        Ok(RetryPolicy {
            attempts: self.attempts,
            ..RetryPolicy::default()
        })
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency.max(1)
    }

    /// Where the renditions are written one file each: `--out`, else `tirage-out` unless
    /// `--zip` takes them all.
    pub fn out_dir(&self) -> Option<PathBuf> {
        match (&self.out, &self.zip) {
            (Some(out), _) => Some(out.clone()),
            (None, Some(_)) => None,
            (None, None) => Some(PathBuf::from(DEFAULT_OUT)),
        }
    }

    /// Where the renditions end up, as the closing line names it.
    pub fn destination(&self) -> String {
        let places: Vec<String> = [self.out_dir(), self.zip.clone()]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
        places.join(" and ")
    }
}

/// The renditions' directory when neither `--out` nor `--zip` is given.
const DEFAULT_OUT: &str = "tirage-out";

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(sizes: Option<Vec<u32>>, format: Option<OutputFormat>) -> UploadArgs {
        UploadArgs {
            inputs: vec![],
            server: String::new(),
            sizes,
            format,
            quality: None,
            metadata: None,
            out: None,
            zip: None,
            concurrency: 1,
            multipart: false,
            api_key: None,
            attempts: 1,
        }
    }

    fn body(args: &UploadArgs) -> Result<serde_json::Value, UploadError> {
        args.batch_request()
            .map(|r| serde_json::to_value(r).unwrap())
    }

    #[test]
    fn batch_options_are_checked_before_sending() {
        assert!(matches!(
            body(&args(Some(vec![5]), None)),
            Err(UploadError::Options(_))
        ));
        assert_eq!(body(&args(None, None)).unwrap(), json!({}));
        assert_eq!(
            body(&args(Some(vec![640]), None)).unwrap(),
            json!({"sizes": [640]})
        );
    }

    #[test]
    fn formats_are_named_as_the_api_reads_them() {
        for format in OutputFormat::ALL {
            assert_eq!(
                body(&args(None, Some(format))).unwrap(),
                json!({ "format": format })
            );
        }
    }

    #[test]
    fn metadata_is_sent_only_when_chosen() {
        let mut a = args(None, None);
        a.metadata = Some(MetadataChoice::Copyright);
        assert_eq!(body(&a).unwrap(), json!({"metadata": "copyright"}));
    }

    #[test]
    fn a_zip_alone_takes_the_renditions_out_of_the_directory() {
        let mut a = args(None, None);
        assert_eq!(a.out_dir(), Some(PathBuf::from("tirage-out")));
        a.zip = Some(PathBuf::from("all.zip"));
        assert_eq!(a.out_dir(), None);
        assert_eq!(a.destination(), "all.zip");
        a.out = Some(PathBuf::from("dir"));
        assert_eq!(a.out_dir(), Some(PathBuf::from("dir")));
        assert_eq!(a.destination(), "dir and all.zip");
    }

    #[test]
    fn at_least_one_attempt() {
        let mut a = args(None, None);
        a.attempts = 0;
        assert!(matches!(a.retry_policy(), Err(UploadError::Options(_))));
    }
}
