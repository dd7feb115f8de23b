//! The live transports and the five subscriptions: both WebSocket protocols and SSE,
//! authentication and authorization, origins, limits, feeds, metrics and shutdown.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, register};
use crate::harness::live::{self, Closed, LEGACY_WS, Sse, TRANSPORT_WS, Ws, seqs};
use weft::realtime::events::{ExecutionEvent, ExecutionEventKind};

const MESSAGE_STREAM: &str = "subscription($m: UUID!, $after: Int) {
    messageStream(messageId: $m, after: $after) { seq kind delta message { id status } } }";

fn first_error_code(payloads: &[Value]) -> String {
    let errors = payloads
        .iter()
        .find_map(|p| p["errors"].as_array().cloned())
        .unwrap_or_else(|| panic!("an error in {payloads:?}"));
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn both_websocket_protocols_and_sse_deliver_the_same_stream() {
    let server = TestServer::start().await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;
    live::publish_deltas(&server, s.message, 1..=3).await;
    live::finish(&server, s.message, "fin").await;

    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let mut ws = Ws::connect(&server, protocol, owner.token()).await;
        ws.subscribe("x", MESSAGE_STREAM, json!({ "m": s.message }))
            .await;
        let events = ws.until_complete("x").await;
        assert_eq!(
            seqs(&events, "messageStream"),
            vec![1, 2, 3, 4],
            "{protocol}"
        );
        assert_eq!(
            events[3]["data"]["messageStream"]["message"]["status"],
            "COMPLETED"
        );
    }

    let mut sse = Sse::post(
        &server,
        owner.token(),
        MESSAGE_STREAM,
        json!({ "m": s.message, "after": 1 }),
    )
    .await;
    assert_eq!(sse.response.status(), 200);
    let headers = sse.response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    let (events, completed) = sse.until_complete().await;
    assert!(completed, "the stream ends with event: complete");
    assert_eq!(seqs(&events, "messageStream"), vec![2, 3, 4]);

    // Queries work over SSE too: one result, then complete.
    let mut sse = Sse::post(&server, owner.token(), "{ me { email } }", json!({})).await;
    let (events, completed) = sse.until_complete().await;
    assert!(completed);
    assert_eq!(events[0]["data"]["me"]["email"], "owner@example.com");
}

#[tokio::test]
async fn a_bad_token_closes_the_socket_with_4403() {
    let server = TestServer::start().await;
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let mut ws = Ws::open(&server, protocol, &[]).await.expect("opens");
        ws.init(Some("not-a-token")).await;
        if protocol == LEGACY_WS {
            let error = ws.next_json().await.expect("connection_error");
            assert_eq!(error["type"], "connection_error", "{error}");
        }
        assert_eq!(ws.closed().await, Closed::Code(4403), "{protocol}");
    }
    // No token at all is a connection whose subscriptions are UNAUTHENTICATED.
    let mut ws = Ws::connect(&server, TRANSPORT_WS, None).await;
    ws.subscribe("1", MESSAGE_STREAM, json!({ "m": uuid::Uuid::new_v4() }))
        .await;
    assert_eq!(
        first_error_code(&ws.until_complete("1").await),
        "UNAUTHENTICATED"
    );
    // The upgrade request's own Authorization header is accepted as well.
    let owner = register(&server, "owner@example.com").await;
    let header = format!("Bearer {}", owner.token().expect("token"));
    let mut ws = Ws::open(&server, TRANSPORT_WS, &[("authorization", &header)])
        .await
        .expect("opens");
    ws.init(None).await;
    assert_eq!(ws.next_json().await.expect("ack")["type"], "connection_ack");
}

