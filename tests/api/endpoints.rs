//! The endpoints that need no domain: GraphQL over HTTP, GraphiQL, health, readiness, metrics.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft::config::RedisConfig;

use crate::harness::{RedisServer, TestServer};

#[tokio::test]
async fn readyz_is_ok_when_postgres_and_redis_answer() {
    let server = TestServer::start().await;
    let response = server.get("/readyz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"postgres": "ok", "redis": "ok", "shuttingDown": false})
    );
    assert_eq!(server.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn readyz_reports_the_in_process_bus() {
    let server = TestServer::start_with(|c| c.redis = RedisConfig::Memory).await;
    let response = server.get("/readyz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"postgres": "ok", "redis": "memory", "shuttingDown": false})
    );
}

#[tokio::test]
async fn readyz_reports_redis_down_with_503_and_recovers() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let server = TestServer::start_with(|c| c.redis = RedisConfig::Url(url)).await;
    assert_eq!(server.get("/readyz").await.status(), 200);

    redis.stop();
    let body = wait_for_readyz(&server, 503).await;
    assert_eq!(
        body,
        json!({"postgres": "ok", "redis": "down", "shuttingDown": false})
    );
    // Queries that need no Redis keep working meanwhile.
    let answer = server.graphql("{ health { version } }", json!({})).await;
    assert_eq!(
        answer["data"]["health"]["version"],
        env!("CARGO_PKG_VERSION")
    );

    redis.restart();
    let body = wait_for_readyz(&server, 200).await;
    assert_eq!(
        body,
        json!({"postgres": "ok", "redis": "ok", "shuttingDown": false})
    );
}

/// Polls `/readyz` until it answers `status`, for at most 20 seconds.
async fn wait_for_readyz(server: &TestServer, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = server.get("/readyz").await;
        if response.status() == status {
            return response.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "/readyz never answered {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_unknown_field_is_an_error_with_a_code() {
    let server = TestServer::start().await;
    let answer = server
        .graphql("{ health { version } nope }", json!({}))
        .await;
    assert_eq!(answer["data"], Value::Null);
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
}

#[tokio::test]
async fn graphql_response_json_answers_400_to_a_request_error() {
    let server = TestServer::start().await;
    let send = |query: &'static str| {
        server
            .client
            .post(server.url("/graphql"))
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query }))
            .send()
    };
    let bad = send("{ nope }").await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.headers()["content-type"],
        "application/graphql-response+json"
    );
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    let syntax = send("{ health { ").await.unwrap();
    assert_eq!(syntax.status(), 400);

    let good = send("{ health { version } }").await.unwrap();
    assert_eq!(good.status(), 200);
    assert_eq!(
        good.headers()["content-type"],
        "application/graphql-response+json"
    );
}

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations_with_405() {
    let server = TestServer::start().await;
    let query = server
        .client
        .get(server.url("/graphql"))
        .query(&[("query", "{ health { version } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);
    let body: Value = query.json().await.unwrap();
    assert_eq!(body["data"]["health"]["version"], env!("CARGO_PKG_VERSION"));

    let mutation = server
        .client
        .get(server.url("/graphql"))
        .query(&[("query", "mutation { anything }")])
        .send()
        .await
        .unwrap();
    assert_eq!(mutation.status(), 405);
    assert_eq!(mutation.headers()["allow"], "POST");
}

#[tokio::test]
async fn graphiql_is_served_and_the_root_redirects_to_it() {
    let server = TestServer::start().await;
    let page = server.get("/graphiql").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/graphql"));

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = no_redirects.get(server.url("/")).send().await.unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/graphiql");
}

#[tokio::test]
async fn metrics_count_sql_statements_and_graphql_requests() {
    let server = TestServer::start().await;
    let metric = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
            .parse()
            .unwrap()
    };
    let before = server.get("/metrics").await.text().await.unwrap();
    let counted_before = server.app.metrics.db_queries();
    server.get("/readyz").await; // one SELECT 1
    server.graphql("{ health { version } }", json!({})).await;
    let after = server.get("/metrics").await.text().await.unwrap();
    assert_eq!(server.app.metrics.db_queries() - counted_before, 1);
    assert_eq!(
        metric(&after, "weft_db_queries_total") - metric(&before, "weft_db_queries_total"),
        1
    );
    assert_eq!(
        metric(&after, "weft_graphql_requests_total")
            - metric(&before, "weft_graphql_requests_total"),
        1
    );
    // Each request's time, by operation name (given, or the document's own).
    server
        .graphql("query Health { health { version } }", json!({}))
        .await;
    let text = server.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        metric(
            &text,
            "weft_graphql_request_duration_seconds_count{operation=\"Health\"}"
        ),
        1
    );
    assert!(
        metric(
            &text,
            "weft_graphql_request_duration_seconds_count{operation=\"anonymous\"}"
        ) >= 1
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let server = TestServer::start().await;
    let response = server.get("/healthz").await;
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn readyz_answers_503_from_the_moment_shutdown_begins() {
    let mut server = TestServer::start_with(|c| {
        c.http.shutdown_delay = std::time::Duration::from_secs(2);
    })
    .await;
    let (client, readyz, graphql) = (
        server.client.clone(),
        server.url("/readyz"),
        server.url("/graphql"),
    );
    let watch = async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let response = client.get(&readyz).send().await.expect("still serving");
            if response.status() == 503 {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["shuttingDown"], true, "{body}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "503 in time");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // Requests are still answered while the load balancer takes the instance out.
        let health = client
            .post(&graphql)
            .json(&json!({ "query": "{ health { version } }" }))
            .send()
            .await
            .expect("answered");
        assert_eq!(health.status(), 200);
    };
    let (served, ()) = tokio::join!(server.shut_down(), watch);
    served.expect("serve returns");
}
