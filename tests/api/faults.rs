//! Streams through faults: Redis restarted in the middle of a reply, with and without
//! persistence, two instances sharing it, and a chat client on the other instance that
//! resumes with `after` whenever its subscription ends. It gets every token exactly once.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::chat::{STREAM, chat_app, send, text_of};
use crate::harness::live::{TRANSPORT_WS, Ws, message_row};
use crate::harness::model_server::ModelServer;
use crate::harness::{RedisServer, TestServer};

/// What a chat UI does: follow the reply, and subscribe again after the last `seq` seen
/// whenever the subscription or the socket ends before END.
async fn follow_resuming(server: &TestServer, key: &str, message: &str) -> Vec<Value> {
    let instances = Mutex::new(vec![server.ws_url("/graphql")]);
    follow_through(&instances, key, message).await
}

/// The same behind a load balancer: each connection goes to the next of `instances` (the
/// WebSocket URLs of those in service) that accepts it.
async fn follow_through(instances: &Mutex<Vec<String>>, key: &str, message: &str) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut attempt = 0;
    'connections: loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the reply ends in time"
        );
        attempt += 1;
        let url = {
            let urls = instances.lock().unwrap();
            urls[attempt % urls.len()].clone()
        };
        let Ok(mut ws) = Ws::open_url(&url, TRANSPORT_WS, &[]).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue 'connections;
        };
        ws.init(Some(key)).await;
        match ws.next_json().await {
            Some(ack) if ack["type"] == "connection_ack" => {}
            _ => continue 'connections,
        }
        let after = events
            .last()
            .map(|e| e["data"]["messageStream"]["seq"].as_i64().unwrap())
            .unwrap_or(0);
        ws.subscribe("1", STREAM, json!({ "id": message, "after": after }))
            .await;
        loop {
            let Some(frame) = ws.next_json().await else {
                continue 'connections;
            };
            match frame["type"].as_str() {
                Some("next") if frame["payload"]["errors"].is_null() => {
                    let event = frame["payload"].clone();
                    let kind = event["data"]["messageStream"]["kind"].clone();
                    events.push(event);
                    if kind == "END" || kind == "ERROR" {
                        return events;
                    }
                }
                // An error or an early end: resume from the last seq seen.
                _ => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'connections;
                }
            }
        }
    }
}

