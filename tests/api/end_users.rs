//! What a chat UI can do without a builder's account: reads with the application's API key,
//! and end-user tokens minted with it, each held to its own application and end user.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{data, error_code};
use crate::harness::chat::{ChatApp, STREAM, chat_app, send, text_of};
use crate::harness::live::{Closed, Sse, Ws};
use crate::harness::model_server::ModelServer;

const WS: &str = "graphql-transport-ws";

const MINT: &str = "mutation($i: CreateEndUserTokenInput!) { createEndUserToken(input: $i) {
    token expiresAt endUser { id externalUserId } } }";

const HISTORY: &str = "query($c: UUID!) { conversation(id: $c) { id title messageCount
    endUser { externalUserId }
    messages(first: 10) { totalCount edges { node { id role status answer content
        feedbacks { rating content } retrieverResources { position }
        conversation { id } } } } } }";

const SEND_AS_TOKEN: &str = "mutation($i: SendMessageInput!) { sendMessage(input: $i) {
    conversation { id } assistantMessage { id status } } }";

/// Another published chat application of the same workspace, with its own key.
async fn second_app(server: &TestServer, app: &ChatApp) -> (String, String) {
    let workflow = data(
        server
            .graphql_as(
                app.owner.token(),
                "query($a: UUID!) { application(id: $a) { workflow { id } } }",
                json!({ "a": app.application }),
            )
            .await,
    )["application"]["workflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = data(
        server
            .graphql_as(
                app.owner.token(),
                "mutation($i: CreateApplicationInput!) { createApplication(input: $i) { id } }",
                json!({ "i": { "workspaceId": app.tenant.workspace_id, "name": "Other", "mode": "CHAT", "workflowId": workflow } }),
            )
            .await,
    )["createApplication"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    data(
        server
            .graphql_as(
                app.owner.token(),
                "mutation($id: UUID!) { publishApplication(id: $id) { status } }",
                json!({ "id": created }),
            )
            .await,
    );
    let key = data(
        server
            .graphql_as(
                app.owner.token(),
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "applicationId": created, "name": "other" } }),
            )
            .await,
    )["createApiKey"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    (created, key)
}

/// Waits for a reply to finish by following its stream; its text.
async fn finished(server: &TestServer, token: &str, message: &str) -> String {
    let mut ws = Ws::connect(server, WS, Some(token)).await;
    ws.subscribe("r", STREAM, json!({ "id": message })).await;
    let events = ws.until_complete("r").await;
    assert_eq!(
        events.last().unwrap()["data"]["messageStream"]["kind"],
        "END",
        "{events:?}"
    );
    text_of(&events)
}

