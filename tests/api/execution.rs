//! Workflow runs: branches and skipped nodes, concurrent branches, failing nodes, SSRF
//! refusal, stops of queued runs, and runs whose instance died.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{Account, create_organization, data, error_code, register};
use crate::harness::chat::{chat_app, provider, workflow};
use crate::harness::live::{Ws, execution_row};
use crate::harness::model_server::ModelServer;

const RUN: &str = "mutation($i: RunWorkflowInput!) { runWorkflow(input: $i) { id status } }";
const EVENTS: &str = "subscription($id: UUID!) { executionEvents(executionId: $id) {
    seq kind nodeKey nodeType status error outputs execution { status } } }";

async fn run(server: &TestServer, who: &Account, workflow: &str, inputs: Value) -> Value {
    server
        .graphql_as(
            who.token(),
            RUN,
            json!({ "i": { "workflowId": workflow, "inputs": inputs } }),
        )
        .await
}

/// Follows a run to its end; its events.
async fn follow(server: &TestServer, who: &Account, execution: &str) -> Vec<Value> {
    let mut ws = Ws::connect(server, "graphql-transport-ws", who.token()).await;
    ws.subscribe("1", EVENTS, json!({ "id": execution })).await;
    ws.until_complete("1")
        .await
        .into_iter()
        .map(|p| p["data"]["executionEvents"].clone())
        .collect()
}

fn branching_graph() -> Value {
    json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [
                { "name": "n", "type": "number", "required": true } ] } },
            { "key": "check", "type": "CONDITION", "config": { "logic": "and", "conditions": [
                { "variable": "start.n", "operator": "gt", "value": 10 } ] } },
            { "key": "big", "type": "TEMPLATE", "config": { "template": "big {{start.n}}" } },
            { "key": "small", "type": "TEMPLATE", "config": { "template": "small {{start.n}}" } },
            { "key": "after_small", "type": "TEMPLATE", "config": { "template": "{{small.output}}!" } },
            { "key": "side", "type": "TEMPLATE", "config": { "template": "side {{start.n}}" } },
            { "key": "end", "type": "END", "config": { "outputs": {
                "size": "{{big.output}}{{small.output}}", "side": "{{side.output}}" } } }
        ],
        "connections": [
            { "source": "start", "target": "check" },
            { "source": "start", "target": "side" },
            { "source": "check", "target": "big", "sourceHandle": "true" },
            { "source": "check", "target": "small", "sourceHandle": "false" },
            { "source": "small", "target": "after_small" },
            { "source": "big", "target": "end" },
            { "source": "small", "target": "end" },
            { "source": "side", "target": "end" }
        ]
    })
}

#[tokio::test]
async fn a_condition_takes_one_branch_and_skips_the_other() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let flow = workflow(&server, &owner, &tenant, branching_graph()).await;

    // Inputs are checked before anything is queued.
    let missing = run(&server, &owner, &flow, json!({})).await;
    assert_eq!(error_code(&missing), "BAD_USER_INPUT");
    assert_eq!(missing["errors"][0]["extensions"]["field"], "inputs.n");
    let wrong = run(&server, &owner, &flow, json!({ "n": "many" })).await;
    assert_eq!(wrong["errors"][0]["extensions"]["field"], "inputs.n");
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM execution_records")
            .await,
        0
    );

    let started =
        data(run(&server, &owner, &flow, json!({ "n": 42 })).await)["runWorkflow"].clone();
    assert_eq!(started["status"], "QUEUED");
    let id = started["id"].as_str().unwrap().to_string();
    let events = follow(&server, &owner, &id).await;
    assert_eq!(events.first().unwrap()["kind"], "EXECUTION_STARTED");
    let last = events.last().unwrap();
    assert_eq!(last["kind"], "EXECUTION_FINISHED");
    assert_eq!(last["status"], "SUCCEEDED");
    assert_eq!(
        last["outputs"],
        json!({ "size": "big 42", "side": "side 42" })
    );
    let finished = |key: &str| {
        events
            .iter()
            .find(|e| e["kind"] == "NODE_FINISHED" && e["nodeKey"] == key)
            .map(|e| e["status"].as_str().unwrap().to_string())
    };
    assert_eq!(finished("big").as_deref(), Some("SUCCEEDED"));
    assert_eq!(finished("small").as_deref(), Some("SKIPPED"));
    assert_eq!(finished("after_small").as_deref(), Some("SKIPPED"));
    assert_eq!(finished("side").as_deref(), Some("SUCCEEDED"));
    assert_eq!(finished("end").as_deref(), Some("SUCCEEDED"));
    let check = events
        .iter()
        .find(|e| e["kind"] == "NODE_FINISHED" && e["nodeKey"] == "check")
        .unwrap();
    assert_eq!(check["outputs"]["result"], true);

    // The other way round.
    let small = data(run(&server, &owner, &flow, json!({ "n": 3 })).await)["runWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = follow(&server, &owner, &small).await;
    assert_eq!(events.last().unwrap()["outputs"]["size"], "small 3");
    let row = execution_row(&server, small.parse().unwrap()).await;
    assert_eq!(row.status, "SUCCEEDED");
    assert_eq!(
        row.total_steps, 6,
        "start, check, small, after_small, side, end"
    );
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM node_execution_results WHERE execution_id = '{small}' AND status = 'SKIPPED'"
            ))
            .await,
        1
    );
}