async fn a_reply_survives_a_redis_restart(mut redis: RedisServer) {
    let models = ModelServer::start().await;
    let url = redis.url();
    let a = TestServer::start_with(|c| c.redis = weft::config::RedisConfig::Url(url)).await;
    let b = a.beside().await;
    let app = chat_app(&a, &models.base_url, "slow", None).await;
    let sent = send(&a, &app, "Count", None).await;
    let message = sent["assistantMessage"]["id"].as_str().unwrap().to_string();

    let client = follow_resuming(&b, &app.key, &message);
    let fault = async {
        // A second into the reply (500 tokens, 20 ms each), Redis goes away and comes back.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        redis.restart();
    };
    let (events, ()) = tokio::join!(client, fault);

    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["data"]["messageStream"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "in order, none twice, no gap"
    );
    let stored = message_row(&a, message.parse().unwrap()).await;
    assert_eq!(stored.status, "COMPLETED");
    let expected: String = (0..500).map(|i| format!("t{i} ")).collect();
    assert_eq!(stored.content, expected);
    assert_eq!(text_of(&events), expected, "every token, once");
    let last = &events.last().unwrap()["data"]["messageStream"];
    assert_eq!(last["kind"], "END");
    // Read again from the start, the stream is the one the client followed, whatever Redis
    // kept.
    let again = follow_resuming(&a, &app.key, &message).await;
    let seqs_again: Vec<i64> = again
        .iter()
        .map(|e| e["data"]["messageStream"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs_again, seqs);
    assert_eq!(text_of(&again), expected);
}

#[tokio::test]
async fn a_reply_loses_no_token_when_redis_restarts_with_its_data() {
    a_reply_survives_a_redis_restart(RedisServer::start()).await;
}

#[tokio::test]
async fn a_reply_loses_no_token_when_redis_restarts_empty() {
    a_reply_survives_a_redis_restart(RedisServer::start_without_persistence()).await;
}

#[tokio::test]
async fn feeds_deliver_what_changed_while_redis_was_away() {
    let mut redis = RedisServer::start_without_persistence();
    let url = redis.url();
    let server = TestServer::start_with(|c| c.redis = weft::config::RedisConfig::Url(url)).await;
    let (owner, tenant, s) = crate::harness::live::owner_with_subjects(&server).await;
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe(
        "runs",
        "subscription($w: UUID!) { workspaceExecutions(workspaceId: $w, includeActive: false) { id status } }",
        json!({ "w": tenant.workspace_id }),
    )
    .await;
    ws.subscribe(
        "talk",
        "subscription($c: UUID!) { conversationEvents(conversationId: $c) { id status } }",
        json!({ "c": s.conversation }),
    )
    .await;
    ws.subscribe(
        "doc",
        "subscription($d: UUID!) { documentIndexing(documentId: $d) { id indexingStatus } }",
        json!({ "d": s.document }),
    )
    .await;
    crate::harness::live::subscribed(&server, 3).await;
    // The document's current state comes first.
    let first = ws.next_json().await.expect("the document's state");
    assert_eq!(first["id"], "doc", "{first}");
    assert_eq!(
        first["payload"]["data"]["documentIndexing"]["indexingStatus"],
        "WAITING"
    );

    // While Redis is away the run and the reply finish; nobody can announce it.
    redis.stop();
    {
        use diesel_async::RunQueryDsl;
        let mut conn = server.app.pool.get().await.unwrap();
        for sql in [
            format!(
                "UPDATE execution_records SET status = 'SUCCEEDED', finished_at = now() WHERE id = '{}'",
                s.execution
            ),
            format!(
                "UPDATE messages SET status = 'COMPLETED', content = 'done' WHERE id = '{}'",
                s.message
            ),
            format!(
                "UPDATE documents SET indexing_status = 'COMPLETED', progress = 1 WHERE id = '{}'",
                s.document
            ),
        ] {
            diesel::sql_query(sql).execute(&mut conn).await.unwrap();
        }
    }
    redis.restart();

    // Back: each feed gives the current state of what changed, once.
    let mut got = std::collections::BTreeMap::new();
    while got.len() < 3 {
        let frame = ws.next_json().await.expect("the feeds go on");
        if frame["type"] == "complete" && frame["id"] == "doc" {
            // documentIndexing completes after COMPLETED.
            continue;
        }
        assert_eq!(frame["type"], "next", "{frame}");
        let id = frame["id"].as_str().unwrap().to_string();
        assert!(
            got.insert(id, frame["payload"]["data"].clone()).is_none(),
            "once"
        );
    }
    let run = &got["runs"]["workspaceExecutions"];
    assert_eq!(run["id"], s.execution.to_string());
    assert_eq!(run["status"], "SUCCEEDED");
    let talk = &got["talk"]["conversationEvents"];
    assert_eq!(talk["id"], s.message.to_string());
    assert_eq!(talk["status"], "COMPLETED");
    assert_eq!(
        got["doc"]["documentIndexing"]["indexingStatus"],
        "COMPLETED"
    );
}

#[tokio::test]
async fn the_end_standing_for_an_expired_stream_carries_its_real_last_seq() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let sent = send(&server, &app, "Hello", None).await;
    let message = sent["assistantMessage"]["id"].as_str().unwrap().to_string();
    let events = follow_resuming(&server, &app.key, &message).await;
    let last_seq = events.last().unwrap()["data"]["messageStream"]["seq"]
        .as_i64()
        .unwrap();
    let id: uuid::Uuid = message.parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while message_row(&server, id).await.stream_seq.is_none() {
        assert!(std::time::Instant::now() < deadline, "the seq is kept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(message_row(&server, id).await.stream_seq, Some(last_seq));

    // What expiry does to the retained stream: its keys are gone.
    let prefix = server.app.config.redis_prefix.clone();
    let client = redis::Client::open(crate::harness::server::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}stream:message:{message}"))
        .arg(format!("{prefix}stream:message:{message}:meta"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let again = follow_resuming(&server, &app.key, &message).await;
    assert_eq!(again.len(), 1, "{again:?}");
    let end = &again[0]["data"]["messageStream"];
    assert_eq!(end["kind"], "END");
    assert_eq!(end["seq"], last_seq, "the seq the stream really ended at");
}

#[tokio::test]
async fn a_reply_running_on_an_instance_told_to_stop_completes_first() {
    let models = ModelServer::start().await;
    // The instance that runs the reply, and one that only serves (no workers).
    let mut runner =
        TestServer::start_with(|c| c.realtime.shutdown_timeout = Duration::from_secs(30)).await;
    let server = runner.beside_with(|c| c.engine.workers = 0).await;
    let app = chat_app(&server, &models.base_url, "slow", None).await;
    let sent = send(&server, &app, "Count", None).await;
    let message = sent["assistantMessage"]["id"].as_str().unwrap().to_string();
    let id: uuid::Uuid = message.parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while message_row(&server, id).await.status != "STREAMING" {
        assert!(std::time::Instant::now() < deadline, "the reply starts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // SIGTERM to the runner a moment into the reply: it stops taking work, lets the reply
    // finish, and only then exits; the client on the other instance sees all of it.
    let client = follow_resuming(&server, &app.key, &message);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        runner.shut_down().await.expect("the runner exits");
    };
    let (events, ()) = tokio::join!(client, stop);
    let stored = message_row(&server, id).await;
    assert_eq!(stored.status, "COMPLETED", "{:?}", stored.error);
    let expected: String = (0..500).map(|i| format!("t{i} ")).collect();
    assert_eq!(stored.content, expected);
    assert_eq!(text_of(&events), expected);
}

/// A run whose LLM node streams for about 10 s, Redis away from `away_from` after the node
/// started for `away_for`, a subscriber following its events throughout: they arrive in
/// order, numbered 1..n, and the run's end arrives. A subscriber from the start afterwards
/// gets the same history, whatever Redis kept.
async fn a_run_through_an_outage(mut redis: RedisServer, away_from: Duration, away_for: Duration) {
    let models = ModelServer::start().await;
    let url = redis.url();
    let server = TestServer::start_with(|c| c.redis = weft::config::RedisConfig::Url(url)).await;
    let app = chat_app(&server, &models.base_url, "slow", None).await;
    let graph = json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [] } },
            { "key": "llm", "type": "LLM", "config": {
                "providerId": app.provider, "model": "slow", "prompt": "Count" } },
            { "key": "end", "type": "END", "config": { "outputs": { "text": "{{llm.text}}" } } }
        ],
        "connections": [
            { "source": "start", "target": "llm" },
            { "source": "llm", "target": "end" }
        ]
    });
    let flow = crate::harness::chat::workflow(&server, &app.owner, &app.tenant, graph).await;
    let run = crate::harness::accounts::data(
        server
            .graphql_as(
                app.owner.token(),
                "mutation($i: RunWorkflowInput!) { runWorkflow(input: $i) { id } }",
                json!({ "i": { "workflowId": flow, "inputs": {} } }),
            )
            .await,
    )["runWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = Ws::connect(&server, TRANSPORT_WS, app.owner.token()).await;
    ws.subscribe(
        "1",
        "subscription($e: UUID!) { executionEvents(executionId: $e) { seq kind nodeKey status } }",
        json!({ "e": run }),
    )
    .await;
    // Until the LLM node starts.
    let mut events = Vec::new();
    loop {
        let event = ws.take("1", 1).await.remove(0);
        let started = event["data"]["executionEvents"]["kind"] == "NODE_STARTED"
            && event["data"]["executionEvents"]["nodeKey"] == "llm";
        events.push(event);
        if started {
            break;
        }
    }
    tokio::time::sleep(away_from).await;
    redis.stop();
    tokio::time::sleep(away_for).await;
    redis.restart();
    events.extend(ws.until_complete("1").await);
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            let e = &e["data"]["executionEvents"];
            format!(
                "{} {}",
                e["kind"].as_str().unwrap_or("?"),
                e["nodeKey"].as_str().unwrap_or("-")
            )
        })
        .collect();
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["data"]["executionEvents"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"NODE_FINISHED llm".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"NODE_FINISHED end".to_string()),
        "{kinds:?}"
    );
    assert_eq!(kinds.last().unwrap(), "EXECUTION_FINISHED -");
    let mut again = Ws::connect(&server, TRANSPORT_WS, app.owner.token()).await;
    again
        .subscribe(
            "2",
            "subscription($e: UUID!) { executionEvents(executionId: $e) { seq kind nodeKey status } }",
            json!({ "e": run }),
        )
        .await;
    let replayed = again.until_complete("2").await;
    let replayed: Vec<&Value> = replayed
        .iter()
        .map(|e| &e["data"]["executionEvents"])
        .collect();
    let followed: Vec<&Value> = events
        .iter()
        .map(|e| &e["data"]["executionEvents"])
        .collect();
    assert_eq!(replayed, followed);
}

