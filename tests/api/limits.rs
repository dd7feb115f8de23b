//! Limits on an operation's root and on a socket's start: at most WEFT_MAX_ROOT_FIELDS root
//! fields, exactly one in a subscription, and connection_init in time.

use std::time::Duration;

use serde_json::json;

use crate::harness::TestServer;
use crate::harness::accounts::{data, error_code, register};
use crate::harness::live::{Closed, Sse, TRANSPORT_WS, Ws};

fn aliases(n: usize, field: &str) -> String {
    (0..n)
        .map(|i| format!("a{i}: {field}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn an_operation_selects_at_most_ten_root_fields() {
    let server = TestServer::start().await;
    let ten = server
        .graphql(
            &format!("{{ {} }}", aliases(10, "health { version }")),
            json!({}),
        )
        .await;
    assert_eq!(data(ten).as_object().unwrap().len(), 10);
    let eleven = server
        .graphql(
            &format!("{{ {} }}", aliases(11, "health { version }")),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&eleven), "BAD_USER_INPUT", "{eleven:#}");
    assert!(eleven["data"].is_null());

    // Nothing of a refused mutation runs.
    register(&server, "victim@example.com").await;
    let resets = server
        .graphql(
            &format!(
                "mutation {{ {} }}",
                aliases(11, "requestPasswordReset(email: \"victim@example.com\")")
            ),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resets), "BAD_USER_INPUT");
    assert_eq!(
        server.scalar("SELECT count(*) FROM password_resets").await,
        0
    );
}

#[tokio::test]
async fn a_subscription_selects_one_root_field_on_every_transport() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let two = "subscription($d: UUID!) { a: documentIndexing(documentId: $d) { id } b: documentIndexing(documentId: $d) { id } }";
    let variables = json!({ "d": uuid::Uuid::new_v4() });

    let mut ws = Ws::connect(&server, "graphql-transport-ws", owner.token()).await;
    ws.subscribe("1", two, variables.clone()).await;
    let refused = ws.next_json().await.unwrap();
    let code = refused["payload"]["errors"][0]["extensions"]["code"]
        .as_str()
        .or_else(|| refused["payload"][0]["extensions"]["code"].as_str());
    assert_eq!(code, Some("BAD_USER_INPUT"), "{refused}");
    assert!(
        refused.to_string().contains("exactly one root field"),
        "{refused}"
    );

    let mut sse = Sse::post(&server, owner.token(), two, variables).await;
    let (payloads, completed) = sse.until_complete().await;
    assert!(completed);
    assert_eq!(
        payloads[0]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{payloads:?}"
    );
}

#[tokio::test]
async fn a_socket_without_connection_init_is_closed_with_4408() {
    let server =
        TestServer::start_with(|c| c.realtime.init_timeout = Duration::from_millis(300)).await;
    let mut silent = Ws::open(&server, "graphql-transport-ws", &[])
        .await
        .unwrap();
    assert_eq!(silent.closed().await, Closed::Code(4408));
    // One that says hello in time stays open past the deadline.
    let mut ws = Ws::connect(&server, "graphql-transport-ws", None).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    ws.subscribe(
        "1",
        "subscription($d: UUID!) { documentIndexing(documentId: $d) { id } }",
        json!({ "d": uuid::Uuid::new_v4() }),
    )
    .await;
    let answer = ws.next_json().await.expect("the socket still answers");
    assert_eq!(answer["id"], "1", "{answer}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_headers_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server =
        TestServer::start_with(|c| c.http.header_read_timeout = Duration::from_secs(1)).await;
    let address = server.base.trim_start_matches("http://").to_string();
    // Half a request, and then nothing.
    let mut half = tokio::net::TcpStream::connect(&address).await.unwrap();
    half.write_all(b"POST /graphql HTTP/1.1\r\nHost: weft\r\nContent-Ty")
        .await
        .unwrap();
    // Nothing at all.
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    for (name, stream) in [("half", &mut half), ("silent", &mut silent)] {
        let mut buffer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buffer))
            .await
            .unwrap_or_else(|_| {
                panic!("the {name} request is closed by the server within the wait")
            })
            .ok();
    }
    // Whole requests are answered as ever.
    assert_eq!(server.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn live_connections_are_capped_per_caller_and_per_address() {
    let server = TestServer::start_with(|c| {
        c.http.max_connections_per_user = 2;
        c.http.max_connections_per_address = 4;
    })
    .await;
    let ada = register(&server, "ada@example.com").await;
    let bob = register(&server, "bob@example.com").await;
    let subscription = "subscription { messageStream(messageId: \"00000000-0000-0000-0000-000000000000\") { seq } }";

    // Two sockets of Ada's; a third is closed with 4429, and her SSE stream refused.
    let mut first = Ws::connect(&server, TRANSPORT_WS, ada.token()).await;
    let _second = Ws::connect(&server, TRANSPORT_WS, ada.token()).await;
    let mut third = Ws::open(&server, TRANSPORT_WS, &[]).await.unwrap();
    third.init(ada.token()).await;
    assert_eq!(third.closed().await, Closed::Code(4429));
    let refused = server
        .client
        .post(server.url("/graphql"))
        .header("accept", "text/event-stream")
        .bearer_auth(&ada.access_token)
        .json(&json!({ "query": subscription }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(error_code(&body), "RATE_LIMITED");

    // Bob's two fill the address: a fifth connection from it is refused before upgrading.
    let _bob1 = Ws::connect(&server, TRANSPORT_WS, bob.token()).await;
    let _bob2 = Ws::connect(&server, TRANSPORT_WS, bob.token()).await;
    let crowded = Ws::open(&server, TRANSPORT_WS, &[]).await;
    assert!(crowded.is_err(), "refused with 429");

    // A closed socket gives its places back.
    first
        .send_raw(tokio_tungstenite::tungstenite::Message::Close(None))
        .await
        .unwrap();
    first.closed().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut again) = Ws::open(&server, TRANSPORT_WS, &[]).await {
            again.init(ada.token()).await;
            let ack = again.next_json().await.expect("an answer");
            assert_eq!(ack["type"], "connection_ack");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the place is given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
