//! The CPU pool: at most `concurrency` engine runs at once, off the async runtime. A run
//! suspected of bringing workers down takes the whole pool, so that if it does again, no
//! other photo was running beside it to share the blame. Where a run executes is the
//! [`Offload`] seam: tokio's blocking threads in the processes ([`BlockingThreads`]); the
//! simulator runs it on its one thread, in virtual time.

use std::sync::Arc;

use async_trait::async_trait;
use tirage_engine::{EngineError, Resized};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// What one engine run returns, a panic caught (`Err`) included.
pub type CpuResult = std::thread::Result<Result<Resized, EngineError>>;

/// One engine run, moved to wherever CPU work executes.
pub type CpuWork = Box<dyn FnOnce() -> CpuResult + Send + 'static>;

/// Why a run did not return.
#[derive(Debug, thiserror::Error)]
pub enum OffloadError {
    #[error("the CPU task panicked")]
    Panicked,
    #[error("the CPU task was cancelled: {0}")]
    Cancelled(String),
}

/// Executes CPU work off the async tasks' way.
#[async_trait]
pub trait Offload: Send + Sync + 'static {
    async fn run(&self, work: CpuWork) -> Result<CpuResult, OffloadError>;
}

/// tokio's blocking threads: what the worker processes run the engine on.
#[derive(Debug, Default, Clone, Copy)]
pub struct BlockingThreads;

#[async_trait]
impl Offload for BlockingThreads {
    async fn run(&self, work: CpuWork) -> Result<CpuResult, OffloadError> {
        tokio::task::spawn_blocking(work).await.map_err(|e| {
            if e.is_panic() {
                OffloadError::Panicked
            } else {
                OffloadError::Cancelled(e.to_string())
            }
        })
    }
}

#[derive(Clone)]
pub(crate) struct CpuPool {
    slots: Arc<Semaphore>,
    size: u32,
}

impl CpuPool {
    pub fn new(concurrency: usize) -> Self {
        let size = u32::try_from(concurrency.max(1)).unwrap_or(u32::MAX);
        CpuPool {
            slots: Arc::new(Semaphore::new(size as usize)),
            size,
        }
    }

    /// One slot; or, when `alone`, every slot. The semaphore is fair (first come, first
    /// served), so a run waiting for the whole pool is not starved by later single runs,
    /// and holds nothing while it waits.
    pub async fn acquire(&self, alone: bool) -> Result<OwnedSemaphorePermit, AcquireError> {
        let wanted = if alone { self.size } else { 1 };
        self.slots.clone().acquire_many_owned(wanted).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::CpuPool;

    #[tokio::test]
    async fn a_run_alone_waits_for_the_others_and_keeps_them_out() {
        let pool = CpuPool::new(2);
        let first = pool.acquire(false).await.unwrap();
        let alone = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire(true).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !alone.is_finished(),
            "a run alone waits for the running one"
        );
        // A later single run queues behind the one waiting to run alone.
        let later = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire(false).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !later.is_finished(),
            "later runs do not overtake a run alone"
        );
        drop(first);
        alone.await.unwrap().unwrap();
        later.await.unwrap().unwrap();
    }
}
