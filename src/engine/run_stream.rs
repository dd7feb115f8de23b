//! The events of a run as they stream into `executionEvents`: published in order by one
//! task per run, so a run never waits on Redis. An event that cannot be appended (Redis
//! away) is kept and tried again before any later one; a stream that lost its data (Redis
//! back without it) is put back as it was from what this task published, and goes on at
//! the same number. The run's last event (EXECUTION_FINISHED) goes through here too, after
//! everything before it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::db::models::ExecutionRecord;
use crate::error::AppError;
use crate::realtime::Realtime;
use crate::realtime::events::{Event, ExecutionEvent, ExecutionEventKind};
use crate::realtime::history::History;
use crate::realtime::streams::{Appended, StreamKey};
use crate::workflow::graph::GraphNode;

/// The publisher of one run's events.
pub struct RunStream {
    tx: mpsc::UnboundedSender<ExecutionEvent>,
    task: JoinHandle<Option<i64>>,
    /// The run as the last event sent carried it: a node's progress goes with it.
    latest: std::sync::Mutex<Option<Box<ExecutionRecord>>>,
}

impl RunStream {
    pub fn start(realtime: Realtime, execution_id: Uuid) -> RunStream {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(publish(realtime, execution_id, rx));
        RunStream {
            tx,
            task,
            latest: std::sync::Mutex::new(None),
        }
    }

    /// Queues an event after those already given.
    pub fn send(&self, event: ExecutionEvent) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(event.execution.clone());
        let _ = self.tx.send(event);
    }

    /// Queues a NODE_PROGRESS of running node `node`: `outputs` says what it did.
    pub fn progress(&self, node: &GraphNode, outputs: serde_json::Value) {
        let Some(execution) = self
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        let _ = self.tx.send(ExecutionEvent {
            seq: 0,
            kind: ExecutionEventKind::NodeProgress,
            node_key: Some(node.key.clone()),
            node_type: Some(node.node_type),
            status: "RUNNING".into(),
            inputs: None,
            outputs: Some(outputs),
            error: None,
            elapsed_ms: None,
            total_tokens: None,
            execution,
            at: chrono::Utc::now(),
            published_at_us: 0,
            renderings: Default::default(),
        });
    }

    /// Queues the run's last event and waits until everything is published (or Redis has
    /// not answered for `Realtime::publish_patience`: the stream is then ended later by
    /// `finish::end_unannounced`); the `seq` the last event got, when it was kept.
    pub async fn end(self, last: ExecutionEvent) -> Option<i64> {
        let _ = self.tx.send(last);
        drop(self.tx);
        self.task.await.ok().flatten()
    }

    /// Stops publishing at once: another instance carries the run on.
    pub fn abandon(self) {
        self.task.abort();
    }
}

/// Queued events past which a node's NODE_STARTED is dropped when its NODE_FINISHED is
/// queued too (the latter states the node's result), so a long outage holds at most a
/// couple of events per node.
const PENDING_LIMIT: usize = 256;

