//! Workflows: creation, validated graphs, immutable versions, revert, lists, roles, isolation.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::TestServer;
use crate::harness::accounts::{
    Account, Tenant, create_organization, data, error_code, member, register,
};

fn chat_graph(prompt: &str) -> Value {
    json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [] } },
            { "key": "llm", "type": "LLM", "title": "Reply", "config": {
                "providerId": Uuid::new_v4(), "model": "m", "prompt": prompt, "memory": true },
              "position": { "x": 10.0, "y": 20.0 } },
            { "key": "answer", "type": "ANSWER", "config": { "answer": "{{llm.text}}" } }
        ],
        "connections": [
            { "source": "start", "target": "llm" },
            { "source": "llm", "target": "answer" }
        ]
    })
}

async fn create(
    server: &TestServer,
    who: &Account,
    workspace: Uuid,
    name: &str,
    graph: Value,
) -> Value {
    server
        .graphql_as(
            who.token(),
            "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id name sourceType
               currentVersion { sequenceNumber isCurrent } } }",
            json!({ "i": { "workspaceId": workspace, "name": name, "graph": graph } }),
        )
        .await
}

async fn setup() -> (TestServer, Account, Tenant) {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    (server, owner, tenant)
}

const VERSION_FIELDS: &str = "id sequenceNumber isCurrent parent { sequenceNumber }
    nodes { key type title config positionX } connections { source target sourceHandle }";

#[tokio::test]
async fn graph_changes_make_new_versions_and_revert_makes_another() {
    let (server, owner, tenant) = setup().await;
    let created = data(
        create(
            &server,
            &owner,
            tenant.workspace_id,
            "Support bot",
            chat_graph("{{sys.query}}"),
        )
        .await,
    );
    let id = created["createWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(created["createWorkflow"]["sourceType"], "SCRATCH");
    assert_eq!(
        created["createWorkflow"]["currentVersion"]["sequenceNumber"],
        1
    );

    let update = server
        .graphql_as(
            owner.token(),
            "mutation($i: UpdateWorkflowGraphInput!) { updateWorkflowGraph(input: $i) { id } }",
            json!({ "i": { "workflowId": id, "graph": chat_graph("Answer kindly: {{sys.query}}") } }),
        )
        .await;
    data(update);
    let revert = server
        .graphql_as(
            owner.token(),
            "mutation($i: RevertWorkflowInput!) { revertWorkflow(input: $i) { id } }",
            json!({ "i": { "workflowId": id, "sequenceNumber": 1 } }),
        )
        .await;
    data(revert);

    let answer = data(
        server
            .graphql_as(
                owner.token(),
                &format!(
                    "query($id: UUID!) {{ workflow(id: $id) {{ currentVersion {{ {VERSION_FIELDS} }}
                       versions(first: 10) {{ totalCount edges {{ node {{ sequenceNumber isCurrent parent {{ sequenceNumber }} }} }} }} }} }}"
                ),
                json!({ "id": id }),
            )
            .await,
    );
    let workflow = &answer["workflow"];
    let current = &workflow["currentVersion"];
    assert_eq!(current["sequenceNumber"], 3);
    assert_eq!(current["parent"]["sequenceNumber"], 2);
    let llm = current["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["key"] == "llm")
        .unwrap();
    assert_eq!(
        llm["config"]["prompt"], "{{sys.query}}",
        "version 3 has version 1's graph"
    );
    assert_eq!(llm["type"], "LLM");
    assert_eq!(llm["title"], "Reply");
    assert_eq!(llm["positionX"], 10.0);
    assert_eq!(current["connections"].as_array().unwrap().len(), 2);
    let versions: Vec<i64> = workflow["versions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["sequenceNumber"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![3, 2, 1], "newest first");
    assert_eq!(workflow["versions"]["totalCount"], 3);
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM workflow_versions WHERE is_current")
            .await,
        1,
        "exactly one current version"
    );
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM audit_logs WHERE resource_type = 'workflow'")
            .await,
        3
    );

    let bad_revert = server
        .graphql_as(
            owner.token(),
            "mutation($i: RevertWorkflowInput!) { revertWorkflow(input: $i) { id } }",
            json!({ "i": { "workflowId": id, "sequenceNumber": 9 } }),
        )
        .await;
    assert_eq!(
        bad_revert["errors"][0]["extensions"]["field"],
        "sequenceNumber"
    );
}

#[tokio::test]
async fn invalid_graphs_are_refused_naming_the_node_and_nothing_is_stored() {
    let (server, owner, tenant) = setup().await;
    let mut cycle = chat_graph("{{sys.query}}");
    cycle["connections"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "source": "answer", "target": "llm" }));
    let mut forward_reference = chat_graph("{{answer.answer}}");
    forward_reference["nodes"][1]["key"] = json!("llm");
    let mut no_start = chat_graph("x");
    no_start["nodes"].as_array_mut().unwrap().remove(0);
    no_start["connections"].as_array_mut().unwrap().remove(0);
    let mut bad_config = chat_graph("x");
    bad_config["nodes"][1]["config"]["temperature"] = json!("hot");
    for (graph, expected) in [
        (cycle, "cycle"),
        (forward_reference, "does not run before"),
        (no_start, "START"),
        (bad_config, "temperature"),
    ] {
        let answer = create(&server, &owner, tenant.workspace_id, "Bad", graph).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        let message = answer["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
        assert!(
            answer["errors"][0]["extensions"]["field"]
                .as_str()
                .unwrap()
                .starts_with("graph")
        );
    }
    assert_eq!(server.scalar("SELECT count(*) FROM workflows").await, 0);
    assert_eq!(server.scalar("SELECT count(*) FROM nodes").await, 0);
}

