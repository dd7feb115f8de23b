//! The chat pipeline end to end against an OpenAI-compatible server in the test process:
//! an end user's message, its reply streamed over WebSocket, stored with usage; memory,
//! feedback, stop, resume, quota, failures and annotation replies.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{data, error_code};
use crate::harness::chat::{STREAM, chat_app, send, text_of};
use crate::harness::live::{Sse, Ws, seqs};
use crate::harness::model_server::ModelServer;

const WS: &str = "graphql-transport-ws";

fn kind(p: &Value) -> &str {
    p["data"]["messageStream"]["kind"].as_str().unwrap_or("")
}

#[tokio::test]
async fn an_end_user_chats_and_the_reply_streams_and_is_stored() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;

    let sent = send(&server, &app, "Say hello\nplease", None).await;
    assert_eq!(sent["assistantMessage"]["status"], "PENDING");
    assert_eq!(sent["userMessage"]["content"], "Say hello\nplease");
    assert_eq!(sent["conversation"]["title"], "Say hello");
    assert_eq!(sent["conversation"]["messageCount"], 2);
    assert_eq!(sent["execution"]["status"], "QUEUED");
    let reply = sent["assistantMessage"]["id"].as_str().unwrap().to_string();

    // Subscribed after sendMessage returned: nothing is lost in between.
    let mut ws = Ws::connect(&server, WS, Some(&app.key)).await;
    ws.subscribe("1", STREAM, json!({ "id": reply })).await;
    let events = ws.until_complete("1").await;
    assert_eq!(text_of(&events), "Hello world");
    let last = events.last().unwrap();
    assert_eq!(kind(last), "END", "{events:?}");
    let seq = seqs(&events, "messageStream");
    assert_eq!(seq, (1..=seq.len() as i64).collect::<Vec<_>>());
    let stored = &last["data"]["messageStream"]["message"];
    assert_eq!(stored["status"], "COMPLETED");
    assert_eq!(stored["answer"], "Hello world");
    assert_eq!(stored["totalTokens"], 12);
    assert_eq!(stored["promptTokens"], 9);
    assert_eq!(stored["modelName"], "gpt-test");
    assert!(stored["latency"].as_f64().unwrap() >= 0.0);

    // The provider's tokens are counted; the run is recorded node by node.
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT used_tokens FROM llm_providers WHERE id = '{}'",
                app.provider
            ))
            .await,
        12
    );
    let run = data(
        server
            .graphql_as(
                app.owner.token(),
                "query($id: UUID!) { execution(id: $id) { status totalTokens totalSteps outputs
                    nodeResults { nodeKey nodeType status sequenceIndex totalTokens } } }",
                json!({ "id": sent["execution"]["id"] }),
            )
            .await,
    )["execution"]
        .clone();
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["totalTokens"], 12);
    assert_eq!(run["totalSteps"], 3);
    assert_eq!(run["outputs"]["answer"], "Hello world");
    let nodes: Vec<(&str, &str)> = run["nodeResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["nodeKey"].as_str().unwrap(),
                n["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        vec![
            ("start", "SUCCEEDED"),
            ("llm", "SUCCEEDED"),
            ("answer", "SUCCEEDED")
        ]
    );

    // A second turn in the same conversation: the LLM node's memory holds the first.
    let conversation = sent["conversation"]["id"].as_str().unwrap().to_string();
    let second = send(&server, &app, "And again", Some(&conversation)).await;
    assert_eq!(second["userMessage"]["sequenceNumber"], 3);
    let second_reply = second["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // This one over Server-Sent Events (graphql-sse).
    let mut sse = Sse::post(
        &server,
        Some(&app.key),
        STREAM,
        json!({ "id": second_reply }),
    )
    .await;
    let (events, completed) = sse.until_complete().await;
    assert!(completed);
    assert_eq!(text_of(&events), "Hello world");
    assert_eq!(kind(events.last().unwrap()), "END");
    let body = models.seen.last_body.lock().unwrap().clone().unwrap();
    let asked: Vec<(String, String)> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        asked,
        vec![
            ("system".to_string(), "Be brief.".to_string()),
            ("user".to_string(), "Say hello\nplease".to_string()),
            ("assistant".to_string(), "Hello world".to_string()),
            ("user".to_string(), "And again".to_string()),
        ]
    );
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT message_count::bigint FROM conversations WHERE id = '{conversation}'"
            ))
            .await,
        4
    );

    // Feedback: one per end user and message; a second replaces the first.
    let edited_at = format!(
        "SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM messages WHERE id = '{reply}'"
    );
    let edited_before = server.scalar(&edited_at).await;
    let feedback = async |rating: &str| {
        server
            .graphql_as(
                Some(&app.key),
                "mutation($i: SubmitFeedbackInput!) { submitFeedback(input: $i) { rating content messageId } }",
                json!({ "i": { "messageId": reply, "rating": rating, "content": "ok", "endUserId": "user-1" } }),
            )
            .await
    };
    assert_eq!(
        data(feedback("LIKE").await)["submitFeedback"]["rating"],
        "LIKE"
    );
    assert_eq!(
        data(feedback("DISLIKE").await)["submitFeedback"]["rating"],
        "DISLIKE"
    );
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM message_feedbacks WHERE message_id = '{reply}' AND rating = 'DISLIKE'"
            ))
            .await,
        1
    );
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM message_feedbacks WHERE message_id = '{reply}'"
            ))
            .await,
        1
    );
    // The message counts its feedback (a page looks for the feedback of only the messages that
    // have some); counting it is not an edit of the message.
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT feedback_count::bigint FROM messages WHERE id = '{reply}'"
            ))
            .await,
        1
    );
    assert_eq!(server.scalar(&edited_at).await, edited_before);
    let gone = format!("DELETE FROM message_feedbacks WHERE message_id = '{reply}'");
    assert_eq!(server.execute(&gone).await, 1);
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT feedback_count::bigint FROM messages WHERE id = '{reply}'"
            ))
            .await,
        0
    );
    // Bad input changes nothing.
    let bad = server
        .graphql_as(
            Some(&app.key),
            crate::harness::chat::SEND,
            json!({ "i": { "applicationId": app.application, "query": "   ", "endUserId": "user-1" } }),
        )
        .await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "query");
    assert_eq!(server.scalar("SELECT count(*) FROM messages").await, 4);
}

