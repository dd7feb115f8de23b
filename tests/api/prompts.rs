//! Prompt templates: numbered versions, one current, roles and isolation.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, error_code, member, register};

#[tokio::test]
async fn prompt_templates_keep_numbered_versions_with_one_current() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let reader = member(
        &server,
        &owner,
        tenant.team_id,
        "reader@example.com",
        "MEMBER",
    )
    .await;
    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Theirs").await;

    let create = async |token: Option<&str>, content: &str| {
        server
            .graphql_as(
                token,
                "mutation($i: CreatePromptTemplateInput!) { createPromptTemplate(input: $i) {
                   id currentVersion { versionNumber variables } } }",
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Greeting", "content": content } }),
            )
            .await
    };
    assert_eq!(error_code(&create(reader.token(), "x").await), "FORBIDDEN");
    assert_eq!(
        error_code(&create(stranger.token(), "x").await),
        "NOT_FOUND"
    );
    assert_eq!(
        create(owner.token(), "").await["errors"][0]["extensions"]["field"],
        "content"
    );
    let made = data(create(owner.token(), "Hello {{name}}").await)["createPromptTemplate"].clone();
    assert_eq!(
        made["currentVersion"],
        json!({ "versionNumber": 1, "variables": ["name"] })
    );

    let add = async |token: Option<&str>| {
        server
            .graphql_as(
                token,
                "mutation($i: CreatePromptTemplateVersionInput!) { createPromptTemplateVersion(input: $i) { versionNumber isCurrent variables } }",
                json!({ "i": { "promptTemplateId": made["id"], "content": "Hi {{name}}, about {{topic}}" } }),
            )
            .await
    };
    assert_eq!(error_code(&add(stranger.token()).await), "NOT_FOUND");
    let second = data(add(owner.token()).await)["createPromptTemplateVersion"].clone();
    assert_eq!(
        second,
        json!({ "versionNumber": 2, "isCurrent": true, "variables": ["name", "topic"] })
    );

    let listed = data(
        server
            .graphql_as(
                reader.token(),
                "query($w: UUID!) { workspace(id: $w) { promptTemplates { totalCount edges { node {
                   currentVersion { versionNumber } versions { versionNumber isCurrent } } } } } }",
                json!({ "w": tenant.workspace_id }),
            )
            .await,
    );
    let node: &Value = &listed["workspace"]["promptTemplates"]["edges"][0]["node"];
    assert_eq!(node["currentVersion"]["versionNumber"], 2);
    assert_eq!(
        node["versions"],
        json!([{ "versionNumber": 2, "isCurrent": true }, { "versionNumber": 1, "isCurrent": false }])
    );
}
