//! Conversations, messages, end users, feedback and annotations: reading them, batched
//! without N+1, isolated per workspace; renaming and deleting conversations.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, error_code, member, register};
use crate::harness::seed;

const HISTORY: &str = "query($w: UUID!, $n: Int!) { workspace(id: $w) { conversations(first: $n) {
    totalCount pageInfo { hasNextPage }
    edges { node { id title messageCount updatedAt endUser { name externalUserId }
      messages(first: 20) { totalCount edges { node { id sequenceNumber role content status
        feedbacks { rating endUser { name } } annotations { content annotationType } } } } } } } } }";

#[tokio::test]
async fn a_nested_history_costs_the_same_statements_whatever_the_number_of_rows() {
    // Batches are gathered for a time window; on a busy 2-core machine (the whole suite runs
    // in parallel) an unoptimized build can take longer than the default 1 ms to enqueue a
    // level's 1,000 keys, splitting a batch in two. A wide window makes the count exact; it
    // does not change what is batched.
    let server =
        TestServer::start_with(|c| c.dataloader_delay = std::time::Duration::from_millis(200))
            .await;
    let owner = register(&server, "owner@example.com").await;
    let small = create_organization(&server, &owner, "Small").await;
    let large = create_organization(&server, &owner, "Large").await;
    seed::chat_history(&server, small.workspace_id, 50, 20).await;
    seed::chat_history(&server, large.workspace_id, 250, 20).await;

    let measure = async |workspace: Uuid| {
        let before = server.app.metrics.db_queries();
        let answer = server
            .graphql_as(owner.token(), HISTORY, json!({ "w": workspace, "n": 50 }))
            .await;
        let statements = server.app.metrics.db_queries() - before;
        (data(answer), statements)
    };
    // The fewest statements of three runs: a run on a starved machine may still split a
    // batch in two, but N+1 would show in every run, as hundreds of statements.
    let fewest = async |workspace: Uuid| {
        let mut runs = Vec::new();
        for _ in 0..3 {
            runs.push(measure(workspace).await);
        }
        let answer = runs[0].0.clone();
        (answer, runs.iter().map(|r| r.1).min().unwrap_or(u64::MAX))
    };
    let (small_answer, small_statements) = fewest(small.workspace_id).await;
    let (large_answer, large_statements) = fewest(large.workspace_id).await;

    let conversations = &small_answer["workspace"]["conversations"];
    assert_eq!(conversations["totalCount"], 50);
    assert_eq!(conversations["edges"].as_array().unwrap().len(), 50);
    let first = &conversations["edges"][0]["node"];
    assert_eq!(
        first["title"], "Conversation 1",
        "most recently active first"
    );
    assert_eq!(first["endUser"]["name"], "User 1");
    let messages = first["messages"]["edges"].as_array().unwrap();
    assert_eq!(messages.len(), 20);
    assert_eq!(
        messages[0]["node"]["sequenceNumber"], 20,
        "newest message first"
    );
    assert_eq!(first["messages"]["totalCount"], 20);
    assert_eq!(messages[0]["node"]["feedbacks"][0]["rating"], "LIKE");
    assert_eq!(
        messages[0]["node"]["feedbacks"][0]["endUser"]["name"],
        "User 1"
    );
    assert_eq!(
        messages[0]["node"]["annotations"][0]["annotationType"],
        "CORRECTION"
    );
    assert_eq!(
        large_answer["workspace"]["conversations"]["totalCount"],
        250
    );
    assert_eq!(
        large_answer["workspace"]["conversations"]["pageInfo"]["hasNextPage"],
        true
    );

    // the workspace with its conversations, their end users and their count; messages with
    // their feedback, the feedbacks' end users, annotations: one statement each, for 50
    // conversations and 1,000 messages.
    assert_eq!(small_statements, 4, "statements for the small workspace");
    assert_eq!(
        large_statements, small_statements,
        "statements grow with rows"
    );
}

const LIST: &str = "query($w: UUID!, $n: Int, $after: String, $f: ConversationFilter) {
    workspace(id: $w) { id name conversations(first: $n, after: $after, filter: $f) CHOICE {
      totalCount pageInfo { hasNextPage endCursor }
      edges { cursor node { id title updatedAt endUser { name } } } } } }";

