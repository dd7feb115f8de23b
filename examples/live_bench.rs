//! The fan-out benchmark of `bench/live`: N WebSocket subscribers (graphql-transport-ws)
//! on one message stream of a running server, events published through the real producer
//! from this process (so through Redis, as from another instance), each carrying its
//! publication time.
//!
//!   live_bench fanout SUBSCRIBERS RATE SECONDS   delivered events/s, latency p50/p99 from
//!                                                publication to receipt, lost/duplicated
//!   live_bench idle SUBSCRIBERS                  resident memory per idle subscription
//!   live_bench connections N                     the same for connections without one
//!
//! Reads WEFT_URL (the server), WEFT_PID (its process, for memory) and the server's own
//! DATABASE_URL, REDIS_URL and WEFT_REDIS_PREFIX.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;
use weft::app::App;
use weft::config::Config;
use weft::realtime::events::MessageEvent;

#[path = "support/api.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod api;
#[path = "support/fixture.rs"]
mod fixture;

use api::{Error, Socket, cpu_seconds, now_micros};

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let runtime = tokio::runtime::Runtime::new()?;
    match args.first().map(String::as_str) {
        Some("fanout") => runtime.block_on(fanout(number(1, 1000), number(2, 100), number(3, 10))),
        Some("idle") => runtime.block_on(idle(number(1, 5000), true)),
        Some("connections") => runtime.block_on(idle(number(1, 5000), false)),
        _ => Err(
            "usage: live_bench fanout SUBSCRIBERS RATE SECONDS | idle SUBSCRIBERS | connections N"
                .into(),
        ),
    }
}

struct Setup {
    /// Whether each socket subscribes (else it stays idle after connection_ack).
    subscribe: bool,
    base: String,
    token: String,
    message: Uuid,
    app: Arc<App>,
}

async fn setup() -> Result<Setup, Error> {
    let api = api::Api::from_env();
    let (token, workspace) = api.builder("live-bench").await?;
    let base = api.base;
    let app = App::start(Config::from_env()?).await?;
    let subjects = fixture::seed(&app, workspace)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Setup {
        subscribe: true,
        base,
        token,
        message: subjects.message,
        app,
    })
}

/// Opens a socket, authenticates and subscribes to the message's stream.
async fn subscriber(setup: &Setup) -> Result<Socket, Error> {
    let mut socket = api::socket(&setup.base, &setup.token).await?;
    if !setup.subscribe {
        return Ok(socket);
    }
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($m: UUID!) { messageStream(messageId: $m) { seq delta } }",
        "variables": { "m": setup.message } } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    Ok(socket)
}

async fn open_subscribers(setup: &Setup, n: u64) -> Result<Vec<Socket>, Error> {
    let sockets: Vec<Result<Socket, Error>> = futures_util::stream::iter(0..n)
        .map(|_| subscriber(setup))
        .buffer_unordered(64)
        .collect()
        .await;
    let sockets = sockets.into_iter().collect::<Result<Vec<_>, _>>()?;
    if setup.subscribe {
        wait_for_subscriptions(setup, n).await?;
    }
    Ok(sockets)
}

async fn metric(setup: &Setup, name: &str) -> Result<i64, Error> {
    let text = reqwest::get(format!("{}/metrics", setup.base))
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("{name} missing from /metrics").into())
}

