//! Datasets: settings, links to applications, roles and isolation.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, error_code, member, register};

#[tokio::test]
async fn datasets_are_configured_linked_to_applications_and_kept_to_their_workspace() {
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
    let theirs = create_organization(&server, &stranger, "Theirs").await;

    let create = async |token: Option<&str>, workspace: &Value, name: &str| {
        server
            .graphql_as(
                token,
                "mutation($i: CreateDatasetInput!) { createDataset(input: $i) {
                   id name indexingTechnique topK vectorSimilarityWeight documentCount } }",
                json!({ "i": { "workspaceId": workspace, "name": name, "indexingTechnique": "HIGH_QUALITY", "topK": 8 } }),
            )
            .await
    };
    let ours = json!(tenant.workspace_id);
    assert_eq!(
        error_code(&create(reader.token(), &ours, "x").await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&create(stranger.token(), &ours, "x").await),
        "NOT_FOUND"
    );
    let dataset = data(create(owner.token(), &ours, "Handbook").await)["createDataset"].clone();
    assert_eq!(dataset["indexingTechnique"], "HIGH_QUALITY");
    assert_eq!(dataset["topK"], 8);
    assert_eq!(dataset["documentCount"], 0);
    let foreign = data(create(stranger.token(), &json!(theirs.workspace_id), "Theirs").await)["createDataset"]["id"].clone();

    let bad = server
        .graphql_as(
            owner.token(),
            "mutation($i: UpdateDatasetInput!) { updateDataset(input: $i) { id } }",
            json!({ "i": { "id": dataset["id"], "topK": 0 } }),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "topK");

    let app = async |datasets: Value| {
        server
            .graphql_as(
                owner.token(),
                "mutation($i: CreateApplicationInput!) { createApplication(input: $i) { id datasets { name } } }",
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Helpdesk", "mode": "CHAT", "datasetIds": datasets } }),
            )
            .await
    };
    let linked = data(app(json!([dataset["id"]])).await);
    assert_eq!(
        linked["createApplication"]["datasets"],
        json!([{ "name": "Handbook" }])
    );
    let refused = app(json!([foreign])).await;
    assert_eq!(refused["errors"][0]["extensions"]["field"], "datasetIds");

    let read = async |token: Option<&str>| {
        server
            .graphql_as(
                token,
                "query($id: UUID!) { dataset(id: $id) { name documents { totalCount } } }",
                json!({ "id": dataset["id"] }),
            )
            .await
    };
    assert_eq!(
        data(read(reader.token()).await)["dataset"]["documents"]["totalCount"],
        0
    );
    assert_eq!(data(read(stranger.token()).await)["dataset"], Value::Null);
    let delete = async |token: Option<&str>| {
        server
            .graphql_as(
                token,
                "mutation($id: UUID!) { deleteDataset(id: $id) }",
                json!({ "id": dataset["id"] }),
            )
            .await
    };
    assert_eq!(error_code(&delete(stranger.token()).await), "NOT_FOUND");
    assert_eq!(data(delete(owner.token()).await)["deleteDataset"], true);
    assert_eq!(data(read(owner.token()).await)["dataset"], Value::Null);
}