#[tokio::test]
async fn a_workspace_and_the_page_of_its_conversations_are_read_in_one_statement() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let org = create_organization(&server, &owner, "Acme").await;
    let empty = create_organization(&server, &owner, "Empty").await;
    let outsider = register(&server, "outsider@example.com").await;
    seed::chat_history(&server, org.workspace_id, 5, 2).await;

    // A second `conversations` field sends the pages to the list's own resolver (its answer
    // is left out of the comparison).
    let ask = async |who: &crate::harness::accounts::Account, apart: bool, vars: Value| {
        let query = LIST.replace("CHOICE", "");
        let query = if apart {
            query.replace(
                "workspace(id: $w) {",
                "workspace(id: $w) { other: conversations(first: 1) { totalCount }",
            )
        } else {
            query
        };
        let before = server.app.metrics.db_queries();
        let mut answer = server.graphql_as(who.token(), &query, vars).await;
        if let Some(workspace) = answer["data"]["workspace"].as_object_mut() {
            workspace.remove("other");
        }
        (answer, server.app.metrics.db_queries() - before)
    };
    // Without the end users, then with them; the first page, then the next after a cursor
    // and with a filter: each as the list's own resolver answers it.
    let first = json!({ "w": org.workspace_id, "n": 2 });
    let (together, statements) = ask(&owner, false, first.clone()).await;
    let (apart, apart_statements) = ask(&owner, true, first).await;
    assert_eq!(data(together.clone()), data(apart));
    // The workspace, the page and its count together; apart, the workspace on its own
    // besides the pages and counts.
    assert_eq!(statements, 1);
    assert!(apart_statements >= 4, "{apart_statements} statements apart");
    let page = &together["data"]["workspace"]["conversations"];
    assert_eq!(page["totalCount"], 5);
    assert_eq!(page["edges"][0]["node"]["title"], "Conversation 1");
    assert_eq!(page["edges"][1]["node"]["endUser"]["name"], "User 2");
    let next = json!({ "w": org.workspace_id, "n": 2, "after": page["pageInfo"]["endCursor"],
        "f": { "nameContains": "conversation" } });
    let (together, _) = ask(&owner, false, next.clone()).await;
    let (apart, _) = ask(&owner, true, next).await;
    assert_eq!(data(together.clone()), data(apart));
    let titles: Vec<&str> = together["data"]["workspace"]["conversations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Conversation 3", "Conversation 4"]);

    // Without the count and the end users: one statement.
    let before = server.app.metrics.db_queries();
    let answer = server
        .graphql_as(
            owner.token(),
            "query($w: UUID!) { workspace(id: $w) { conversations(first: 1) { edges { node { title } } } } }",
            json!({ "w": org.workspace_id }),
        )
        .await;
    assert_eq!(server.app.metrics.db_queries() - before, 1);
    assert_eq!(
        data(answer)["workspace"]["conversations"]["edges"][0]["node"]["title"],
        "Conversation 1"
    );

    // A workspace without conversations is still there; one the caller cannot see is null.
    let (answer, _) = ask(&owner, false, json!({ "w": empty.workspace_id, "n": 2 })).await;
    let answer = data(answer);
    assert_eq!(answer["workspace"]["id"], json!(empty.workspace_id));
    assert_eq!(answer["workspace"]["name"], "Default workspace");
    assert_eq!(answer["workspace"]["conversations"]["edges"], json!([]));
    let (answer, statements) =
        ask(&outsider, false, json!({ "w": org.workspace_id, "n": 2 })).await;
    assert_eq!(data(answer)["workspace"], Value::Null);
    assert_eq!(statements, 1, "only the statement that found nothing");

    // An argument out of range is still the list's own error, and reads nothing.
    let (answer, _) = ask(&owner, false, json!({ "w": org.workspace_id, "n": 1000 })).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(
        answer["data"]["workspace"]["conversations"],
        Value::Null,
        "{answer}"
    );
}

/// Every field of a conversation page, selected straight (the plain fields answered from
/// the row) and again through fragments (the object's own resolvers).
const PLAIN_FIELDS: &str = "id title status summary messageCount createdAt updatedAt __typename
    endUser { id sessionId externalUserId name email phone avatarUrl isAnonymous lastActiveAt createdAt metadata }
    messages(first: 3) { edges { node { id sequenceNumber role content query answer modelProvider
      modelName promptTokens completionTokens totalTokens latency status error createdAt updatedAt
      executionId metadata inputs toolCalls { id } again: content
      feedbacks { id rating content createdAt messageId endUser { name } } } } }";

