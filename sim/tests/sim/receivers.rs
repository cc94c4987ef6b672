//! The callback receivers of a run, behind the workers' [`CallbackTransport`] seam: no
//! socket, no name resolution. Each receiver is a host `r{k}.receivers.sim` whose manner is
//! drawn from the seed (`receivers` stream):
//! - **prompt**: takes every callback and answers `200` within 300 ms;
//! - **flaky**: per attempt, takes it (six in ten), answers `503` (two), never answers (one:
//!   the worker's `callback_timeout_ms` cuts it), or takes it and loses the answer (one: the
//!   connection breaks after the request was taken, so the worker tries again);
//! - **silent**: accepts the connection and never answers, like the receiver of issue #23;
//! - **refusing**: answers `410` (not retried).
//!
//! The ledger hears every attempt that reaches a receiver, and whether it was taken; an
//! attempt by a node that dies before it returns is cut there, as its connection would be.

use std::sync::Arc;

use async_trait::async_trait;
use tirage_core::BatchCompleted;
use tirage_core::codes::Effect;
use tirage_worker::{CallbackAttempt, CallbackTransport, WorkerSettings};

use crate::ledger::Ledger;
use crate::life::Life;
use crate::rng::Stream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manner {
    Prompt,
    Flaky,
    Silent,
    Refusing,
}

/// The receivers of one run, and which batches call back at all.
pub struct Receivers {
    manners: Vec<Manner>,
    /// Per receiver: its draws, in the order attempts reach it.
    streams: Vec<Stream>,
    ledger: Arc<Ledger>,
    /// Draws which batches have a callback and to which receiver.
    urls: Stream,
    calling: bool,
}

impl Receivers {
    /// About half the seeds give callbacks to some batches, with one to three receivers.
    pub fn draw(seed: u64, ledger: Arc<Ledger>) -> Receivers {
        let rng = Stream::derive(seed, "receivers");
        let calling = rng.chance(0.5);
        let count = rng.usize_in(1, 3);
        let manners = (0..count)
            .map(|_| match rng.range(0, 9) {
                0..=3 => Manner::Prompt,
                4..=6 => Manner::Flaky,
                7 | 8 => Manner::Silent,
                _ => Manner::Refusing,
            })
            .collect();
        let streams = (0..count)
            .map(|k| Stream::derive(seed, &format!("receiver/{k}")))
            .collect();
        Receivers {
            manners,
            streams,
            ledger,
            urls: Stream::derive(seed, "callback_urls"),
            calling,
        }
    }

    /// The callback URL of batch `label`, if it has one (about two batches in three of a
    /// calling seed).
    pub fn url_for(&self, label: &str) -> Option<String> {
        if !self.calling || !self.urls.chance(0.65) {
            return None;
        }
        let k = self.urls.usize_in(0, self.manners.len() - 1);
        Some(format!("http://r{k}.receivers.sim/hooks/{label}"))
    }

    /// Which receiver `url` names (`http://r{k}.receivers.sim/…`), if one does.
    fn receiver_of(&self, url: &str) -> Option<usize> {
        let host = url.strip_prefix("http://r")?.split('.').next()?;
        host.parse::<usize>()
            .ok()
            .filter(|k| *k < self.manners.len())
    }

    /// The manner of the receiver `url` names.
    pub fn manner_of(&self, url: &str) -> Option<Manner> {
        self.receiver_of(url).map(|k| self.manners[k])
    }

    async fn post(&self, actor: &str, url: &str, body: &[u8]) -> CallbackAttempt {
        let k = self.receiver_of(url);
        let (Some(k), Ok(event)) = (k, serde_json::from_slice::<BatchCompleted>(body)) else {
            self.ledger
                .problem(format!("{actor}: a callback to {url} no receiver expects"));
            return CallbackAttempt::Refused("sim: no such receiver".to_owned());
        };
        let batch = event.batch_id;
        let rng = &self.streams[k];
        let manner = match self.manners[k] {
            Manner::Flaky => match rng.range(0, 9) {
                0..=5 => Manner::Prompt,
                6 | 7 => {
                    self.ledger.callback_attempt(actor, batch, "503", false);
                    return CallbackAttempt::Failed("answered 503".to_owned());
                }
                8 => Manner::Silent,
                _ => {
                    self.ledger
                        .callback_attempt(actor, batch, "taken, answer lost", true);
                    self.ledger.effect_happened(actor, batch, Effect::Callback);
                    self.ledger.excuse(
                        batch,
                        Effect::Callback,
                        "its receiver took it and the answer was lost",
                    );
                    return CallbackAttempt::Failed("connection reset".to_owned());
                }
            },
            manner => manner,
        };
        match manner {
            Manner::Prompt => {
                tokio::time::sleep(rng.millis(5, 300)).await;
                self.ledger.callback_attempt(actor, batch, "200", true);
                self.ledger.effect_happened(actor, batch, Effect::Callback);
                CallbackAttempt::Delivered
            }
            Manner::Refusing => {
                self.ledger.callback_attempt(actor, batch, "410", false);
                CallbackAttempt::Refused("answered 410 Gone".to_owned())
            }
            Manner::Silent | Manner::Flaky => {
                self.ledger
                    .callback_attempt(actor, batch, "no answer", false);
                std::future::pending().await
            }
        }
    }
}

/// One node's way to the receivers: cut when the node dies.
pub struct NodeCallbacks {
    pub receivers: Arc<Receivers>,
    pub actor: String,
    pub life: Arc<Life>,
}

#[async_trait]
impl CallbackTransport for NodeCallbacks {
    async fn post(
        &self,
        _settings: &WorkerSettings,
        url: &str,
        body: &[u8],
        _signature: &str,
    ) -> CallbackAttempt {
        let post = self.receivers.post(&self.actor, url, body);
        self.life.guard(post).await
    }
}