#[tokio::test]
async fn stop_closes_the_provider_connection_and_keeps_the_partial_reply() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "slow", None).await;
    let sent = send(&server, &app, "Count", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap().to_string();
    let mut ws = Ws::connect(&server, WS, Some(&app.key)).await;
    ws.subscribe("1", STREAM, json!({ "id": reply })).await;
    let first = ws.take("1", 3).await;
    assert!(first.iter().all(|p| kind(p) == "DELTA"), "{first:?}");

    let stopped = data(
        server
            .graphql_as(
                Some(&app.key),
                "mutation($id: UUID!) { stopMessage(messageId: $id) { status answer } }",
                json!({ "id": reply }),
            )
            .await,
    )["stopMessage"]
        .clone();
    assert_eq!(stopped["status"], "STOPPED");
    let partial = stopped["answer"].as_str().unwrap().to_string();
    assert!(partial.starts_with("t0 t1 t2 "), "{partial}");

    let rest = ws.until_complete("1").await;
    let end = rest.last().unwrap();
    assert_eq!(kind(end), "END", "{rest:?}");
    assert_eq!(end["data"]["messageStream"]["message"]["status"], "STOPPED");
    let all: Vec<Value> = first.into_iter().chain(rest).collect();
    assert_eq!(
        text_of(&all),
        partial,
        "the stream and the stored text agree"
    );

    // The provider saw its connection closed mid-reply.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !models.seen.hung_up.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the provider saw the hang-up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What the provider generated before the stop counts against its quota.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let used = format!(
        "SELECT used_tokens FROM llm_providers WHERE id = '{}'",
        app.provider
    );
    while server.scalar(&used).await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped reply's tokens are counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let execution = sent["execution"]["id"].as_str().unwrap();
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM execution_records WHERE id = '{execution}' AND status = 'STOPPED'"
            ))
            .await,
        1
    );
    assert_eq!(
        server.scalar("SELECT count(*) FROM execution_jobs").await,
        0
    );
}