#[tokio::test]
async fn plain_fields_answer_as_the_objects_own_resolvers_do() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let org = create_organization(&server, &owner, "Acme").await;
    seed::chat_history(&server, org.workspace_id, 3, 4).await;
    // Every column of the end users set, each to a value of its own: the page reads them
    // joined beside the conversation's columns, and a column read in another's place shows.
    server
        .execute(
            "UPDATE end_users SET session_id = 'session-' || name, email = 'mail@' || name,
               phone = '+100', avatar_url = 'https://example.com/a.png', is_anonymous = true,
               metadata = '{\"plan\": \"pro\"}', last_active_at = created_at - interval '1 day',
               updated_at = created_at + interval '1 hour'",
        )
        .await;
    let ask = async |selection: String| {
        let query = format!(
            "query($w: UUID!) {{ workspace(id: $w) {{ conversations(first: 3) {{ edges {{ node {{ {selection} }} }} }} }} }}"
        );
        data(
            server
                .graphql_as(owner.token(), &query, json!({ "w": org.workspace_id }))
                .await,
        )
    };
    let straight = ask(PLAIN_FIELDS.to_string()).await;
    // Fragments send each object to async-graphql's resolvers whole.
    let through_fragments = ask(format!(
        "... on Conversation {{ {} }}",
        PLAIN_FIELDS
            .replace(
                "messages(first: 3) { edges { node {",
                "messages(first: 3) { edges { node { ... on Message {"
            )
            .replace("endUser { name } } } } }", "endUser { name } } } } } }")
    ))
    .await;
    assert_eq!(straight, through_fragments);
    let conversation = &straight["workspace"]["conversations"]["edges"][0]["node"];
    assert_eq!(conversation["__typename"], "Conversation");
    assert_eq!(conversation["status"], "ACTIVE");
    assert_eq!(conversation["endUser"]["isAnonymous"], true);
    assert_eq!(
        conversation["endUser"]["metadata"],
        json!({ "plan": "pro" })
    );
    assert_eq!(conversation["endUser"]["phone"], "+100");
    assert!(conversation["endUser"]["lastActiveAt"].is_string());
    let message = &conversation["messages"]["edges"][0]["node"];
    assert_eq!(message["role"], "ASSISTANT");
    assert_eq!(message["sequenceNumber"], 4);
    assert_eq!(message["again"], message["content"]);
    assert_eq!(message["feedbacks"][0]["rating"], "LIKE");
    assert!(message["latency"].is_null());

    // The page read its end users in its own statement; one conversation read alone gets
    // its end user through the loader: the same fields.
    let end_user_fields = "id sessionId externalUserId name email phone avatarUrl isAnonymous lastActiveAt createdAt metadata";
    let alone = data(
        server
            .graphql_as(
                owner.token(),
                &format!("query($c: UUID!) {{ conversation(id: $c) {{ endUser {{ {end_user_fields} }} }} }}"),
                json!({ "c": conversation["id"] }),
            )
            .await,
    );
    assert_eq!(alone["conversation"]["endUser"], conversation["endUser"]);
    assert!(conversation["endUser"]["createdAt"].is_string());

    // The page read its messages' feedback in its own statement; one message read alone gets
    // it through the loader: the same rows, fields and order.
    let alone = data(
        server
            .graphql_as(
                owner.token(),
                "query($m: UUID!) { message(id: $m) { feedbacks { id rating content createdAt messageId endUser { name } } } }",
                json!({ "m": message["id"] }),
            )
            .await,
    );
    assert_eq!(alone["message"]["feedbacks"], message["feedbacks"]);
    assert!(message["feedbacks"][0]["createdAt"].is_string());
    // A message without feedback reads an empty list either way.
    let quiet = &conversation["messages"]["edges"][1]["node"];
    assert_eq!(quiet["role"], "USER");
    assert_eq!(quiet["feedbacks"], json!([]));
}

/// Every field of a connection and its edges, for conversations and their messages.
const CONNECTION_FIELDS: &str = "__typename totalCount
    pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
    nodes { id }
    edges { __typename cursor node { id title
      messages(first: 2) { __typename totalCount
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor __typename node { id sequenceNumber } } nodes { sequenceNumber } } } }";