#[tokio::test]
async fn a_failing_node_fails_the_run_with_its_error() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let refused = provider(
        &server,
        &owner,
        &tenant,
        &models.base_url,
        "sk-wrong-secret",
        None,
    )
    .await;
    let graph = json!({
        "nodes": [
            { "key": "start", "type": "START", "config": {} },
            { "key": "llm", "type": "LLM", "config": { "providerId": refused, "prompt": "hi" } },
            { "key": "end", "type": "END", "config": { "outputs": { "text": "{{llm.text}}" } } }
        ],
        "connections": [
            { "source": "start", "target": "llm" },
            { "source": "llm", "target": "end" }
        ]
    });
    let flow = workflow(&server, &owner, &tenant, graph).await;
    let id = data(run(&server, &owner, &flow, json!({})).await)["runWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = follow(&server, &owner, &id).await;
    let last = events.last().unwrap();
    assert_eq!(last["status"], "FAILED");
    let error = last["error"].as_str().unwrap();
    assert!(error.starts_with("node \"llm\": "), "{error}");
    assert!(error.contains("refused the API key"), "{error}");
    assert!(!error.contains("sk-wrong-secret"));
    assert!(
        !events.iter().any(|e| e["nodeKey"] == "end"),
        "nothing runs after a failure"
    );
    assert_eq!(
        server.scalar("SELECT count(*) FROM execution_jobs").await,
        0
    );
}