#[tokio::test]
async fn workflows_list_newest_first_with_cursors_filters_and_total_count() {
    let (server, owner, tenant) = setup().await;
    for name in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        data(
            create(
                &server,
                &owner,
                tenant.workspace_id,
                name,
                chat_graph("{{sys.query}}"),
            )
            .await,
        );
    }
    let page = async |first: i32, after: Option<&str>, filter: Value| {
        server
            .graphql_as(
                owner.token(),
                "query($w: UUID!, $first: Int, $after: String, $filter: WorkflowFilter) {
                   workspace(id: $w) { workflows(first: $first, after: $after, filter: $filter) {
                     totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { name } } } } }",
                json!({ "w": tenant.workspace_id, "first": first, "after": after, "filter": filter }),
            )
            .await
    };
    let names = |answer: &Value| -> Vec<String> {
        answer["workspace"]["workflows"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let first = data(page(2, None, Value::Null).await);
    assert_eq!(names(&first), ["epsilon", "delta"]);
    assert_eq!(first["workspace"]["workflows"]["totalCount"], 5);
    assert_eq!(
        first["workspace"]["workflows"]["pageInfo"]["hasNextPage"],
        true
    );
    let cursor = first["workspace"]["workflows"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_string();
    let second = data(page(2, Some(&cursor), Value::Null).await);
    assert_eq!(names(&second), ["gamma", "beta"]);
    assert_eq!(
        second["workspace"]["workflows"]["pageInfo"]["hasPreviousPage"],
        true
    );

    let filtered = data(page(10, None, json!({ "nameContains": "ELTA" })).await);
    assert_eq!(names(&filtered), ["delta"]);
    assert_eq!(filtered["workspace"]["workflows"]["totalCount"], 1);

    let too_big = page(101, None, Value::Null).await;
    assert_eq!(error_code(&too_big), "BAD_USER_INPUT");
    assert_eq!(too_big["errors"][0]["extensions"]["field"], "first");
    let bad_cursor = page(2, Some("garbage"), Value::Null).await;
    assert_eq!(error_code(&bad_cursor), "BAD_USER_INPUT");
}

#[tokio::test]
async fn members_read_editors_build_and_other_workspaces_see_nothing() {
    let (server, owner, tenant) = setup().await;
    let reader = member(
        &server,
        &owner,
        tenant.team_id,
        "reader@example.com",
        "MEMBER",
    )
    .await;
    let editor = member(
        &server,
        &owner,
        tenant.team_id,
        "editor@example.com",
        "EDITOR",
    )
    .await;
    let stranger = register(&server, "stranger@example.com").await;
    let theirs = create_organization(&server, &stranger, "Theirs").await;

    assert_eq!(
        error_code(&create(&server, &reader, tenant.workspace_id, "x", chat_graph("x")).await),
        "FORBIDDEN"
    );
    let made = data(
        create(
            &server,
            &editor,
            tenant.workspace_id,
            "Editor's",
            chat_graph("{{sys.query}}"),
        )
        .await,
    );
    let id = made["createWorkflow"]["id"].as_str().unwrap().to_string();
    let read = server
        .graphql_as(
            reader.token(),
            "query($id: UUID!) { workflow(id: $id) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(read)["workflow"]["name"], "Editor's");

    // The stranger: null on read, NOT_FOUND on every write, like a random id.
    let read = server
        .graphql_as(
            stranger.token(),
            "query($id: UUID!) { workflow(id: $id) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(read)["workflow"], Value::Null);
    assert_eq!(
        error_code(
            &create(
                &server,
                &stranger,
                tenant.workspace_id,
                "x",
                chat_graph("x")
            )
            .await
        ),
        "NOT_FOUND"
    );
    let writes = [
        (
            "mutation($i: UpdateWorkflowGraphInput!) { updateWorkflowGraph(input: $i) { id } }",
            json!({ "i": { "workflowId": id, "graph": chat_graph("{{sys.query}}") } }),
        ),
        (
            "mutation($i: RevertWorkflowInput!) { revertWorkflow(input: $i) { id } }",
            json!({ "i": { "workflowId": id, "sequenceNumber": 1 } }),
        ),
        (
            "mutation($i: RenameWorkflowInput!) { renameWorkflow(input: $i) { id } }",
            json!({ "i": { "workflowId": id, "name": "mine now" } }),
        ),
        (
            "mutation($i: UUID!) { deleteWorkflow(id: $i) }",
            json!({ "i": id }),
        ),
    ];
    for (query, variables) in &writes {
        let answer = server
            .graphql_as(stranger.token(), query, variables.clone())
            .await;
        assert_eq!(error_code(&answer), "NOT_FOUND", "{query}");
        let answer = server
            .graphql_as(reader.token(), query, variables.clone())
            .await;
        assert_eq!(error_code(&answer), "FORBIDDEN", "{query}");
    }
    let listed = data(
        server
            .graphql_as(
                stranger.token(),
                "query($w: UUID!) { workspace(id: $w) { workflows { totalCount } } }",
                json!({ "w": theirs.workspace_id }),
            )
            .await,
    );
    assert_eq!(listed["workspace"]["workflows"]["totalCount"], 0);

    // Rename, then delete: gone from lookups and lists.
    let renamed = server
        .graphql_as(
            editor.token(),
            "mutation($i: RenameWorkflowInput!) { renameWorkflow(input: $i) { name } }",
            json!({ "i": { "workflowId": id, "name": "Renamed" } }),
        )
        .await;
    assert_eq!(data(renamed)["renameWorkflow"]["name"], "Renamed");
    data(
        server
            .graphql_as(
                editor.token(),
                "mutation($i: UUID!) { deleteWorkflow(id: $i) }",
                json!({ "i": id }),
            )
            .await,
    );
    let read = server
        .graphql_as(
            owner.token(),
            "query($id: UUID!) { workflow(id: $id) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(read)["workflow"], Value::Null);
}

#[tokio::test]
async fn documents_over_the_limits_are_refused_before_anything_runs() {
    let (server, owner, _) = setup().await;
    let deep = format!(
        "{{ me {{ {}id{} }} }}",
        "teams { organization { ".repeat(8),
        " } }".repeat(8)
    );
    let answer = server.graphql_as(owner.token(), &deep, json!({})).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("too deep"),
        "{answer}"
    );

    let expensive = "{ me { workspaces { workflows(first: 100) { edges { node {
        versions(first: 100) { edges { node { nodes { key config } connections { source target } } } } } } } } } }";
    let answer = server.graphql_as(owner.token(), expensive, json!({})).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("complex"),
        "{answer}"
    );
}