#[tokio::test]
async fn connections_answer_as_async_graphqls_own_do() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let org = create_organization(&server, &owner, "Acme").await;
    seed::chat_history(&server, org.workspace_id, 3, 5).await;
    let ask = async |selection: String| {
        let query = format!(
            "query($w: UUID!) {{ workspace(id: $w) {{ conversations(first: 2) {{ {selection} }} }} }}"
        );
        data(
            server
                .graphql_as(owner.token(), &query, json!({ "w": org.workspace_id }))
                .await,
        )
    };
    let straight = ask(CONNECTION_FIELDS.to_string()).await;
    // Fragments send each connection to async-graphql's own resolvers whole.
    let through_fragments = ask(format!(
        "... on ConversationConnection {{ {} }}",
        CONNECTION_FIELDS
            .replace(
                "messages(first: 2) { __typename",
                "messages(first: 2) { ... on MessageConnection { __typename"
            )
            .replace("nodes { sequenceNumber } }", "nodes { sequenceNumber } } }")
    ))
    .await;
    assert_eq!(straight, through_fragments);

    let conversations = &straight["workspace"]["conversations"];
    assert_eq!(conversations["__typename"], "ConversationConnection");
    assert_eq!(conversations["totalCount"], 3);
    assert_eq!(conversations["pageInfo"]["__typename"], "PageInfo");
    assert_eq!(conversations["pageInfo"]["hasNextPage"], true);
    assert_eq!(conversations["pageInfo"]["hasPreviousPage"], false);
    let edges = conversations["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    assert_eq!(edges[0]["__typename"], "ConversationEdge");
    assert_eq!(conversations["pageInfo"]["startCursor"], edges[0]["cursor"]);
    assert_eq!(conversations["pageInfo"]["endCursor"], edges[1]["cursor"]);
    assert_eq!(conversations["nodes"][1]["id"], edges[1]["node"]["id"]);
    let messages = &edges[0]["node"]["messages"];
    assert_eq!(messages["__typename"], "MessageConnection");
    assert_eq!(messages["totalCount"], 5);
    let numbers = |page: &Value| -> Vec<i64> {
        page["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["sequenceNumber"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(numbers(messages), vec![5, 4], "newest first");
    assert_eq!(messages["nodes"][1]["sequenceNumber"], 4);
    assert_eq!(messages["edges"][0]["__typename"], "MessageEdge");

    // From the end, and on from a cursor: the rows of each page in list order.
    let conversation = edges[0]["node"]["id"].clone();
    let page = |args: String| {
        let server = &server;
        let owner = &owner;
        let conversation = conversation.clone();
        async move {
            let query = format!(
                "query($c: UUID!) {{ conversation(id: $c) {{ messages({args}) {{
                    pageInfo {{ hasNextPage hasPreviousPage endCursor }}
                    edges {{ node {{ sequenceNumber }} }} }} }} }}"
            );
            data(
                server
                    .graphql_as(owner.token(), &query, json!({ "c": conversation }))
                    .await,
            )["conversation"]["messages"]
                .clone()
        }
    };
    let last = page("last: 3".to_string()).await;
    assert_eq!(
        numbers(&last),
        vec![3, 2, 1],
        "the oldest three, in list order"
    );
    assert_eq!(last["pageInfo"]["hasPreviousPage"], true);
    let first = page("first: 2".to_string()).await;
    let next = page(format!(
        "first: 2, after: {}",
        first["pageInfo"]["endCursor"]
    ))
    .await;
    assert_eq!(numbers(&next), vec![3, 2]);
    assert_eq!(next["pageInfo"]["hasNextPage"], true);
}

#[tokio::test]
async fn conversations_are_read_renamed_and_deleted_only_inside_their_workspace() {
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
    seed::chat_history(&server, tenant.workspace_id, 3, 4).await;

    let listed = data(
        server
            .graphql_as(
                owner.token(),
                HISTORY,
                json!({ "w": tenant.workspace_id, "n": 3 }),
            )
            .await,
    );
    let conversation = listed["workspace"]["conversations"]["edges"][0]["node"].clone();
    let conversation_id = conversation["id"].as_str().unwrap().to_string();
    let message_id = conversation["messages"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let read = async |token: Option<&str>| {
        server
            .graphql_as(
                token,
                "query($c: UUID!, $m: UUID!) { conversation(id: $c) { title application { name } }
                   message(id: $m) { content conversation { id } } }",
                json!({ "c": conversation_id, "m": message_id }),
            )
            .await
    };
    let mine = data(read(reader.token()).await);
    assert_eq!(mine["conversation"]["application"]["name"], "Seeded");
    assert_eq!(mine["message"]["conversation"]["id"], conversation_id);
    let theirs = data(read(stranger.token()).await);
    assert_eq!(theirs["conversation"], Value::Null);
    assert_eq!(theirs["message"], Value::Null);

    let rename = async |token: Option<&str>, title: &str| {
        server
            .graphql_as(
                token,
                "mutation($i: RenameConversationInput!) { renameConversation(input: $i) { title } }",
                json!({ "i": { "conversationId": conversation_id, "title": title } }),
            )
            .await
    };
    assert_eq!(
        error_code(&rename(stranger.token(), "x").await),
        "NOT_FOUND"
    );
    assert_eq!(error_code(&rename(reader.token(), "x").await), "FORBIDDEN");
    let too_long = "t".repeat(501);
    assert_eq!(
        rename(owner.token(), &too_long).await["errors"][0]["extensions"]["field"],
        "title"
    );
    assert_eq!(
        data(rename(owner.token(), "Renamed").await)["renameConversation"]["title"],
        "Renamed"
    );

    let delete = async |token: Option<&str>| {
        server
            .graphql_as(
                token,
                "mutation($c: UUID!) { deleteConversation(id: $c) }",
                json!({ "c": conversation_id }),
            )
            .await
    };
    assert_eq!(error_code(&delete(stranger.token()).await), "NOT_FOUND");
    assert_eq!(
        data(delete(owner.token()).await)["deleteConversation"],
        true
    );
    assert_eq!(data(read(owner.token()).await)["conversation"], Value::Null);
    let listed = data(
        server
            .graphql_as(
                owner.token(),
                HISTORY,
                json!({ "w": tenant.workspace_id, "n": 3 }),
            )
            .await,
    );
    assert_eq!(listed["workspace"]["conversations"]["totalCount"], 2);
}

