//! A node's life: killed, it does nothing more, as a process gone with SIGKILL. Every port
//! of the node (its state store, object store and queue wrappers) runs its calls through
//! [`Life::guard`], which never returns once the node is dead, whether the call had not
//! started, was under way (its effect may or may not have happened, as a connection cut
//! mid-call) or had just returned (the node never learns). Its consumer streams are dropped
//! at the kill, so the queue hands their unsettled deliveries to other consumers, as a
//! broker does when a dead worker's connection closes.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tirage_ports::JobStream;
use tokio_util::sync::CancellationToken;

use crate::rng::Stream;

/// A consumer stream the node holds, dropped at its kill.
pub type HeldStream = Arc<tokio::sync::Mutex<Option<Box<dyn JobStream>>>>;

#[derive(Default)]
pub struct Life {
    killed: CancellationToken,
    streams: Mutex<Vec<HeldStream>>,
}

impl Life {
    pub fn is_dead(&self) -> bool {
        self.killed.is_cancelled()
    }

    /// Resolves once the node is killed.
    pub async fn killed(&self) {
        self.killed.cancelled().await;
    }

    /// `call`, unless the node dies before it returns: then never.
    pub async fn guard<T>(&self, call: impl Future<Output = T>) -> T {
        if self.is_dead() {
            return std::future::pending().await;
        }
        let answered = tokio::select! {
            biased;
            () = self.killed.cancelled() => None,
            answer = call => Some(answer),
        };
        match answered {
            Some(answer) if !self.is_dead() => answer,
            _ => std::future::pending().await,
        }
    }

    /// Keeps `stream` to drop at the kill.
    pub fn hold(&self, stream: HeldStream) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(stream);
    }

    /// Kills the node: no call of its returns from now on, its streams are dropped.
    pub async fn kill(&self) {
        self.killed.cancel();
        let streams = std::mem::take(&mut *self.streams.lock().unwrap_or_else(|e| e.into_inner()));
        for stream in streams {
            stream.lock().await.take();
        }
    }
}

/// One kill a seed drew: of which process, when, and how long until it is started again.
#[derive(Debug, Clone, Copy)]
struct Kill {
    process: usize,
    at: Duration,
    restart_after: Duration,
}

/// The kills a seed draws for a set of processes, from the stream `stream`: in about two
/// faulty seeds in five, one or two, each of a drawn process at a drawn time within the
/// first minute, started again within `restart_after` (milliseconds) of its kill.
pub struct Kills {
    /// The kills still to come, the next one last.
    pending: Vec<Kill>,
    /// Processes killed and when to start them again.
    restarts: Vec<(usize, Duration)>,
}

impl Kills {
    pub fn draw(
        seed: u64,
        stream: &str,
        calm: bool,
        processes: usize,
        restart_after: (u64, u64),
    ) -> Kills {
        let rng = Stream::derive(seed, stream);
        let killing = rng.chance(0.4) && !calm;
        let count = rng.usize_in(1, 2);
        let mut pending: Vec<Kill> = (0..count)
            .map(|_| Kill {
                process: rng.usize_in(0, processes - 1),
                at: rng.millis(1_000, 60_000),
                restart_after: rng.millis(restart_after.0, restart_after.1),
            })
            .filter(|_| killing)
            .collect();
        pending.sort_by_key(|k| std::cmp::Reverse(k.at));
        Kills {
            pending,
            restarts: Vec::new(),
        }
    }

    /// The processes to kill at `elapsed`, each then due to start again: none once the
    /// faults have `healed`, nor one already `dead`.
    pub fn due(
        &mut self,
        elapsed: Duration,
        healed: bool,
        dead: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let mut due = Vec::new();
        while self.pending.last().is_some_and(|k| k.at <= elapsed) {
            let Some(kill) = self.pending.pop() else {
                break;
            };
            if healed || dead(kill.process) || due.contains(&kill.process) {
                continue;
            }
            due.push(kill.process);
            self.restarts
                .push((kill.process, elapsed + kill.restart_after));
        }
        due
    }

    /// The processes to start again at `elapsed`.
    pub fn restarts_due(&mut self, elapsed: Duration) -> Vec<usize> {
        let due = self
            .restarts
            .iter()
            .filter(|(_, at)| *at <= elapsed)
            .map(|(process, _)| *process)
            .collect();
        self.restarts.retain(|(_, at)| *at > elapsed);
        due
    }

    /// Whether a killed process still waits to be started again.
    pub fn restarting(&self) -> bool {
        !self.restarts.is_empty()
    }
}
