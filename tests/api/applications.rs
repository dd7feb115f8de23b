//! Applications and API keys: settings, publishing, keys shown once and hashed, keys that
//! authenticate as their application only, roles and isolation.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, error_code, member, register};

const CREATE: &str = "mutation($i: CreateApplicationInput!) { createApplication(input: $i) {
    id name mode status workflow { id } } }";

#[tokio::test]
async fn an_application_is_configured_published_and_reached_with_its_key() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let editor = member(
        &server,
        &owner,
        tenant.team_id,
        "editor@example.com",
        "EDITOR",
    )
    .await;
    let workflow = data(
        server
            .graphql_as(
                editor.token(),
                "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Bot" } }),
            )
            .await,
    )["createWorkflow"]["id"]
        .clone();

    let created = data(
        server
            .graphql_as(
                editor.token(),
                CREATE,
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Helpdesk", "mode": "CHAT" } }),
            )
            .await,
    );
    let app_id = created["createApplication"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(created["createApplication"]["status"], "DRAFT");

    let publish = async |token: Option<&str>| {
        server
            .graphql_as(
                token,
                "mutation($id: UUID!) { publishApplication(id: $id) { status publishedAt } }",
                json!({ "id": app_id }),
            )
            .await
    };
    assert_eq!(
        publish(editor.token()).await["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT",
        "no workflow yet"
    );

    let update = server
        .graphql_as(
            editor.token(),
            "mutation($i: UpdateApplicationInput!) { updateApplication(input: $i) {
               openingStatement suggestedQuestions annotationReplyEnabled annotationReplyThreshold workflow { id } } }",
            json!({ "i": { "applicationId": app_id, "workflowId": workflow, "openingStatement": "Hi!",
                           "suggestedQuestions": ["What can you do?"], "annotationReplyEnabled": true,
                           "annotationReplyThreshold": 0.8 } }),
        )
        .await;
    let updated = data(update)["updateApplication"].clone();
    assert_eq!(updated["openingStatement"], "Hi!");
    assert_eq!(updated["suggestedQuestions"], json!(["What can you do?"]));
    assert_eq!(updated["annotationReplyEnabled"], true);
    assert!((updated["annotationReplyThreshold"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    assert_eq!(updated["workflow"]["id"], workflow);
    let bad = server
        .graphql_as(
            editor.token(),
            "mutation($i: UpdateApplicationInput!) { updateApplication(input: $i) { id } }",
            json!({ "i": { "applicationId": app_id, "annotationReplyThreshold": 1.5 } }),
        )
        .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["field"],
        "annotationReplyThreshold"
    );
    assert_eq!(
        data(publish(editor.token()).await)["publishApplication"]["status"],
        "PUBLISHED"
    );

    // Keys: ADMIN and OWNER only; the secret once, stored hashed.
    let create_key = async |token: Option<&str>| {
        server
            .graphql_as(
                token,
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret apiKey { id prefix } } }",
                json!({ "i": { "applicationId": app_id, "name": "web" } }),
            )
            .await
    };
    assert_eq!(error_code(&create_key(editor.token()).await), "FORBIDDEN");
    let key = data(create_key(owner.token()).await)["createApiKey"].clone();
    let secret = key["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("app-") && secret.len() > 40, "{secret}");
    assert!(secret.starts_with(key["apiKey"]["prefix"].as_str().unwrap()));
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM api_keys WHERE key_hash = '{secret}'"
            ))
            .await,
        0,
        "only the hash is stored"
    );

    // The key reads its own application and nothing a builder does.
    let as_key = data(
        server
            .graphql_as(
                Some(&secret),
                "query($id: UUID!) { application(id: $id) { name openingStatement } }",
                json!({ "id": app_id }),
            )
            .await,
    );
    assert_eq!(as_key["application"]["openingStatement"], "Hi!");
    assert_eq!(
        error_code(
            &server
                .graphql_as(Some(&secret), "{ me { id } }", json!({}))
                .await
        ),
        "FORBIDDEN"
    );
    let builder_op = server
        .graphql_as(
            Some(&secret),
            CREATE,
            json!({ "i": { "workspaceId": tenant.workspace_id, "name": "x", "mode": "CHAT" } }),
        )
        .await;
    assert_eq!(error_code(&builder_op), "FORBIDDEN");
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL")
            .await,
        1
    );

    // Revoked: the key is refused like any bad token.
    let key_id = key["apiKey"]["id"].clone();
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($id: UUID!) { revokeApiKey(id: $id) { revokedAt } }",
                json!({ "id": key_id }),
            )
            .await,
    );
    let refused = server
        .graphql_as(
            Some(&secret),
            "query($id: UUID!) { application(id: $id) { name } }",
            json!({ "id": app_id }),
        )
        .await;
    assert_eq!(error_code(&refused), "UNAUTHENTICATED");
}

#[tokio::test]
async fn applications_of_another_workspace_are_not_found() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let stranger = register(&server, "stranger@example.com").await;
    let theirs = create_organization(&server, &stranger, "Theirs").await;
    let app_id = data(
        server
            .graphql_as(
                owner.token(),
                CREATE,
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "A", "mode": "CHAT" } }),
            )
            .await,
    )["createApplication"]["id"]
        .clone();

    let read = server
        .graphql_as(
            stranger.token(),
            "query($id: UUID!) { application(id: $id) { name } }",
            json!({ "id": app_id }),
        )
        .await;
    assert_eq!(data(read)["application"], Value::Null);
    let writes = [
        (
            "mutation($id: UUID!) { publishApplication(id: $id) { id } }",
            json!({ "id": app_id }),
        ),
        (
            "mutation($id: UUID!) { deleteApplication(id: $id) }",
            json!({ "id": app_id }),
        ),
        (
            "mutation($i: UpdateApplicationInput!) { updateApplication(input: $i) { id } }",
            json!({ "i": { "applicationId": app_id, "name": "mine" } }),
        ),
        (
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
            json!({ "i": { "applicationId": app_id, "name": "k" } }),
        ),
    ];
    for (query, variables) in writes {
        assert_eq!(
            error_code(&server.graphql_as(stranger.token(), query, variables).await),
            "NOT_FOUND",
            "{query}"
        );
    }
    // Nor can a workflow of another workspace be attached.
    let workflow = data(
        server
            .graphql_as(
                stranger.token(),
                "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
                json!({ "i": { "workspaceId": theirs.workspace_id, "name": "Theirs" } }),
            )
            .await,
    )["createWorkflow"]["id"]
        .clone();
    let attach = server
        .graphql_as(
            owner.token(),
            CREATE,
            json!({ "i": { "workspaceId": tenant.workspace_id, "name": "B", "mode": "CHAT", "workflowId": workflow } }),
        )
        .await;
    assert_eq!(attach["errors"][0]["extensions"]["field"], "workflowId");
    assert_eq!(server.scalar("SELECT count(*) FROM applications").await, 1);
}
