//! The API replicas, which the run may kill (as SIGKILL: see [`Life`]) and start again
//! under a new name. A client's request to a replica that dies is cut, as the reverse proxy
//! answers `502` when its upstream's connection closes: whatever the use case had done by
//! then stays done, the rest never happens, and the client tries again.
//!
//! The kills are drawn from the seed (`replica_kills` stream): in about two faulty seeds in
//! five, one or two, each at a drawn time within the first minute, of a drawn replica,
//! started again 0.5 to 10 s later. None happens once the faults have healed.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tirage_api::AppState;
use tirage_api::backpressure::UploadSlots;
use tirage_api::progress::ProgressHub;

use crate::clock::actor_clock;
use crate::fleet::Wiring;
use crate::life::{Kills, Life};
use crate::rng::Stream;

/// One incarnation of a replica.
#[derive(Clone)]
pub struct Replica {
    pub app: Arc<AppState>,
    pub life: Arc<Life>,
    pub actor: String,
}

struct Slots {
    /// Per slot: the incarnation serving (dead between its kill and its restart) and its
    /// number.
    replicas: Vec<(Replica, u32)>,
    kills: Kills,
}

pub struct Replicas {
    wiring: Arc<Wiring>,
    settings: tirage_api::Settings,
    slots: Mutex<Slots>,
}

impl Replicas {
    pub fn start(wiring: Arc<Wiring>, settings: tirage_api::Settings, count: usize) -> Replicas {
        let seed = wiring.seed;
        let kills = Kills::draw(
            seed,
            "replica_kills",
            wiring.plan.calm,
            count,
            (500, 10_000),
        );
        let mut replicas = Replicas {
            wiring,
            settings,
            slots: Mutex::new(Slots {
                replicas: Vec::new(),
                kills,
            }),
        };
        let started = (0..count).map(|i| (replicas.launch(i, 0), 0)).collect();
        replicas
            .slots
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .replicas = started;
        replicas
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn launch(&self, index: usize, incarnation: u32) -> Replica {
        let actor = if incarnation == 0 {
            format!("a{index}")
        } else {
            format!("a{index}.{incarnation}")
        };
        let (w, api) = (&self.wiring, &self.settings);
        let life = Arc::new(Life::default());
        let app = Arc::new(AppState {
            ports: w.ports(&actor, &life),
            uploads: UploadSlots::new(
                api.api.max_concurrent_uploads,
                api.api.uploads_per_session,
                api.api.busy_retry_after_secs,
            ),
            settings: api.clone(),
            metrics: tirage_api::metrics::Metrics::new().expect("API metrics"),
            api_key_digests: Vec::new(),
            progress: ProgressHub::default(),
            rendition_urls: None,
            clock: actor_clock(w.seed, &w.clock, &actor, &w.ledger),
        });
        if incarnation > 0 {
            w.ledger.note(&actor, "started", "", "");
        }
        Replica { app, life, actor }
    }

    /// The replica a client's request goes to: drawn from `rng`, dead or alive (a dead
    /// one cuts the request).
    pub fn pick(&self, rng: &Stream) -> Replica {
        let slots = self.lock();
        let i = rng.usize_in(0, slots.replicas.len().saturating_sub(1));
        slots.replicas[i].0.clone()
    }

    /// Carries out the kills and restarts due at `elapsed` (no kill once the faults healed).
    pub async fn chaos(&self, elapsed: Duration) {
        let (killed, due): (Vec<Replica>, Vec<usize>) = {
            let mut slots = self.lock();
            let Slots { replicas, kills } = &mut *slots;
            let healed = self.wiring.plan.healed();
            let killed = kills
                .due(elapsed, healed, |i| replicas[i].0.life.is_dead())
                .into_iter()
                .map(|i| replicas[i].0.clone())
                .collect();
            (killed, kills.restarts_due(elapsed))
        };
        for replica in killed {
            replica.life.kill().await;
            self.wiring.ledger.note(&replica.actor, "killed", "", "");
            self.wiring.ledger.count("replica_kills");
        }
        for index in due {
            let incarnation = self.lock().replicas[index].1 + 1;
            let replica = self.launch(index, incarnation);
            self.lock().replicas[index] = (replica, incarnation);
        }
    }

    /// Whether a killed replica still waits to be started again.
    pub fn restarting(&self) -> bool {
        self.lock().kills.restarting()
    }
}
