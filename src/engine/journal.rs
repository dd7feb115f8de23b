//! A run's journal: what the run did, written to `node_execution_results` and the run's
//! record and published as NODE_STARTED / NODE_PROGRESS / NODE_FINISHED, in the order it
//! happened, by one future beside the run. The run hands each entry over and goes on: a
//! node starts without waiting for its row, and a node still running is not held up by the
//! writes of another that finished.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::run_stream::RunStream;
use crate::app::App;
use crate::db::models::ExecutionRecord;
use crate::db::schema::execution_records;
use crate::db::schema::node_execution_results as results;
use crate::error::AppResult;
use crate::realtime::events::{ExecutionEvent, ExecutionEventKind};
use crate::workflow::graph::{GraphNode, NodeType};

enum Entry {
    Started {
        index: usize,
        at: DateTime<Utc>,
    },
    Skipped {
        index: usize,
    },
    Progress {
        index: usize,
        outputs: Value,
    },
    /// `counted`: a node that ran to its end adds a step and its tokens to the run.
    Finished {
        index: usize,
        end: NodeEnd,
        counted: bool,
    },
    Close,
}

/// Where the run and its nodes hand entries to the journal.
pub struct Journal {
    tx: mpsc::UnboundedSender<Entry>,
}

/// What `Journal::keeper` reads.
pub struct Entries(mpsc::UnboundedReceiver<Entry>);

impl Journal {
    pub fn new() -> (Journal, Entries) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Journal { tx }, Entries(rx))
    }

    /// Node `index` started at `at`.
    pub fn started(&self, index: usize, at: DateTime<Utc>) {
        let _ = self.tx.send(Entry::Started { index, at });
    }

    /// Node `index` will not run (a branch not taken).
    pub fn skipped(&self, index: usize) {
        let _ = self.tx.send(Entry::Skipped { index });
    }

    /// Running node `index` made progress (an AGENT's turn): a NODE_PROGRESS after its
    /// NODE_STARTED.
    pub fn progress(&self, index: usize, outputs: Value) {
        let _ = self.tx.send(Entry::Progress { index, outputs });
    }

    /// Node `index` ended; `counted` adds a step and its tokens to the run's record.
    pub fn finished(&self, index: usize, end: NodeEnd, counted: bool) {
        let _ = self.tx.send(Entry::Finished {
            index,
            end,
            counted,
        });
    }

    /// Nothing more comes: the keeper returns once it has written what it was given.
    pub fn close(&self) {
        let _ = self.tx.send(Entry::Close);
    }
}

/// Writes and publishes the entries in order until `Journal::close`. `nodes` are the
/// run's nodes by index.
pub async fn keep(
    app: &App,
    record: ExecutionRecord,
    nodes: &[GraphNode],
    events: &RunStream,
    mut entries: Entries,
) {
    let mut run = Progress {
        app,
        record,
        rows: vec![false; nodes.len()],
        next_index: 0,
        running: Vec::new(),
        events,
    };
    while let Some(entry) = entries.0.recv().await {
        match entry {
            Entry::Started { index, at } => run.started(&nodes[index], index, at).await,
            Entry::Skipped { index } => run.skipped(&nodes[index]).await,
            Entry::Progress { index, outputs } => events.progress(&nodes[index], outputs),
            Entry::Finished {
                index,
                end,
                counted,
            } => {
                if counted {
                    run.record.total_steps += 1;
                    run.record.total_tokens += end.tokens;
                } else if !run.rows[index] {
                    // Cut off before its row was written: nothing to end.
                    continue;
                }
                run.finished(&nodes[index], end).await;
            }
            Entry::Close => break,
        }
    }
}

fn node_event(
    kind: ExecutionEventKind,
    record: &ExecutionRecord,
    node: &GraphNode,
    status: &str,
) -> ExecutionEvent {
    let mut event = ExecutionEvent::of_run(kind, record.clone());
    event.node_key = Some(node.key.clone());
    event.node_type = Some(node.node_type);
    event.status = status.to_string();
    event.error = None;
    event.outputs = None;
    event.elapsed_ms = None;
    event.total_tokens = None;
    event
}

/// The run's record as nodes advance, and which nodes have a row.
struct Progress<'a> {
    app: &'a App,
    record: ExecutionRecord,
    rows: Vec<bool>,
    next_index: i32,
    /// The nodes running now, in the order they started: the last is the run's current node.
    running: Vec<(String, NodeType)>,
    /// Where its events go, in order.
    events: &'a RunStream,
}