#[tokio::test]
async fn builders_annotate_replies_with_the_question_they_answer() {
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
    seed::chat_history(&server, tenant.workspace_id, 1, 2).await;
    let listed = data(
        server
            .graphql_as(
                owner.token(),
                HISTORY,
                json!({ "w": tenant.workspace_id, "n": 1 }),
            )
            .await,
    );
    let reply =
        listed["workspace"]["conversations"]["edges"][0]["node"]["messages"]["edges"][0]["node"]
            .clone();
    assert_eq!(reply["role"], "ASSISTANT");

    let annotate = async |token: Option<&str>, content: &str| {
        server
            .graphql_as(
                token,
                "mutation($i: AnnotateMessageInput!) { annotateMessage(input: $i) {
                   question content annotationType annotatedBy { email } } }",
                json!({ "i": { "messageId": reply["id"], "content": content } }),
            )
            .await
    };
    assert_eq!(
        error_code(&annotate(stranger.token(), "x").await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(&annotate(reader.token(), "x").await),
        "FORBIDDEN"
    );
    assert_eq!(
        annotate(owner.token(), "  ").await["errors"][0]["extensions"]["field"],
        "content"
    );
    let made = data(annotate(owner.token(), "The right answer.").await)["annotateMessage"].clone();
    assert_eq!(made["annotationType"], "CORRECTION");
    assert_eq!(made["annotatedBy"]["email"], "owner@example.com");
    assert!(
        made["question"]
            .as_str()
            .unwrap()
            .starts_with("A few words"),
        "the user's message before the reply"
    );
}

#[tokio::test]
async fn the_audit_log_is_for_owners_and_admins() {
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
    let query = "query($w: UUID!, $f: AuditLogFilter) { workspace(id: $w) { auditLogs(first: 10, filter: $f) {
        totalCount edges { node { action resourceType actorType actor { email } ip } } } } }";
    let answer = data(
        server
            .graphql_as(
                owner.token(),
                query,
                json!({ "w": tenant.workspace_id, "f": { "action": "organization.create" } }),
            )
            .await,
    );
    let logs = &answer["workspace"]["auditLogs"];
    assert_eq!(logs["totalCount"], 1);
    assert_eq!(
        logs["edges"][0]["node"]["actor"]["email"],
        "owner@example.com"
    );
    assert_eq!(logs["edges"][0]["node"]["ip"], "127.0.0.1");
    let refused = server
        .graphql_as(editor.token(), query, json!({ "w": tenant.workspace_id }))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
}

/// A page that shows only what a chat history shows reads only those columns; any other
/// field of its messages, straight or in a fragment, reads them all.
#[tokio::test]
async fn a_brief_page_of_messages_answers_as_a_full_one() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let org = create_organization(&server, &owner, "Acme").await;
    seed::chat_history(&server, org.workspace_id, 2, 4).await;
    // Every column a brief read leaves out, given a value a brief read could not invent.
    server
        .execute(
            "UPDATE messages SET query = 'the query', answer = 'the answer', inputs = '{\"lang\": \"en\"}',
               outputs = '{\"text\": \"done\"}', model_provider = 'openai', model_name = 'gpt-x',
               prompt_tokens = 11, completion_tokens = 22, total_tokens = 33, latency = 1.5,
               error = 'late', metadata = '{\"source\": \"web\"}',
               tool_calls = '[{\"id\": \"c1\", \"name\": \"lookup\", \"arguments\": {}}]'",
        )
        .await;
    let ask = async |messages: &str| {
        let query = format!(
            "query($w: UUID!) {{ workspace(id: $w) {{ conversations(first: 2) {{ nodes {{ {messages} }} }} }} }}"
        );
        let answer = data(
            server
                .graphql_as(owner.token(), &query, json!({ "w": org.workspace_id }))
                .await,
        );
        answer["workspace"]["conversations"]["nodes"][0]["messages"]["nodes"].clone()
    };
    let brief_fields = "__typename id sequenceNumber role content status createdAt updatedAt
        executionId conversation { id } feedbacks { rating } annotations { content }";
    let brief = ask(&format!(
        "messages(first: 4) {{ nodes {{ {brief_fields} }} }}"
    ))
    .await;
    let details = "query answer inputs outputs modelProvider modelName promptTokens
        completionTokens totalTokens latency error metadata toolCalls { id name }";
    let full = ask(&format!(
        "messages(first: 4) {{ nodes {{ {brief_fields} {details} }} }}"
    ))
    .await;
    assert_eq!(brief.as_array().unwrap().len(), 4);
    for (b, f) in brief
        .as_array()
        .unwrap()
        .iter()
        .zip(full.as_array().unwrap())
    {
        for (field, value) in b.as_object().unwrap() {
            assert_eq!(&f[field], value, "{field}");
        }
    }
    let reply = &full[0];
    assert_eq!(reply["role"], "ASSISTANT");
    assert!(reply["feedbacks"][0]["rating"].is_string());
    assert_eq!(reply["answer"], "the answer");
    assert_eq!(reply["inputs"], json!({ "lang": "en" }));
    assert_eq!(reply["outputs"], json!({ "text": "done" }));
    assert_eq!(reply["totalTokens"], 33);
    assert_eq!(reply["latency"], 1.5);
    assert_eq!(reply["metadata"], json!({ "source": "web" }));
    assert_eq!(
        reply["toolCalls"],
        json!([{ "id": "c1", "name": "lookup" }])
    );

    // One detail beside the brief fields, through an inline fragment, a named fragment or
    // `edges`, in the same request as a brief page: each read in full.
    let query = "query($w: UUID!) { workspace(id: $w) { conversations(first: 1) { nodes {
        brief: messages(first: 2) { nodes { id content } }
        inline: messages(first: 2) { nodes { id ... on Message { promptTokens } } }
        named: messages(first: 2) { edges { node { id ...Details } } }
        } } } }
        fragment Details on Message { metadata query }";
    let answer = data(
        server
            .graphql_as(owner.token(), query, json!({ "w": org.workspace_id }))
            .await,
    );
    let conversation = &answer["workspace"]["conversations"]["nodes"][0];
    assert_eq!(
        conversation["brief"]["nodes"][0]["content"],
        full[0]["content"]
    );
    assert_eq!(conversation["inline"]["nodes"][0]["promptTokens"], 11);
    let node = &conversation["named"]["edges"][0]["node"];
    assert_eq!(node["metadata"], json!({ "source": "web" }));
    assert_eq!(node["query"], "the query");
}

