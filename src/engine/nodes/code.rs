//! CODE nodes: `function main(inputs)` in the JavaScript sandbox, never on an async worker,
//! at most one call a core at once. The returned object's fields are the node's outputs;
//! what the code wrote to the console is kept with the node's result.
//!
//! A call is first made where the node's task runs, that thread handing its other tasks to
//! another (`block_in_place`), for at most `IN_PLACE`: most code is done by then, and its
//! result is there without waking a blocking thread and then the task again, each a wait for
//! a core on a busy machine. Code still running then is interrupted and run again, whole,
//! on a blocking thread with its full limits (the sandbox has no effects outside the call,
//! so nothing of the first attempt remains). The run's other nodes and journal, polled by
//! the same task, wait at most `IN_PLACE` for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use super::{NodeContext, NodeOutput, text};
use crate::engine::template::Vars;
use crate::sandbox::{self, Limits};

/// The longest a call runs on the thread of the node's task.
const IN_PLACE: Duration = Duration::from_millis(2);

/// Calls of code running at once in this process: one a core, the rest wait.
fn calls() -> &'static Semaphore {
    static CALLS: std::sync::OnceLock<Semaphore> = std::sync::OnceLock::new();
    CALLS.get_or_init(|| {
        Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
    })
}

/// Interrupts the code when the node's future is dropped (the run stopped or failed).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

pub async fn run(ctx: &NodeContext<'_>, config: &Value, vars: &Vars) -> Result<NodeOutput, String> {
    let mut inputs = Map::new();
    if let Some(Value::Object(templates)) = config.get("inputs") {
        for (name, template) in templates {
            let value = vars
                .resolve(template.as_str().unwrap_or(""))
                .map_err(|e| format!("config.inputs.{name}: {e}"))?;
            inputs.insert(name.clone(), value);
        }
    }
    let inputs = Value::Object(inputs);
    let code = text(config, "code").to_string();
    let limits = Limits {
        time: ctx.config.code_timeout,
        memory_bytes: ctx.config.code_memory_mb.saturating_mul(1024 * 1024),
    };
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let asked = std::time::Instant::now();
    let permit = calls()
        .acquire()
        .await
        .map_err(|_| "the code sandbox is shutting down".to_string())?;
    let waited = asked.elapsed();
    let in_place = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    let first = in_place.then(|| {
        let quick = Limits {
            time: limits.time.min(IN_PLACE),
            ..limits
        };
        tokio::task::block_in_place(|| sandbox::run_main(&code, &inputs, quick, &cancel.0))
    });
    let placed = asked.elapsed() - waited;
    let ran = match first {
        Some(Err(failed)) if failed.out_of_time && limits.time > IN_PLACE => None,
        done => done,
    };
    tracing::debug!(
        waited_us = waited.as_micros() as u64,
        in_place_us = placed.as_micros() as u64,
        again = ran.is_none(),
        "a call of code"
    );
    let ran = match ran {
        Some(ran) => ran,
        None => {
            let given = inputs.clone();
            let flag = cancel.0.clone();
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                sandbox::run_main(&code, &given, limits, &flag)
            })
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "the code sandbox's thread failed");
                "the code sandbox failed".to_string()
            })?
        }
    };
    drop(cancel);
    match ran {
        Ok(returned) => Ok(NodeOutput {
            inputs: Some(json!({ "inputs": inputs })),
            outputs: Value::Object(returned.fields),
            console: Some(returned.console),
            ..NodeOutput::default()
        }),
        Err(failed) => {
            let mut message = failed.message;
            let tail: Vec<&String> = failed.console.iter().rev().take(5).collect();
            if !tail.is_empty() {
                message.push_str("\nconsole (last lines):");
                for line in tail.into_iter().rev() {
                    message.push('\n');
                    message.push_str(line.chars().take(500).collect::<String>().as_str());
                }
            }
            Err(message)
        }
    }
}
