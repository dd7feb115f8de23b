//! The workers of this instance. One loop claims queued runs while fewer than
//! `WEFT_WORKERS` run here (woken at once by a run enqueued on any instance, and every
//! second regardless); a second renews the leases of the runs here, stops those asked to
//! stop, drops those another instance took over, and finishes runs whose instance died;
//! a third listens for stops sent from other instances.

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::queue::{self, Job};
use super::reply::Reply;
use super::run::{self, Outcome, RunInput};
use super::run_stream::RunStream;
use super::{Cancel, finish};
use crate::app::App;
use crate::db::models::{ExecutionRecord, Message};
use crate::db::schema::{execution_jobs, execution_records, messages, workflow_versions};
use crate::db::statement::KeepPrepared;
use crate::error::{AppError, AppResult};
use crate::llm::ChatMessage;
use crate::realtime::bus::Delivery;
use crate::realtime::events::{Event, ExecutionEvent, ExecutionEventKind};
use crate::workflow::graph::Graph;

/// Turns of the conversation an LLM node with memory sees.
const HISTORY_MESSAGES: i64 = 20;
const POLL: Duration = Duration::from_secs(1);
/// Runs claimed in one statement at most.
const CLAIM_BATCH: usize = 32;

/// Runs this instance's workers until `stop` turns true; then claims nothing more and lets
/// the runs in flight finish, their leases still renewed and stops still heard (the handle
/// resolves when none is left; the server interrupts what is left at its deadline).
pub fn start(app: Arc<App>, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tasks = JoinSet::new();
        tasks.spawn(listen(app.clone(), stop.clone()));
        tasks.spawn(keep_leases(app.clone(), stop.clone()));
        claim_loop(app.clone(), stop).await;
        while !app.engine.running().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tasks.abort_all();
    })
}

/// After work was enqueued (and committed): wakes the workers here and in every instance.
pub async fn wake_workers(app: &App) {
    app.engine.wake();
    if let Err(e) = app.realtime.signal(Event::RunQueued).await {
        tracing::warn!(error = ?e, "cannot wake other instances' workers");
    }
}

/// Cancels the job of `subject` (an execution or a document) wherever it runs: here at
/// once, elsewhere through the control channel (and, should that be missed, at the next
/// lease renewal, which reads the job's stop flag).
pub async fn cancel_everywhere(app: &App, subject: Uuid) -> AppResult<()> {
    if !app.engine.cancel_local(subject, Cancel::Stop) {
        app.realtime
            .signal(Event::StopRun {
                execution_id: subject,
            })
            .await?;
    }
    Ok(())
}

/// Cancels the runs still here (shutdown) and waits for them to write their end.
pub async fn interrupt_all(app: &App, within: Duration) {
    let running = app.engine.running();
    for (_, handle) in &running {
        handle.cancel(Cancel::Shutdown);
    }
    let deadline = tokio::time::Instant::now() + within;
    while !app.engine.running().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn claim_loop(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(app.engine.config.workers));
    // Indexings hold one of these besides a worker's.
    let indexing = Arc::new(Semaphore::new(app.engine.config.indexing_workers));
    loop {
        if *stop.borrow() {
            return;
        }
        // Claim as many as there are free workers (in batches), until the queue is empty.
        loop {
            let free = permits.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                break;
            }
            let claimed = match app.engine.pool.get().await {
                Ok(mut conn) => {
                    let (instance, lease) = (&app.engine.instance, app.engine.config.lease);
                    let free_indexing = indexing.available_permits() as i64;
                    queue::claim(&mut conn, instance, lease, free as i64, free_indexing).await
                }
                Err(e) => Err(e.into()),
            };
            let jobs = match claimed {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = ?e, "cannot claim runs");
                    break;
                }
            };
            let full = jobs.len() == free;
            for job in jobs {
                // Only this loop takes permits, and it claimed no more than were free.
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    break;
                };
                let indexing_permit = match job.execution_id {
                    Some(_) => None,
                    None => match indexing.clone().try_acquire_owned() {
                        Ok(p) => Some(p),
                        Err(_) => break,
                    },
                };
                let app = app.clone();
                tokio::spawn(async move {
                    run_job(&app, job).await;
                    drop(indexing_permit);
                    drop(permit);
                    // A free worker may take the next queued run.
                    app.engine.wake();
                });
            }
            if !full {
                break;
            }
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = app.engine.wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Stops and queued runs announced by other instances.
async fn listen(app: Arc<App>, stop: watch::Receiver<bool>) {
    let channel = app.realtime.names().control();
    let mut subscription = app.realtime.bus.subscribe(&channel).await;
    // Stops keep being heard while runs in flight drain.
    while !*stop.borrow() || !app.engine.running().is_empty() {
        match subscription.recv().await {
            Ok(Delivery::Event(event)) => match &*event {
                Event::StopRun { execution_id } => {
                    app.engine.cancel_local(*execution_id, Cancel::Stop);
                }
                Event::RunQueued => app.engine.wake(),
                _ => {}
            },
            // A missed signal is caught by the lease renewal (stops) and the poll (runs).
            Ok(Delivery::Resync) | Err(crate::realtime::bus::Missed::Lagged) => {}
            Err(crate::realtime::bus::Missed::Closed) => return,
        }
    }
}

