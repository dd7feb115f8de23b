//! Drives streams for out-of-process clients (tests/clients, bench/live): creates an
//! application with a conversation, an assistant message and an execution in a workspace,
//! prints their ids as one JSON line, then publishes through the real producer as told on
//! stdin, one command per line:
//!
//!   deltas N      publish N DELTA events on the message ("ok <last seq>")
//!   end           mark the message COMPLETED and publish END ("ok <seq>")
//!   stamp N R     publish N deltas at R per second, each carrying its publication time in
//!                 microseconds since the Unix epoch ("ok <last seq>"), for latency benches
//!
//! It reads the server's environment (DATABASE_URL, REDIS_URL, WEFT_REDIS_PREFIX, ...):
//!
//!   target/debug/examples/stream_driver <workspace-id>

use std::io::{BufRead, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;
use weft::app::App;
use weft::config::Config;
use weft::db::models::Message;
use weft::db::schema::messages;
use weft::realtime::events::MessageEvent;

#[path = "support/fixture.rs"]
mod fixture;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workspace: Uuid = std::env::args()
        .nth(1)
        .ok_or("usage: stream_driver <workspace-id>")?
        .parse()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(drive(workspace))
}

async fn drive(workspace: Uuid) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let app = App::start(config).await?;
    let subjects = fixture::seed(&app, workspace).await?;
    let message = subjects.message;
    let mut conn = app.pool.get().await?;
    println!(
        "{}",
        serde_json::json!({
            "application": subjects.application, "conversation": subjects.conversation,
            "message": subjects.message, "execution": subjects.execution,
        })
    );
    std::io::stdout().flush()?;

    let realtime = app.realtime.clone();
    // Commands are read line by line as they come.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut n = 0_u64;
    while let Some(line) = rx.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let seq = match words.as_slice() {
            ["deltas", count] => {
                let mut seq = 0;
                for _ in 0..count.parse::<u64>()? {
                    n += 1;
                    seq = realtime
                        .publish_message_event(MessageEvent::delta(message, format!("t{n} ")))
                        .await?;
                }
                seq
            }
            ["stamp", count, rate] => {
                let count: u64 = count.parse()?;
                let period = Duration::from_secs_f64(1.0 / rate.parse::<f64>()?);
                let start = Instant::now();
                let mut seq = 0;
                for i in 0..count {
                    tokio::time::sleep_until((start + period * i as u32).into()).await;
                    let micros = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros();
                    seq = realtime
                        .publish_message_event(MessageEvent::delta(message, micros.to_string()))
                        .await?;
                }
                seq
            }
            ["end"] => {
                let row: Message = diesel::update(messages::table.find(message))
                    .set((
                        messages::status.eq("COMPLETED"),
                        messages::answer.eq("driven"),
                    ))
                    .returning(Message::as_returning())
                    .get_result(&mut conn)
                    .await?;
                realtime
                    .publish_message_event(MessageEvent::end(row))
                    .await?
            }
            _ => return Err(format!("unknown command {line:?}").into()),
        };
        println!("ok {seq}");
        std::io::stdout().flush()?;
    }
    Ok(())
}
