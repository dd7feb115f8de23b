//! A run's journal: what the run did, written to `node_execution_results` and the run's
//! record and published as NODE_STARTED / NODE_PROGRESS / NODE_FINISHED, in the order it
//! happened, by one future beside the run. The run hands each entry over and goes on: a
//! node starts without waiting for its row, and a node still running is not held up by the
//! writes of another that finished.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types as sql;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::run_stream::RunStream;
use crate::app::App;
use crate::db::models::ExecutionRecord;
use crate::db::schema::node_execution_results as results;
use crate::db::statement::KeepPrepared;
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
        self.running.push((node.key.clone(), node.node_type));
        self.point_at_current();
        let query = diesel::sql_query(
            "WITH node AS ( \
                 INSERT INTO node_execution_results (workspace_id, execution_id, node_key, \
                     node_type, title, status, sequence_index, started_at) \
                 VALUES ($1, $2, $3, $4, $5, 'RUNNING', $6, $7) RETURNING 1) \
             UPDATE execution_records SET total_steps = $8, total_tokens = $9, \
                 current_node_key = $10, current_node_type = $11 \
             WHERE id = $2 AND status = 'RUNNING' RETURNING *",
        )
        .into_boxed()
        .bind::<sql::Uuid, _>(self.record.workspace_id)
        .bind::<sql::Uuid, _>(self.record.id)
        .bind::<sql::Text, _>(&node.key)
        .bind::<sql::Text, _>(node.node_type.as_str())
        .bind::<sql::Nullable<sql::Text>, _>(&node.title)
        .bind::<sql::Integer, _>(sequence)
        .bind::<sql::Timestamptz, _>(at);
        self.rows[index] = self.with_progress(query).await;
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
        let written: AppResult<()> = async {
            let mut conn = self.app.engine.pool.get().await?;
            diesel::insert_into(results::table)
                .values((
                    results::workspace_id.eq(self.record.workspace_id),
                    results::execution_id.eq(self.record.id),
                    results::node_key.eq(&node.key),
                    results::node_type.eq(node.node_type.as_str()),
                    results::title.eq(&node.title),
                    results::status.eq("SKIPPED"),
                    results::sequence_index.eq(sequence),
                ))
                .execute(&mut conn)
                .await?;
            Ok(())
        }
        .await;
        if let Err(e) = written {
            tracing::error!(execution_id = %self.record.id, error = ?e, "cannot record a node");
        }
        self.publish(node_event(
            ExecutionEventKind::NodeFinished,
            &self.record,
            node,
            "SKIPPED",
        ));
    }

    async fn finished(&mut self, node: &GraphNode, end: NodeEnd) {
        self.running.retain(|(key, _)| *key != node.key);
        self.point_at_current();
        let query = diesel::sql_query(
            "WITH node AS ( \
                 UPDATE node_execution_results SET status = $3, inputs = $4, outputs = $5, \
                     error = $6, elapsed_ms = $7, total_tokens = $8, finished_at = $9, \
                     console = $10 \
                 WHERE execution_id = $1 AND node_key = $2 RETURNING 1) \
             UPDATE execution_records SET total_steps = $11, total_tokens = $12, \
                 current_node_key = $13, current_node_type = $14 \
             WHERE id = $1 AND status = 'RUNNING' RETURNING *",
        )
        .into_boxed()
        .bind::<sql::Uuid, _>(self.record.id)
        .bind::<sql::Text, _>(&node.key)
        .bind::<sql::Text, _>(end.status)
        .bind::<sql::Nullable<sql::Jsonb>, _>(&end.inputs)
        .bind::<sql::Nullable<sql::Jsonb>, _>(&end.outputs)
        .bind::<sql::Nullable<sql::Text>, _>(&end.error)
        .bind::<sql::BigInt, _>(end.elapsed_ms)
        .bind::<sql::Integer, _>(end.tokens)
        .bind::<sql::Timestamptz, _>(end.finished_at)
        .bind::<sql::Nullable<sql::Jsonb>, _>(end.console.as_ref().map(|lines| json!(lines)));
        self.with_progress(query).await;
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

    /// The run's current node: the last started of those still running.
    fn point_at_current(&mut self) {
        let current = self.running.last();
        self.record.current_node_key = current.map(|(key, _)| key.clone());
        self.record.current_node_type = current.map(|(_, kind)| kind.as_str().to_string());
    }

    /// Runs `query`, a statement that writes a node's row and keeps the run's record at its
    /// steps, tokens and current node (its last four parameters, bound here), returning the
    /// record. Whether the node's row was written.
    async fn with_progress(&mut self, query: BoxedSqlQuery<'_, Pg, SqlQuery>) -> bool {
        let query = query
            .bind::<sql::Integer, _>(self.record.total_steps)
            .bind::<sql::Integer, _>(self.record.total_tokens)
            .bind::<sql::Nullable<sql::Text>, _>(self.record.current_node_key.clone())
            .bind::<sql::Nullable<sql::Text>, _>(self.record.current_node_type.clone());
        let stored = async {
            let mut conn = self.app.engine.pool.get().await?;
            Ok(query.prepared().get_result(&mut conn).await.optional()?)
        }
        .await;
        self.advanced(stored)
    }

    /// Takes the run's record as stored by a statement that wrote a node's row and kept the
    /// record at its steps, tokens and current node: the events after carry it (a newer
    /// `updated_at`), so `workspaceExecutions` shows each change once and a dashboard opened
    /// now reads the same progress. Whether the node's row was written.
    fn advanced(&mut self, stored: AppResult<Option<ExecutionRecord>>) -> bool {
        match stored {
            Ok(Some(row)) => {
                self.record = row;
                true
            }
            // Ended elsewhere (stopped while this instance had it): the node's row is
            // written all the same, and the event still says what changed.
            Ok(None) => {
                self.record.updated_at = Utc::now();
                true
            }
            Err(e) => {
                self.record.updated_at = Utc::now();
                tracing::error!(execution_id = %self.record.id, error = ?e, "cannot record a node and the run's progress");
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