async fn mint(server: &TestServer, app: &ChatApp, end_user: &str) -> String {
    data(
        server
            .graphql_as(
                Some(&app.key),
                MINT,
                json!({ "i": { "applicationId": app.application, "endUserId": end_user } }),
            )
            .await,
    )["createEndUserToken"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn null_at(answer: &Value, field: &str) {
    assert!(answer.get("errors").is_none(), "{answer:#}");
    assert!(answer["data"][field].is_null(), "{answer:#}");
}

#[tokio::test]
async fn an_api_key_reads_its_applications_history_and_nothing_else() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let sent = send(&server, &app, "Hello", None).await;
    let conversation = sent["conversation"]["id"].as_str().unwrap().to_string();
    let reply = sent["assistantMessage"]["id"].as_str().unwrap().to_string();
    assert_eq!(finished(&server, &app.key, &reply).await, "Hello world");
    data(
        server
            .graphql_as(
                Some(&app.key),
                "mutation($i: SubmitFeedbackInput!) { submitFeedback(input: $i) { rating } }",
                json!({ "i": { "messageId": reply, "rating": "LIKE", "content": "good", "endUserId": "user-1" } }),
            )
            .await,
    );

    // The history after a reload: the conversation, its messages, their feedback.
    let history = data(
        server
            .graphql_as(Some(&app.key), HISTORY, json!({ "c": conversation }))
            .await,
    );
    let conv = &history["conversation"];
    assert_eq!(conv["id"], conversation.as_str());
    assert_eq!(conv["endUser"]["externalUserId"], "user-1");
    assert_eq!(conv["messages"]["totalCount"], 2);
    let messages = conv["messages"]["edges"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    let assistant = &messages[0]["node"];
    assert_eq!(assistant["id"], reply.as_str());
    assert_eq!(assistant["answer"], "Hello world");
    assert_eq!(assistant["feedbacks"][0]["rating"], "LIKE");
    assert_eq!(assistant["retrieverResources"], json!([]));
    assert_eq!(assistant["conversation"]["id"], conversation.as_str());
    let message = data(
        server
            .graphql_as(
                Some(&app.key),
                "query($m: UUID!) { message(id: $m) { id status } }",
                json!({ "m": reply }),
            )
            .await,
    );
    assert_eq!(message["message"]["status"], "COMPLETED");

    // The application's public settings; how it is built is for builders.
    let application = data(
        server
            .graphql_as(
                Some(&app.key),
                "query($a: UUID!) { application(id: $a) { id name mode status openingStatement suggestedQuestions } }",
                json!({ "a": app.application }),
            )
            .await,
    );
    assert_eq!(application["application"]["name"], "Helper");
    for field in [
        "apiKeys { id }",
        "workflow { id }",
        "datasets { id }",
        "workspace { id }",
    ] {
        let answer = server
            .graphql_as(
                Some(&app.key),
                &format!("query($a: UUID!) {{ application(id: $a) {{ {field} }} }}"),
                json!({ "a": app.application }),
            )
            .await;
        assert_eq!(error_code(&answer), "FORBIDDEN", "{field}: {answer:#}");
    }

    // A user's conversations, most recently active first.
    let second = send(&server, &app, "Again", None).await;
    let listed = data(
        server
            .graphql_as(
                Some(&app.key),
                "query($a: UUID!, $u: String) { endUserConversations(applicationId: $a, endUserId: $u, first: 10) {
                    totalCount edges { node { id } } } }",
                json!({ "a": app.application, "u": "user-1" }),
            )
            .await,
    );
    let ids: Vec<&str> = listed["endUserConversations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            second["conversation"]["id"].as_str().unwrap(),
            conversation.as_str()
        ]
    );
    assert_eq!(listed["endUserConversations"]["totalCount"], 2);
    let nobody = data(
        server
            .graphql_as(
                Some(&app.key),
                "query($a: UUID!) { endUserConversations(applicationId: $a, endUserId: \"never-seen\") { totalCount edges { node { id } } } }",
                json!({ "a": app.application }),
            )
            .await,
    );
    assert_eq!(nobody["endUserConversations"]["totalCount"], 0);
    let unnamed = server
        .graphql_as(
            Some(&app.key),
            "query($a: UUID!) { endUserConversations(applicationId: $a) { totalCount } }",
            json!({ "a": app.application }),
        )
        .await;
    assert_eq!(error_code(&unnamed), "BAD_USER_INPUT");
    assert_eq!(unnamed["errors"][0]["extensions"]["field"], "endUserId");

    // Builders list any end user's conversations.
    let by_builder = data(
        server
            .graphql_as(
                app.owner.token(),
                "query($a: UUID!) { endUserConversations(applicationId: $a, endUserId: \"user-1\") { totalCount } }",
                json!({ "a": app.application }),
            )
            .await,
    );
    assert_eq!(by_builder["endUserConversations"]["totalCount"], 2);

    // Another application of the same workspace sees none of it.
    let (other, other_key) = second_app(&server, &app).await;
    null_at(
        &server
            .graphql_as(Some(&other_key), HISTORY, json!({ "c": conversation }))
            .await,
        "conversation",
    );
    null_at(
        &server
            .graphql_as(
                Some(&other_key),
                "query($m: UUID!) { message(id: $m) { id } }",
                json!({ "m": reply }),
            )
            .await,
        "message",
    );
    null_at(
        &server
            .graphql_as(
                Some(&other_key),
                "query($a: UUID!) { application(id: $a) { id } }",
                json!({ "a": app.application }),
            )
            .await,
        "application",
    );
    let listed_elsewhere = server
        .graphql_as(
            Some(&other_key),
            "query($a: UUID!) { endUserConversations(applicationId: $a, endUserId: \"user-1\") { totalCount } }",
            json!({ "a": app.application }),
        )
        .await;
    assert_eq!(error_code(&listed_elsewhere), "NOT_FOUND");
    let own_list = data(
        server
            .graphql_as(
                Some(&other_key),
                "query($a: UUID!) { endUserConversations(applicationId: $a, endUserId: \"user-1\") { totalCount } }",
                json!({ "a": other }),
            )
            .await,
    );
    assert_eq!(
        own_list["endUserConversations"]["totalCount"], 0,
        "the same end user's conversations with another application are not listed"
    );
}