/// Publishes the run's events in order until its channel closes and everything queued is
/// out; returns the `seq` of its terminal event when that was kept.
async fn publish(
    realtime: Realtime,
    execution_id: Uuid,
    mut rx: mpsc::UnboundedReceiver<ExecutionEvent>,
) -> Option<i64> {
    let mut pending: VecDeque<ExecutionEvent> = VecDeque::new();
    // The name of the append of `pending`'s first event, the same while it is tried again.
    let mut attempt = Uuid::new_v4();
    let mut history = History::default();
    let mut known = 0;
    let mut closed_at: Option<Instant> = None;
    let mut pause = Duration::from_millis(50);
    loop {
        if closed_at.is_none() && pending.is_empty() {
            match rx.recv().await {
                Some(event) => pending.push_back(event),
                None => closed_at = Some(Instant::now()),
            }
        }
        while closed_at.is_none() {
            match rx.try_recv() {
                Ok(event) => pending.push_back(event),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => closed_at = Some(Instant::now()),
            }
        }
        if pending.len() > PENDING_LIMIT {
            coalesce(&mut pending);
        }
        let Some(event) = pending.front().cloned() else {
            if closed_at.is_some() {
                return None;
            }
            continue;
        };
        let terminal = event.kind == ExecutionEventKind::ExecutionFinished;
        let failure = match realtime.append_run_event(event, known, attempt).await {
            Ok((Appended::Seq(seq), kept)) => {
                pending.pop_front();
                attempt = Uuid::new_v4();
                known = seq;
                pause = Duration::from_millis(50);
                if let Event::Execution(e) = kept.as_ref()
                    && e.announced()
                    && let Err(err) = realtime.execution_changed(&e.execution).await
                {
                    // The feed's subscribers read the current state when their bus resyncs.
                    tracing::warn!(%execution_id, error = ?err, "cannot announce a run's status");
                }
                history.push(kept);
                if terminal {
                    return Some(seq);
                }
                continue;
            }
            Ok((Appended::Vanished, _)) => {
                tracing::warn!(%execution_id, "a run's stream lost its data; putting it back");
                match realtime
                    .restore_stream(StreamKey::Execution(execution_id), &history)
                    .await
                {
                    Ok(()) => continue,
                    Err(e) => e,
                }
            }
            Err(AppError::Conflict(_)) => {
                // The stream was ended elsewhere (the run stopped while queued, or ended by
                // another instance): nothing more belongs in it.
                tracing::debug!(%execution_id, "a run's stream has ended; dropping its events");
                pending.clear();
                if closed_at.is_some() {
                    return None;
                }
                continue;
            }
            Err(e) => e,
        };
        tracing::warn!(%execution_id, error = ?failure, "cannot publish a run's event; trying again");
        if closed_at.is_some_and(|at| at.elapsed() >= realtime.publish_patience) {
            tracing::error!(%execution_id, "the run's stream did not answer; its stored state says the rest");
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Drops each NODE_STARTED and NODE_PROGRESS whose node's NODE_FINISHED is queued after
/// it, except the first event, which may be in flight.
fn coalesce(pending: &mut VecDeque<ExecutionEvent>) {
    let finished: std::collections::HashSet<String> = pending
        .iter()
        .filter(|e| e.kind == ExecutionEventKind::NodeFinished)
        .filter_map(|e| e.node_key.clone())
        .collect();
    let mut index = 0;
    pending.retain(|e| {
        index += 1;
        index == 1
            || !matches!(
                e.kind,
                ExecutionEventKind::NodeStarted | ExecutionEventKind::NodeProgress
            )
            || e.node_key.as_ref().is_none_or(|k| !finished.contains(k))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: ExecutionEventKind, node: &str) -> ExecutionEvent {
        let now = chrono::Utc::now();
        let record = ExecutionRecord {
            id: Uuid::nil(),
            workspace_id: Uuid::nil(),
            workflow_id: Uuid::nil(),
            version_id: Uuid::nil(),
            status: "RUNNING".into(),
            inputs: serde_json::json!({}),
            outputs: None,
            error: None,
            elapsed_ms: None,
            total_tokens: 0,
            total_steps: 0,
            triggered_by_user_id: None,
            triggered_by_application_id: None,
            triggered_by_end_user_id: None,
            started_at: Some(now),
            finished_at: None,
            created_at: now,
            updated_at: now,
            stream_seq: None,
            current_node_key: None,
            current_node_type: None,
        };
        let mut event = ExecutionEvent::of_run(kind, record);
        event.node_key = Some(node.to_string());
        event
    }

    #[test]
    fn a_long_queue_keeps_each_node_s_last_word_and_the_event_in_flight() {
        use ExecutionEventKind::{NodeFinished, NodeStarted};
        let mut pending: VecDeque<ExecutionEvent> = [
            event(NodeStarted, "a"),
            event(NodeFinished, "a"),
            event(NodeStarted, "b"),
            event(NodeStarted, "c"),
            event(NodeFinished, "b"),
        ]
        .into();
        coalesce(&mut pending);
        let left: Vec<(ExecutionEventKind, String)> = pending
            .iter()
            .map(|e| (e.kind, e.node_key.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            left,
            vec![
                (NodeStarted, "a".into()),
                (NodeFinished, "a".into()),
                (NodeStarted, "c".into()),
                (NodeFinished, "b".into()),
            ]
        );
    }
}
