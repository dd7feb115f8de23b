//! The model provider client against an OpenAI-compatible server streaming real SSE over
//! HTTP: tokens and usage, refusals, retries, cancellation, embeddings.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::harness::model_server::{KEY, ModelServer};
use weft::llm::openai::OpenAiClient;
use weft::llm::{ChatMessage, ChatRequest, Chunk, LlmError, ToolCallRequest, ToolSpec, Usage};

fn ask(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            ChatMessage::new("system", "You are terse."),
            ChatMessage::new("user", "Say hello"),
        ],
        temperature: Some(0.2),
        max_tokens: Some(64),
        ..ChatRequest::default()
    }
}

/// The guard's client, allowed to reach this machine (the test's server).
fn local(base_url: &str, key: Option<String>) -> OpenAiClient {
    let outbound = weft::outbound::OutboundConfig {
        allowed: vec![weft::outbound::Network::parse("127.0.0.0/8").unwrap()],
    };
    OpenAiClient::with_http(outbound.client(Duration::from_secs(5)), base_url, key)
}

fn client(server: &ModelServer, key: &str) -> OpenAiClient {
    let mut client = local(&server.base_url, Some(key.into()));
    client.backoff = Duration::from_millis(10);
    client
}

#[tokio::test]
async fn a_reply_streams_in_pieces_with_its_usage() {
    let server = ModelServer::start().await;
    let mut chunks = Vec::new();
    let usage = client(&server, KEY)
        .stream_chat(&ask("gpt-test"), |c| chunks.push(c))
        .await
        .expect("a reply");
    let expected_usage = Usage {
        prompt_tokens: 9,
        completion_tokens: 3,
        total_tokens: 12,
    };
    assert_eq!(
        chunks,
        vec![
            Chunk::Delta("Hel".into()),
            Chunk::Delta("lo".into()),
            Chunk::Delta(" world".into()),
            Chunk::Usage(expected_usage),
        ]
    );
    assert_eq!(usage.usage, Some(expected_usage));
    assert!(usage.tool_calls.is_empty());
    let body = server.seen.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["messages"][1]["content"], "Say hello");
    assert_eq!(body["max_tokens"], 64);
}

#[tokio::test]
async fn function_calls_are_assembled_from_their_streamed_pieces() {
    let server = ModelServer::start().await;
    let mut request = ask("agent");
    request.messages[1] = ChatMessage::new(
        "user",
        r#"call: add {"a": 2, "b": 3} | shout {"text": "hi"}"#,
    );
    request.tools = ["add", "shout"]
        .iter()
        .map(|name| ToolSpec {
            name: name.to_string(),
            description: Some("a tool".into()),
            parameters: serde_json::json!({ "type": "object" }),
        })
        .collect();
    let mut text = String::new();
    let completion = client(&server, KEY)
        .stream_chat(&request, |c| {
            if let Chunk::Delta(d) = c {
                text.push_str(&d)
            }
        })
        .await
        .expect("a turn");
    assert_eq!(text, "Let me look. ");
    assert_eq!(
        completion.tool_calls,
        vec![
            ToolCallRequest {
                id: "call_0_0".into(),
                name: "add".into(),
                arguments: r#"{"a": 2, "b": 3}"#.into(),
            },
            ToolCallRequest {
                id: "call_0_1".into(),
                name: "shout".into(),
                arguments: r#"{"text": "hi"}"#.into(),
            },
        ]
    );
    let body = server.seen.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"][1]["type"], "function");
    assert_eq!(body["tools"][1]["function"]["name"], "shout");
    assert_eq!(body["tools"][1]["function"]["description"], "a tool");

    // The calls and their answers go back in the OpenAI shape.
    request
        .messages
        .push(ChatMessage::calling("", completion.tool_calls.clone()));
    request
        .messages
        .push(ChatMessage::tool_answer("call_0_0", "5"));
    request.answer_only = true;
    client(&server, KEY)
        .stream_chat(&request, |_| {})
        .await
        .expect("an answer");
    let body = server.seen.last_body.lock().unwrap().clone().unwrap();
    assert_eq!(body["tool_choice"], "none");
    assert_eq!(body["messages"][2]["content"], serde_json::Value::Null);
    assert_eq!(body["messages"][2]["tool_calls"][0]["id"], "call_0_0");
    assert_eq!(body["messages"][2]["tool_calls"][0]["type"], "function");
    assert_eq!(
        body["messages"][2]["tool_calls"][1]["function"]["arguments"],
        r#"{"text": "hi"}"#
    );
    assert_eq!(body["messages"][3]["role"], "tool");
    assert_eq!(body["messages"][3]["tool_call_id"], "call_0_0");
}

#[tokio::test]
async fn a_refused_key_is_an_authentication_error_that_never_shows_the_key() {
    let server = ModelServer::start().await;
    let error = client(&server, "sk-wrong-secret")
        .stream_chat(&ask("gpt-test"), |_| {})
        .await
        .expect_err("refused");
    assert_eq!(error, LlmError::Authentication(401));
    assert!(!error.to_string().contains("sk-wrong-secret"));
    assert_eq!(
        server.seen.requests.load(Ordering::SeqCst),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn overloads_are_retried_before_the_first_token() {
    let server = ModelServer::start().await;
    let mut text = String::new();
    client(&server, KEY)
        .stream_chat(&ask("flaky"), |c| {
            if let Chunk::Delta(d) = c {
                text.push_str(&d)
            }
        })
        .await
        .expect("a reply after two 503s");
    assert_eq!(text, "Hello world");
    assert_eq!(server.seen.requests.load(Ordering::SeqCst), 3);

    let error = client(&server, KEY)
        .stream_chat(&ask("busy"), |_| {})
        .await
        .expect_err("still rate limited");
    assert_eq!(error, LlmError::RateLimited);
    assert_eq!(
        server.seen.requests.load(Ordering::SeqCst),
        3 + 4,
        "1 + 3 retries"
    );
}

#[tokio::test]
async fn dropping_the_call_closes_the_connection_to_the_provider() {
    let server = ModelServer::start().await;
    let client = client(&server, KEY);
    let (first, got_first) = tokio::sync::oneshot::channel();
    let mut first = Some(first);
    let call = tokio::spawn(async move {
        client
            .stream_chat(&ask("slow"), |_| {
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
            })
            .await
    });
    got_first.await.expect("a first token");
    call.abort();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !server.seen.hung_up.load(Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the provider saw the hang-up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn embeddings_come_back_in_the_order_asked() {
    let server = ModelServer::start().await;
    let inputs = vec!["a".to_string(), "bbb".to_string(), "cc".to_string()];
    let vectors = client(&server, KEY)
        .embeddings("embed-test", &inputs)
        .await
        .expect("embeddings");
    let lengths: Vec<f32> = vectors.iter().map(|v| v[0]).collect();
    assert_eq!(lengths, vec![1.0, 3.0, 2.0]);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_transport_error_after_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut client = local(&format!("http://127.0.0.1:{port}/v1"), None);
    client.backoff = Duration::from_millis(5);
    let error = client
        .stream_chat(&ask("any"), |_| {})
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, LlmError::Transport(_)), "{error:?}");
}
