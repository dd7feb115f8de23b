//! The log screens of an application: its conversations by status and end user, archived
//! ones among them (read-only until unarchived), ratings and annotations.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{data, register};
use crate::harness::chat::{ChatApp, SEND, chat_app};
use crate::harness::model_server::ModelServer;

/// `sendMessage` through the application's key as the end user `user`.
async fn send_as(server: &TestServer, app: &ChatApp, user: &str) -> Value {
    let sent = server
        .graphql_as(
            Some(&app.key),
            SEND,
            json!({ "i": { "applicationId": app.application, "query": "Hi", "endUserId": user } }),
        )
        .await;
    data(sent)["sendMessage"].clone()
}

#[tokio::test]
async fn conversations_are_archived_and_listed_by_status_and_end_user() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let mut conversations = Vec::new();
    for user in ["ann", "bob", "ann"] {
        let sent = send_as(&server, &app, user).await;
        conversations.push(sent["conversation"]["id"].as_str().unwrap().to_string());
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

    // An archived conversation is read-only: a message to it is CONFLICT and writes nothing,
    // until it is unarchived.
    let messages = |c: &str| {
        let sql = format!("SELECT count(*) FROM messages WHERE conversation_id = '{c}'");
        let server = &server;
        async move { server.scalar(&sql).await }
    };
    let before = messages(&conversations[0]).await;
    let continue_it = json!({ "i": { "applicationId": app.application, "query": "Still there?",
                                      "endUserId": "ann", "conversationId": conversations[0] } });
    let refused = server
        .graphql_as(Some(&app.key), SEND, continue_it.clone())
        .await;
    assert_eq!(
        crate::harness::accounts::error_code(&refused),
        "CONFLICT",
        "{refused}"
    );
    assert_eq!(messages(&conversations[0]).await, before);
    let unarchive = "mutation($id: UUID!) { unarchiveConversation(id: $id) { id status } }";
    let refused = server
        .graphql_as(
            stranger.token(),
            unarchive,
            json!({ "id": conversations[0] }),
        )
        .await;
    assert_eq!(crate::harness::accounts::error_code(&refused), "NOT_FOUND");
    for _ in 0..2 {
        let restored = data(
            server
                .graphql_as(Some(&app.key), unarchive, json!({ "id": conversations[0] }))
                .await,
        );
        assert_eq!(restored["unarchiveConversation"]["status"], "ACTIVE");
    }
    let sent = data(server.graphql_as(Some(&app.key), SEND, continue_it).await);
    assert_eq!(
        sent["sendMessage"]["conversation"]["id"],
        conversations[0].as_str()
    );
    assert_eq!(messages(&conversations[0]).await, before + 2);
    let audited = server
        .scalar(&format!(
            "SELECT count(*) FROM audit_logs WHERE resource_id = '{}' AND action IN ('conversation.archive', 'conversation.unarchive')",
            conversations[0]
        ))
        .await;
    assert_eq!(
        audited, 2,
        "one archive and one unarchive, the repeats change nothing"
    );
}

#[tokio::test]
async fn the_feedback_log_lists_ratings_newest_first_for_builders_only() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let mut replies = Vec::new();
    for user in ["ann", "bob", "cid"] {
        let sent = send_as(&server, &app, user).await;
        replies.push(sent["assistantMessage"]["id"].as_str().unwrap().to_string());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    for reply in &replies {
        while crate::harness::live::message_row(&server, reply.parse().unwrap())
            .await
            .status
            != "COMPLETED"
        {
            assert!(std::time::Instant::now() < deadline, "replies complete");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    for (reply, rating) in replies.iter().zip(["LIKE", "DISLIKE", "LIKE"]) {
        data(
            server
                .graphql_as(
                    Some(&app.key),
                    "mutation($i: SubmitFeedbackInput!) { submitFeedback(input: $i) { id } }",
                    json!({ "i": { "messageId": reply, "rating": rating } }),
                )
                .await,
        );
    }
    let log = "query($a: UUID!, $f: FeedbackFilter) { application(id: $a) {
        feedbacks(first: 10, filter: $f) { totalCount edges { node { rating messageId } } } } }";
    let of = |filter: Value| {
        let server = &server;
        let token = app.owner.token();
        let application = app.application.clone();
        async move {
            data(
                server
                    .graphql_as(token, log, json!({ "a": application, "f": filter }))
                    .await,
            )["application"]["feedbacks"]
                .clone()
        }
    };
    let all = of(json!(null)).await;
    assert_eq!(all["totalCount"], 3);
    let order: Vec<&str> = all["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [&replies[2], &replies[1], &replies[0]],
        "newest first"
    );
    let likes = of(json!({ "rating": "LIKE" })).await;
    assert_eq!(likes["totalCount"], 2);
    let dislikes = of(json!({ "rating": "DISLIKE" })).await;
    assert_eq!(
        dislikes["edges"][0]["node"]["messageId"],
        replies[1].as_str()
    );
    // The application's key does not read the log.
    let by_key = server
        .graphql_as(
            Some(&app.key),
            log,
            json!({ "a": app.application, "f": null }),
        )
        .await;
    assert_eq!(
        crate::harness::accounts::error_code(&by_key),
        "FORBIDDEN",
        "{by_key}"
    );
    assert!(
        by_key["data"]["application"]["feedbacks"].is_null(),
        "{by_key}"
    );
}

