//! The engine as the simulator runs it. A photo's bytes carry its fate:
//! `b"SIM1" | fate u8 | cpu_ms u16 | width u16 | height u16 | batch u16 | photo u16 | padding`
//! (big-endian). [`sim_resizer`] turns them into one rendition per requested size, a pure
//! function of the bytes and the size, or refuses them (`corrupt_image`), or panics, as the
//! fate says. [`SimOffload`] runs the engine on the simulator's one thread, after sleeping
//! the photo's CPU time in virtual time, with the CPU slot held.
//!
//! How the offload knows whose CPU time to sleep: the worker counts a run in the state store
//! (`start_run`) and hands the engine to the offload in the same poll of the same task, with
//! no await in between that could yield (worker/src/job.rs `run_engine`). The node's state
//! wrapper ([`crate::state::ObservedState`]) notes the photo of each `start_run` in a
//! thread-local; the offload takes it, and after the engine ran checks the photo the engine
//! read from the bytes is the same. A mismatch fails the seed as a simulator problem.

use std::cell::Cell;
use std::panic::panic_any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tirage_core::BatchOptions;
use tirage_engine::{EngineError, Limits, Rendition, Resized};
use tirage_worker::{CpuResult, CpuWork, Offload, OffloadError, ResizeFn};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::ledger::Ledger;
use crate::rng::{FNV_OFFSET, fnv1a};

const MAGIC: &[u8; 4] = b"SIM1";
const HEADER: usize = 15;

/// What the engine does with a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Resized: one rendition per size.
    Ok,
    /// Refused as corrupt (a permanent failure: `corrupt_image`).
    Corrupt,
    /// The engine panics (`internal_error`, through the worker's `catch_unwind`).
    Panic,
}

impl Fate {
    fn byte(self) -> u8 {
        match self {
            Fate::Ok => 0,
            Fate::Corrupt => 1,
            Fate::Panic => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Fate> {
        match b {
            0 => Some(Fate::Ok),
            1 => Some(Fate::Corrupt),
            2 => Some(Fate::Panic),
            _ => None,
        }
    }
}

/// The payload of the engine's injected panics: the panic hook lets these pass silently
/// (any other panic fails the seed).
#[derive(Debug)]
pub struct InjectedPanic;

/// A photo's bytes.
pub fn photo_bytes(
    fate: Fate,
    cpu_ms: u16,
    (w, h): (u16, u16),
    (batch, photo): (u16, u16),
    padding: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + padding);
    out.extend_from_slice(MAGIC);
    out.push(fate.byte());
    for v in [cpu_ms, w, h, batch, photo] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let mut x = fnv1a(FNV_OFFSET, &out);
    for _ in 0..padding {
        x = fnv1a(x, &[0x5a]);
        out.push((x >> 24) as u8);
    }
    out
}

struct Header {
    fate: Fate,
    width: u32,
    height: u32,
    tag: (u16, u16),
}

fn parse(bytes: &[u8]) -> Option<Header> {
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return None;
    }
    let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
    Some(Header {
        fate: Fate::from_byte(bytes[4])?,
        width: u32::from(u16_at(7)),
        height: u32::from(u16_at(9)),
        tag: (u16_at(11), u16_at(13)),
    })
}

thread_local! {
    /// The photo of the last `start_run` on this thread (set by the node's state wrapper).
    static STARTED: Cell<Option<(Uuid, Uuid)>> = const { Cell::new(None) };
    /// The tag the engine last read from a photo's bytes on this thread.
    static RESIZED: Cell<Option<(u16, u16)>> = const { Cell::new(None) };
}

/// Notes the photo whose run was just counted (`start_run`).
pub fn note_run_started(batch: Uuid, photo: Uuid) {
    STARTED.with(|s| s.set(Some((batch, photo))));
}