/// A page of conversations that asks only what a list shows reads brief rows; each field it
/// answers equals a full read's, on the workspace's page (read with the workspace) as on the
/// application's, and a detail of the end user asked beside them is read in full.
#[tokio::test]
async fn a_brief_page_of_conversations_answers_as_a_full_one() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let org = create_organization(&server, &owner, "Acme").await;
    let app = seed::chat_history(&server, org.workspace_id, 3, 1).await;
    // Every column a brief read leaves out, given a value a brief read could not invent.
    for statement in [
        "UPDATE conversations SET summary = 'about ' || title, metadata = '{\"channel\": \"web\"}'",
        "UPDATE end_users SET session_id = 's-' || name, email = 'mail@' || name, phone = '+100',
           avatar_url = 'https://example.com/' || name || '.png', is_anonymous = true,
           last_active_at = created_at - interval '1 day', external_user_id = 'ext-' || name,
           metadata = '{\"plan\": \"pro\"}'",
        "UPDATE conversations SET end_user_id = NULL WHERE title = 'Conversation 2'",
    ] {
        server.execute(statement).await;
    }
    let brief_fields = "__typename id title status messageCount createdAt updatedAt
        application { id } messages(first: 1) { nodes { content } }
        endUser { __typename id externalUserId name avatarUrl }";
    let details = "summary metadata";
    let end_user_details =
        "endUser { sessionId email phone isAnonymous lastActiveAt createdAt metadata }";
    let ask = async |fields: &str| {
        let query = format!(
            "query($w: UUID!, $a: UUID!) {{
               workspace(id: $w) {{ conversations(first: 3) {{ nodes {{ {fields} }} }} }}
               application(id: $a) {{ conversations(first: 3) {{ edges {{ node {{ {fields} }} }} }} }} }}"
        );
        let answer = data(
            server
                .graphql_as(
                    owner.token(),
                    &query,
                    json!({ "w": org.workspace_id, "a": app }),
                )
                .await,
        );
        let workspace = answer["workspace"]["conversations"]["nodes"].clone();
        let application: Vec<Value> = answer["application"]["conversations"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"].clone())
            .collect();
        (workspace, Value::Array(application))
    };
    let brief = ask(brief_fields).await;
    let full = ask(&format!("{brief_fields} {details}")).await;
    let with_end_user = ask(&format!("{brief_fields} {end_user_details}")).await;
    for (brief, full) in [
        (&brief.0, &full.0),
        (&brief.1, &full.1),
        (&brief.0, &with_end_user.0),
    ] {
        let brief = brief.as_array().unwrap();
        assert_eq!(brief.len(), 3);
        for (b, f) in brief.iter().zip(full.as_array().unwrap()) {
            for (field, value) in b.as_object().unwrap() {
                if field == "endUser" && !value.is_null() {
                    for (k, v) in value.as_object().unwrap() {
                        assert_eq!(&f[field][k], v, "endUser.{k}");
                    }
                } else {
                    assert_eq!(&f[field], value, "{field}");
                }
            }
        }
    }
    // (The updates above made the pages' order their own: each conversation is found by title.)
    let titled = |page: &Value, title: &str| -> Value {
        page.as_array()
            .unwrap()
            .iter()
            .find(|c| c["title"] == title)
            .cloned()
            .unwrap_or_else(|| panic!("no {title} in {page}"))
    };
    let first = titled(&brief.0, "Conversation 1");
    assert_eq!(first["endUser"]["name"], "User 1");
    assert_eq!(first["endUser"]["externalUserId"], "ext-User 1");
    assert_eq!(
        first["endUser"]["avatarUrl"],
        "https://example.com/User 1.png"
    );
    assert_eq!(titled(&brief.1, "Conversation 2")["endUser"], Value::Null);
    assert_eq!(
        titled(&full.0, "Conversation 1")["summary"],
        "about Conversation 1"
    );
    assert_eq!(
        titled(&full.1, "Conversation 3")["metadata"],
        json!({ "channel": "web" })
    );
    // The end user's details beside a brief page, on both pages: read in full.
    for page in [&with_end_user.0, &with_end_user.1] {
        let end_user = &titled(page, "Conversation 1")["endUser"];
        assert_eq!(end_user["email"], "mail@User 1", "{end_user}");
        assert_eq!(end_user["sessionId"], "s-User 1");
        assert_eq!(end_user["isAnonymous"], true);
        assert_eq!(end_user["metadata"], json!({ "plan": "pro" }));
        assert!(end_user["lastActiveAt"].is_string());
        assert!(!end_user["createdAt"].as_str().unwrap().starts_with("1970"));
    }
}