#[tokio::test]
async fn node_events_published_while_redis_is_away_arrive_in_order() {
    // Away from 8 s to 12 s: when the node finishes.
    a_run_through_an_outage(
        RedisServer::start(),
        Duration::from_secs(8),
        Duration::from_secs(4),
    )
    .await;
}

#[tokio::test]
async fn node_events_wait_out_a_long_outage() {
    // Away from 8 s for 15 s: the node and the run end while Redis is away; every event
    // arrives once it is back.
    a_run_through_an_outage(
        RedisServer::start(),
        Duration::from_secs(8),
        Duration::from_secs(15),
    )
    .await;
}

#[tokio::test]
async fn a_run_goes_on_numbering_after_redis_comes_back_empty() {
    // Away briefly mid-node, back with nothing: the run's stream goes on after its last seq.
    a_run_through_an_outage(
        RedisServer::start_without_persistence(),
        Duration::from_secs(3),
        Duration::from_millis(500),
    )
    .await;
}

#[tokio::test]
async fn a_rolling_deploy_of_two_instances_loses_no_reply() {
    let models = ModelServer::start().await;
    // Two workers an instance, five replies of about 10 s: one waits in the queue.
    let adjust = |c: &mut weft::config::Config| {
        c.engine.workers = 2;
        c.realtime.shutdown_timeout = Duration::from_secs(40);
    };
    let mut a = TestServer::start_with(adjust).await;
    let mut b = a.beside().await;
    let instances = Mutex::new(vec![a.ws_url("/graphql"), b.ws_url("/graphql")]);
    let app = chat_app(&a, &models.base_url, "slow", None).await;
    let mut messages = Vec::new();
    for i in 0..5 {
        let sent = send(if i % 2 == 0 { &a } else { &b }, &app, "Count", None).await;
        messages.push(sent["assistantMessage"]["id"].as_str().unwrap().to_string());
    }
    let clients = futures_util::future::join_all(
        messages
            .iter()
            .map(|m| follow_through(&instances, &app.key, m)),
    );
    // The deploy: a new instance comes up, the old one leaves the balancer and gets SIGTERM
    // (its replies finish, its clients move), then the same for the other one.
    let deploy = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let a2 = b.beside_with(adjust).await;
        {
            let mut urls = instances.lock().unwrap();
            urls.retain(|u| *u != a.ws_url("/graphql"));
            urls.push(a2.ws_url("/graphql"));
        }
        a.shut_down().await.expect("the first instance exits");
        let b2 = a2.beside_with(adjust).await;
        {
            let mut urls = instances.lock().unwrap();
            urls.retain(|u| *u != b.ws_url("/graphql"));
            urls.push(b2.ws_url("/graphql"));
        }
        b.shut_down().await.expect("the second instance exits");
        (a2, b2)
    };
    let (followed, (a2, _b2)) = tokio::join!(clients, deploy);
    let expected: String = (0..500).map(|i| format!("t{i} ")).collect();
    for (message, events) in messages.iter().zip(&followed) {
        let stored = message_row(&a2, message.parse().unwrap()).await;
        assert_eq!(stored.status, "COMPLETED", "{:?}", stored.error);
        assert_eq!(stored.content, expected);
        assert_eq!(
            text_of(events),
            expected,
            "what the client of {message} saw"
        );
        let seqs: Vec<i64> = events
            .iter()
            .map(|e| e["data"]["messageStream"]["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_reply_that_ends_while_redis_is_away_too_long_still_gets_its_end() {
    let models = ModelServer::start().await;
    let mut redis = RedisServer::start();
    let url = redis.url();
    // Its publishers wait 2 s for Redis; leases (and the round that ends such streams) every
    // second.
    let server = TestServer::start_with(|c| {
        c.redis = weft::config::RedisConfig::Url(url);
        c.realtime.publish_patience = Duration::from_secs(2);
        c.engine.lease = Duration::from_secs(3);
    })
    .await;
    let app = chat_app(&server, &models.base_url, "slow", None).await;
    let sent = send(&server, &app, "Count", None).await;
    let message = sent["assistantMessage"]["id"].as_str().unwrap().to_string();
    let id: uuid::Uuid = message.parse().unwrap();
    let client = follow_resuming(&server, &app.key, &message);
    let outage = async {
        // Away from 8 s into the 10 s reply until well after it ended and gave up.
        tokio::time::sleep(Duration::from_secs(8)).await;
        redis.stop();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while message_row(&server, id).await.status == "STREAMING" {
            assert!(std::time::Instant::now() < deadline, "the reply ends");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        redis.restart();
    };
    let (events, ()) = tokio::join!(client, outage);
    let expected: String = (0..500).map(|i| format!("t{i} ")).collect();
    let end = &events.last().unwrap()["data"]["messageStream"];
    assert_eq!(end["kind"], "END", "{end}");
    assert_eq!(end["message"]["status"], "COMPLETED");
    assert_eq!(end["message"]["content"], expected.as_str());
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["data"]["messageStream"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    // The number it ended at is kept for the END that stands for it after expiry.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while message_row(&server, id).await.stream_seq != Some(*seqs.last().unwrap()) {
        assert!(
            std::time::Instant::now() < deadline,
            "its stream_seq is recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_append_tried_again_under_its_name_is_kept_once() {
    use weft::realtime::events::MessageEvent;
    use weft::realtime::streams::{AppendAs, Appended, Reseed};
    let server = TestServer::start().await;
    let realtime = &server.app.realtime;
    let message = uuid::Uuid::new_v4();
    let named = |attempt| AppendAs {
        known: Some(0),
        reseed: Reseed::Never,
        attempt: Some(attempt),
    };
    let (first, second) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let seq = |appended: (Appended, _)| match appended.0 {
        Appended::Seq(seq) => seq,
        Appended::Vanished => panic!("not vanished"),
    };
    let kept = seq(realtime
        .publish_reply_event(MessageEvent::delta(message, "a "), named(first))
        .await
        .unwrap());
    // Its answer was lost: the same append again.
    let again = seq(realtime
        .publish_reply_event(MessageEvent::delta(message, "a "), named(first))
        .await
        .unwrap());
    let next = seq(realtime
        .publish_reply_event(MessageEvent::delta(message, "b "), named(second))
        .await
        .unwrap());
    assert_eq!((kept, again, next), (1, 1, 2));
    assert_eq!(
        realtime.streamed_text(message).await.unwrap(),
        ("a b ".to_string(), 2)
    );
}
