//! The tokens calls used, added to their providers' counts by one writer per process.
//!
//! Every reply of a provider adds to the same `llm_providers` row, so a statement a call
//! would queue the calls of a busy provider behind each other's row lock. The writer takes
//! everything handed to it while its last statement ran and writes it as one statement per
//! provider and model: alone, a count is written at once; under load, a burst of replies
//! costs a few statements instead of one each.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::Usage;
use super::provider;
use crate::db::DbPool;

/// The most counts one statement carries (the rest go in the next).
const BATCH: usize = 1024;

struct Count {
    provider_id: Uuid,
    model: String,
    usage: Usage,
    /// Told when the count is written (or failed to be).
    written: Option<oneshot::Sender<()>>,
}

/// Where calls hand their usage; the writer starts with the first count.
pub struct UsageLedger {
    pool: DbPool,
    tx: OnceLock<mpsc::UnboundedSender<Count>>,
}

impl UsageLedger {
    pub fn new(pool: DbPool) -> UsageLedger {
        UsageLedger {
            pool,
            tx: OnceLock::new(),
        }
    }

    /// Adds `usage` to the provider's count without waiting for it.
    pub fn count(&self, provider_id: Uuid, model: &str, usage: Usage) {
        self.hand(provider_id, model, usage, None);
    }

    /// Adds `usage` to the provider's count and returns once it is written (a failure is
    /// logged by the writer).
    pub async fn counted(&self, provider_id: Uuid, model: &str, usage: Usage) {
        let (tx, rx) = oneshot::channel();
        if self.hand(provider_id, model, usage, Some(tx)) {
            let _ = rx.await;
        }
    }

    fn hand(
        &self,
        provider_id: Uuid,
        model: &str,
        usage: Usage,
        written: Option<oneshot::Sender<()>>,
    ) -> bool {
        if usage.total_tokens <= 0 {
            return false;
        }
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write(self.pool.clone(), rx));
            tx
        });
        tx.send(Count {
            provider_id,
            model: crate::validate::truncate(model, 100),
            usage,
            written,
        })
        .is_ok()
    }
}

/// The sum of the counts of one provider and model in a batch.
#[derive(Default)]
struct Sum {
    usage: Usage,
    calls: i64,
}

async fn write(pool: DbPool, mut rx: mpsc::UnboundedReceiver<Count>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut sums: BTreeMap<(Uuid, &str), Sum> = BTreeMap::new();
        for count in &batch {
            let sum = sums
                .entry((count.provider_id, count.model.as_str()))
                .or_default();
            sum.usage += count.usage;
            sum.calls += 1;
        }
        match pool.get().await {
            Ok(mut conn) => {
                for ((provider_id, model), sum) in sums {
                    if let Err(e) =
                        provider::record_usage(&mut conn, provider_id, model, sum.usage, sum.calls)
                            .await
                    {
                        tracing::warn!(error = ?e, %provider_id, "cannot count a provider's tokens");
                    }
                }
            }
            Err(e) => tracing::warn!(error = ?e, "cannot count providers' tokens"),
        }
        for count in batch.drain(..) {
            if let Some(written) = count.written {
                let _ = written.send(());
            }
        }
    }
}
