//! The log screens of an application: its conversations by status and end user, archived
//! ones among them.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{data, register};
use crate::harness::chat::chat_app;
use crate::harness::model_server::ModelServer;

#[tokio::test]
async fn conversations_are_archived_and_listed_by_status_and_end_user() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let mut conversations = Vec::new();
    for user in ["ann", "bob", "ann"] {
        let sent = data(
            server
                .graphql_as(
                    Some(&app.key),
                    crate::harness::chat::SEND,
                    json!({ "i": { "applicationId": app.application, "query": "Hi", "endUserId": user } }),
                )
                .await,
        );
        conversations.push(
            sent["sendMessage"]["conversation"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let archive = "mutation($id: UUID!) { archiveConversation(id: $id) { id status } }";
    // The application's key archives one of ann's; twice is the same.
    for _ in 0..2 {
        let archived = data(
            server
                .graphql_as(Some(&app.key), archive, json!({ "id": conversations[0] }))
                .await,
        );
        assert_eq!(archived["archiveConversation"]["status"], "ARCHIVED");
    }
    // A stranger cannot.
    let stranger = register(&server, "stranger@example.com").await;
    let refused = server
        .graphql_as(stranger.token(), archive, json!({ "id": conversations[1] }))
        .await;
    assert_eq!(
        crate::harness::accounts::error_code(&refused),
        "NOT_FOUND",
        "{refused}"
    );

    let list = "query($a: UUID!, $f: ConversationFilter) { application(id: $a) {
        conversations(first: 10, filter: $f) { totalCount edges { node { id status endUser { id externalUserId } } } } } }";
    let of = |filter: Value| {
        let server = &server;
        let token = app.owner.token();
        let application = app.application.clone();
        async move {
            data(
                server
                    .graphql_as(token, list, json!({ "a": application, "f": filter }))
                    .await,
            )["application"]["conversations"]
                .clone()
        }
    };
    let all = of(json!(null)).await;
    assert_eq!(all["totalCount"], 3);
    let ann = all["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["endUser"]["externalUserId"] == "ann")
        .unwrap()["node"]["endUser"]["id"]
        .clone();
    let anns = of(json!({ "endUserId": ann })).await;
    assert_eq!(anns["totalCount"], 2);
    let active_anns = of(json!({ "endUserId": ann, "status": "ACTIVE" })).await;
    assert_eq!(active_anns["totalCount"], 1);
    assert_eq!(
        active_anns["edges"][0]["node"]["id"],
        conversations[2].as_str()
    );
    let archived = of(json!({ "status": "ARCHIVED" })).await;
    assert_eq!(archived["totalCount"], 1);
    assert_eq!(
        archived["edges"][0]["node"]["id"],
        conversations[0].as_str()
    );
}
