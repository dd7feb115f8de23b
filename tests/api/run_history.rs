//! Run history: `Workspace.executions` and `Workflow.executions`, newest first, with
//! filters, cursors and counts; what each run belongs to (version, who started it, the
//! application and the reply), and the run behind a reply.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, register};
use crate::harness::chat::{chat_app, send, workflow};
use crate::harness::live::message_row;
use crate::harness::model_server::ModelServer;

const HISTORY: &str = "query($w: UUID!, $n: Int!, $a: String, $f: ExecutionFilter) {
  workspace(id: $w) { executions(first: $n, after: $a, filter: $f) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id status createdAt workflowVersion { sequenceNumber } triggeredBy { name }
                   application { id } message { id } } } } } }";

fn statuses(answer: &Value) -> Vec<String> {
    answer["workspace"]["executions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["status"].as_str().unwrap().to_string())
        .collect()
}

fn created(answer: &Value) -> Vec<String> {
    answer["workspace"]["executions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["createdAt"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn run_history_is_newest_first_with_filters_cursors_and_what_each_run_belongs_to() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let owner = &app.owner;
    let w = app.tenant.workspace_id;

    // A chat reply: a run started by the application, with its message.
    let sent = send(&server, &app, "Hello", None).await;
    let reply: uuid::Uuid = sent["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while message_row(&server, reply).await.status != "COMPLETED" {
        assert!(std::time::Instant::now() < deadline, "the reply completes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Thirty runs of another workflow a minute apart, started by the owner: SUCCEEDED,
    // FAILED, RUNNING in turn (the oldest is 0).
    let graph = json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [] } },
            { "key": "end", "type": "END", "config": { "outputs": {} } }
        ],
        "connections": [{ "source": "start", "target": "end" }]
    });
    let flow = workflow(&server, owner, &app.tenant, graph).await;
    let seeded = {
        use diesel_async::RunQueryDsl;
        let mut conn = server.app.pool.get().await.expect("a connection");
        diesel::sql_query(format!(
            "INSERT INTO execution_records
               (workspace_id, workflow_id, version_id, status, inputs, triggered_by_user_id,
                created_at, started_at, finished_at)
             SELECT '{w}', '{flow}', v.id, (ARRAY['SUCCEEDED','FAILED','RUNNING'])[n % 3 + 1],
                    '{{}}', '{owner}', '2026-01-01T00:00:00Z'::timestamptz + n * interval '1 minute',
                    '2026-01-01T00:00:00Z'::timestamptz + n * interval '1 minute',
                    CASE WHEN n % 3 = 2 THEN NULL
                         ELSE '2026-01-01T00:00:30Z'::timestamptz + n * interval '1 minute' END
             FROM generate_series(0, 29) n, workflow_versions v WHERE v.workflow_id = '{flow}'",
            owner = owner.id
        ))
        .execute(&mut conn)
        .await
        .expect("runs seeded")
    };
    assert_eq!(seeded, 30);
    let query = |n: i64, after: Option<&str>, filter: Value| {
        let (server, token) = (&server, owner.token());
        let after = after.map(str::to_string);
        async move {
            data(
                server
                    .graphql_as(
                        token,
                        HISTORY,
                        json!({ "w": w, "n": n, "a": after, "f": filter }),
                    )
                    .await,
            )
        }
    };

    // Everything: the chat run is the newest (created now), then the seeded ones newest first.
    let all = query(4, None, json!(null)).await;
    assert_eq!(all["workspace"]["executions"]["totalCount"], 31);
    let newest = &all["workspace"]["executions"]["edges"][0]["node"];
    assert_eq!(newest["application"]["id"], app.application.as_str());
    assert_eq!(newest["message"]["id"], reply.to_string());
    assert_eq!(newest["triggeredBy"], Value::Null);
    assert_eq!(newest["status"], "SUCCEEDED");
    assert_eq!(
        statuses(&all)[1..],
        ["RUNNING", "FAILED", "SUCCEEDED"],
        "runs 29, 28, 27"
    );
    let seeded_run = &all["workspace"]["executions"]["edges"][1]["node"];
    assert_eq!(seeded_run["triggeredBy"]["name"], "Test User");
    assert_eq!(seeded_run["workflowVersion"]["sequenceNumber"], 1);
    assert_eq!(seeded_run["application"], Value::Null);

    // One workflow's runs, page by page: 30 runs in pages of 7, each run once, in order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = query(7, after.as_deref(), json!({ "workflowId": flow })).await;
        assert_eq!(page["workspace"]["executions"]["totalCount"], 30);
        seen.extend(created(&page));
        let info = &page["workspace"]["executions"]["pageInfo"];
        if info["hasNextPage"] != true {
            break;
        }
        after = Some(info["endCursor"].as_str().unwrap().to_string());
    }
    assert_eq!(seen.len(), 30);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first, none twice");

    // Filters: statuses, the application, a time range (since inclusive, until exclusive).
    let failed = query(50, None, json!({ "status": ["FAILED"] })).await;
    assert_eq!(failed["workspace"]["executions"]["totalCount"], 10);
    assert!(statuses(&failed).iter().all(|s| s == "FAILED"));
    let open = query(50, None, json!({ "status": ["FAILED", "RUNNING"] })).await;
    assert_eq!(open["workspace"]["executions"]["totalCount"], 20);
    let of_app = query(50, None, json!({ "applicationId": app.application })).await;
    assert_eq!(of_app["workspace"]["executions"]["totalCount"], 1);
    let window = query(
        50,
        None,
        json!({ "since": "2026-01-01T00:10:00Z", "until": "2026-01-01T00:20:00Z" }),
    )
    .await;
    assert_eq!(window["workspace"]["executions"]["totalCount"], 10);
    assert!(
        created(&window)
            .last()
            .unwrap()
            .starts_with("2026-01-01T00:10:00")
    );
    assert!(created(&window)[0].starts_with("2026-01-01T00:19:00"));

    // Workflow.executions: the same runs under their workflow.
    let under_workflow = data(
        server
            .graphql_as(
                owner.token(),
                "query($id: UUID!) { workflow(id: $id) { executions(first: 3, filter: { status: [RUNNING] }) {
                   totalCount edges { node { status } } } } }",
                json!({ "id": flow }),
            )
            .await,
    );
    assert_eq!(under_workflow["workflow"]["executions"]["totalCount"], 10);

    // The run behind a reply, for a builder; an application's key does not see runs.
    let behind =
        "query($id: UUID!) { message(id: $id) { execution { id status message { id } } } }";
    let for_builder = data(
        server
            .graphql_as(owner.token(), behind, json!({ "id": reply }))
            .await,
    );
    assert_eq!(for_builder["message"]["execution"]["status"], "SUCCEEDED");
    assert_eq!(
        for_builder["message"]["execution"]["message"]["id"],
        reply.to_string()
    );
    let for_key = data(
        server
            .graphql_as(Some(&app.key), behind, json!({ "id": reply }))
            .await,
    );
    assert_eq!(for_key["message"]["execution"], Value::Null);

    // Another organization's builder sees none of it.
    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Other").await;
    let theirs = server
        .graphql_as(
            stranger.token(),
            HISTORY,
            json!({ "w": w, "n": 10, "a": null, "f": null }),
        )
        .await;
    assert!(
        theirs["data"]["workspace"].is_null(),
        "another workspace's runs are not listed: {theirs}"
    );
    let their_workflow = server
        .graphql_as(
            stranger.token(),
            "query($id: UUID!) { workflow(id: $id) { executions { totalCount } } }",
            json!({ "id": flow }),
        )
        .await;
    assert!(
        their_workflow["data"]["workflow"].is_null(),
        "{their_workflow}"
    );
}

