//! The two progress bars on stderr (bytes uploaded, photos processed), drawn only on a
//! terminal, and the upload body that moves the byte bar as it goes out.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tirage_core::wire::BatchView;

/// Pieces a body is sent in, so the byte bar moves while a file uploads.
const BODY_CHUNK: usize = 64 * 1024;

pub struct Bars {
    _multi: MultiProgress,
    pub bytes: ProgressBar,
    pub photos: ProgressBar,
}

impl Bars {
    pub fn new(total_bytes: u64, photos: u64) -> Bars {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let bytes = multi.add(ProgressBar::new(total_bytes));
        if let Some(style) =
            bar_style("uploaded  {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
        {
            bytes.set_style(style);
        }
        let processed = multi.add(ProgressBar::new(photos));
        if let Some(style) = bar_style("processed {bar:40} {pos}/{len} photos {msg}") {
            processed.set_style(style);
        }
        Bars {
            _multi: multi,
            bytes,
            photos: processed,
        }
    }
}

fn bar_style(template: &str) -> Option<ProgressStyle> {
    ProgressStyle::with_template(template).ok()
}

/// Shows a batch's counters on the photo bar.
pub fn show_progress(bar: &ProgressBar, batch: &BatchView) {
    bar.set_length(batch.total);
    bar.set_position(batch.done + batch.failed);
    if batch.failed > 0 {
        bar.set_message(format!("({} failed)", batch.failed));
    }
}

/// The bytes of one file, sent as many times as the request is attempted; the byte bar
/// advances as pieces go out.
pub struct CountedBody {
    data: Bytes,
    bar: ProgressBar,
    counted: Arc<AtomicU64>,
}

impl CountedBody {
    pub fn new(data: Bytes, bar: &ProgressBar) -> Self {
        CountedBody {
            data,
            bar: bar.clone(),
            counted: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// A fresh body for one attempt. It starts by taking back what the previous attempt
    /// had counted, so the bar never counts a byte twice.
    pub fn body(&self) -> reqwest::Body {
        self.bar.dec(self.counted.swap(0, Ordering::Relaxed));
        let data = &self.data;
        let pieces: Vec<Bytes> = (0..data.len())
            .step_by(BODY_CHUNK)
            .map(|start| data.slice(start..(start + BODY_CHUNK).min(data.len())))
            .collect();
        let bar = self.bar.clone();
        let counted = self.counted.clone();
        reqwest::Body::wrap_stream(futures::stream::iter(pieces).map(move |piece| {
            bar.inc(piece.len() as u64);
            counted.fetch_add(piece.len() as u64, Ordering::Relaxed);
            Ok::<Bytes, std::io::Error>(piece)
        }))
    }
}
