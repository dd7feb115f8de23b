//! Draft and published: builders edit and run the draft, applications, API keys and end
//! users run the published version; a workflow never published runs its draft; the
//! migration publishes what existed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, error_code, register};
use crate::harness::chat::{SEND, application_with_key, workflow};
use crate::harness::live::{execution_row, message_row};

fn graph(version: &str) -> Value {
    json!({
        "nodes": [
            { "key": "start", "type": "START", "config": {} },
            { "key": "answer", "type": "ANSWER", "config": { "answer": format!("{version}: {{{{sys.query}}}}") } },
            { "key": "end", "type": "END", "config": { "outputs": { "version": version } } }
        ],
        "connections": [
            { "source": "start", "target": "answer" },
            { "source": "answer", "target": "end" }
        ]
    })
}

async fn run(server: &TestServer, token: Option<&str>, flow: &str, version: Option<i32>) -> Value {
    server
        .graphql_as(
            token,
            "mutation($i: RunWorkflowInput!) { runWorkflow(input: $i) { id } }",
            json!({ "i": { "workflowId": flow, "version": version } }),
        )
        .await
}

/// The sequence number a run ran and its `version` output, once it ended.
async fn ran(
    server: &TestServer,
    token: Option<&str>,
    flow: &str,
    version: Option<i32>,
) -> (i64, String) {
    let started = data(run(server, token, flow, version).await)["runWorkflow"].clone();
    let id: Uuid = started["id"].as_str().unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = execution_row(server, id).await;
        if row.status == "SUCCEEDED" {
            let output = row.outputs.unwrap()["version"]
                .as_str()
                .unwrap()
                .to_string();
            let number = server
                .scalar(&format!(
                    "SELECT sequence_number::bigint FROM workflow_versions WHERE id = '{}'",
                    row.version_id
                ))
                .await;
            return (number, output);
        }
        assert!(
            Instant::now() < deadline,
            "the run did not end: {}",
            row.status
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// What an end user of the chat application is answered.
async fn answered(server: &TestServer, chat: &(String, String), query: &str) -> String {
    let (application, key) = chat;
    let sent = data(
        server
            .graphql_as(
                Some(key.as_str()),
                SEND,
                json!({ "i": { "applicationId": application, "query": query, "endUserId": "user-1" } }),
            )
            .await,
    )["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let message = message_row(server, sent).await;
        if message.status == "COMPLETED" {
            return message.content;
        }
        assert!(Instant::now() < deadline, "no answer: {}", message.status);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

const PUBLISH: &str = "mutation($i: PublishWorkflowInput!) { publishWorkflow(input: $i) {
    id publishedVersion { sequenceNumber isCurrent } currentVersion { sequenceNumber } } }";
const UPDATE: &str =
    "mutation($i: UpdateWorkflowGraphInput!) { updateWorkflowGraph(input: $i) { id } }";

#[tokio::test]
async fn end_users_see_a_draft_only_once_it_is_published() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let flow = workflow(&server, &owner, &tenant, graph("v1")).await;
    let chat = application_with_key(&server, &owner, tenant.workspace_id, &flow, "CHAT").await;
    let (_, key) =
        application_with_key(&server, &owner, tenant.workspace_id, &flow, "WORKFLOW").await;

    // Never published: everyone runs the draft, as before publishing existed.
    let published = data(
        server
            .graphql_as(
                owner.token(),
                "query($id: UUID!) { workflow(id: $id) { publishedVersion { id } } }",
                json!({ "id": flow }),
            )
            .await,
    );
    assert_eq!(published["workflow"]["publishedVersion"], Value::Null);
    assert_eq!(answered(&server, &chat, "hi").await, "v1: hi");

    let first = data(
        server
            .graphql_as(
                owner.token(),
                PUBLISH,
                json!({ "i": { "workflowId": flow } }),
            )
            .await,
    );
    assert_eq!(
        first["publishWorkflow"]["publishedVersion"],
        json!({ "sequenceNumber": 1, "isCurrent": true })
    );

    // A draft edit: builders see it, end users and the key do not.
    data(
        server
            .graphql_as(
                owner.token(),
                UPDATE,
                json!({ "i": { "workflowId": flow, "graph": graph("v2") } }),
            )
            .await,
    );
    assert_eq!(answered(&server, &chat, "hi").await, "v1: hi");
    assert_eq!(
        ran(&server, Some(&key), &flow, None).await,
        (1, "v1".into())
    );
    assert_eq!(
        ran(&server, owner.token(), &flow, None).await,
        (2, "v2".into())
    );
    assert_eq!(
        ran(&server, owner.token(), &flow, Some(1)).await,
        (1, "v1".into())
    );
    let missing = run(&server, owner.token(), &flow, Some(9)).await;
    assert_eq!(error_code(&missing), "BAD_USER_INPUT");
    assert_eq!(missing["errors"][0]["extensions"]["field"], "version");
    let chosen = run(&server, Some(&key), &flow, Some(2)).await;
    assert_eq!(error_code(&chosen), "BAD_USER_INPUT");
    assert_eq!(chosen["errors"][0]["extensions"]["field"], "version");

    // Published: everyone gets v2.
    let second = data(
        server
            .graphql_as(
                owner.token(),
                PUBLISH,
                json!({ "i": { "workflowId": flow } }),
            )
            .await,
    );
    assert_eq!(
        second["publishWorkflow"]["publishedVersion"]["sequenceNumber"],
        2
    );
    assert_eq!(answered(&server, &chat, "hi").await, "v2: hi");
    assert_eq!(
        ran(&server, Some(&key), &flow, None).await,
        (2, "v2".into())
    );

    // A revert is a new draft (v3 with v1's graph); the published version stays v2.
    let reverted = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: RevertWorkflowInput!) { revertWorkflow(input: $i) {
                    currentVersion { sequenceNumber } publishedVersion { sequenceNumber isCurrent } } }",
                json!({ "i": { "workflowId": flow, "sequenceNumber": 1 } }),
            )
            .await,
    );
    assert_eq!(
        reverted["revertWorkflow"],
        json!({ "currentVersion": { "sequenceNumber": 3 },
                "publishedVersion": { "sequenceNumber": 2, "isCurrent": false } })
    );
    assert_eq!(answered(&server, &chat, "hi").await, "v2: hi");
    assert_eq!(
        ran(&server, owner.token(), &flow, None).await,
        (3, "v1".into())
    );

    // An older version can be published again by its number.
    let older = data(
        server
            .graphql_as(
                owner.token(),
                PUBLISH,
                json!({ "i": { "workflowId": flow, "sequenceNumber": 1 } }),
            )
            .await,
    );
    assert_eq!(
        older["publishWorkflow"]["publishedVersion"]["sequenceNumber"],
        1
    );
    assert_eq!(answered(&server, &chat, "hi").await, "v1: hi");
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM audit_logs WHERE action = 'workflow.publish'")
            .await,
        3
    );
}