/// Renews leases every third of the lease; finishes runs whose instance died.
async fn keep_leases(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let lease = app.engine.config.lease;
    let every = (lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(every) => {}
        }
        // Shutting down: leases are renewed until the runs in flight have drained.
        if *stop.borrow() && app.engine.running().is_empty() {
            return;
        }
        if let Err(e) = renew(&app).await {
            tracing::warn!(error = ?e, "cannot renew run leases");
        }
        if let Err(e) = recover(&app).await {
            tracing::warn!(error = ?e, "cannot finish interrupted runs");
        }
        if let Err(e) = super::late_ends::end_streams(&app).await {
            tracing::debug!(error = ?e, "cannot end streams left without their end");
        }
    }
}

async fn renew(app: &App) -> AppResult<()> {
    let running = app.engine.running();
    if running.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = running.iter().map(|(id, _)| *id).collect();
    let mut conn = app.engine.pool.get().await?;
    let leases = queue::renew(
        &mut conn,
        &app.engine.instance,
        &ids,
        app.engine.config.lease,
    )
    .await?;
    for (id, handle) in running {
        match leases.iter().find(|l| l.subject == id) {
            Some(lease) if lease.stop_requested => handle.cancel(Cancel::Stop),
            Some(_) => {}
            // Taken over or finished elsewhere (a stop of a queued run, an expired lease).
            None => handle.cancel(Cancel::LeaseLost),
        }
    }
    Ok(())
}

async fn recover(app: &App) -> AppResult<()> {
    loop {
        let mut conn = app.engine.pool.get().await?;
        let Some(job) =
            queue::claim_expired(&mut conn, &app.engine.instance, app.engine.config.lease).await?
        else {
            return Ok(());
        };
        drop(conn);
        match job.execution_id {
            Some(execution_id) => {
                tracing::warn!(%execution_id, "finishing a run whose instance stopped");
                let mut outcome = Outcome::failed("interrupted: the instance running it stopped");
                // What the reply had streamed is kept as its content.
                if let Some(message_id) = job.message_id {
                    match app.realtime.streamed_text(message_id).await {
                        Ok((text, seq)) => {
                            outcome.answer = text;
                            outcome.reply_seq = seq;
                        }
                        Err(e) => {
                            tracing::warn!(%message_id, error = ?e, "cannot read what an interrupted reply streamed");
                        }
                    }
                }
                finish::finish(app, execution_id, job.message_id, &outcome, None).await?;
            }
            None => crate::knowledge::indexing::recover(app, &job).await?,
        }
    }
}

/// What a claimed run needs, read when it starts.
struct Started {
    execution: ExecutionRecord,
    graph: Graph,
    history: Vec<ChatMessage>,
}

