//! Limits on an operation's root and on a socket's start: at most WEFT_MAX_ROOT_FIELDS root
//! fields, exactly one in a subscription, and connection_init in time.

use std::time::Duration;

use serde_json::json;

use crate::harness::TestServer;
use crate::harness::accounts::{data, error_code, register};
use crate::harness::live::{Closed, Sse, Ws};

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