#[tokio::test]
async fn publishing_is_refused_to_whoever_cannot_build_and_for_versions_that_do_not_exist() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let flow = workflow(&server, &owner, &tenant, graph("v1")).await;

    let missing = server
        .graphql_as(
            owner.token(),
            PUBLISH,
            json!({ "i": { "workflowId": flow, "sequenceNumber": 7 } }),
        )
        .await;
    assert_eq!(error_code(&missing), "BAD_USER_INPUT");
    assert_eq!(
        missing["errors"][0]["extensions"]["field"],
        "sequenceNumber"
    );

    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Other").await;
    let foreign = server
        .graphql_as(
            stranger.token(),
            PUBLISH,
            json!({ "i": { "workflowId": flow } }),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM workflows WHERE published_version_id IS NOT NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn the_migration_publishes_each_workflow_s_current_version() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let flow = workflow(&server, &owner, &tenant, graph("v1")).await;
    data(
        server
            .graphql_as(
                owner.token(),
                UPDATE,
                json!({ "i": { "workflowId": flow, "graph": graph("v2") } }),
            )
            .await,
    );
    let up = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/2026-12-03-000030_published_versions_and_code/up.sql"
    ))
    .unwrap();
    let start = up.find("UPDATE workflows w").unwrap();
    let statement = &up[start..start + up[start..].find(';').unwrap()];
    {
        use diesel_async::RunQueryDsl;
        let mut conn = server.app.pool.get().await.unwrap();
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let published = data(
        server
            .graphql_as(
                owner.token(),
                "query($id: UUID!) { workflow(id: $id) { publishedVersion { sequenceNumber isCurrent } } }",
                json!({ "id": flow }),
            )
            .await,
    );
    assert_eq!(
        published["workflow"]["publishedVersion"],
        json!({ "sequenceNumber": 2, "isCurrent": true })
    );
}