#[tokio::test]
async fn each_subscription_is_limited_to_what_the_caller_may_see() {
    let server = TestServer::start().await;
    let (owner, tenant, s) = live::owner_with_subjects(&server).await;
    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Other").await;

    let queries = [
        (
            "subscription($id: UUID!) { messageStream(messageId: $id) { seq } }",
            s.message,
        ),
        (
            "subscription($id: UUID!) { executionEvents(executionId: $id) { seq } }",
            s.execution,
        ),
        (
            "subscription($id: UUID!) { conversationEvents(conversationId: $id) { id } }",
            s.conversation,
        ),
        (
            "subscription($id: UUID!) { workspaceExecutions(workspaceId: $id) { id } }",
            tenant.workspace_id,
        ),
        (
            "subscription($id: UUID!) { documentIndexing(documentId: $id) { id } }",
            s.document,
        ),
    ];
    let mut ws = Ws::connect(&server, TRANSPORT_WS, stranger.token()).await;
    for (i, (query, id)) in queries.iter().enumerate() {
        ws.subscribe(&i.to_string(), query, json!({ "id": id }))
            .await;
        let answer = ws.until_complete(&i.to_string()).await;
        assert_eq!(first_error_code(&answer), "NOT_FOUND", "{query}");
    }
    let mut sse = Sse::post(
        &server,
        stranger.token(),
        queries[0].0,
        json!({ "id": s.message }),
    )
    .await;
    let (answer, _) = sse.until_complete().await;
    assert_eq!(first_error_code(&answer), "NOT_FOUND");

    // The application's API key follows its own messages and runs, nothing of builders'.
    let key = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "applicationId": s.application, "name": "web" } }),
            )
            .await,
    )["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let mut app_ws = Ws::connect(&server, TRANSPORT_WS, Some(&key)).await;
    live::publish_deltas(&server, s.message, 1..=1).await;
    app_ws
        .subscribe("m", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    assert_eq!(seqs(&app_ws.take("m", 1).await, "messageStream"), vec![1]);
    app_ws
        .subscribe("w", queries[3].0, json!({ "id": tenant.workspace_id }))
        .await;
    assert_eq!(
        first_error_code(&app_ws.until_complete("w").await),
        "FORBIDDEN"
    );
    app_ws
        .subscribe("d", queries[4].0, json!({ "id": s.document }))
        .await;
    assert_eq!(
        first_error_code(&app_ws.until_complete("d").await),
        "FORBIDDEN"
    );
    app_ws
        .subscribe("e", queries[1].0, json!({ "id": s.execution }))
        .await;
    app_ws
        .subscribe("c", queries[2].0, json!({ "id": s.conversation }))
        .await;

    // A negative `after` is a bad input.
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe("n", MESSAGE_STREAM, json!({ "m": s.message, "after": -1 }))
        .await;
    assert_eq!(
        first_error_code(&ws.until_complete("n").await),
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn feeds_announce_runs_messages_and_indexing_progress() {
    let server = TestServer::start().await;
    let (owner, tenant, s) = live::owner_with_subjects(&server).await;
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe(
        "runs",
        "subscription($w: UUID!) { workspaceExecutions(workspaceId: $w, includeActive: false) { id status workflow { name } } }",
        json!({ "w": tenant.workspace_id }),
    )
    .await;
    ws.subscribe(
        "steps",
        "subscription($e: UUID!) { executionEvents(executionId: $e) { seq kind nodeKey nodeType status execution { status } } }",
        json!({ "e": s.execution }),
    )
    .await;
    ws.subscribe(
        "talk",
        "subscription($c: UUID!) { conversationEvents(conversationId: $c) { id status answer } }",
        json!({ "c": s.conversation }),
    )
    .await;
    ws.subscribe(
        "doc",
        "subscription($d: UUID!) { documentIndexing(documentId: $d) { id indexingStatus progress } }",
        json!({ "d": s.document }),
    )
    .await;
    live::subscribed(&server, 4).await;
    // The document's current state comes first.
    let first = ws.take("doc", 1).await;
    assert_eq!(
        first[0]["data"]["documentIndexing"]["indexingStatus"],
        "WAITING"
    );

    let mut record = live::execution_row(&server, s.execution).await;
    let realtime = &server.app.realtime;
    realtime
        .publish_execution_event(ExecutionEvent::of_run(
            ExecutionEventKind::ExecutionStarted,
            record.clone(),
        ))
        .await
        .expect("published");
    let mut node = ExecutionEvent::of_run(ExecutionEventKind::NodeStarted, record.clone());
    node.node_key = Some("llm".into());
    node.node_type = Some(weft::workflow::NodeType::Llm);
    realtime
        .publish_execution_event(node)
        .await
        .expect("published");
    // Announced as the engine does, after a write: a newer row.
    record.status = "SUCCEEDED".into();
    record.finished_at = Some(chrono::Utc::now());
    record.updated_at = chrono::Utc::now();
    realtime
        .publish_execution_event(ExecutionEvent::of_run(
            ExecutionEventKind::ExecutionFinished,
            record,
        ))
        .await
        .expect("published");
    // Both subscriptions' frames, in the order they come.
    let (mut steps, mut runs) = (Vec::new(), Vec::new());
    let mut steps_done = false;
    while !steps_done || runs.len() < 2 {
        let frame = ws.next_json().await.expect("more events");
        match (frame["id"].as_str(), frame["type"].as_str()) {
            (Some("steps"), Some("next")) => steps.push(frame["payload"].clone()),
            (Some("steps"), Some("complete")) => steps_done = true,
            (Some("runs"), Some("next")) => runs.push(frame["payload"].clone()),
            _ => {}
        }
    }
    assert_eq!(seqs(&steps, "executionEvents"), vec![1, 2, 3]);
    assert_eq!(steps[1]["data"]["executionEvents"]["nodeKey"], "llm");
    assert_eq!(steps[1]["data"]["executionEvents"]["nodeType"], "LLM");
    assert_eq!(
        steps[2]["data"]["executionEvents"]["kind"],
        "EXECUTION_FINISHED"
    );
    assert_eq!(runs[0]["data"]["workspaceExecutions"]["status"], "RUNNING");
    assert_eq!(
        runs[1]["data"]["workspaceExecutions"]["status"],
        "SUCCEEDED"
    );
    assert_eq!(
        runs[1]["data"]["workspaceExecutions"]["workflow"]["name"],
        "Flow"
    );

    let mut message = live::message_row(&server, s.message).await;
    message.status = "COMPLETED".into();
    message.answer = Some("hello".into());
    message.updated_at = chrono::Utc::now();
    realtime.message_changed(&message).await.expect("published");
    let talk = ws.take("talk", 1).await;
    assert_eq!(talk[0]["data"]["conversationEvents"]["answer"], "hello");

    let mut document = live::document_row(&server, s.document).await;
    for (status, progress) in [("PARSING", 0.1), ("INDEXING", 0.6), ("COMPLETED", 1.0)] {
        document.indexing_status = status.into();
        document.progress = progress;
        realtime
            .document_changed(&document)
            .await
            .expect("published");
    }
    let progress = ws.until_complete("doc").await;
    let statuses: Vec<&str> = progress
        .iter()
        .map(|p| {
            p["data"]["documentIndexing"]["indexingStatus"]
                .as_str()
                .unwrap_or("")
        })
        .collect();
    assert_eq!(statuses, vec!["PARSING", "INDEXING", "COMPLETED"]);
}

#[tokio::test]
async fn connections_keep_to_their_limits() {
    let server = TestServer::start_with(|c| {
        c.realtime.max_subscriptions_per_connection = 2;
        c.allowed_origins = weft::config::AllowedOrigins::list(&["https://app.example"]);
    })
    .await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;

    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    for id in ["1", "2"] {
        ws.subscribe(id, MESSAGE_STREAM, json!({ "m": s.message }))
            .await;
    }
    live::publish_deltas(&server, s.message, 1..=1).await;
    let mut got = std::collections::BTreeSet::new();
    while got.len() < 2 {
        let message = ws.next_json().await.expect("events");
        assert_eq!(message["type"], "next", "{message}");
        got.insert(message["id"].as_str().unwrap_or_default().to_string());
    }
    ws.subscribe("3", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    assert_eq!(
        first_error_code(&ws.until_complete("3").await),
        "RATE_LIMITED"
    );
    // Ending one frees its place.
    ws.send(json!({ "id": "1", "type": "complete" })).await;
    ws.subscribe("4", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    assert_eq!(seqs(&ws.take("4", 1).await, "messageStream"), vec![1]);

    // A frame over 64 KiB closes the connection (1009: message too big).
    let big =
        json!({ "id": "5", "type": "subscribe", "payload": { "query": "x".repeat(70 << 10) } });
    let _ = ws.send_raw(Message::Text(big.to_string().into())).await;
    assert_eq!(ws.closed().await, Closed::Code(1009));

    // Origins: listed ones and non-browsers are let in, others refused before upgrading.
    assert!(
        Ws::open(&server, TRANSPORT_WS, &[("origin", "https://app.example")])
            .await
            .is_ok()
    );
    let refused = Ws::open(&server, TRANSPORT_WS, &[("origin", "https://evil.example")]).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("refused with 403, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001_and_ends_event_streams() {
    let mut server =
        TestServer::start_with(|c| c.realtime.shutdown_timeout = Duration::from_secs(5)).await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe("1", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    let mut sse = Sse::post(
        &server,
        owner.token(),
        MESSAGE_STREAM,
        json!({ "m": s.message }),
    )
    .await;
    live::publish_deltas(&server, s.message, 1..=1).await;
    ws.take("1", 1).await;
    assert_eq!(sse.next_event().await.expect("an event").0, "next");

    let started = std::time::Instant::now();
    server.shut_down().await.expect("serve returns");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ws.closed().await, Closed::Code(1001));
    let (_, completed) = sse.until_complete().await;
    assert!(
        !completed,
        "the response ends without completing: the client resumes"
    );
}

#[tokio::test]
async fn metrics_count_open_subscriptions_and_published_events() {
    let server = TestServer::start().await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;
    let metric = async |name: &str| -> i64 {
        let text = server.get("/metrics").await.text().await.expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .parse()
            .expect("a number")
    };
    assert_eq!(metric("weft_subscriptions_active").await, 0);
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe("1", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    live::publish_deltas(&server, s.message, 1..=2).await;
    ws.take("1", 2).await;
    assert_eq!(metric("weft_subscriptions_active").await, 1);
    assert_eq!(metric("weft_stream_events_published_total").await, 2);
    drop(ws);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric("weft_subscriptions_active").await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription ended with its socket"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_time_each_live_event_from_publication_to_its_frame() {
    let server = TestServer::start().await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;
    let delivered = async || -> u64 {
        let text = server.get("/metrics").await.text().await.expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix("weft_subscription_delivery_seconds_count "))
            .unwrap_or_else(|| panic!("the delivery histogram in {text}"))
            .parse()
            .expect("a number")
    };
    assert_eq!(delivered().await, 0);
    // Read back from the retained stream to catch a subscriber up: not a live delivery.
    live::publish_deltas(&server, s.message, 1..=1).await;
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.subscribe("1", MESSAGE_STREAM, json!({ "m": s.message }))
        .await;
    assert_eq!(seqs(&ws.take("1", 1).await, "messageStream"), vec![1]);
    live::subscribed(&server, 1).await;
    live::publish_deltas(&server, s.message, 2..=3).await;
    assert_eq!(seqs(&ws.take("1", 2).await, "messageStream"), vec![2, 3]);
    assert_eq!(
        delivered().await,
        2,
        "two events delivered live over WebSocket"
    );

    // Over SSE: the three retained events catch it up, DELTA 4 and END come live.
    let mut sse = Sse::post(
        &server,
        owner.token(),
        MESSAGE_STREAM,
        json!({ "m": s.message }),
    )
    .await;
    live::subscribed(&server, 2).await;
    live::publish_deltas(&server, s.message, 4..=4).await;
    live::finish(&server, s.message, "w1 w2 w3 w4").await;
    let (payloads, completed) = sse.until_complete().await;
    assert!(completed);
    assert_eq!(seqs(&payloads, "messageStream"), vec![1, 2, 3, 4, 5]);
    assert_eq!(seqs(&ws.take("1", 2).await, "messageStream"), vec![4, 5]);
    assert_eq!(
        delivered().await,
        2 + 2 + 2,
        "the WebSocket subscriber's DELTA 4 and END, and the SSE subscriber's"
    );
}

#[tokio::test]
async fn subscribers_asking_the_same_way_share_each_events_answer() {
    let server = TestServer::start().await;
    let (owner, tenant, s) = live::owner_with_subjects(&server).await;
    let reader = crate::harness::accounts::member(
        &server,
        &owner,
        tenant.team_id,
        "reader@example.com",
        "MEMBER",
    )
    .await;
    // The event's own values: the same answer whoever asks.
    const OWN: &str = "subscription($m: UUID!) { messageStream(messageId: $m) { seq kind delta } }";
    // The message read through the event, with the caller's rights: shared by one caller's
    // subscriptions only (MESSAGE_STREAM selects `message { id status }`).
    let mut sockets = Vec::new();
    for (caller, query, ids) in [
        (&owner, OWN, &["a", "b"][..]),
        (&reader, OWN, &["c"][..]),
        (&owner, MESSAGE_STREAM, &["d"][..]),
        (&owner, MESSAGE_STREAM, &["e"][..]),
        (&reader, MESSAGE_STREAM, &["f"][..]),
    ] {
        let mut ws = Ws::connect(&server, TRANSPORT_WS, caller.token()).await;
        for id in ids {
            ws.subscribe(id, query, json!({ "m": s.message })).await;
        }
        sockets.push((ws, ids));
    }
    live::subscribed(&server, 6).await;
    let shared = || {
        server
            .app
            .metrics
            .answers_shared
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = shared();
    live::publish_deltas(&server, s.message, 1..=3).await;
    live::finish(&server, s.message, "fin").await;

    let mut answers = std::collections::BTreeMap::<String, Vec<Value>>::new();
    for (ws, ids) in &mut sockets {
        let mut open = ids.len();
        while open > 0 {
            let message = ws.next_json().await.expect("the subscriptions complete");
            let id = message["id"].as_str().unwrap_or_default().to_string();
            match message["type"].as_str() {
                Some("next") => answers
                    .entry(id)
                    .or_default()
                    .push(message["payload"].clone()),
                Some("complete") => open -= 1,
                other => panic!("unexpected {other:?}: {message}"),
            }
        }
    }
    // Four events each: the same answers for everyone asking the same way, as if made apart.
    assert_eq!(seqs(&answers["a"], "messageStream"), vec![1, 2, 3, 4]);
    assert_eq!(answers["a"][3]["data"]["messageStream"]["kind"], "END");
    for id in ["b", "c"] {
        assert_eq!(answers[id], answers["a"], "{id}");
    }
    assert_eq!(
        answers["d"][3]["data"]["messageStream"]["message"]["status"],
        "COMPLETED"
    );
    for id in ["e", "f"] {
        assert_eq!(answers[id], answers["d"], "{id}");
    }
    // Made once per event and way of asking: a, d and f (another caller) make theirs; b, c
    // and e send the ones made.
    assert_eq!(shared() - before, 3 * 4);
}

#[tokio::test]
async fn a_socket_that_breaks_the_protocol_is_closed_with_graphql_ws_codes() {
    let server = TestServer::start().await;
    let (owner, _, s) = live::owner_with_subjects(&server).await;
    let subscribe = |id: &str| {
        json!({ "id": id, "type": "subscribe", "payload": {
            "query": MESSAGE_STREAM, "variables": { "m": s.message } } })
    };

    // An operation before connection_ack: 4401.
    let mut ws = Ws::open(&server, TRANSPORT_WS, &[]).await.expect("opens");
    ws.send(subscribe("1")).await;
    assert_eq!(ws.closed().await, Closed::Code(4401));

    // Two operations with one id: 4409.
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.send(subscribe("1")).await;
    ws.send(subscribe("1")).await;
    assert_eq!(ws.closed().await, Closed::Code(4409));

    // Something that is not a message of the protocol: 4400.
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.send(json!({ "type": "hello" })).await;
    assert_eq!(ws.closed().await, Closed::Code(4400));

    // A second connection_init: 4429.
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.init(owner.token()).await;
    assert_eq!(ws.closed().await, Closed::Code(4429));

    // A ping is answered with a pong, and an operation ended by the client is completed.
    let mut ws = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    ws.send_raw(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .expect("sent");
    let pong = loop {
        match ws.raw_next().await {
            Some(Message::Text(text)) => break text.to_string(),
            Some(_) => continue,
            None => panic!("the socket closed"),
        }
    };
    assert_eq!(pong, r#"{"type":"pong"}"#);
    ws.send(subscribe("2")).await;
    ws.send(json!({ "id": "2", "type": "complete" })).await;
    let complete = ws.next_json().await.expect("complete");
    assert_eq!(complete, json!({ "type": "complete", "id": "2" }));
}