impl Progress<'_> {
    async fn started(&mut self, node: &GraphNode, index: usize, at: DateTime<Utc>) {
        let sequence = self.next_index;
        self.next_index += 1;
        let written = self.insert(node, "RUNNING", sequence, Some(at)).await;
        self.rows[index] = written;
        self.running.push((node.key.clone(), node.node_type));
        self.advance().await;
        self.publish(node_event(
            ExecutionEventKind::NodeStarted,
            &self.record,
            node,
            "RUNNING",
        ));
    }

    async fn skipped(&mut self, node: &GraphNode) {
        let sequence = self.next_index;
        self.next_index += 1;
        self.insert(node, "SKIPPED", sequence, None).await;
        self.publish(node_event(
            ExecutionEventKind::NodeFinished,
            &self.record,
            node,
            "SKIPPED",
        ));
    }

    async fn insert(
        &self,
        node: &GraphNode,
        status: &str,
        sequence: i32,
        started_at: Option<chrono::DateTime<Utc>>,
    ) -> bool {
        let written: AppResult<()> = async {
            let mut conn = self.app.engine.pool.get().await?;
            diesel::insert_into(results::table)
                .values((
                    results::workspace_id.eq(self.record.workspace_id),
                    results::execution_id.eq(self.record.id),
                    results::node_key.eq(&node.key),
                    results::node_type.eq(node.node_type.as_str()),
                    results::title.eq(&node.title),
                    results::status.eq(status),
                    results::sequence_index.eq(sequence),
                    results::started_at.eq(started_at),
                ))
                .execute(&mut conn)
                .await?;
            Ok(())
        }
        .await;
        self.logged(written)
    }

    async fn finished(&mut self, node: &GraphNode, end: NodeEnd) {
        let written: AppResult<()> = async {
            let mut conn = self.app.engine.pool.get().await?;
            diesel::update(
                results::table
                    .filter(results::execution_id.eq(self.record.id))
                    .filter(results::node_key.eq(&node.key)),
            )
            .set((
                results::status.eq(end.status),
                results::inputs.eq(&end.inputs),
                results::outputs.eq(&end.outputs),
                results::error.eq(&end.error),
                results::elapsed_ms.eq(end.elapsed_ms),
                results::total_tokens.eq(end.tokens),
                results::finished_at.eq(end.finished_at),
                results::console.eq(end.console.as_ref().map(|lines| json!(lines))),
            ))
            .execute(&mut conn)
            .await?;
            Ok(())
        }
        .await;
        self.logged(written);
        self.running.retain(|(key, _)| *key != node.key);
        self.advance().await;
        let mut event = node_event(
            ExecutionEventKind::NodeFinished,
            &self.record,
            node,
            end.status,
        );
        event.inputs = end.inputs;
        event.outputs = end.outputs;
        event.error = end.error;
        event.elapsed_ms = Some(end.elapsed_ms);
        event.total_tokens = Some(end.tokens);
        self.publish(event);
    }

    /// Keeps the run's record at its steps, tokens and current node, and carries the stored
    /// row (a newer `updated_at`) in the events after, so `workspaceExecutions` shows each
    /// change once and a dashboard opened now reads the same progress.
    async fn advance(&mut self) {
        let current = self.running.last();
        self.record.current_node_key = current.map(|(key, _)| key.clone());
        self.record.current_node_type = current.map(|(_, kind)| kind.as_str().to_string());
        let stored: AppResult<Option<ExecutionRecord>> = async {
            let mut conn = self.app.engine.pool.get().await?;
            Ok(diesel::update(
                execution_records::table
                    .find(self.record.id)
                    .filter(execution_records::status.eq("RUNNING")),
            )
            .set((
                execution_records::total_steps.eq(self.record.total_steps),
                execution_records::total_tokens.eq(self.record.total_tokens),
                execution_records::current_node_key.eq(&self.record.current_node_key),
                execution_records::current_node_type.eq(&self.record.current_node_type),
            ))
            .returning(ExecutionRecord::as_returning())
            .get_result(&mut conn)
            .await
            .optional()?)
        }
        .await;
        match stored {
            Ok(Some(row)) => self.record = row,
            // Ended elsewhere (stopped while this instance had it), or not written: the
            // event still says what changed.
            Ok(None) => self.record.updated_at = Utc::now(),
            Err(e) => {
                self.record.updated_at = Utc::now();
                tracing::error!(execution_id = %self.record.id, error = ?e, "cannot record a run's progress");
            }
        }
    }

    /// A failed write is logged; the run goes on (its end is written by the worker).
    fn logged(&self, written: AppResult<()>) -> bool {
        match written {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(execution_id = %self.record.id, error = ?e, "cannot record a node");
                false
            }
        }
    }

    /// Publishes a node event after those before it; the run does not wait for Redis.
    fn publish(&self, event: ExecutionEvent) {
        self.events.send(event);
    }
}

/// How a node ended.
pub struct NodeEnd {
    pub status: &'static str,
    pub inputs: Option<Value>,
    pub outputs: Option<Value>,
    pub error: Option<String>,
    pub elapsed_ms: i64,
    /// When its result was there (not when it was written).
    pub finished_at: DateTime<Utc>,
    pub tokens: i32,
    pub console: Option<Vec<String>>,
}
