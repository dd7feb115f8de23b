//! Live connections follow rights: removal from a team ends what the member was following,
//! logout closes the sockets of that session, a socket checks its session again before each
//! new operation; on every instance sharing the bus.

use serde_json::json;

use crate::harness::TestServer;
use crate::harness::accounts::{AUTH_FIELDS, PASSWORD, account, data, member};
use crate::harness::live::{Closed, Sse, TRANSPORT_WS, Ws, owner_with_subjects, subscribed};

const RUNS: &str = "subscription($w: UUID!) { workspaceExecutions(workspaceId: $w) { id status } }";
const REPLY: &str = "subscription($m: UUID!) { messageStream(messageId: $m) { seq kind } }";
const ME: &str = "query { me { id } }";

#[tokio::test]
async fn a_removed_member_stops_receiving_what_the_workspace_streams_on_every_instance() {
    let server = TestServer::start().await;
    let beside = server.beside().await;
    let (owner, tenant, subjects) = owner_with_subjects(&server).await;
    let editor = member(&server, &owner, tenant.team_id, "ed@example.com", "EDITOR").await;
    let viewer = member(&server, &owner, tenant.team_id, "vi@example.com", "MEMBER").await;

    // Both members follow the workspace's runs and a reply, on the other instance.
    let mut removed = Ws::connect(&beside, TRANSPORT_WS, editor.token()).await;
    removed
        .subscribe("runs", RUNS, json!({ "w": tenant.workspace_id }))
        .await;
    removed
        .subscribe("reply", REPLY, json!({ "m": subjects.message }))
        .await;
    let mut stays = Ws::connect(&beside, TRANSPORT_WS, viewer.token()).await;
    stays
        .subscribe("runs", RUNS, json!({ "w": tenant.workspace_id }))
        .await;
    subscribed(&beside, 3).await;

    let answer = server
        .graphql_as(
            owner.token(),
            "mutation($i: RemoveTeamMemberInput!) { removeTeamMember(input: $i) }",
            json!({ "i": { "teamId": tenant.team_id, "userId": editor.id } }),
        )
        .await;
    assert_eq!(data(answer)["removeTeamMember"], true);

    // Each of the removed member's subscriptions ends with FORBIDDEN...
    let mut errors = std::collections::BTreeMap::new();
    let mut completed = std::collections::BTreeSet::new();
    while completed.len() < 2 {
        let message = removed.next_json().await.expect("the subscriptions end");
        let id = message["id"].as_str().unwrap_or_default().to_string();
        match message["type"].as_str() {
            Some("next") => {
                errors.insert(
                    id,
                    message["payload"]["errors"][0]["extensions"]["code"].clone(),
                );
            }
            Some("complete") => {
                completed.insert(id);
            }
            _ => panic!("unexpected {message}"),
        }
    }
    assert_eq!(
        errors,
        [
            ("reply".to_string(), json!("FORBIDDEN")),
            ("runs".to_string(), json!("FORBIDDEN"))
        ]
        .into_iter()
        .collect()
    );
    // ...its socket stays open for what it may still do, and a new subscription is refused.
    removed
        .send(json!({ "id": "me", "type": "subscribe", "payload": { "query": ME } }))
        .await;
    let me = removed.until_complete("me").await;
    assert_eq!(me[0]["data"]["me"]["id"], editor.id.to_string());
    removed
        .subscribe("again", RUNS, json!({ "w": tenant.workspace_id }))
        .await;
    let again = removed.until_complete("again").await;
    assert!(again[0]["errors"].is_array(), "{again:?}");

    // The member who stayed still receives the runs.
    let execution = crate::harness::live::execution_row(&server, subjects.execution).await;
    server
        .app
        .realtime
        .execution_changed(&execution)
        .await
        .expect("announced");
    let runs = stays.take("runs", 1).await;
    assert_eq!(
        runs[0]["data"]["workspaceExecutions"]["id"],
        subjects.execution.to_string()
    );
}

/// Logs in again: a second session of the same account.
async fn second_session(server: &TestServer, email: &str) -> crate::harness::accounts::Account {
    let answer = server
        .graphql(
            &format!("mutation($i: LoginInput!) {{ login(input: $i) {{ {AUTH_FIELDS} }} }}"),
            json!({ "i": { "email": email, "password": PASSWORD } }),
        )
        .await;
    account(&data(answer)["login"])
}

#[tokio::test]
async fn logout_closes_the_sockets_and_streams_of_that_session_only() {
    let server = TestServer::start().await;
    let beside = server.beside().await;
    let (owner, tenant, _) = owner_with_subjects(&server).await;
    let laptop = second_session(&server, "owner@example.com").await;

    let mut phone_socket = Ws::connect(&beside, TRANSPORT_WS, owner.token()).await;
    let mut laptop_socket = Ws::connect(&beside, TRANSPORT_WS, laptop.token()).await;
    let mut phone_stream = Sse::post(
        &beside,
        owner.token(),
        RUNS,
        json!({ "w": tenant.workspace_id }),
    )
    .await;
    subscribed(&beside, 1).await;

    let answer = server
        .graphql(
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": owner.refresh_token }),
        )
        .await;
    assert_eq!(data(answer)["logout"], true);

    assert_eq!(phone_socket.closed().await, Closed::Code(4403));
    let (payloads, completed) = phone_stream.until_complete().await;
    assert!(completed);
    assert_eq!(
        payloads.last().unwrap()["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    // The access token still verifies for a few minutes, but no new stream opens with it.
    let mut late = Sse::post(
        &server,
        owner.token(),
        RUNS,
        json!({ "w": tenant.workspace_id }),
    )
    .await;
    let (payloads, _) = late.until_complete().await;
    assert_eq!(
        payloads[0]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{payloads:?}"
    );
    let mut late = Ws::open(&server, TRANSPORT_WS, &[]).await.unwrap();
    late.init(owner.token()).await;
    assert_eq!(late.closed().await, Closed::Code(4403));

    // The other session is untouched.
    laptop_socket
        .send(json!({ "id": "me", "type": "subscribe", "payload": { "query": ME } }))
        .await;
    let me = laptop_socket.until_complete("me").await;
    assert_eq!(me[0]["data"]["me"]["id"], owner.id.to_string());
}

#[tokio::test]
async fn a_socket_checks_its_session_before_each_new_operation() {
    let server = TestServer::start().await;
    let (owner, tenant, _) = owner_with_subjects(&server).await;
    let mut socket = Ws::connect(&server, TRANSPORT_WS, owner.token()).await;
    socket
        .send(json!({ "id": "1", "type": "subscribe", "payload": { "query": ME } }))
        .await;
    assert_eq!(
        socket.until_complete("1").await[0]["data"]["me"]["id"],
        owner.id.to_string()
    );

    // The session ends without any announcement (as if it had been missed).
    {
        use diesel_async::RunQueryDsl;
        let mut conn = server.app.pool.get().await.unwrap();
        diesel::sql_query(format!(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = '{}'",
            owner.id
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    socket
        .subscribe("runs", RUNS, json!({ "w": tenant.workspace_id }))
        .await;
    let refused = socket.next_json().await.expect("an answer");
    assert_eq!(refused["id"], "runs");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"]
            .as_str()
            .or(refused["payload"][0]["extensions"]["code"].as_str()),
        Some("UNAUTHENTICATED"),
        "{refused}"
    );
    assert_eq!(socket.closed().await, Closed::Code(4403));
}