#[tokio::test]
async fn a_workspace_feed_starts_with_the_runs_in_progress_then_each_change_once() {
    use crate::harness::live::{TRANSPORT_WS, Ws, subscribed};
    let models = ModelServer::start().await;
    // One worker: the first reply runs, the second waits in the queue.
    let server = TestServer::start_with(|c| c.engine.workers = 1).await;
    let app = chat_app(&server, &models.base_url, "slow", None).await;
    let first = send(&server, &app, "One", None).await;
    let second = send(&server, &app, "Two", None).await;
    let reply = |sent: &Value| -> uuid::Uuid {
        sent["assistantMessage"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (first, second) = (reply(&first), reply(&second));
    // The first reply is streaming and its run has reached the LLM node (the message turns
    // STREAMING before the run records its node).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let at_llm = format!(
        "SELECT count(*) FROM messages m JOIN execution_records e ON e.id = m.execution_id \
         WHERE m.id = '{first}' AND e.current_node_key = 'llm'"
    );
    while message_row(&server, first).await.status != "STREAMING"
        || server.scalar(&at_llm).await != 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first reply starts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let runs = |m: uuid::Uuid| {
        let server = &server;
        async move {
            server
                .scalar(&format!(
                    "SELECT count(*) FROM messages WHERE id = '{m}' AND execution_id IS NOT NULL"
                ))
                .await
        }
    };
    assert_eq!((runs(first).await, runs(second).await), (1, 1));

    let mut ws = Ws::connect(&server, TRANSPORT_WS, app.owner.token()).await;
    let feed = "subscription($w: UUID!, $a: Boolean) { workspaceExecutions(workspaceId: $w, includeActive: $a) {
      id status totalSteps currentNodeKey currentNodeType updatedAt } }";
    ws.subscribe("all", feed, json!({ "w": app.tenant.workspace_id }))
        .await;
    ws.subscribe(
        "changes",
        feed,
        json!({ "w": app.tenant.workspace_id, "a": false }),
    )
    .await;
    subscribed(&server, 2).await;
    // The start: both runs as they stand, oldest first.
    let start = ws.take("all", 2).await;
    let status = |p: &Value| {
        p["data"]["workspaceExecutions"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        start.iter().map(status).collect::<Vec<_>>(),
        ["RUNNING", "QUEUED"]
    );
    // How far each has come: the first is at its LLM node (START done), the second nowhere.
    let at = |p: &Value| {
        let run = &p["data"]["workspaceExecutions"];
        (
            run["currentNodeKey"].clone(),
            run["currentNodeType"].clone(),
            run["totalSteps"].as_i64().unwrap(),
        )
    };
    assert_eq!(at(&start[0]), (json!("llm"), json!("LLM"), 1));
    assert_eq!(at(&start[1]), (Value::Null, Value::Null, 0));

    // Both stopped: each change comes once, on both subscriptions; the one without the start
    // begins with a change.
    for m in [second, first] {
        let stopped = server
            .graphql_as(
                Some(&app.key),
                "mutation($m: UUID!) { stopMessage(messageId: $m) { status } }",
                json!({ "m": m }),
            )
            .await;
        assert_eq!(data(stopped)["stopMessage"]["status"], "STOPPED");
    }
    let mut seen: std::collections::HashMap<String, Vec<Value>> = Default::default();
    let done = |seen: &std::collections::HashMap<String, Vec<Value>>, id: &str| {
        seen.get(id).is_some_and(|events| {
            events
                .iter()
                .filter(|e| e["data"]["workspaceExecutions"]["status"] == "STOPPED")
                .count()
                == 2
        })
    };
    while !(done(&seen, "all") && done(&seen, "changes")) {
        let frame = ws.next_json().await.expect("more changes");
        if frame["type"] == "next" {
            seen.entry(frame["id"].as_str().unwrap().to_string())
                .or_default()
                .push(frame["payload"].clone());
        }
    }
    // The running one's LLM node is stopped (a RUNNING change leaving it at no node) before
    // the run ends; the queued one just ends. Each change once, in order, on both.
    for id in ["all", "changes"] {
        let per_run = |run: &str| -> Vec<(String, Value)> {
            seen[id]
                .iter()
                .map(|p| &p["data"]["workspaceExecutions"])
                .filter(|r| r["id"] == run)
                .map(|r| {
                    (
                        r["status"].as_str().unwrap().to_string(),
                        r["currentNodeKey"].clone(),
                    )
                })
                .collect()
        };
        let first_run = start[0]["data"]["workspaceExecutions"]["id"]
            .as_str()
            .unwrap();
        let second_run = start[1]["data"]["workspaceExecutions"]["id"]
            .as_str()
            .unwrap();
        assert_eq!(
            per_run(first_run),
            [
                ("RUNNING".to_string(), Value::Null),
                ("STOPPED".to_string(), Value::Null)
            ],
            "{id}"
        );
        assert_eq!(
            per_run(second_run),
            [("STOPPED".to_string(), Value::Null)],
            "{id}"
        );
        let changes = seen[id].len();
        assert_eq!(changes, 3, "{id}: after the start, each change once");
    }
}