/// The rendition's bytes: a pure function of the original and the size.
fn rendition_data(source: &[u8], size: u32) -> Vec<u8> {
    let mut x = fnv1a(fnv1a(FNV_OFFSET, source), &size.to_le_bytes());
    let len = 24 + (size as usize % 61) + source.len() % 17;
    (0..len)
        .map(|_| {
            x = fnv1a(x, &[0xa5]);
            (x >> 32) as u8
        })
        .collect()
}

/// Short side to `size`, never upscaled.
fn scaled(width: u32, height: u32, size: u32) -> (u32, u32) {
    let short = width.min(height).max(1);
    if short <= size {
        return (width, height);
    }
    let scale = |v: u32| {
        ((u64::from(v) * u64::from(size) + u64::from(short) / 2) / u64::from(short)) as u32
    };
    (scale(width).max(1), scale(height).max(1))
}

/// The engine of a simulated worker.
pub fn sim_resizer() -> ResizeFn {
    Arc::new(
        |source: &[u8], options: &BatchOptions, limits: &Limits| -> Result<Resized, EngineError> {
            RESIZED.with(|r| r.set(None));
            if source.len() as u64 > limits.max_bytes {
                return Err(EngineError::TooLarge {
                    size: source.len() as u64,
                    limit: limits.max_bytes,
                });
            }
            let Some(header) = parse(source) else {
                return Err(EngineError::UnsupportedFormat);
            };
            RESIZED.with(|r| r.set(Some(header.tag)));
            match header.fate {
                Fate::Corrupt => Err(EngineError::CorruptImage("corrupt by its fate".into())),
                Fate::Panic => panic_any(InjectedPanic),
                Fate::Ok => Ok(Resized {
                    width: header.width,
                    height: header.height,
                    renditions: options
                        .sizes
                        .iter()
                        .map(|&size| {
                            let (width, height) = scaled(header.width, header.height, size);
                            Rendition {
                                size,
                                width,
                                height,
                                format: options.format,
                                data: rendition_data(source, size),
                            }
                        })
                        .collect(),
                    warnings: Vec::new(),
                }),
            }
        },
    )
}

/// Runs the engine inline, after the photo's CPU time in virtual time. `slots` mirrors the
/// node's CPU pool only as a guard: the worker's own permit travels inside the work and is
/// held through the sleep, so this never waits while the pool is respected.
pub struct SimOffload {
    actor: String,
    ledger: Arc<Ledger>,
    slots: Arc<Semaphore>,
}

impl SimOffload {
    pub fn new(actor: &str, ledger: Arc<Ledger>, concurrency: usize) -> SimOffload {
        SimOffload {
            actor: actor.to_owned(),
            ledger,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }
}

#[async_trait]
impl Offload for SimOffload {
    async fn run(&self, work: CpuWork) -> Result<CpuResult, OffloadError> {
        // Taken before the first await: set by this task's `start_run`, just before.
        let started = STARTED.with(Cell::take);
        let photo = started.and_then(|(_, p)| self.ledger.photo(p).map(|info| (p, info)));
        let Some((photo_id, info)) = photo else {
            self.ledger.problem(format!(
                "{}: an engine run with no start_run just before it (or of an unknown photo)",
                self.actor
            ));
            return Ok(work());
        };
        // The worker's permit is inside `work`: the slot stays held through the sleep, as
        // a real run holds it through its CPU time. A run alone holds every slot of the
        // worker's pool; this one only checks that no more than the pool runs at once.
        let Ok(_guard) = self.slots.clone().try_acquire_owned() else {
            self.ledger.problem(format!(
                "{}: more engine runs at once than CPU slots ({})",
                self.actor, info.label
            ));
            return Ok(work());
        };
        self.ledger.engine_run(&self.actor, photo_id);
        tokio::time::sleep(Duration::from_millis(info.cpu_ms)).await;
        let result = work();
        let read = RESIZED.with(Cell::take);
        if read != Some(info.tag) {
            self.ledger.problem(format!(
                "{}: the engine run counted for {} read the bytes of {read:?}",
                self.actor, info.label
            ));
        }
        Ok(result)
    }
}
