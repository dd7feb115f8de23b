//! CODE nodes: JavaScript's `main(inputs)` in the sandbox, its fields as outputs and its
//! console kept; loops stopped at the time limit, the host out of reach, bad code refused
//! when the graph is saved, and a stop that interrupts code in flight.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{Account, Tenant, create_organization, data, error_code, register};
use crate::harness::chat::{from_official_template, workflow};
use crate::tools::run_to_end;

const RUN: &str = "mutation($i: RunWorkflowInput!) { runWorkflow(input: $i) { id status } }";
const RESULT: &str = "query($id: UUID!) { execution(id: $id) { status error outputs
    nodeResults { nodeKey nodeType status error outputs inputs console } } }";

fn code_graph(code: &str) -> Value {
    json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [
                { "name": "items", "type": "json" }, { "name": "name", "type": "string" } ] } },
            { "key": "code", "type": "CODE", "config": {
                "language": "JAVASCRIPT",
                "code": code,
                "inputs": { "items": "{{start.items}}", "greeting": "Hello {{start.name}}" } } },
            { "key": "end", "type": "END", "config": { "outputs": {
                "total": "{{code.total}}", "line": "{{code.line}}" } } }
        ],
        "connections": [
            { "source": "start", "target": "code" },
            { "source": "code", "target": "end" }
        ]
    })
}

fn node<'a>(execution: &'a Value, key: &str) -> &'a Value {
    execution["nodeResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["nodeKey"] == key)
        .unwrap()
}

async fn builder(server: &TestServer) -> (Account, Tenant) {
    let owner = register(server, "owner@example.com").await;
    let tenant = create_organization(server, &owner, "Acme").await;
    (owner, tenant)
}

// On a multi-threaded runtime, as the server's: code runs first where its task does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_node_computes_from_its_inputs_and_keeps_its_console() {
    let server = TestServer::start().await;
    let (owner, tenant) = builder(&server).await;
    let flow = workflow(
        &server,
        &owner,
        &tenant,
        code_graph(
            "function main(inputs) {
               console.log('summing', inputs.items.length, 'items');
               const total = inputs.items.reduce((sum, item) => sum + item.price * item.qty, 0);
               return { total, line: inputs.greeting + ': ' + total.toFixed(2), count: inputs.items.length };
             }",
        ),
    )
    .await;
    let items = json!([{ "price": 2.5, "qty": 4 }, { "price": 1.25, "qty": 2 }]);
    let execution = run_to_end(
        &server,
        &owner,
        &flow,
        json!({ "items": items, "name": "Ada" }),
    )
    .await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    assert_eq!(
        execution["outputs"],
        json!({ "total": "12.5", "line": "Hello Ada: 12.50" })
    );
    let code = node(&execution, "code");
    assert_eq!(code["nodeType"], "CODE");
    // The object's fields are the outputs; a template that is one reference passes the
    // value itself (the list), any other its text.
    assert_eq!(
        code["outputs"],
        json!({ "total": 12.5, "line": "Hello Ada: 12.50", "count": 2 })
    );
    assert_eq!(code["inputs"]["inputs"]["items"], items);
    assert_eq!(code["console"], json!(["summing 2 items"]));
    assert_eq!(node(&execution, "end")["console"], Value::Null);

    // Code still running after its first moments is run again, whole, off the workers:
    // one result and one console, as if it had run once.
    let slow = workflow(
        &server,
        &owner,
        &tenant,
        code_graph(
            "function main(inputs) {
               console.log('waiting');
               const until = Date.now() + 50;
               let spins = 0;
               while (Date.now() < until) { spins++; }
               return { total: inputs.items.length, line: 'waited', spun: spins > 0 };
             }",
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &slow, json!({ "items": [1, 2, 3] })).await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    let code = node(&execution, "code");
    assert_eq!(
        code["outputs"],
        json!({ "total": 3, "line": "waited", "spun": true })
    );
    assert_eq!(code["console"], json!(["waiting"]));
}

// On a multi-threaded runtime, as the server's: code runs first where its task does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_that_loops_forever_is_stopped_at_the_time_limit() {
    let server = TestServer::start_with(|config| {
        config.engine.code_timeout = Duration::from_millis(300);
    })
    .await;
    let (owner, tenant) = builder(&server).await;
    let flow = workflow(
        &server,
        &owner,
        &tenant,
        code_graph("function main(inputs) { console.log('spinning'); while (true) {} }"),
    )
    .await;
    let started = Instant::now();
    let execution = run_to_end(&server, &owner, &flow, json!({ "items": [] })).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(execution["status"], "FAILED");
    let code = node(&execution, "code");
    assert_eq!(code["status"], "FAILED");
    let error = code["error"].as_str().unwrap();
    assert!(
        error.starts_with("the code ran longer than its time limit"),
        "{error}"
    );
    assert!(
        error.contains("spinning"),
        "the console's last lines: {error}"
    );
    assert!(
        execution["error"]
            .as_str()
            .unwrap()
            .contains("node \"code\"")
    );

    // Memory is bounded the same way.
    let hungry = workflow(
        &server,
        &owner,
        &tenant,
        code_graph(
            "function main() { const all = []; while (true) { all.push('x'.repeat(1 << 20) + all.length); } }",
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &hungry, json!({})).await;
    assert_eq!(execution["status"], "FAILED");
    let error = node(&execution, "code")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("MiB of memory"), "{error}");
}