#[tokio::test]
async fn a_workspace_feed_follows_each_running_node_of_its_runs() {
    use crate::harness::live::{TRANSPORT_WS, Ws, subscribed};
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let mut ws = Ws::connect(&server, TRANSPORT_WS, app.owner.token()).await;
    ws.subscribe(
        "feed",
        "subscription($w: UUID!) { workspaceExecutions(workspaceId: $w) {
           id status totalSteps totalTokens currentNodeKey currentNodeType } }",
        json!({ "w": app.tenant.workspace_id }),
    )
    .await;
    subscribed(&server, 1).await;
    send(&server, &app, "Hello", None).await;
    let mut progress = Vec::new();
    loop {
        let frame = ws.next_json().await.expect("the run's changes");
        if frame["type"] != "next" {
            continue;
        }
        let run = frame["payload"]["data"]["workspaceExecutions"].clone();
        let status = run["status"].as_str().unwrap().to_string();
        if status == "QUEUED" {
            // Announced by the request; the worker may already be past it.
            continue;
        }
        let done = status == "SUCCEEDED";
        progress.push((
            status,
            run["currentNodeKey"].as_str().map(str::to_string),
            run["currentNodeType"].as_str().map(str::to_string),
            run["totalSteps"].as_i64().unwrap(),
            run["totalTokens"].as_i64().unwrap() > 0,
        ));
        if done {
            break;
        }
    }
    let step = |status: &str, node: Option<(&str, &str)>, steps: i64, tokens: bool| {
        (
            status.to_string(),
            node.map(|(k, _)| k.to_string()),
            node.map(|(_, t)| t.to_string()),
            steps,
            tokens,
        )
    };
    assert_eq!(
        progress,
        [
            step("RUNNING", None, 0, false),
            step("RUNNING", Some(("start", "START")), 0, false),
            step("RUNNING", None, 1, false),
            step("RUNNING", Some(("llm", "LLM")), 1, false),
            step("RUNNING", None, 2, true),
            step("RUNNING", Some(("answer", "ANSWER")), 2, true),
            step("RUNNING", None, 3, true),
            step("SUCCEEDED", None, 3, true),
        ]
    );
}
