//! The execution engine: runs of workflow versions and the chat replies built on them.
//!
//! - `queue`: the durable queue in PostgreSQL (claim, lease, renew, stop).
//! - `worker`: the workers of this instance: claim runs, renew leases, obey stops, finish
//!   runs whose instance died.
//! - `run`: one run of a graph; `plan` its order; `nodes` what each node does (`condition`,
//!   `http_node`, `template`); `reply` the streamed reply of a chat run; `run_stream` the
//!   run's events, in order, surviving Redis outages and data loss.
//! - `finish`: a run's end written (execution, message, job) and announced; `late_ends`
//!   the streams of runs that ended while Redis did not answer, ended once it does.

pub mod condition;
pub mod config;
pub mod finish;
pub mod http_node;
pub mod journal;
pub mod late_ends;
pub mod nodes;
pub mod plan;
pub mod queue;
pub mod reply;
pub mod run;
pub mod run_stream;
pub mod template;
pub mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use config::EngineConfig;

/// Why a run was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// `stopExecution` / `stopMessage`: the run ends STOPPED.
    Stop = 1,
    /// This instance is shutting down: the run ends FAILED ("interrupted").
    Shutdown = 2,
    /// Another instance took the run over (this one's lease ran out): write nothing.
    LeaseLost = 3,
}

/// A run in progress in this instance.
#[derive(Clone)]
pub struct RunHandle {
    pub token: CancellationToken,
    reason: Arc<AtomicU8>,
}

impl RunHandle {
    fn new() -> RunHandle {
        RunHandle {
            token: CancellationToken::new(),
            reason: Arc::new(AtomicU8::new(0)),
        }
    }

    pub fn cancel(&self, why: Cancel) {
        let _ = self
            .reason
            .compare_exchange(0, why as u8, Ordering::SeqCst, Ordering::SeqCst);
        self.token.cancel();
    }

    pub fn reason(&self) -> Option<Cancel> {
        match self.reason.load(Ordering::SeqCst) {
            1 => Some(Cancel::Stop),
            2 => Some(Cancel::Shutdown),
            3 => Some(Cancel::LeaseLost),
            _ => None,
        }
    }
}

/// The engine's state in this instance.
pub struct Engine {
    pub config: EngineConfig,
    /// This instance's name in leases.
    pub instance: String,
    /// Model and HTTP calls share its connection pool.
    pub http: reqwest::Client,
    /// The workers' database connections (apart from requests').
    pub pool: crate::db::DbPool,
    /// Where calls count their tokens against providers.
    pub usage: crate::llm::usage::UsageLedger,
    runs: Mutex<HashMap<Uuid, RunHandle>>,
    wake: Notify,
}

impl Engine {
    /// `http` is the outbound guard's client (`outbound::OutboundConfig::client`).
    pub fn new(config: EngineConfig, pool: crate::db::DbPool, http: reqwest::Client) -> Engine {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "weft".into());
        Engine {
            config,
            instance: format!("{host}:{}:{}", std::process::id(), Uuid::new_v4().simple()),
            http,
            usage: crate::llm::usage::UsageLedger::new(pool.clone()),
            pool,
            runs: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, RunHandle>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels a run if it runs here; whether it did.
    pub fn cancel_local(&self, execution_id: Uuid, why: Cancel) -> bool {
        match self.runs().get(&execution_id) {
            Some(handle) => {
                handle.cancel(why);
                true
            }
            None => false,
        }
    }

    /// Wakes this instance's workers (a run was enqueued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn register(&self, execution_id: Uuid) -> RunHandle {
        let handle = RunHandle::new();
        self.runs().insert(execution_id, handle.clone());
        handle
    }

    pub(crate) fn unregister(&self, execution_id: Uuid) {
        self.runs().remove(&execution_id);
    }

    fn running(&self) -> Vec<(Uuid, RunHandle)> {
        self.runs()
            .iter()
            .map(|(id, handle)| (*id, handle.clone()))
            .collect()
    }
}
