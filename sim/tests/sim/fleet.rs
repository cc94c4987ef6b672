//! The run's processes and what they are wired to: the worker nodes, which the run may kill
//! (as SIGKILL: see [`Life`]) and start again under a new name, and the ports every node
//! and API replica gets (the shared adapters behind its own fault injectors).
//!
//! The kills are drawn from the seed (`kills` stream): in about two faulty seeds in five, one
//! or two, each at a drawn time within the first minute, of a drawn node, started again
//! 0.5 to 15 s later. A killed node's loops are aborted and its in-flight jobs freeze; its
//! deliveries go back to the queue, its run holds lapse, its effect claims go stale.

use std::sync::Arc;
use std::time::Duration;

use tirage_embedded::InProcessQueue;
use tirage_ports::{Clock, Lane};
use tirage_runtime::{PortNames, Ports};
use tirage_worker::{Metrics, Node, Seams, WorkerSettings};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::actor_clock;
use crate::durable::Durable;
use crate::engine::{SimOffload, sim_resizer};
use crate::faults::{FaultPlan, FaultyObjects, FaultyQueue, Injector};
use crate::ledger::Ledger;
use crate::life::{Kills, Life};
use crate::objects::SimObjects;
use crate::receivers::{NodeCallbacks, Receivers};
use crate::rng::SimEntropy;
use crate::state::ObservedState;

/// What every process of the run is wired to.
pub struct Wiring {
    pub seed: u64,
    pub plan: Arc<FaultPlan>,
    pub ledger: Arc<Ledger>,
    pub clock: Arc<dyn Clock>,
    /// The state store, which may restart ([`crate::restarts`]).
    pub state: Arc<Durable>,
    pub queue: Arc<InProcessQueue>,
    pub objects: Arc<SimObjects>,
    /// Where the nodes' callbacks go.
    pub receivers: Arc<Receivers>,
}

impl Wiring {
    /// `actor`'s ports: the shared adapters behind its own fault injectors and its life.
    pub fn ports(&self, actor: &str, life: &Arc<Life>) -> Ports {
        let injector = |port: &'static str| {
            Injector::new(
                self.seed,
                self.plan.clone(),
                self.ledger.clone(),
                (actor, life),
                port,
            )
        };
        Ports {
            state: Arc::new(ObservedState::new(
                self.state.clone(),
                actor,
                self.ledger.clone(),
                injector("state"),
            )),
            objects: Arc::new(FaultyObjects::new(
                self.objects.clone(),
                injector("objects"),
            )),
            queue: Arc::new(FaultyQueue::new(
                self.queue.clone(),
                injector("queue"),
                injector("deliveries"),
            )),
            names: PortNames::embedded(),
        }
    }
}

/// One node's place in the fleet, through its incarnations.
struct Slot {
    incarnation: u32,
    actor: String,
    node: Node,
    life: Arc<Life>,
    loops: Vec<JoinHandle<()>>,
}

pub struct Fleet {
    wiring: Arc<Wiring>,
    settings: WorkerSettings,
    stop: CancellationToken,
    slots: Vec<Slot>,
    /// Every node that ever ran (their metrics are summed at the end).
    every_node: Vec<Node>,
    kills: Kills,
}

impl Fleet {
    pub fn start(
        wiring: Arc<Wiring>,
        settings: WorkerSettings,
        nodes: usize,
        stop: CancellationToken,
    ) -> Fleet {
        let kills = Kills::draw(wiring.seed, "kills", wiring.plan.calm, nodes, (500, 15_000));
        let mut fleet = Fleet {
            wiring,
            settings,
            stop,
            slots: Vec::new(),
            every_node: Vec::new(),
            kills,
        };
        for index in 0..nodes {
            let slot = fleet.launch(index, 0);
            fleet.slots.push(slot);
        }
        fleet
    }

    fn launch(&mut self, index: usize, incarnation: u32) -> Slot {
        let actor = if incarnation == 0 {
            format!("n{index}")
        } else {
            format!("n{index}.{incarnation}")
        };
        let w = &self.wiring;
        let life = Arc::new(Life::default());
        let seams = Seams {
            resizer: sim_resizer(),
            offload: Arc::new(SimOffload::new(
                &actor,
                w.ledger.clone(),
                self.settings.effective_concurrency(),
            )),
            entropy: Arc::new(SimEntropy::new(w.seed, &format!("entropy/{actor}"))),
            clock: actor_clock(w.seed, &w.clock, &actor, &w.ledger),
            callbacks: Arc::new(NodeCallbacks {
                receivers: w.receivers.clone(),
                actor: actor.clone(),
                life: life.clone(),
            }),
        };
        let metrics = Metrics::new().expect("worker metrics");
        let ports = w.ports(&actor, &life);
        let node = Node::new(self.settings.clone(), ports, seams, metrics).expect("a node");
        let mut loops = Vec::new();
        for lane in Lane::ALL {
            let (node, stop) = (node.clone(), self.stop.clone());
            loops.push(tokio::spawn(async move { node.consume(lane, stop).await }));
        }
        let (reconciler, stop) = (node.clone(), self.stop.clone());
        loops.push(tokio::spawn(
            async move { reconciler.reconcile(stop).await },
        ));
        if incarnation > 0 {
            w.ledger.note(&actor, "started", "", "");
        }
        self.every_node.push(node.clone());
        Slot {
            incarnation,
            actor,
            node,
            life,
            loops,
        }
    }

    /// Carries out the kills and restarts due at `elapsed` (none once the faults healed).
    pub async fn chaos(&mut self, elapsed: Duration) {
        let slots = &self.slots;
        let healed = self.wiring.plan.healed();
        for index in self.kills.due(elapsed, healed, |i| slots[i].life.is_dead()) {
            let slot = &mut self.slots[index];
            slot.life.kill().await;
            for task in slot.loops.drain(..) {
                task.abort();
            }
            self.wiring.ledger.killed(&slot.actor);
        }
        for index in self.kills.restarts_due(elapsed) {
            let incarnation = self.slots[index].incarnation + 1;
            self.slots[index] = self.launch(index, incarnation);
        }
    }

    /// The nodes alive now.
    pub fn live_nodes(&self) -> impl Iterator<Item = &Node> {
        self.slots
            .iter()
            .filter(|s| !s.life.is_dead())
            .map(|s| &s.node)
    }

    /// Whether a killed node still waits to be started again.
    pub fn restarting(&self) -> bool {
        self.kills.restarting()
    }

    /// Every node that ever ran.
    pub fn every_node(&self) -> &[Node] {
        &self.every_node
    }

    /// The live nodes' loops, to join at the stop.
    pub fn take_loops(&mut self) -> Vec<JoinHandle<()>> {
        self.slots
            .iter_mut()
            .filter(|s| !s.life.is_dead())
            .flat_map(|s| s.loops.drain(..))
            .collect()
    }
}