#[tokio::test]
async fn the_host_is_out_of_reach_of_code() {
    let server = TestServer::start().await;
    let (owner, tenant) = builder(&server).await;
    for (code, expected) in [
        (
            "function main() { const fs = require('fs'); return { fs: 1 }; }",
            "require is not defined",
        ),
        (
            "function main() { return { env: process.env.DATABASE_URL }; }",
            "process is not defined",
        ),
        (
            "async function main() { const r = await fetch('http://127.0.0.1:5432/'); return { r: 1 }; }",
            "fetch is not defined",
        ),
    ] {
        let flow = workflow(&server, &owner, &tenant, code_graph(code)).await;
        let execution = run_to_end(&server, &owner, &flow, json!({})).await;
        assert_eq!(execution["status"], "FAILED", "{code}");
        let error = node(&execution, "code")["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(error.contains(expected), "{code}: {error}");
    }
    let flow = workflow(
        &server,
        &owner,
        &tenant,
        code_graph(
            "function main() { return { total: [typeof require, typeof process, typeof fetch,
               typeof setTimeout, typeof XMLHttpRequest].join(','), line: typeof globalThis.std }; }",
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &flow, json!({})).await;
    assert_eq!(
        execution["outputs"],
        json!({ "total": "undefined,undefined,undefined,undefined,undefined", "line": "undefined" })
    );
}

#[tokio::test]
async fn bad_code_is_refused_when_the_graph_is_saved() {
    let server = TestServer::start().await;
    let (owner, tenant) = builder(&server).await;
    let save = |graph: Value| {
        let server = &server;
        let owner = &owner;
        let tenant = &tenant;
        async move {
            server
                .graphql_as(
                    owner.token(),
                    "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
                    json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Code", "graph": graph } }),
                )
                .await
        }
    };
    let syntax = save(code_graph("function main(inputs { return {}; }")).await;
    assert_eq!(error_code(&syntax), "BAD_USER_INPUT");
    assert_eq!(syntax["errors"][0]["extensions"]["field"], "graph.nodes[1]");
    let message = syntax["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("config.code: SyntaxError"), "{message}");

    let mut python = code_graph("def main(inputs): return {}");
    python["nodes"][1]["config"]["language"] = json!("PYTHON");
    let refused = save(python).await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("config.language \"PYTHON\" is not supported"),
        "{refused}"
    );
    let mut bad_inputs = code_graph("function main() { return {}; }");
    bad_inputs["nodes"][1]["config"]["inputs"] = json!({ "not a name": "x" });
    assert_eq!(error_code(&save(bad_inputs).await), "BAD_USER_INPUT");
    let mut empty = code_graph("");
    empty["nodes"][1]["config"]["code"] = json!("  ");
    assert_eq!(error_code(&save(empty).await), "BAD_USER_INPUT");
    assert_eq!(server.scalar("SELECT count(*) FROM workflows").await, 0);
}

// On a multi-threaded runtime, as the server's: code runs first where its task does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_interrupts_code_in_flight() {
    let server = TestServer::start_with(|config| {
        config.engine.code_timeout = Duration::from_secs(60);
    })
    .await;
    let (owner, tenant) = builder(&server).await;
    let flow = workflow(
        &server,
        &owner,
        &tenant,
        code_graph("function main() { while (true) {} }"),
    )
    .await;
    let id = data(
        server
            .graphql_as(
                owner.token(),
                RUN,
                json!({ "i": { "workflowId": flow, "inputs": {} } }),
            )
            .await,
    )["runWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Wait until the code runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running = server
            .scalar(&format!(
                "SELECT count(*) FROM node_execution_results WHERE execution_id = '{id}' AND node_key = 'code' AND status = 'RUNNING'"
            ))
            .await;
        if running == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the code node never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let stopped = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($id: UUID!) { stopExecution(id: $id) { status } }",
                json!({ "id": id }),
            )
            .await,
    );
    assert_eq!(stopped["stopExecution"]["status"], "STOPPED");
    assert!(started.elapsed() < Duration::from_secs(10));
    let execution = data(
        server
            .graphql_as(owner.token(), RESULT, json!({ "id": id }))
            .await,
    )["execution"]
        .clone();
    assert_eq!(node(&execution, "code")["status"], "STOPPED");
    // The interrupted code gave its thread back: another run's code runs at once.
    let quick = workflow(
        &server,
        &owner,
        &tenant,
        code_graph("function main() { return { total: 1, line: 'ok' }; }"),
    )
    .await;
    let execution = run_to_end(&server, &owner, &quick, json!({})).await;
    assert_eq!(execution["outputs"]["line"], "ok");
}

#[tokio::test]
async fn the_code_transform_template_runs_as_shipped() {
    let server = TestServer::start().await;
    let (owner, tenant) = builder(&server).await;
    let created = from_official_template(&server, &owner, &tenant, "Code transform").await;
    let flow = created["id"].as_str().unwrap().to_string();
    let execution = run_to_end(
        &server,
        &owner,
        &flow,
        json!({ "text": "tea, 2, 3.50\n\ncake, 1, 4.25\n" }),
    )
    .await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    assert_eq!(execution["outputs"]["summary"], "2 x tea, 1 x cake");
    assert_eq!(execution["outputs"]["total"], "11.25");
    assert_eq!(
        node(&execution, "transform")["console"],
        json!(["read 2 of 2 lines"])
    );
}
