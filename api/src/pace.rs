//! The slowest body an upload may send. An upload holds one of its replica's upload slots
//! (and its session's share of them) for as long as its body lasts, so a client trickling a
//! few bytes now and then could hold every slot with almost no bandwidth. Each window of
//! `[api] upload_rate_window_secs` must therefore bring `upload_min_bytes_per_sec` × the
//! window, or the upload ends with 408 `body_too_slow` and its slot is free again. A body
//! that ends inside a window is never judged on that last window.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use tokio::time::{Instant, Sleep};

/// What each window of a body must bring; `None` when the rate is not enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    pub bytes_per_window: u64,
    pub window: Duration,
}

impl MinRate {
    /// From the settings: a rate of 0 (or a window of 0) enforces nothing.
    pub fn from_settings(bytes_per_sec: u64, window_secs: u64) -> Option<MinRate> {
        (bytes_per_sec > 0 && window_secs > 0).then(|| MinRate {
            bytes_per_window: bytes_per_sec.saturating_mul(window_secs),
            window: Duration::from_secs(window_secs),
        })
    }
}

/// Why a paced body stopped.
#[derive(Debug, thiserror::Error)]
pub enum PaceError<E> {
    #[error("the body brought {got} bytes in {window:?}, below the {need} required")]
    TooSlow {
        got: u64,
        need: u64,
        window: Duration,
    },
    #[error("{0}")]
    Body(E),
}

/// Set once a paced body was cut for being too slow: what the caller reads to tell why the
/// reader of the body (a multipart parser, a store) saw it fail.
#[derive(Debug, Clone, Default)]
pub struct TooSlow(Arc<AtomicBool>);

impl TooSlow {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A body held to a [`MinRate`]. After a `TooSlow` error it ends.
pub struct Paced<S> {
    inner: S,
    rate: Option<MinRate>,
    window_end: Pin<Box<Sleep>>,
    window_bytes: u64,
    too_slow: TooSlow,
}

impl<S> Paced<S> {
    pub fn new(inner: S, rate: Option<MinRate>) -> Paced<S> {
        let window = rate.map_or(Duration::MAX, |r| r.window);
        let end = Instant::now()
            .checked_add(window)
            .unwrap_or_else(far_future);
        Paced {
            inner,
            rate,
            window_end: Box::pin(tokio::time::sleep_until(end)),
            window_bytes: 0,
            too_slow: TooSlow::default(),
        }
    }

    /// Whether the body was cut for being too slow, readable after the body was handed on.
    pub fn too_slow(&self) -> TooSlow {
        self.too_slow.clone()
    }

    /// Judges the window that just ended: `Some(error)` when it brought too little,
    /// otherwise the next window starts now.
    fn window_over<E>(&mut self) -> Option<PaceError<E>> {
        let rate = self.rate?;
        if self.window_bytes < rate.bytes_per_window {
            self.too_slow.set();
            return Some(PaceError::TooSlow {
                got: self.window_bytes,
                need: rate.bytes_per_window,
                window: rate.window,
            });
        }
        self.window_bytes = 0;
        let next = Instant::now()
            .checked_add(rate.window)
            .unwrap_or_else(far_future);
        self.window_end.as_mut().reset(next);
        None
    }
}

/// About 30 years from now: a deadline that never comes.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

impl<S, E> Stream for Paced<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, PaceError<E>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.too_slow.is_set() {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.window_bytes = this.window_bytes.saturating_add(chunk.len() as u64);
                    // A chunk after the deadline still counts for the window it closes.
                    if this.window_end.is_elapsed()
                        && let Some(e) = this.window_over()
                    {
                        return Poll::Ready(Some(Err(e)));
                    }
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(PaceError::Body(e)))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
            // Nothing now: wake at the window's end to judge it, even if no byte comes.
            match this.window_end.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    if let Some(e) = this.window_over() {
                        return Poll::Ready(Some(Err(e)));
                    }
                    // A new window: poll the body again so that both wakers are set.
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures::StreamExt;

    use super::*;

    fn rate(bytes_per_sec: u64, window_secs: u64) -> Option<MinRate> {
        MinRate::from_settings(bytes_per_sec, window_secs)
    }

    /// A body sending `chunk` bytes every `every`, `count` times.
    fn trickle(
        chunk: usize,
        every: Duration,
        count: usize,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + Unpin {
        Box::pin(futures::stream::iter(0..count).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok(Bytes::from(vec![7u8; chunk]))
        }))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_fast_enough_passes_whole() {
        let mut body = Paced::new(trickle(2048, Duration::from_secs(1), 30), rate(1024, 10));
        let mut got = 0;
        while let Some(chunk) = body.next().await {
            got += chunk.unwrap().len();
        }
        assert_eq!(got, 2048 * 30);
        assert!(!body.too_slow().is_set());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_at_the_end_of_its_first_window() {
        let started = Instant::now();
        let mut body = Paced::new(trickle(1024, Duration::from_secs(4), 100), rate(1024, 10));
        let mut got = 0;
        let error = loop {
            match body.next().await {
                Some(Ok(chunk)) => got += chunk.len(),
                Some(Err(e)) => break e,
                None => panic!("the trickle was never cut"),
            }
        };
        assert!(
            matches!(
                error,
                PaceError::TooSlow {
                    got: 2048,
                    need: 10_240,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(got, 2048);
        assert!(body.too_slow().is_set());
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(body.next().await.is_none(), "a cut body ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_is_cut_without_sending_a_byte() {
        let silent = Box::pin(futures::stream::pending::<Result<Bytes, Infallible>>());
        let mut body = Paced::new(silent, rate(1, 5));
        let next = tokio::time::timeout(Duration::from_secs(6), body.next()).await;
        assert!(matches!(
            next,
            Ok(Some(Err(PaceError::TooSlow { got: 0, .. })))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_last_window_is_not_judged_and_no_rate_enforces_nothing() {
        // 12 KiB in 8 s, then the end: the short last window is not judged.
        let mut fast = Paced::new(trickle(6144, Duration::from_secs(4), 2), rate(1024, 10));
        while let Some(chunk) = fast.next().await {
            chunk.unwrap();
        }
        assert!(!fast.too_slow().is_set());
        let mut unpaced = Paced::new(trickle(1, Duration::from_secs(60), 3), rate(0, 10));
        let mut got = 0;
        while let Some(chunk) = unpaced.next().await {
            got += chunk.unwrap().len();
        }
        assert_eq!(got, 3);
    }
}