#[tokio::test]
async fn a_reply_started_on_one_instance_is_followed_and_resumed_on_another() {
    let models = ModelServer::start().await;
    let a = TestServer::start().await;
    let b = a.beside().await;
    let app = chat_app(&a, &models.base_url, "slow", None).await;
    let sent = send(&a, &app, "Count", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap().to_string();

    // Three events on A, then the reader leaves and comes back on B after seq 3.
    let mut on_a = Ws::connect(&a, WS, Some(&app.key)).await;
    on_a.subscribe("1", STREAM, json!({ "id": reply })).await;
    let first = on_a.take("1", 3).await;
    drop(on_a);
    let mut on_b = Ws::connect(&b, WS, Some(&app.key)).await;
    on_b.subscribe("1", STREAM, json!({ "id": reply, "after": 3 }))
        .await;
    let more = on_b.take("1", 5).await;
    assert_eq!(seqs(&more, "messageStream"), vec![4, 5, 6, 7, 8]);

    // Stopped through B, wherever the run is.
    let stopped = data(
        b.graphql_as(
            Some(&app.key),
            "mutation($id: UUID!) { stopMessage(messageId: $id) { status answer } }",
            json!({ "id": reply }),
        )
        .await,
    )["stopMessage"]
        .clone();
    assert_eq!(stopped["status"], "STOPPED");
    let rest = on_b.until_complete("1").await;
    let all: Vec<Value> = first.into_iter().chain(more).chain(rest).collect();
    let seq = seqs(&all, "messageStream");
    assert_eq!(
        seq,
        (1..=seq.len() as i64).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
    assert_eq!(text_of(&all), stopped["answer"].as_str().unwrap());
}

#[tokio::test]
async fn a_provider_over_its_quota_refuses_before_calling_out() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", Some(10)).await;
    let sent = send(&server, &app, "Hi", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap().to_string();
    let mut ws = Ws::connect(&server, WS, Some(&app.key)).await;
    ws.subscribe("1", STREAM, json!({ "id": reply })).await;
    ws.until_complete("1").await;
    // 12 tokens used of 10: the next message is refused, and nothing is written.
    let calls = models.seen.requests.load(Ordering::SeqCst);
    let messages = server.scalar("SELECT count(*) FROM messages").await;
    let refused = server
        .graphql_as(
            Some(&app.key),
            crate::harness::chat::SEND,
            json!({ "i": { "applicationId": app.application, "query": "Again", "endUserId": "user-1" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "QUOTA_EXCEEDED", "{refused}");
    assert_eq!(
        server.scalar("SELECT count(*) FROM messages").await,
        messages
    );
    assert_eq!(models.seen.requests.load(Ordering::SeqCst), calls);

    // A run that reaches the node anyway (the quota ran out after it was queued) fails there.
    let mut conn = server.app.pool.get().await.unwrap();
    let denied = weft::llm::provider::resolve(
        &mut conn,
        &weft::llm::provider::ProviderAccess {
            encryption_key: &server.app.config.encryption_key,
            http: server.app.engine.http.clone(),
            outbound: &server.app.config.outbound,
            echo_pace: Duration::ZERO,
        },
        app.tenant.workspace_id,
        app.provider.parse().unwrap(),
        None,
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(denied.code(), "QUOTA_EXCEEDED");
}

#[tokio::test]
async fn a_provider_failure_ends_the_stream_with_an_error_and_a_failed_message() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "busy", None).await;
    let sent = send(&server, &app, "Hi", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap().to_string();
    let mut ws = Ws::connect(&server, WS, Some(&app.key)).await;
    ws.subscribe("1", STREAM, json!({ "id": reply })).await;
    let events = ws.until_complete("1").await;
    let last = &events.last().unwrap()["data"]["messageStream"];
    assert_eq!(last["kind"], "ERROR", "{events:?}");
    assert!(
        last["error"].as_str().unwrap().contains("rate limiting"),
        "{last}"
    );
    let stored = crate::harness::live::message_row(&server, reply.parse().unwrap()).await;
    assert_eq!(stored.status, "FAILED");
    assert!(stored.error.unwrap().contains("node \"llm\""));
}

#[tokio::test]
async fn an_annotated_question_is_answered_from_the_annotation_without_the_model() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    data(
        server
            .graphql_as(
                app.owner.token(),
                "mutation($i: UpdateApplicationInput!) { updateApplication(input: $i) { id } }",
                json!({ "i": { "applicationId": app.application, "annotationReplyEnabled": true,
                               "annotationReplyThreshold": 0.6 } }),
            )
            .await,
    );
    let first = send(&server, &app, "What are your opening hours?", None).await;
    let reply = first["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = Ws::connect(&server, WS, Some(&app.key)).await;
    ws.subscribe("1", STREAM, json!({ "id": reply })).await;
    ws.until_complete("1").await;
    let annotation = data(
        server
            .graphql_as(
                app.owner.token(),
                "mutation($i: AnnotateMessageInput!) { annotateMessage(input: $i) { id question } }",
                json!({ "i": { "messageId": reply, "content": "We open 9 to 5, Monday to Friday." } }),
            )
            .await,
    )["annotateMessage"]
        .clone();
    assert_eq!(annotation["question"], "What are your opening hours?");
    let calls = models.seen.requests.load(Ordering::SeqCst);

    let again = send(&server, &app, "what are your opening hours", None).await;
    assert_eq!(again["assistantMessage"]["status"], "COMPLETED");
    assert!(again["execution"].is_null());
    assert_eq!(
        again["assistantMessage"]["metadata"]["annotationReply"]["annotationId"],
        annotation["id"]
    );
    let reply = again["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ws.subscribe("2", STREAM, json!({ "id": reply })).await;
    let events = ws.until_complete("2").await;
    assert_eq!(text_of(&events), "We open 9 to 5, Monday to Friday.");
    assert_eq!(kind(events.last().unwrap()), "END");
    assert_eq!(
        models.seen.requests.load(Ordering::SeqCst),
        calls,
        "no model call"
    );
    assert_eq!(
        server
            .scalar("SELECT hit_count::bigint FROM message_annotations")
            .await,
        1
    );
    // A different question still goes to the model.
    let other = send(&server, &app, "Tell me a joke about cats", None).await;
    assert_eq!(other["assistantMessage"]["status"], "PENDING");
}

#[tokio::test]
async fn an_empty_database_gets_a_demo_that_answers_with_echo() {
    let server = TestServer::start_with(|c| c.engine.echo_pace = Duration::from_millis(20)).await;
    let demo = weft::demo::seed_if_empty(&server.app)
        .await
        .expect("seeded")
        .expect("the database was empty");
    assert!(
        weft::demo::seed_if_empty(&server.app)
            .await
            .expect("checked")
            .is_none(),
        "seeded once"
    );
    let instructions = weft::demo::instructions(&demo, &server.base);
    assert!(instructions.contains(&demo.api_key) && instructions.contains("/graphiql"));
    // The printed GraphiQL link carries a working operation and the key for its Headers.
    let link = instructions
        .lines()
        .find(|l| l.contains("1. send a message:"))
        .and_then(|l| l.split_whitespace().last())
        .expect("a link to send a message");
    assert!(
        link.starts_with(&format!("{}/graphiql?", server.base)),
        "{link}"
    );
    let params: std::collections::HashMap<String, String> =
        form_urlencoded::parse(link.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    let headers: Value = serde_json::from_str(&params["headers"]).unwrap();
    let bearer = headers["Authorization"].as_str().unwrap();
    let from_link = data(
        server
            .graphql_as(bearer.strip_prefix("Bearer "), &params["query"], json!({}))
            .await,
    );
    assert!(from_link["sendMessage"]["assistantMessage"]["id"].is_string());
    let sent = data(
        server
            .graphql_as(
                Some(&demo.api_key),
                crate::harness::chat::SEND,
                json!({ "i": { "applicationId": demo.application_id, "query": "hello demo", "endUserId": "me" } }),
            )
            .await,
    )["sendMessage"]
        .clone();
    let reply = sent["assistantMessage"]["id"].as_str().unwrap().to_string();
    let mut ws = Ws::connect(&server, WS, Some(&demo.api_key)).await;
    ws.subscribe("1", STREAM, json!({ "id": reply })).await;
    let events = ws.until_complete("1").await;
    assert_eq!(text_of(&events), "Echo: hello demo");
    assert!(events.len() >= 4, "word by word: {events:?}");
    // The builder can log in with what was printed.
    let login = server
        .graphql(
            "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { accessToken } }",
            json!({ "e": demo.email, "p": demo.password }),
        )
        .await;
    assert!(data(login)["login"]["accessToken"].is_string());
}