/// Marks the run RUNNING (and its message STREAMING) and reads its graph and history;
/// `None` when it has already ended (stopped while queued).
async fn begin(app: &App, job: &Job, execution_id: Uuid) -> AppResult<Option<Started>> {
    let mut conn = app.engine.pool.get().await?;
    let execution: Option<ExecutionRecord> = diesel::update(
        execution_records::table
            .find(execution_id)
            .filter(execution_records::status.eq("QUEUED")),
    )
    .set((
        execution_records::status.eq("RUNNING"),
        execution_records::started_at.eq(Some(chrono::Utc::now())),
    ))
    .returning(ExecutionRecord::as_returning())
    .prepared()
    .get_result(&mut conn)
    .await
    .optional()?;
    let Some(execution) = execution else {
        queue::complete(&mut conn, execution_id).await?;
        return Ok(None);
    };
    // A stop sent between the claim and now found no run here to cancel.
    let stop_requested: bool = execution_jobs::table
        .filter(execution_jobs::execution_id.eq(execution_id))
        .select(execution_jobs::stop_requested)
        .first(&mut conn)
        .await
        .optional()?
        .unwrap_or(false);
    if stop_requested {
        app.engine.cancel_local(execution_id, Cancel::Stop);
    }
    let graph: Value = workflow_versions::table
        .find(execution.version_id)
        .select(workflow_versions::graph)
        .first(&mut conn)
        .await?;
    let graph: Graph = serde_json::from_value(graph)
        .map_err(|e| AppError::internal(format!("a stored graph does not parse: {e}")))?;
    let mut history = Vec::new();
    if let Some(message_id) = job.message_id {
        let message: Option<Message> = diesel::update(
            messages::table
                .find(message_id)
                .filter(messages::status.eq("PENDING")),
        )
        .set(messages::status.eq("STREAMING"))
        .returning(Message::as_returning())
        .prepared()
        .get_result(&mut conn)
        .await
        .optional()?;
        if let Some(message) = message {
            let mut earlier: Vec<Message> = messages::table
                .filter(messages::conversation_id.eq(message.conversation_id))
                // Before the question this reply answers (sequence_number - 1).
                .filter(messages::sequence_number.lt(message.sequence_number - 1))
                .filter(messages::status.eq("COMPLETED"))
                .order(messages::sequence_number.desc())
                .limit(HISTORY_MESSAGES)
                .select(Message::as_select())
                .load(&mut conn)
                .await?;
            earlier.reverse();
            history = earlier
                .into_iter()
                .map(|m| match m.role.as_str() {
                    "USER" => ChatMessage::new("user", m.content),
                    "ASSISTANT" => ChatMessage::new("assistant", m.answer.unwrap_or(m.content)),
                    _ => ChatMessage::new("system", m.content),
                })
                .collect();
        }
    }
    drop(conn);
    Ok(Some(Started {
        execution,
        graph,
        history,
    }))
}

async fn run_job(app: &App, job: Job) {
    match job.execution_id {
        Some(execution_id) => run_execution(app, job, execution_id).await,
        None => crate::knowledge::indexing::run_job(app, job).await,
    }
}

async fn run_execution(app: &App, job: Job, execution_id: Uuid) {
    let handle = app.engine.register(execution_id);
    if job.stop_requested {
        handle.cancel(Cancel::Stop);
    }
    let mut events = None;
    let outcome = match begin(app, &job, execution_id).await {
        Ok(None) => {
            app.engine.unregister(execution_id);
            return;
        }
        Ok(Some(started)) => {
            let stream = events.insert(RunStream::start(app.realtime.clone(), execution_id));
            stream.send(ExecutionEvent::of_run(
                ExecutionEventKind::ExecutionStarted,
                started.execution.clone(),
            ));
            let sys = job.context.get("sys").cloned().unwrap_or_else(|| json!({}));
            let start = started.execution.inputs.clone();
            let reply = job
                .message_id
                .map(|id| Reply::start(app.realtime.clone(), id));
            run::execute(
                app,
                &app.engine.config,
                app.engine.http.clone(),
                RunInput {
                    execution: started.execution,
                    graph: started.graph,
                    sys,
                    start,
                    history: started.history,
                    reply,
                },
                stream,
                handle.token.clone(),
            )
            .await
        }
        Err(e) => {
            tracing::error!(execution_id = %execution_id, error = ?e, "cannot start a run");
            Outcome::failed("the run could not start")
        }
    };
    let outcome = match handle.reason() {
        Some(Cancel::LeaseLost) => {
            if let Some(events) = events {
                events.abandon();
            }
            app.engine.unregister(execution_id);
            return;
        }
        Some(Cancel::Shutdown) => Outcome {
            status: "FAILED",
            error: Some("interrupted: the server stopped".into()),
            ..outcome
        },
        _ => outcome,
    };
    if let Err(e) = finish::finish(app, execution_id, job.message_id, &outcome, events).await {
        tracing::error!(execution_id = %execution_id, error = ?e, "cannot record the end of a run");
    }
    app.engine.unregister(execution_id);
}