#[tokio::test]
async fn an_end_user_token_chats_as_its_end_user_only() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;

    // Minted by the application's backend with its key: one hour unless asked otherwise.
    let minted = data(
        server
            .graphql_as(
                Some(&app.key),
                MINT,
                json!({ "i": { "applicationId": app.application, "endUserId": "alice" } }),
            )
            .await,
    );
    let alice = minted["createEndUserToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        minted["createEndUserToken"]["endUser"]["externalUserId"],
        "alice"
    );
    let expires: chrono::DateTime<chrono::Utc> = minted["createEndUserToken"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = (expires - chrono::Utc::now()).num_seconds();
    assert!((3590..=3600).contains(&left), "{left}");
    let bob = mint(&server, &app, "bob").await;

    // Only the key mints: not a builder, not an end user; lifetimes are bounded.
    for token in [app.owner.access_token.as_str(), alice.as_str()] {
        let refused = server
            .graphql_as(
                Some(token),
                MINT,
                json!({ "i": { "applicationId": app.application, "endUserId": "mallory" } }),
            )
            .await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{refused:#}");
    }
    for ttl in [86_401, 0, -5] {
        let refused = server
            .graphql_as(
                Some(&app.key),
                MINT,
                json!({ "i": { "applicationId": app.application, "endUserId": "x", "ttlSeconds": ttl } }),
            )
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT");
        assert_eq!(refused["errors"][0]["extensions"]["field"], "ttlSeconds");
    }
    let day = data(
        server
            .graphql_as(
                Some(&app.key),
                MINT,
                json!({ "i": { "applicationId": app.application, "endUserId": "x", "ttlSeconds": 86_400 } }),
            )
            .await,
    );
    assert!(day["createEndUserToken"]["token"].is_string());

    // Alice chats; the reply streams to her token.
    let sent = data(
        server
            .graphql_as(
                Some(&alice),
                SEND_AS_TOKEN,
                json!({ "i": { "applicationId": app.application, "query": "Hi" } }),
            )
            .await,
    );
    let conversation = sent["sendMessage"]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = sent["sendMessage"]["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(finished(&server, &alice, &reply).await, "Hello world");
    // Stopping her finished reply changes nothing; the audit log says who acted.
    let stopped = data(
        server
            .graphql_as(
                Some(&alice),
                "mutation($m: UUID!) { stopMessage(messageId: $m) { status } }",
                json!({ "m": reply }),
            )
            .await,
    );
    assert_eq!(stopped["stopMessage"]["status"], "COMPLETED");
    let audited = server
        .scalar(&format!(
            "SELECT count(*) FROM audit_logs WHERE actor_type = 'END_USER' AND action = 'message.send' \
             AND metadata->>'endUserId' = (SELECT id::text FROM end_users WHERE external_user_id = 'alice') \
             AND metadata->>'conversationId' = '{conversation}'"
        ))
        .await;
    assert_eq!(audited, 1);
    // Naming herself is fine; naming anyone else is not.
    data(
        server
            .graphql_as(
                Some(&alice),
                SEND_AS_TOKEN,
                json!({ "i": { "applicationId": app.application, "conversationId": conversation,
                               "query": "Again", "endUserId": "alice" } }),
            )
            .await,
    );
    for conversation_id in [Some(conversation.as_str()), None] {
        let impersonating = server
            .graphql_as(
                Some(&alice),
                SEND_AS_TOKEN,
                json!({ "i": { "applicationId": app.application, "conversationId": conversation_id,
                               "query": "Hi", "endUserId": "bob" } }),
            )
            .await;
        assert_eq!(error_code(&impersonating), "FORBIDDEN", "{impersonating:#}");
    }

    // Her history, her list, her feedback, her renaming.
    let history = data(
        server
            .graphql_as(Some(&alice), HISTORY, json!({ "c": conversation }))
            .await,
    );
    assert_eq!(
        history["conversation"]["endUser"]["externalUserId"],
        "alice"
    );
    let feedback = data(
        server
            .graphql_as(
                Some(&alice),
                "mutation($i: SubmitFeedbackInput!) { submitFeedback(input: $i) { rating endUser { externalUserId } } }",
                json!({ "i": { "messageId": reply, "rating": "DISLIKE" } }),
            )
            .await,
    );
    assert_eq!(
        feedback["submitFeedback"]["endUser"]["externalUserId"],
        "alice"
    );
    let listed = data(
        server
            .graphql_as(
                Some(&alice),
                "query($a: UUID!) { endUserConversations(applicationId: $a) { edges { node { id } } } }",
                json!({ "a": app.application }),
            )
            .await,
    );
    assert_eq!(
        listed["endUserConversations"]["edges"][0]["node"]["id"],
        conversation.as_str()
    );
    let others = server
        .graphql_as(
            Some(&alice),
            "query($a: UUID!) { endUserConversations(applicationId: $a, endUserId: \"bob\") { totalCount } }",
            json!({ "a": app.application }),
        )
        .await;
    assert_eq!(error_code(&others), "FORBIDDEN");
    let renamed = data(
        server
            .graphql_as(
                Some(&alice),
                "mutation($i: RenameConversationInput!) { renameConversation(input: $i) { title } }",
                json!({ "i": { "conversationId": conversation, "title": "Mine" } }),
            )
            .await,
    );
    assert_eq!(renamed["renameConversation"]["title"], "Mine");

    // Bob sees none of Alice's: NOT_FOUND (null), exactly like a random id.
    null_at(
        &server
            .graphql_as(Some(&bob), HISTORY, json!({ "c": conversation }))
            .await,
        "conversation",
    );
    null_at(
        &server
            .graphql_as(
                Some(&bob),
                "query($m: UUID!) { message(id: $m) { id } }",
                json!({ "m": reply }),
            )
            .await,
        "message",
    );
    for (query, variables) in [
        (
            "mutation($i: SubmitFeedbackInput!) { submitFeedback(input: $i) { rating } }",
            json!({ "i": { "messageId": reply, "rating": "LIKE" } }),
        ),
        (
            "mutation($m: UUID!) { stopMessage(messageId: $m) { id } }",
            json!({ "m": reply }),
        ),
        (
            "mutation($i: RenameConversationInput!) { renameConversation(input: $i) { title } }",
            json!({ "i": { "conversationId": conversation, "title": "Bob's" } }),
        ),
        (
            "mutation($c: UUID!) { deleteConversation(id: $c) }",
            json!({ "c": conversation }),
        ),
        (
            SEND_AS_TOKEN,
            json!({ "i": { "applicationId": app.application, "conversationId": conversation, "query": "Hi" } }),
        ),
    ] {
        let answer = server.graphql_as(Some(&bob), query, variables).await;
        assert_eq!(error_code(&answer), "NOT_FOUND", "{query}: {answer:#}");
    }
    let mut ws = Ws::connect(&server, WS, Some(&bob)).await;
    ws.subscribe("s", STREAM, json!({ "id": reply })).await;
    let refused = ws.next_json().await.unwrap();
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
    ws.subscribe(
        "c",
        "subscription($c: UUID!) { conversationEvents(conversationId: $c) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    let refused = loop {
        let message = ws.next_json().await.unwrap();
        if message["id"] == "c" && message["type"] == "next" {
            break message;
        }
    };
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );

    // Everything a builder or the backend does is out of reach.
    let builder_only = [
        (
            "query($w: UUID!) { workspace(id: $w) { id } }".to_string(),
            json!({ "w": app.tenant.workspace_id }),
        ),
        ("query { me { id } }".to_string(), json!({})),
        (
            "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }".to_string(),
            json!({ "i": { "applicationId": app.application, "name": "mine" } }),
        ),
        (
            "mutation($i: AnnotateMessageInput!) { annotateMessage(input: $i) { id } }".to_string(),
            json!({ "i": { "messageId": reply, "content": "x" } }),
        ),
    ];
    for (query, variables) in builder_only {
        let answer = server.graphql_as(Some(&alice), &query, variables).await;
        let denied = answer.get("errors").is_some()
            && matches!(error_code(&answer), "FORBIDDEN" | "NOT_FOUND")
            || answer["data"]["workspace"].is_null() && answer.get("errors").is_none();
        assert!(denied, "{query}: {answer:#}");
    }
    let run = server
        .graphql_as(
            Some(&alice),
            "mutation($i: RunWorkflowInput!) { runWorkflow(input: $i) { id } }",
            json!({ "i": { "workflowId": uuid::Uuid::new_v4(), "inputs": {} } }),
        )
        .await;
    assert_eq!(error_code(&run), "FORBIDDEN");

    // Her own conversation she may delete.
    let deleted = data(
        server
            .graphql_as(
                Some(&alice),
                "mutation($c: UUID!) { deleteConversation(id: $c) }",
                json!({ "c": conversation }),
            )
            .await,
    );
    assert_eq!(deleted["deleteConversation"], true);
    null_at(
        &server
            .graphql_as(Some(&alice), HISTORY, json!({ "c": conversation }))
            .await,
        "conversation",
    );
}

#[tokio::test]
async fn tokens_of_another_application_expired_forged_or_revoked_are_refused() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let (other, other_key) = second_app(&server, &app).await;
    let alice = mint(&server, &app, "alice").await;

    // A token of application X used on application Y.
    let elsewhere = server
        .graphql_as(
            Some(&alice),
            SEND_AS_TOKEN,
            json!({ "i": { "applicationId": other, "query": "Hi" } }),
        )
        .await;
    assert_eq!(error_code(&elsewhere), "NOT_FOUND");
    null_at(
        &server
            .graphql_as(
                Some(&alice),
                "query($a: UUID!) { application(id: $a) { id } }",
                json!({ "a": other }),
            )
            .await,
        "application",
    );
    // Another application's key cannot mint for this one.
    let foreign_mint = server
        .graphql_as(
            Some(&other_key),
            MINT,
            json!({ "i": { "applicationId": app.application, "endUserId": "alice" } }),
        )
        .await;
    assert_eq!(error_code(&foreign_mint), "NOT_FOUND");

    // Expired, and forged (signed with another secret): UNAUTHENTICATED, and 4403 on a socket.
    let claims_of = |token: &str| server.app.auth.signer.verify_end_user(token).unwrap();
    let claims = claims_of(&alice);
    let (expired, _) = server
        .app
        .auth
        .signer
        .issue_end_user(
            claims.sub,
            claims.app,
            claims.key,
            chrono::Duration::seconds(-30),
        )
        .unwrap();
    let forger = weft::auth::tokens::TokenSigner::new(&weft::secrets::Secret::new(
        b"not-the-server-secret-not-the-server-secret".to_vec(),
    ));
    let (forged, _) = forger
        .issue_end_user(
            claims.sub,
            claims.app,
            claims.key,
            chrono::Duration::seconds(600),
        )
        .unwrap();
    for token in [&expired, &forged] {
        let answer = server
            .graphql_as(
                Some(token),
                "query($a: UUID!) { application(id: $a) { id } }",
                json!({ "a": app.application }),
            )
            .await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{answer:#}");
        let mut ws = Ws::open(&server, WS, &[]).await.unwrap();
        ws.init(Some(token)).await;
        assert_eq!(ws.closed().await, Closed::Code(4403));
    }

    // A live socket and an SSE stream of Alice's; then the key is revoked.
    let sent = data(
        server
            .graphql_as(
                Some(&alice),
                SEND_AS_TOKEN,
                json!({ "i": { "applicationId": app.application, "query": "Hi" } }),
            )
            .await,
    );
    let conversation = sent["sendMessage"]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = Ws::connect(&server, WS, Some(&alice)).await;
    ws.subscribe(
        "c",
        "subscription($c: UUID!) { conversationEvents(conversationId: $c) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    let mut sse = Sse::post(
        &server,
        Some(&alice),
        "subscription($c: UUID!) { conversationEvents(conversationId: $c) { id } }",
        json!({ "c": conversation }),
    )
    .await;
    assert!(
        sse.response.headers().get("content-encoding").is_none(),
        "streams are never compressed"
    );
    // Both are subscribed once the feed's channel has its listeners.
    crate::harness::live::subscribed(&server, 2).await;
    let key_id = server
        .scalar(&format!(
            "SELECT count(*) FROM api_keys WHERE application_id = '{}'",
            app.application
        ))
        .await;
    assert_eq!(key_id, 1);
    let keys = data(
        server
            .graphql_as(
                app.owner.token(),
                "query($a: UUID!) { application(id: $a) { apiKeys { id } } }",
                json!({ "a": app.application }),
            )
            .await,
    );
    let revoked = data(
        server
            .graphql_as(
                app.owner.token(),
                "mutation($id: UUID!) { revokeApiKey(id: $id) { revokedAt } }",
                json!({ "id": keys["application"]["apiKeys"][0]["id"] }),
            )
            .await,
    );
    assert!(revoked["revokeApiKey"]["revokedAt"].is_string());
    assert_eq!(ws.closed().await, Closed::Code(4403));
    let (payloads, completed) = sse.until_complete().await;
    assert!(completed, "the SSE stream ends");
    assert_eq!(
        payloads.last().unwrap()["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED",
        "{payloads:?}"
    );
    for token in [alice.as_str(), app.key.as_str()] {
        let answer = server
            .graphql_as(
                Some(token),
                "query($c: UUID!) { conversation(id: $c) { id } }",
                json!({ "c": conversation }),
            )
            .await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{answer:#}");
    }
    let mut late = Ws::open(&server, WS, &[]).await.unwrap();
    late.init(Some(&alice)).await;
    assert_eq!(late.closed().await, Closed::Code(4403));
}