#[tokio::test]
async fn http_requests_to_private_addresses_are_refused_unless_allowed() {
    // A local HTTP endpoint to call.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let router = axum::Router::new().route(
            "/status",
            axum::routing::get(|| async { axum::Json(json!({ "ok": true })) }),
        );
        let _ = axum::serve(listener, router).await;
    });
    let graph = |url: &str| {
        json!({
            "nodes": [
                { "key": "start", "type": "START", "config": {} },
                { "key": "call", "type": "HTTP_REQUEST", "config": { "method": "GET", "url": url, "timeoutMs": 2000 } },
                { "key": "end", "type": "END", "config": { "outputs": { "status": "{{call.status}}", "ok": "{{call.json.ok}}" } } }
            ],
            "connections": [
                { "source": "start", "target": "call" },
                { "source": "call", "target": "end" }
            ]
        })
    };
    // Nothing allowed beyond public addresses: what a server is started with by default.
    let server = TestServer::start_with(|c| c.outbound = Default::default()).await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    for url in [
        format!("http://127.0.0.1:{port}/status"),
        format!("http://localhost:{port}/status"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        format!("http://[::1]:{port}/status"),
    ] {
        let flow = workflow(&server, &owner, &tenant, graph(&url)).await;
        let id = data(run(&server, &owner, &flow, json!({})).await)["runWorkflow"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let events = follow(&server, &owner, &id).await;
        let last = events.last().unwrap();
        assert_eq!(last["status"], "FAILED", "{url}");
        assert!(
            last["error"].as_str().unwrap().contains("refused"),
            "{url}: {last}"
        );
    }

    // Allow-listed by configuration, the same call goes through.
    let allowed = TestServer::start_with(|c| {
        c.outbound.allowed = vec![weft::outbound::Network::parse("127.0.0.0/8").unwrap()];
    })
    .await;
    let owner = register(&allowed, "owner@example.com").await;
    let tenant = create_organization(&allowed, &owner, "Acme").await;
    let flow = workflow(
        &allowed,
        &owner,
        &tenant,
        graph(&format!("http://127.0.0.1:{port}/status")),
    )
    .await;
    let id = data(run(&allowed, &owner, &flow, json!({})).await)["runWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = follow(&allowed, &owner, &id).await;
    let last = events.last().unwrap();
    assert_eq!(last["status"], "SUCCEEDED", "{last}");
    assert_eq!(last["outputs"], json!({ "status": "200", "ok": "true" }));
}

#[tokio::test]
async fn a_run_whose_instance_was_killed_is_finished_as_interrupted() {
    let models = ModelServer::start().await;
    // This instance claims no runs (no workers) but watches leases, as every instance does.
    let server = TestServer::start_with(|c| {
        c.engine.lease = Duration::from_secs(1);
        c.engine.workers = 0;
    })
    .await;
    let app = chat_app(&server, &models.base_url, "slow", None).await;

    // Another instance of the service, a real process, takes the run and is killed mid-reply.
    let url = server.app.config.database_url.clone();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .env("DATABASE_URL", &url)
        .env("REDIS_URL", crate::harness::server::redis_url())
        .env("WEFT_REDIS_PREFIX", &server.app.config.redis_prefix)
        .env("WEFT_HTTP_ALLOWED_NETWORKS", "127.0.0.0/8")
        .env("WEFT_BIND", "127.0.0.1:0")
        .env(
            "WEFT_DATA_DIR",
            std::env::temp_dir().join(format!("weft-kill-{}", uuid::Uuid::new_v4())),
        )
        .env("WEFT_ENCRYPTION_KEY", hex::encode([7u8; 32]))
        .env("WEFT_RUN_LEASE_SECS", "1")
        .env("WEFT_DEMO", "false")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let serving = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Weft is serving GraphQL at ") {
                return rest.trim_end_matches("/graphql").to_string();
            }
        }
        panic!("the child stopped before serving")
    })
    .await
    .expect("the child serves");
    let sent: Value = reqwest::Client::new()
        .post(format!("{serving}/graphql"))
        .bearer_auth(&app.key)
        .json(
            &json!({ "query": crate::harness::chat::SEND, "variables": { "i": {
            "applicationId": app.application, "query": "Count", "endUserId": "user-1" } } }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message: uuid::Uuid = data(sent)["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Wait until the child streams it, then kill the child.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let row = crate::harness::live::message_row(&server, message).await;
        if row.status == "STREAMING" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the reply starts");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leased_by_child = server
        .scalar(&format!(
            "SELECT count(*) FROM execution_jobs WHERE message_id = '{message}' AND leased_by NOT LIKE '%{}%'",
            server.app.engine.instance
        ))
        .await;
    assert_eq!(leased_by_child, 1, "the child holds the run");
    // Some of the reply has streamed when the child dies.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server
        .app
        .realtime
        .streamed_text(message)
        .await
        .unwrap()
        .0
        .len()
        < 20
    {
        assert!(std::time::Instant::now() < deadline, "tokens stream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.expect("killed");
    let (streamed, _) = server.app.realtime.streamed_text(message).await.unwrap();

    // The survivor sees the lease run out and finishes the run.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let row = crate::harness::live::message_row(&server, message).await;
        if row.status != "STREAMING" {
            assert_eq!(row.status, "FAILED");
            assert!(row.error.unwrap().contains("interrupted"));
            // The partial reply is kept: what had streamed when the instance died.
            assert_eq!(row.content, streamed);
            assert!(row.content.starts_with("t0 t1 "), "{}", row.content);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run is finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let execution: i64 = server
        .scalar(&format!(
            "SELECT count(*) FROM execution_records e JOIN messages m ON m.execution_id = e.id \
             WHERE m.id = '{message}' AND e.status = 'FAILED' AND e.error LIKE 'interrupted%'"
        ))
        .await;
    assert_eq!(execution, 1);
    assert_eq!(
        server.scalar("SELECT count(*) FROM execution_jobs").await,
        0
    );
}

#[tokio::test]
async fn a_queued_run_stops_at_once_and_strangers_cannot_touch_runs() {
    let models = ModelServer::start().await;
    // One worker: the first reply holds it, the second waits in the queue.
    let server = TestServer::start_with(|c| c.engine.workers = 1).await;
    let app = chat_app(&server, &models.base_url, "slow", None).await;
    let first = crate::harness::chat::send(&server, &app, "One", None).await;
    let second = crate::harness::chat::send(&server, &app, "Two", None).await;
    let (first_reply, second_reply) = (
        first["assistantMessage"]["id"]
            .as_str()
            .unwrap()
            .to_string(),
        second["assistantMessage"]["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while crate::harness::live::message_row(&server, first_reply.parse().unwrap())
        .await
        .status
        != "STREAMING"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first reply starts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        crate::harness::live::message_row(&server, second_reply.parse().unwrap())
            .await
            .status,
        "PENDING"
    );

    // Another tenant sees none of it.
    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Other").await;
    let stop_message = "mutation($id: UUID!) { stopMessage(messageId: $id) { status answer } }";
    let stop_execution = "mutation($id: UUID!) { stopExecution(id: $id) { status } }";
    assert_eq!(
        error_code(
            &server
                .graphql_as(stranger.token(), stop_message, json!({ "id": first_reply }))
                .await
        ),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(
            &server
                .graphql_as(
                    stranger.token(),
                    stop_execution,
                    json!({ "id": first["execution"]["id"] })
                )
                .await
        ),
        "NOT_FOUND"
    );
    let workflow = data(
        server
            .graphql_as(
                app.owner.token(),
                "query($id: UUID!) { application(id: $id) { workflow { id } } }",
                json!({ "id": app.application }),
            )
            .await,
    )["application"]["workflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        error_code(&run(&server, &stranger, &workflow, json!({})).await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(
            &server
                .graphql_as(
                    stranger.token(),
                    crate::harness::chat::SEND,
                    json!({ "i": { "applicationId": app.application, "query": "Hi" } }),
                )
                .await
        ),
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM execution_records")
            .await,
        2
    );

    // The queued reply stops without ever running; its stream ends with END (STOPPED).
    let stopped = data(
        server
            .graphql_as(Some(&app.key), stop_message, json!({ "id": second_reply }))
            .await,
    )["stopMessage"]
        .clone();
    assert_eq!(stopped["status"], "STOPPED");
    assert_eq!(stopped["answer"], "");
    let mut ws = Ws::connect(&server, "graphql-transport-ws", Some(&app.key)).await;
    ws.subscribe(
        "2",
        crate::harness::chat::STREAM,
        json!({ "id": second_reply }),
    )
    .await;
    let events = ws.until_complete("2").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"]["messageStream"]["kind"], "END");
    assert_eq!(
        events[0]["data"]["messageStream"]["message"]["status"],
        "STOPPED"
    );
    assert_eq!(
        execution_row(
            &server,
            second["execution"]["id"].as_str().unwrap().parse().unwrap()
        )
        .await
        .status,
        "STOPPED"
    );

    // The running one stops through its execution, by the builder.
    let stopped = data(
        server
            .graphql_as(
                app.owner.token(),
                stop_execution,
                json!({ "id": first["execution"]["id"] }),
            )
            .await,
    )["stopExecution"]
        .clone();
    assert_eq!(stopped["status"], "STOPPED");
    assert_eq!(
        server.scalar("SELECT count(*) FROM execution_jobs").await,
        0
    );
    // Stopping again changes nothing.
    assert_eq!(
        data(
            server
                .graphql_as(
                    app.owner.token(),
                    stop_execution,
                    json!({ "id": first["execution"]["id"] })
                )
                .await
        )["stopExecution"]["status"],
        "STOPPED"
    );

    // The application's key may run its published workflow.
    let by_key = server
        .graphql_as(
            Some(&app.key),
            RUN,
            json!({ "i": { "workflowId": workflow, "inputs": {} } }),
        )
        .await;
    assert_eq!(data(by_key)["runWorkflow"]["status"], "QUEUED");
}

#[tokio::test]
async fn node_outputs_over_64_kib_travel_trimmed_and_stay_whole_in_the_record() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let flow = workflow(
        &server,
        &owner,
        &tenant,
        json!({
            "nodes": [
                { "key": "start", "type": "START", "config": { "inputs": [
                    { "name": "text", "type": "string", "required": true } ] } },
                { "key": "copy", "type": "TEMPLATE", "config": { "template": "{{start.text}}" } },
                { "key": "end", "type": "END", "config": { "outputs": { "text": "{{copy.output}}" } } }
            ],
            "connections": [
                { "source": "start", "target": "copy" },
                { "source": "copy", "target": "end" }
            ]
        }),
    )
    .await;
    let text = "w".repeat(100 << 10);
    let id = data(run(&server, &owner, &flow, json!({ "text": text })).await)["runWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = follow(&server, &owner, &id).await;
    let copied = events
        .iter()
        .find(|e| e["kind"] == "NODE_FINISHED" && e["nodeKey"] == "copy")
        .unwrap();
    assert_eq!(copied["outputs"]["trimmed"], true, "{}", copied["outputs"]);
    assert!(copied["outputs"]["bytes"].as_u64().unwrap() > 100 << 10);
    let last = events.last().unwrap();
    assert_eq!(last["status"], "SUCCEEDED");
    assert_eq!(last["outputs"]["trimmed"], true);
    let record = data(
        server
            .graphql_as(
                owner.token(),
                "query($id: UUID!) { execution(id: $id) { outputs nodeResults { nodeKey outputs } } }",
                json!({ "id": id }),
            )
            .await,
    );
    assert_eq!(record["execution"]["outputs"]["text"], text.as_str());
    let node = record["execution"]["nodeResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["nodeKey"] == "copy")
        .unwrap();
    assert_eq!(node["outputs"]["output"], text.as_str());
}
