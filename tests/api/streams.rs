//! Replayable streams: resuming with `after` anywhere, subscribing after the end, the final
//! state from PostgreSQL once expired, several instances on one Redis, Redis restarting
//! mid-stream, subscribers that fall behind or never read.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::live::{self, Closed, TRANSPORT_WS, Ws, seqs};
use crate::harness::{RedisServer, TestServer};
use weft::realtime::events::{ExecutionEvent, ExecutionEventKind, MessageEvent};

const MESSAGE_STREAM: &str = "subscription($m: UUID!, $after: Int) {
    messageStream(messageId: $m, after: $after) { seq kind delta text error message { id answer status } } }";
const EXECUTION_EVENTS: &str = "subscription($e: UUID!, $after: Int) {
    executionEvents(executionId: $e, after: $after) { seq kind nodeKey nodeType status execution { id status } } }";

async fn follow(
    server: &TestServer,
    token: Option<&str>,
    message: Uuid,
    after: Option<i64>,
) -> Vec<Value> {
    let mut ws = Ws::connect(server, TRANSPORT_WS, token).await;
    ws.subscribe("1", MESSAGE_STREAM, json!({ "m": message, "after": after }))
        .await;
    ws.until_complete("1").await
}

#[tokio::test]
async fn resuming_after_any_seq_delivers_the_rest_once_and_in_order() {
    let server = TestServer::start().await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;

    // A subscriber from the start, while the reply is being produced.
    let mut early = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    early
        .subscribe("1", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    live::publish_deltas(&server, s.message, 1..=3).await;
    let first = early.take("1", 3).await;
    assert_eq!(seqs(&first, "messageStream"), vec![1, 2, 3]);
    assert_eq!(first[0]["data"]["messageStream"]["delta"], "w1 ");

    live::publish_deltas(&server, s.message, 4..=10).await;
    let end_seq = live::finish(&server, s.message, "the answer").await;
    assert_eq!(end_seq, 11);
    let rest = early.until_complete("1").await;
    assert_eq!(seqs(&rest, "messageStream"), (4..=11).collect::<Vec<_>>());
    let end = &rest.last().expect("END")["data"]["messageStream"];
    assert_eq!(end["kind"], "END");
    assert_eq!(end["message"]["answer"], "the answer");
    assert_eq!(end["message"]["status"], "COMPLETED");

    // After the end, from several points: the retained events after N, then complete.
    for after in [0, 1, 5, 10, 11, 40] {
        let events = follow(&server, owner.token(), s.message, Some(after)).await;
        let expected: Vec<i64> = ((after + 1)..=11).collect();
        assert_eq!(seqs(&events, "messageStream"), expected, "after {after}");
    }
    let all = follow(&server, owner.token(), s.message, None).await;
    let text: String = all
        .iter()
        .filter_map(|p| p["data"]["messageStream"]["delta"].as_str())
        .collect();
    assert_eq!(text, "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 ");
}

#[tokio::test]
async fn a_subscriber_racing_the_producer_sees_no_gap_and_no_repeat() {
    let server = TestServer::start().await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;

    let app = server.app.clone();
    let message = s.message;
    let producer = tokio::spawn(async move {
        for n in 1..=300 {
            app.realtime
                .publish_message_event(MessageEvent::delta(message, format!("{n},")))
                .await
                .expect("published");
            if n % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    // Subscribers join at different moments of production, resuming from different points.
    let mut joined = Vec::new();
    for (i, after) in [0_i64, 0, 20, 100].into_iter().enumerate() {
        let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
        ws.subscribe(
            &i.to_string(),
            MESSAGE_STREAM,
            json!({ "m": s.message, "after": after }),
        )
        .await;
        joined.push((i.to_string(), after, ws));
    }
    producer.await.expect("producer");
    live::finish(&server, s.message, "done").await;
    for (id, after, mut ws) in joined {
        let events = ws.until_complete(&id).await;
        assert_eq!(
            seqs(&events, "messageStream"),
            ((after + 1)..=301).collect::<Vec<_>>(),
            "subscriber {id} from {after}"
        );
    }
}

#[tokio::test]
async fn an_expired_stream_ends_with_one_end_carrying_the_stored_message() {
    let server = TestServer::start().await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;
    live::publish_deltas(&server, s.message, 1..=4).await;
    live::finish(&server, s.message, "stored answer").await;

    // What expiry does to the retained stream: its keys are gone.
    let prefix = server.app.config.redis_prefix.clone();
    let client = redis::Client::open(crate::harness::server::redis_url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let removed: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}stream:message:{}", s.message))
        .arg(format!("{prefix}stream:message:{}:meta", s.message))
        .query_async(&mut conn)
        .await
        .expect("DEL");
    assert_eq!(removed, 2, "the stream's two keys existed");

    let events = follow(&server, owner.token(), s.message, Some(2)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let end = &events[0]["data"]["messageStream"];
    assert_eq!(end["kind"], "END");
    assert_eq!(end["seq"], 3);
    assert_eq!(end["message"]["answer"], "stored answer");

    // A running execution whose stream is gone waits for what comes next instead.
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe("e", EXECUTION_EVENTS, json!({ "e": s.execution }))
        .await;
    let record = live::execution_row(&server, s.execution).await;
    // Published until the subscriber has surely joined: it sees them from seq 1 on.
    server
        .app
        .realtime
        .publish_execution_event(ExecutionEvent::of_run(
            ExecutionEventKind::ExecutionStarted,
            record,
        ))
        .await
        .expect("published");
    let started = ws.take("e", 1).await;
    assert_eq!(
        started[0]["data"]["executionEvents"]["kind"],
        "EXECUTION_STARTED"
    );
    assert_eq!(started[0]["data"]["executionEvents"]["seq"], 1);
}

#[tokio::test]
async fn a_stream_published_on_one_instance_is_followed_and_resumed_on_another() {
    let a = TestServer::start().await;
    let b = a.beside().await;
    let (owner, _, s) = live::owner_with_subjects(&a).await;

    // Published through A, received on B.
    let mut on_b = Ws::connect(&b, TRANSPORT_WS, owner.token()).await;
    on_b.subscribe("b", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    let mut on_a = Ws::connect(&a, TRANSPORT_WS, owner.token()).await;
    on_a.subscribe("a", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    live::publish_deltas(&a, s.message, 1..=5).await;
    assert_eq!(
        seqs(&on_b.take("b", 5).await, "messageStream"),
        vec![1, 2, 3, 4, 5]
    );

    // A reader on A drops after 3 events and resumes on B while production goes on.
    let seen = on_a.take("a", 3).await;
    let last = seqs(&seen, "messageStream")[2];
    drop(on_a);
    live::publish_deltas(&a, s.message, 6..=8).await;
    let mut resumed = Ws::connect(&b, TRANSPORT_WS, owner.token()).await;
    resumed
        .subscribe(
            "r",
            MESSAGE_STREAM,
            json!({ "m": s.message, "after": last }),
        )
        .await;
    live::publish_deltas(&b, s.message, 9..=10).await;
    live::finish(&a, s.message, "ok").await;
    let rest = resumed.until_complete("r").await;
    assert_eq!(seqs(&rest, "messageStream"), (4..=11).collect::<Vec<_>>());
    assert_eq!(
        seqs(&on_b.until_complete("b").await, "messageStream"),
        (6..=11).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn redis_restarting_mid_stream_loses_no_event() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let server = TestServer::start_with(|c| c.redis = weft::config::RedisConfig::Url(url)).await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;

    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe("1", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    live::publish_deltas(&server, s.message, 1..=5).await;
    assert_eq!(
        seqs(&ws.take("1", 5).await, "messageStream"),
        vec![1, 2, 3, 4, 5]
    );

    redis.stop();
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(body["redis"], "down");
    // Queries do not need Redis.
    let me = server
        .graphql_as(owner.token(), "{ me { email } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["email"], "owner@example.com");

    redis.restart();
    // The producer retries as the engine would until Redis answers again.
    for n in 6..=10 {
        let event = || MessageEvent::delta(s.message, format!("w{n} "));
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while server
            .app
            .realtime
            .publish_message_event(event())
            .await
            .is_err()
        {
            assert!(std::time::Instant::now() < deadline, "Redis came back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    live::finish(&server, s.message, "after the restart").await;
    let rest = ws.until_complete("1").await;
    assert_eq!(seqs(&rest, "messageStream"), (6..=11).collect::<Vec<_>>());
    assert_eq!(server.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn a_subscriber_behind_the_fan_out_buffer_is_caught_up_from_the_stream() {
    // Two events of buffer per stream: any subscriber falls behind at once.
    let server = TestServer::start_with(|c| c.realtime.fanout_buffer = 2).await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;

    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe("1", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    live::publish_deltas(&server, s.message, 1..=1).await;
    ws.take("1", 1).await;
    live::publish_deltas(&server, s.message, 2..=400).await;
    live::finish(&server, s.message, "long").await;
    let rest = ws.until_complete("1").await;
    assert_eq!(seqs(&rest, "messageStream"), (2..=401).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_without_holding_back_the_others() {
    let server = TestServer::start_with(|c| c.realtime.send_timeout = Duration::from_secs(1)).await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;

    let mut stalled = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    stalled
        .subscribe("s", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    let mut reader = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    reader
        .subscribe("r", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    // 1,500 deltas of 16 KiB (24 MiB): far more than the kernel's socket buffers hold.
    let chunk = "x".repeat(16 << 10);
    let app = server.app.clone();
    let message = s.message;
    let producer = tokio::spawn(async move {
        for _ in 0..1500 {
            app.realtime
                .publish_message_event(MessageEvent::delta(message, chunk.clone()))
                .await
                .expect("published");
        }
    });
    let read = reader.take("r", 1500).await;
    assert_eq!(seqs(&read, "messageStream"), (1..=1500).collect::<Vec<_>>());
    producer.await.expect("producer");

    // The stalled client is closed by the server: only the reader's subscription remains.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server
        .app
        .metrics
        .subscriptions_active
        .load(std::sync::atomic::Ordering::Relaxed)
        > 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled client was closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reading now, it finds the connection ended; resuming loses nothing.
    let ended = stalled.closed().await;
    assert!(matches!(ended, Closed::Dropped | Closed::Code(_)));
    live::finish(&server, s.message, "done").await;
    let again = follow(&server, owner.token(), s.message, Some(0)).await;
    assert_eq!(
        seqs(&again, "messageStream"),
        (1..=1501).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_memory_bus_replays_like_redis() {
    let server = TestServer::start_with(|c| c.redis = weft::config::RedisConfig::Memory).await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe("1", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    live::publish_deltas(&server, s.message, 1..=5).await;
    assert_eq!(
        seqs(&ws.take("1", 5).await, "messageStream"),
        vec![1, 2, 3, 4, 5]
    );
    live::finish(&server, s.message, "mem").await;
    assert_eq!(
        seqs(&ws.until_complete("1").await, "messageStream"),
        vec![6]
    );
    let events = follow(&server, owner.token(), s.message, Some(3)).await;
    assert_eq!(seqs(&events, "messageStream"), vec![4, 5, 6]);
    // A finished stream takes nothing more.
    let refused = server
        .app
        .realtime
        .publish_message_event(MessageEvent::delta(s.message, "late"))
        .await;
    assert!(matches!(refused, Err(weft::error::AppError::Conflict(_))));
}

#[tokio::test]
async fn the_bus_connection_outlives_its_keep_alive_pings() {
    let server = TestServer::start().await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe("1", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    live::subscribed(&server, 1).await;
    // Longer than the pub/sub connection's ping interval (5 s): a ping answered in the
    // subscribed mode must not be taken for a lost connection (which would make every
    // subscriber catch up from Redis).
    tokio::time::sleep(Duration::from_secs(6)).await;
    live::publish_deltas(&server, s.message, 1..=1).await;
    assert_eq!(seqs(&ws.take("1", 1).await, "messageStream"), vec![1]);
    let catchups = server
        .app
        .metrics
        .stream_catchups
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(catchups, 0, "the bus did not reconnect");
}
