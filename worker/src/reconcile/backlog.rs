//! What the reconciler reads of the queues once per pass, to tell a batch that waits its
//! turn from one whose jobs were lost, and the backlog gauges it sets from it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tirage_ports::{ConsumedMark, Lane};

use crate::consumed::REPORT_EVERY;
use crate::context::Ctx;
use crate::failure::Failure;
use crate::settings::HOST_CLOCK_SKEW;

/// How far the resize queue has come, read once per pass: a batch that has not moved for
/// `stall_after_ms` may only be waiting its turn behind other batches' jobs (20,000 photos
/// on two workers is a 10-minute queue), and republishing its photos then would only queue
/// copies behind the originals.
pub(super) struct Backlog {
    /// Resize jobs waiting (ready or delayed).
    pub(super) waiting: u64,
    /// Finalisations and callbacks waiting (ready or delayed).
    pub(super) effects_waiting: u64,
    /// How far workers have taken jobs.
    consumed: Option<ConsumedMark>,
    /// How long workers must have taken nothing for the queue to have handed out nothing
    /// still held: the stall threshold plus two report periods.
    idle_after: chrono::Duration,
}

/// How far hosts' clocks may disagree ([`HOST_CLOCK_SKEW`]): the mark's `through` is an API
/// host's publish time, `since` the reconciler's.
const CLOCK_SKEW: chrono::Duration =
    chrono::Duration::seconds(HOST_CLOCK_SKEW.as_secs().cast_signed());

impl Backlog {
    /// Sets the gauges operators page on ([`crate::metrics::BacklogGauges`]).
    pub(super) fn publish(&self, ctx: &Ctx, now: DateTime<Utc>) {
        let gauges = &ctx.metrics.backlog;
        gauges.queue(Lane::Resize, self.waiting, self.oldest_wait(now));
        gauges.queue(Lane::Effects, self.effects_waiting, Duration::ZERO);
    }

    /// At most how long the oldest waiting resize job has waited: every job published
    /// before the consumed mark's `through` has been taken, so the oldest one waiting was
    /// published after it. Zero when nothing waits, or while no worker has taken any job
    /// (then the broker's own consumer count tells more).
    fn oldest_wait(&self, now: DateTime<Utc>) -> Duration {
        match self.consumed {
            Some(mark) if self.waiting > 0 => (now - mark.through).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    pub(super) async fn read(ctx: &Ctx) -> Result<Backlog, Failure> {
        let waiting = ctx.ports.queue.waiting(Lane::Resize);
        let effects_waiting = ctx.ports.queue.waiting(Lane::Effects);
        let consumed = ctx.ports.state.consumed_mark();
        let stall = Duration::from_millis(ctx.settings.stall_after_ms);
        let idle_after = stall.saturating_add(REPORT_EVERY.saturating_mul(2));
        Ok(Backlog {
            waiting: ctx.io("count waiting jobs", waiting).await?,
            effects_waiting: ctx.io("count waiting effects", effects_waiting).await?,
            consumed: ctx.io("read the consumed mark", consumed).await?,
            idle_after: chrono::Duration::from_std(idle_after).unwrap_or(chrono::Duration::MAX),
        })
    }

    /// Whether the queue has moved past every job of a batch unchanged since `since` (its
    /// jobs were published before `since`), so that its queued photos' jobs can only be
    /// lost: workers took jobs published after it; or nothing waits and workers have taken
    /// nothing for `idle_after` (a job handed out but not yet started, held behind a busy
    /// worker's slots, is neither waiting nor reported).
    pub(super) fn passed(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        match self.consumed {
            Some(mark) if mark.through >= since + CLOCK_SKEW => true,
            Some(mark) => self.waiting == 0 && mark.at + self.idle_after <= now,
            None => self.waiting == 0,
        }
    }
}