async fn wait_for_subscriptions(setup: &Setup, n: u64) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(setup, "weft_subscriptions_active").await? < n as i64 {
        if Instant::now() > deadline {
            return Err("the subscriptions did not all start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The number after `"key":` (optionally quoted) in a frame, without a full JSON parse.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let rest = text[start..].trim_start_matches('"');
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[derive(Default)]
struct Received {
    latencies_us: Vec<u32>,
    lost: u64,
    duplicated: u64,
    last_seq: u64,
    last_at: Option<Instant>,
}

async fn read(mut socket: Socket, total: u64) -> Received {
    let mut got = Received::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while got.last_seq < total {
        let next = tokio::time::timeout_at(deadline, socket.next()).await;
        let Ok(Some(Ok(Message::Text(text)))) = next else {
            if matches!(next, Ok(Some(Ok(_)))) {
                continue;
            }
            break;
        };
        let (Some(seq), Some(stamp)) = (
            number_after(&text, "\"seq\":"),
            number_after(&text, "\"delta\":"),
        ) else {
            continue;
        };
        got.latencies_us
            .push(now_micros().saturating_sub(stamp).min(u32::MAX as u64) as u32);
        if seq <= got.last_seq {
            got.duplicated += 1;
            continue;
        }
        got.lost += seq - got.last_seq - 1;
        got.last_seq = seq;
        got.last_at = Some(Instant::now());
    }
    got.lost += total.saturating_sub(got.last_seq);
    got
}

async fn fanout(subscribers: u64, rate: u64, seconds: u64) -> Result<(), Error> {
    let setup = setup().await?;
    let sockets = open_subscribers(&setup, subscribers).await?;
    let total = rate * seconds;
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|socket| tokio::spawn(read(socket, total)))
        .collect();
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let server_cpu = std::env::var("WEFT_PID")
        .ok()
        .and_then(|pid| cpu_seconds(&pid).ok().map(|s| (pid, s)));
    let own_cpu = cpu_seconds("self")?;
    let catchups = metric(&setup, "weft_stream_catchups_total").await?;
    let started = Instant::now();
    let mut publish_us = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until((started + period * i as u32).into()).await;
        let before = Instant::now();
        setup
            .app
            .realtime
            .publish_message_event(MessageEvent::delta(setup.message, now_micros().to_string()))
            .await?;
        publish_us.push(before.elapsed().as_micros() as u32);
    }
    let mut latencies = Vec::new();
    let (mut lost, mut duplicated, mut last) = (0, 0, started);
    for reader in readers {
        let got = reader.await?;
        latencies.extend(got.latencies_us);
        lost += got.lost;
        duplicated += got.duplicated;
        last = last.max(got.last_at.unwrap_or(started));
    }
    latencies.sort_unstable();
    publish_us.sort_unstable();
    let pct = |v: &[u32], p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
    };
    let elapsed = last.duration_since(started).as_secs_f64();
    println!("subscribers        {subscribers}");
    println!(
        "published          {total} events at {rate}/s over {seconds} s (publish call p50 {:.2} ms, p99 {:.2} ms)",
        pct(&publish_us, 0.5),
        pct(&publish_us, 0.99)
    );
    println!(
        "delivered          {} of {} ({:.0} events/s)",
        latencies.len(),
        total * subscribers,
        latencies.len() as f64 / elapsed
    );
    println!(
        "latency            p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        pct(&latencies, 1.0)
    );
    println!("lost               {lost}");
    println!("duplicated         {duplicated}");
    println!(
        "caught up          {} times from the retained stream",
        metric(&setup, "weft_stream_catchups_total").await? - catchups
    );
    if let Some((pid, before)) = server_cpu {
        println!(
            "server CPU         {:.2} cores",
            (cpu_seconds(&pid)? - before) / elapsed
        );
    }
    println!(
        "bench client CPU   {:.2} cores",
        (cpu_seconds("self")? - own_cpu) / elapsed
    );
    Ok(())
}

fn resident_kib(pid: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

async fn idle(subscribers: u64, subscribe: bool) -> Result<(), Error> {
    let pid = std::env::var("WEFT_PID").map_err(|_| "WEFT_PID must name the server's process")?;
    let mut setup = setup().await?;
    setup.subscribe = subscribe;
    // Warm the server's paths once so the measure is of subscriptions, not first use.
    drop(open_subscribers(&setup, 10).await?);
    wait_for_quiet(&setup).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = resident_kib(&pid)?;
    let sockets = open_subscribers(&setup, subscribers).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = resident_kib(&pid)?;
    if subscribe {
        println!("idle subscriptions {subscribers} (one per WebSocket connection)");
    } else {
        println!("idle connections   {subscribers} (connection_init, no subscription)");
    }
    println!("server RSS         {before} KiB before, {after} KiB with them");
    println!(
        "per subscription   {:.1} KiB",
        (after.saturating_sub(before)) as f64 / subscribers as f64
    );
    drop(sockets);
    Ok(())
}

async fn wait_for_quiet(setup: &Setup) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(setup, "weft_subscriptions_active").await? > 0 {
        if Instant::now() > deadline {
            return Err("subscriptions did not close".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