#[tokio::test]
async fn introspection_can_be_turned_off() {
    let server = TestServer::start_with(|c| c.api_limits.introspection = false).await;
    let answer = server
        .graphql("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(
        answer.get("errors").is_some() || answer["data"]["__schema"].is_null(),
        "{answer}"
    );
}

#[tokio::test]
async fn a_workflow_is_duplicated_from_its_current_graph_with_its_origin_recorded() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let created = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Bot", "graph": chat_graph("first") } }),
            )
            .await,
    );
    let original = created["createWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: UpdateWorkflowGraphInput!) { updateWorkflowGraph(input: $i) { id } }",
                json!({ "i": { "workflowId": original, "graph": chat_graph("second") } }),
            )
            .await,
    );
    let duplicate = "mutation($id: UUID!, $n: String) { duplicateWorkflow(id: $id, name: $n) {
        id name sourceType sourceWorkflowId versions { totalCount } currentVersion { sequenceNumber graph } } }";
    let copy = data(
        server
            .graphql_as(owner.token(), duplicate, json!({ "id": original }))
            .await,
    )["duplicateWorkflow"]
        .clone();
    assert_ne!(copy["id"], original.as_str());
    assert_eq!(copy["name"], "Bot (copy)");
    assert_eq!(copy["sourceType"], "WORKFLOW");
    assert_eq!(copy["sourceWorkflowId"], original.as_str());
    assert_eq!(copy["versions"]["totalCount"], 1);
    assert_eq!(copy["currentVersion"]["sequenceNumber"], 1);
    let prompt = copy["currentVersion"]["graph"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["key"] == "llm")
        .unwrap()["config"]["prompt"]
        .clone();
    assert_eq!(prompt, "second", "the current graph is copied");
    let named = data(
        server
            .graphql_as(
                owner.token(),
                duplicate,
                json!({ "id": original, "n": "Bot v2" }),
            )
            .await,
    );
    assert_eq!(named["duplicateWorkflow"]["name"], "Bot v2");

    // A MEMBER reads but cannot copy; a stranger does not see it; a bad name changes nothing.
    let reader = member(
        &server,
        &owner,
        tenant.team_id,
        "reader@example.com",
        "MEMBER",
    )
    .await;
    let refused = server
        .graphql_as(reader.token(), duplicate, json!({ "id": original }))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let stranger = register(&server, "stranger@example.com").await;
    let hidden = server
        .graphql_as(stranger.token(), duplicate, json!({ "id": original }))
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND", "{hidden}");
    let blank = server
        .graphql_as(
            owner.token(),
            duplicate,
            json!({ "id": original, "n": "  " }),
        )
        .await;
    assert_eq!(error_code(&blank), "BAD_USER_INPUT", "{blank}");
    let count = server
        .scalar(&format!(
            "SELECT count(*) FROM workflows WHERE source_workflow_id = '{original}'"
        ))
        .await;
    assert_eq!(count, 2);
}