/// A page joins only an end user of the conversation's own workspace: a conversation made
/// to point at another workspace's end user shows none, on the workspace's page as on the
/// application's.
#[tokio::test]
async fn a_page_never_joins_another_workspaces_end_user() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let org = create_organization(&server, &owner, "Acme").await;
    let other = create_organization(&server, &owner, "Other").await;
    let app = seed::chat_history(&server, org.workspace_id, 2, 1).await;
    seed::chat_history(&server, other.workspace_id, 1, 1).await;
    server
        .execute(&format!(
            "UPDATE conversations SET end_user_id = (SELECT id FROM end_users WHERE workspace_id = '{}')
             WHERE id = (SELECT id FROM conversations WHERE workspace_id = '{}' ORDER BY updated_at DESC LIMIT 1)",
            other.workspace_id, org.workspace_id
        ))
        .await;
    let answer = data(
        server
            .graphql_as(
                owner.token(),
                "query($w: UUID!, $a: UUID!) {
                   workspace(id: $w) { conversations(first: 2) { edges { node { title endUser { id name } } } } }
                   application(id: $a) { conversations(first: 2) { edges { node { title endUser { id name } } } } } }",
                json!({ "w": org.workspace_id, "a": app }),
            )
            .await,
    );
    for page in [&answer["workspace"], &answer["application"]] {
        let edges = page["conversations"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 2, "{answer}");
        assert_eq!(edges[0]["node"]["endUser"], Value::Null, "{answer}");
        assert_eq!(edges[1]["node"]["endUser"]["name"], "User 2", "{answer}");
    }
}