#[tokio::test]
async fn annotations_are_written_without_a_message_changed_listed_and_deleted() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let create = "mutation($i: CreateAnnotationInput!) { createAnnotation(input: $i) { id question content annotationType messageId } }";
    let mut ids = Vec::new();
    for (q, a) in [
        ("What are your hours?", "9 to 5"),
        ("Where are you?", "Paris"),
    ] {
        let made = data(
            server
                .graphql_as(
                    app.owner.token(),
                    create,
                    json!({ "i": { "applicationId": app.application, "question": q, "content": a } }),
                )
                .await,
        )["createAnnotation"]
            .clone();
        assert_eq!(made["messageId"], Value::Null);
        assert_eq!(made["annotationType"], "CORRECTION");
        ids.push(made["id"].as_str().unwrap().to_string());
    }
    // An empty question changes nothing.
    let refused = server
        .graphql_as(
            app.owner.token(),
            create,
            json!({ "i": { "applicationId": app.application, "question": " ", "content": "x" } }),
        )
        .await;
    assert_eq!(
        crate::harness::accounts::error_code(&refused),
        "BAD_USER_INPUT"
    );
    let update = "mutation($i: UpdateAnnotationInput!) { updateAnnotation(input: $i) { id question content annotationType } }";
    let updated = data(
        server
            .graphql_as(app.owner.token(), update, json!({ "i": { "id": ids[0], "content": "9 to 6", "annotationType": "IMPROVEMENT" } }))
            .await,
    )["updateAnnotation"]
        .clone();
    assert_eq!(updated["question"], "What are your hours?");
    assert_eq!(updated["content"], "9 to 6");
    assert_eq!(updated["annotationType"], "IMPROVEMENT");

    let list = "query($a: UUID!) { application(id: $a) { annotations(first: 10) { totalCount edges { node { id content } } } } }";
    let listed = data(
        server
            .graphql_as(app.owner.token(), list, json!({ "a": app.application }))
            .await,
    )["application"]["annotations"]
        .clone();
    assert_eq!(listed["totalCount"], 2);
    assert_eq!(listed["edges"][0]["node"]["id"], ids[1].as_str());
    // The application's key sees no annotations; a stranger cannot change or delete them.
    let by_key = server
        .graphql_as(Some(&app.key), list, json!({ "a": app.application }))
        .await;
    assert_eq!(
        crate::harness::accounts::error_code(&by_key),
        "FORBIDDEN",
        "{by_key}"
    );
    let stranger = register(&server, "stranger@example.com").await;
    let delete = "mutation($id: UUID!) { deleteAnnotation(id: $id) }";
    let refused = server
        .graphql_as(stranger.token(), delete, json!({ "id": ids[0] }))
        .await;
    assert_eq!(crate::harness::accounts::error_code(&refused), "NOT_FOUND");
    assert_eq!(
        data(
            server
                .graphql_as(app.owner.token(), delete, json!({ "id": ids[0] }))
                .await
        )["deleteAnnotation"],
        true
    );
    let listed = data(
        server
            .graphql_as(app.owner.token(), list, json!({ "a": app.application }))
            .await,
    )["application"]["annotations"]
        .clone();
    assert_eq!(listed["totalCount"], 1);
}
