//! Workflow templates: official ones shipped, community and own ones, source tracking.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, error_code, register};

const LIST: &str = "query($f: WorkflowTemplateFilter) { workflowTemplates(first: 50, filter: $f) {
    totalCount edges { node { id name source isOfficial usageCount } } } }";

fn names(answer: &Value) -> Vec<(String, String)> {
    answer["workflowTemplates"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["name"].as_str().unwrap().to_string(),
                e["node"]["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn templates_are_listed_official_first_and_make_workflows_that_remember_them() {
    let server = TestServer::start().await;
    let ada = register(&server, "ada@example.com").await;
    let ada_org = create_organization(&server, &ada, "Ada's").await;
    let bob = register(&server, "bob@example.com").await;
    let bob_org = create_organization(&server, &bob, "Bob's").await;

    let official = data(
        server
            .graphql_as(ada.token(), LIST, json!({ "f": { "source": "OFFICIAL" } }))
            .await,
    );
    let shipped = 5;
    assert_eq!(official["workflowTemplates"]["totalCount"], shipped);
    let rag = official["workflowTemplates"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["name"] == "Knowledge base chat bot")
        .expect("the retrieval-augmented template ships")["node"]["id"]
        .clone();

    // Bob makes a workflow from it, then shares one publicly and keeps one private.
    let made = data(
        server
            .graphql_as(
                bob.token(),
                "mutation($i: CreateWorkflowFromTemplateInput!) { createWorkflowFromTemplate(input: $i) {
                   id sourceType sourceTemplateId currentVersion { nodes { key } } } }",
                json!({ "i": { "templateId": rag, "workspaceId": bob_org.workspace_id, "name": "Docs bot" } }),
            )
            .await,
    )["createWorkflowFromTemplate"]
        .clone();
    assert_eq!(made["sourceType"], "TEMPLATE");
    assert_eq!(made["sourceTemplateId"], rag);
    assert_eq!(made["currentVersion"]["nodes"].as_array().unwrap().len(), 4);
    let save = async |name: &str, public: bool| {
        server
            .graphql_as(
                bob.token(),
                "mutation($i: SaveWorkflowAsTemplateInput!) { saveWorkflowAsTemplate(input: $i) { id source } }",
                json!({ "i": { "workflowId": made["id"], "name": name, "isPublic": public } }),
            )
            .await
    };
    assert_eq!(
        data(save("Bob shared", true).await)["saveWorkflowAsTemplate"]["source"],
        "OWN"
    );
    data(save("Bob private", false).await);

    let for_ada = names(&data(server.graphql_as(ada.token(), LIST, json!({})).await));
    assert_eq!(for_ada.len(), shipped + 1, "{for_ada:?}");
    assert_eq!(
        for_ada[0],
        (
            "Knowledge base chat bot".to_string(),
            "OFFICIAL".to_string()
        ),
        "official first, most used first"
    );
    assert!(for_ada.iter().take(shipped).all(|(_, s)| s == "OFFICIAL"));
    assert_eq!(
        for_ada[shipped],
        ("Bob shared".to_string(), "COMMUNITY".to_string())
    );
    let for_bob = names(&data(
        server
            .graphql_as(bob.token(), LIST, json!({ "f": { "source": "OWN" } }))
            .await,
    ));
    assert_eq!(for_bob.len(), 2);

    // Ada cannot use Bob's private template, nor save Bob's workflow.
    let private_id = server
        .scalar("SELECT count(*) FROM workflow_templates WHERE name = 'Bob private'")
        .await;
    assert_eq!(private_id, 1);
    let private: Value = server
        .graphql_as(
            bob.token(),
            LIST,
            json!({ "f": { "nameContains": "private" } }),
        )
        .await;
    let private_id = data(private)["workflowTemplates"]["edges"][0]["node"]["id"].clone();
    let refused = server
        .graphql_as(
            ada.token(),
            "mutation($i: CreateWorkflowFromTemplateInput!) { createWorkflowFromTemplate(input: $i) { id } }",
            json!({ "i": { "templateId": private_id, "workspaceId": ada_org.workspace_id, "name": "x" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "NOT_FOUND");
    let refused = server
        .graphql_as(
            ada.token(),
            "mutation($i: SaveWorkflowAsTemplateInput!) { saveWorkflowAsTemplate(input: $i) { id } }",
            json!({ "i": { "workflowId": made["id"], "name": "stolen" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "NOT_FOUND");
    assert_eq!(server.scalar("SELECT usage_count::bigint FROM workflow_templates WHERE official_key = 'rag-chat-bot'").await, 1);
}

#[tokio::test]
async fn a_public_template_shows_no_credentials_and_only_its_authors_name() {
    let server = TestServer::start().await;
    let ada = register(&server, "ada@example.com").await;
    let bob = register(&server, "bob@example.com").await;
    let bob_org = create_organization(&server, &bob, "Bob's").await;
    let graph = json!({
        "nodes": [
            { "key": "start", "type": "START", "config": {} },
            { "key": "call", "type": "HTTP_REQUEST", "config": {
                "method": "POST", "url": "https://bot:hunter2@api.example.com/v1",
                "headers": { "Authorization": "Bearer sk-live-secret" },
                "body": { "apiKey": "k-123", "q": "{{sys.query}}" } } },
            { "key": "end", "type": "END", "config": { "outputs": { "status": "{{call.status}}" } } }
        ],
        "connections": [
            { "source": "start", "target": "call" },
            { "source": "call", "target": "end" }
        ]
    });
    let workflow = crate::harness::chat::workflow(&server, &bob, &bob_org, graph).await;
    data(
        server
            .graphql_as(
                bob.token(),
                "mutation($i: SaveWorkflowAsTemplateInput!) { saveWorkflowAsTemplate(input: $i) { id } }",
                json!({ "i": { "workflowId": workflow, "name": "Caller", "isPublic": true } }),
            )
            .await,
    );
    let query = "query { workflowTemplates(first: 10, filter: { nameContains: \"Caller\" }) {
        edges { node { graph authorName createdBy { email } } } } }";
    let seen = data(server.graphql_as(ada.token(), query, json!({})).await);
    let template = &seen["workflowTemplates"]["edges"][0]["node"];
    assert_eq!(template["authorName"], "Test User");
    assert_eq!(template["createdBy"], Value::Null, "no email for others");
    let text = template["graph"].to_string();
    for secret in ["sk-live-secret", "hunter2", "k-123"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let call = &template["graph"]["nodes"][1]["config"];
    assert_eq!(call["headers"], json!({ "Authorization": "" }));
    assert_eq!(call["url"], "https://api.example.com/v1");
    assert_eq!(call["body"]["q"], "{{sys.query}}");
    // The author sees their own profile.
    let own = data(server.graphql_as(bob.token(), query, json!({})).await);
    assert_eq!(
        own["workflowTemplates"]["edges"][0]["node"]["createdBy"]["email"],
        "bob@example.com"
    );
}