/// End users and feedback read with their page are answered plain when all that is asked
/// of them is plain; the same selection through fragments (async-graphql's resolvers, at
/// every level) answers the same, and so does one with a field that is not plain.
#[tokio::test]
async fn relations_read_with_their_page_answer_as_their_resolvers_do() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let org = create_organization(&server, &owner, "Acme").await;
    seed::chat_history(&server, org.workspace_id, 3, 4).await;
    for statement in [
        "UPDATE end_users SET session_id = 's-' || name, email = 'mail@' || name, phone = '+100',
           avatar_url = 'https://example.com/a.png', last_active_at = created_at
         WHERE name <> 'User 3'",
        "UPDATE conversations SET end_user_id = NULL WHERE title = 'Conversation 2'",
        "UPDATE message_feedbacks SET content = 'helpful'",
        // A second feedback on Conversation 1's last reply, older than the first: the page
        // and the loader give both, oldest first.
        "INSERT INTO message_feedbacks (workspace_id, message_id, conversation_id, application_id, end_user_id, rating, content, created_at)
         SELECT f.workspace_id, f.message_id, f.conversation_id, f.application_id,
                (SELECT id FROM end_users WHERE name = 'User 2' AND workspace_id = f.workspace_id),
                'DISLIKE', NULL, f.created_at - interval '1 minute'
         FROM message_feedbacks f JOIN conversations c ON c.id = f.conversation_id
         WHERE c.title = 'Conversation 1'
         ORDER BY f.created_at DESC LIMIT 1",
    ] {
        server.execute(statement).await;
    }
    let end_user = "__typename id sessionId externalUserId name email phone avatarUrl isAnonymous lastActiveAt createdAt again: name";
    let feedback = "__typename id rating content createdAt messageId again: rating";
    let ask = async |end_user: &str, feedback: &str, fragments: bool| {
        let wrap = |t: &str, s: &str| {
            if fragments {
                format!("... on {t} {{ {s} }}")
            } else {
                s.to_string()
            }
        };
        let query = format!(
            "query($w: UUID!) {{ workspace(id: $w) {{ conversations(first: 3) {{ edges {{ node {{ {} }} }} }} }} }}",
            wrap(
                "Conversation",
                &format!(
                    "title endUser {{ {} }} messages(first: 4) {{ edges {{ node {{ {} }} }} }}",
                    wrap("EndUser", end_user),
                    wrap(
                        "Message",
                        &format!(
                            "id sequenceNumber feedbacks {{ {} }}",
                            wrap("MessageFeedback", feedback)
                        )
                    )
                )
            )
        );
        data(
            server
                .graphql_as(owner.token(), &query, json!({ "w": org.workspace_id }))
                .await,
        )
    };
    let plain = ask(end_user, feedback, false).await;
    assert_eq!(plain, ask(end_user, feedback, true).await);
    let titled = |answer: &Value, title: &str| {
        answer["workspace"]["conversations"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["node"]["title"] == title)
            .unwrap()["node"]
            .clone()
    };
    let (first, second, third) = (
        titled(&plain, "Conversation 1"),
        titled(&plain, "Conversation 2"),
        titled(&plain, "Conversation 3"),
    );
    assert_eq!(first["endUser"]["email"], "mail@User 1");
    assert_eq!(first["endUser"]["again"], "User 1");
    assert_eq!(first["endUser"]["__typename"], "EndUser");
    assert_eq!(second["endUser"], Value::Null);
    assert_eq!(third["endUser"]["phone"], Value::Null);
    let reply = &first["messages"]["edges"][0]["node"];
    assert_eq!(reply["feedbacks"][0]["again"], "DISLIKE");
    assert_eq!(reply["feedbacks"][0]["content"], Value::Null);
    assert_eq!(reply["feedbacks"][1]["content"], "helpful");
    assert_eq!(reply["feedbacks"][1]["again"], "LIKE");
    // The same feedback read by the message's own loader.
    let alone = data(
        server
            .graphql_as(
                owner.token(),
                &format!("query($m: UUID!) {{ message(id: $m) {{ feedbacks {{ {feedback} }} }} }}"),
                json!({ "m": reply["id"] }),
            )
            .await,
    );
    assert_eq!(alone["message"]["feedbacks"], reply["feedbacks"]);
    assert_eq!(reply["feedbacks"][0]["__typename"], "MessageFeedback");
    assert_eq!(
        first["messages"]["edges"][1]["node"]["feedbacks"],
        json!([])
    );
    // A field that is not plain beside them (JSON, a relation of their own) sends the
    // relation to its resolver: the plain fields answer the same.
    let mixed = ask(
        &format!("{end_user} metadata"),
        &format!("{feedback} endUser {{ name }}"),
        false,
    )
    .await;
    let mixed_first = titled(&mixed, "Conversation 1");
    assert_eq!(mixed_first["endUser"]["email"], "mail@User 1");
    assert_eq!(mixed_first["endUser"]["metadata"], json!({}));
    let mixed_reply = &mixed_first["messages"]["edges"][0]["node"];
    assert_eq!(
        mixed_reply["feedbacks"][1]["id"],
        reply["feedbacks"][1]["id"]
    );
    assert_eq!(mixed_reply["feedbacks"][0]["endUser"]["name"], "User 2");
    assert_eq!(mixed_reply["feedbacks"][1]["endUser"]["name"], "User 1");

    // A relation asked twice answers as the resolvers do: an object merges its selections.
    let twice = "title endUser { name } endUser { email }
        messages(first: 4) { edges { node { id feedbacks { id } feedbacks { rating } } } }";
    let ask_twice = async |selection: String| {
        data(
            server
                .graphql_as(
                    owner.token(),
                    &format!("query($w: UUID!) {{ workspace(id: $w) {{ conversations(first: 3) {{ edges {{ node {{ {selection} }} }} }} }} }}"),
                    json!({ "w": org.workspace_id }),
                )
                .await,
        )
    };
    let merged = ask_twice(twice.to_string()).await;
    assert_eq!(
        merged,
        ask_twice(format!("... on Conversation {{ {twice} }}")).await
    );
    let merged_first = titled(&merged, "Conversation 1");
    assert_eq!(
        merged_first["endUser"],
        json!({ "name": "User 1", "email": "mail@User 1" })
    );
}
