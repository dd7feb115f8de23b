//! Application.stats and Workspace.usage: exact figures on seeded activity (bucket boundaries in
//! a non-UTC time zone across a daylight-saving change, latency percentiles, ratings), figures
//! kept by the real chat path, the limits of a request and who may read them.

use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{data, error_code, member, register};
use crate::harness::chat::{ChatApp, chat_app, send};
use crate::harness::live::message_row;
use crate::harness::model_server::ModelServer;

const STATS: &str =
    "query($a: UUID!, $from: DateTime!, $to: DateTime!, $i: StatsInterval, $tz: String) {
    application(id: $a) { stats(from: $from, to: $to, interval: $i, timeZone: $tz) {
        start conversations messages activeEndUsers totalTokens likes dislikes failedReplies
        latencyP50Ms latencyP95Ms } } }";

const USAGE: &str = "query($w: UUID!, $from: DateTime!, $to: DateTime!, $i: StatsInterval) {
    workspace(id: $w) { usage(from: $from, to: $to, interval: $i) {
        start runs runsByStatus { status count } totalTokens activeEndUsers
        tokens { providerId providerName model promptTokens completionTokens totalTokens calls } } } }";

async fn sql(server: &TestServer, statements: &[String]) {
    let mut conn = server.app.pool.get().await.unwrap();
    for statement in statements {
        diesel::sql_query(statement)
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// A conversation of `user` started at `at`, with one turn per (time, latency s, tokens, status).
fn conversation(
    app: &ChatApp,
    id: &str,
    user: &str,
    at: &str,
    turns: &[(&str, f64, i32, &str)],
) -> Vec<String> {
    let (w, a) = (app.tenant.workspace_id, &app.application);
    let mut out = vec![
        format!(
            "INSERT INTO end_users (workspace_id, external_user_id) VALUES ('{w}', '{user}') ON CONFLICT DO NOTHING"
        ),
        format!(
            "INSERT INTO conversations (id, workspace_id, application_id, end_user_id, created_at)
             SELECT '{id}', '{w}', '{a}', id, '{at}' FROM end_users WHERE workspace_id = '{w}' AND external_user_id = '{user}'"
        ),
    ];
    for (n, (at, latency, tokens, status)) in turns.iter().enumerate() {
        let (seq, reply) = (2 * n as i32 + 1, 2 * n as i32 + 2);
        out.push(format!(
            "INSERT INTO messages (workspace_id, conversation_id, application_id, sequence_number, role, content, created_at)
             VALUES ('{w}', '{id}', '{a}', {seq}, 'USER', 'q', '{at}')"
        ));
        out.push(format!(
            "INSERT INTO messages (id, workspace_id, conversation_id, application_id, sequence_number, role, content,
                                   total_tokens, latency, status, created_at)
             VALUES (md5('{id}{reply}')::uuid, '{w}', '{id}', '{a}', {reply}, 'ASSISTANT', 'a', {tokens}, {latency}, '{status}', '{at}')"
        ));
    }
    out
}

fn feedback(
    app: &ChatApp,
    conversation: &str,
    seq: i32,
    user: &str,
    rating: &str,
    at: &str,
) -> String {
    let w = app.tenant.workspace_id;
    format!(
        "INSERT INTO message_feedbacks (workspace_id, message_id, conversation_id, application_id, end_user_id, rating, created_at)
         SELECT '{w}', md5('{conversation}{seq}')::uuid, '{conversation}', '{}', id, '{rating}', '{at}'
         FROM end_users WHERE workspace_id = '{w}' AND external_user_id = '{user}'",
        app.application
    )
}

async fn stats(server: &TestServer, token: Option<&str>, app: &ChatApp, vars: Value) -> Value {
    let mut vars = vars;
    vars["a"] = json!(app.application);
    server.graphql_as(token, STATS, vars).await
}

#[tokio::test]
async fn stats_count_days_of_the_callers_time_zone_across_a_clock_change() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let c1 = "00000000-0000-4000-8000-000000000001";
    let c2 = "00000000-0000-4000-8000-000000000002";
    let c3 = "00000000-0000-4000-8000-000000000003";
    let mut statements = Vec::new();
    // 24 October, 23:30 in Paris (21:30 UTC).
    statements.extend(conversation(
        &app,
        c1,
        "ann",
        "2026-10-24T21:30:00Z",
        &[("2026-10-24T21:30:00Z", 0.1, 10, "COMPLETED")],
    ));
    // 25 October, 00:30 in Paris, still the 24th in UTC.
    statements.extend(conversation(
        &app,
        c2,
        "bob",
        "2026-10-24T22:30:00Z",
        &[
            ("2026-10-24T22:30:00Z", 0.2, 20, "COMPLETED"),
            ("2026-10-24T23:00:00Z", 0.4, 30, "FAILED"),
        ],
    ));
    // 25 October, 23:30 in Paris: clocks went back at 03:00, so the day is 25 hours long and
    // this is still in it (a day counted as 24 hours would put it on the 26th).
    statements.extend(conversation(
        &app,
        c3,
        "ann",
        "2026-10-25T22:30:00Z",
        &[("2026-10-25T22:30:00Z", 0.3, 5, "COMPLETED")],
    ));
    statements.push(feedback(&app, c1, 2, "ann", "LIKE", "2026-10-24T21:40:00Z"));
    statements.push(feedback(&app, c2, 2, "bob", "LIKE", "2026-10-25T08:00:00Z"));
    statements.push(feedback(
        &app,
        c2,
        4,
        "bob",
        "DISLIKE",
        "2026-10-25T08:00:00Z",
    ));
    // A rating changed later counts as what it is now, where it was first given.
    statements.push(format!(
        "UPDATE message_feedbacks SET rating = 'DISLIKE' WHERE message_id = md5('{c2}2')::uuid"
    ));
    sql(&server, &statements).await;

    let vars = json!({ "from": "2026-10-24T00:00:00+02:00", "to": "2026-10-27T00:00:00+01:00",
                       "i": "DAY", "tz": "Europe/Paris" });
    let answer = stats(&server, app.owner.token(), &app, vars).await;
    let buckets = data(answer)["application"]["stats"].clone();
    assert_eq!(
        buckets,
        json!([
            { "start": "2026-10-23T22:00:00+00:00", "conversations": 1, "messages": 1, "activeEndUsers": 1,
              "totalTokens": 10, "likes": 1, "dislikes": 0, "failedReplies": 0,
              "latencyP50Ms": 100.0, "latencyP95Ms": 100.0 },
            { "start": "2026-10-24T22:00:00+00:00", "conversations": 2, "messages": 3, "activeEndUsers": 2,
              "totalTokens": 55, "likes": 0, "dislikes": 2, "failedReplies": 1,
              "latencyP50Ms": 300.0, "latencyP95Ms": 390.0 },
            { "start": "2026-10-25T23:00:00+00:00", "conversations": 0, "messages": 0, "activeEndUsers": 0,
              "totalTokens": 0, "likes": 0, "dislikes": 0, "failedReplies": 0,
              "latencyP50Ms": null, "latencyP95Ms": null },
        ])
    );

    // The same activity in UTC days: c2 moves to the 24th.
    let vars = json!({ "from": "2026-10-24T00:00:00Z", "to": "2026-10-26T00:00:00Z" });
    let utc =
        data(stats(&server, app.owner.token(), &app, vars).await)["application"]["stats"].clone();
    let messages: Vec<i64> = utc
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["messages"].as_i64().unwrap())
        .collect();
    assert_eq!(messages, vec![3, 1]);
    assert_eq!(utc[0]["activeEndUsers"], 2);
    assert_eq!(utc[0]["latencyP50Ms"], 200.0);

    // Hours in a zone half an hour off UTC start at :30 UTC; weeks start on Monday.
    let vars = json!({ "from": "2026-10-24T21:00:00Z", "to": "2026-10-24T23:00:00Z", "i": "HOUR", "tz": "Asia/Kolkata" });
    let hours =
        data(stats(&server, app.owner.token(), &app, vars).await)["application"]["stats"].clone();
    let starts: Vec<&str> = hours
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        vec![
            "2026-10-24T20:30:00+00:00",
            "2026-10-24T21:30:00+00:00",
            "2026-10-24T22:30:00+00:00"
        ]
    );
    let counts: Vec<i64> = hours
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["messages"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![0, 1, 2]);
    let vars = json!({ "from": "2026-10-20T00:00:00Z", "to": "2026-10-27T00:00:00Z", "i": "WEEK" });
    let weeks =
        data(stats(&server, app.owner.token(), &app, vars).await)["application"]["stats"].clone();
    assert_eq!(weeks[0]["start"], "2026-10-19T00:00:00+00:00");
    assert_eq!(weeks[0]["messages"], 4);
    assert_eq!(weeks[1]["start"], "2026-10-26T00:00:00+00:00");

    // Kolkata's hours come from the 15-minute slots, Paris's days from the hourly rollup:
    // the same figures either way.
    let vars = json!({ "from": "2026-10-24T20:30:00Z", "to": "2026-10-24T23:30:00Z", "i": "HOUR", "tz": "Asia/Kolkata" });
    let kolkata =
        data(stats(&server, app.owner.token(), &app, vars).await)["application"]["stats"].clone();
    assert_eq!(
        kolkata[1],
        json!({ "start": "2026-10-24T21:30:00+00:00", "conversations": 1, "messages": 1,
                "activeEndUsers": 1, "totalTokens": 10, "likes": 1, "dislikes": 0, "failedReplies": 0,
                "latencyP50Ms": 100.0, "latencyP95Ms": 100.0 })
    );
    assert_eq!(kolkata[2]["failedReplies"], 1);
    assert_eq!(kolkata[2]["latencyP95Ms"], 390.0);
    assert_eq!(rollups_disagree(&server).await, 0);

    // What the migration that added the hourly rollup counts from the slots is the same.
    sql(&server, &["TRUNCATE application_stats_hourly".to_string()]).await;
    let up = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/2026-12-01-000025_hourly_application_stats/up.sql"
    ))
    .unwrap();
    let backfill = &up[up
        .find("-- The hours of what the slots already count.")
        .unwrap()..];
    sql(&server, &[backfill.to_string()]).await;
    assert_eq!(rollups_disagree(&server).await, 0);
    assert!(
        server
            .scalar("SELECT count(*) FROM application_stats_hourly")
            .await
            > 0
    );
}

/// Hours where the hourly rollup and the 15-minute slots it sums differ (counts or latency
/// histograms), either way.
async fn rollups_disagree(server: &TestServer) -> i64 {
    let counts = "SELECT application_id, weft_stats_hour(slot) AS hour, sum(conversations)::bigint, \
                         sum(messages)::bigint, sum(total_tokens)::bigint, sum(likes)::bigint, \
                         sum(dislikes)::bigint, sum(failed_replies)::bigint \
                  FROM application_stats GROUP BY 1, 2";
    let hourly = "SELECT application_id, slot, conversations::bigint, messages::bigint, total_tokens, \
                         likes::bigint, dislikes::bigint, failed_replies::bigint FROM application_stats_hourly";
    let bins = "SELECT application_id, weft_stats_hour(slot), h.key, sum(h.value::integer)::bigint \
                FROM application_stats, jsonb_each_text(latencies) h GROUP BY 1, 2, 3";
    let hourly_bins = "SELECT application_id, slot, h.key, h.value::bigint \
                       FROM application_stats_hourly, jsonb_each_text(latencies) h";
    server
        .scalar(&format!(
            "SELECT (SELECT count(*) FROM (({counts}) EXCEPT ({hourly})) a) \
                  + (SELECT count(*) FROM (({hourly}) EXCEPT ({counts})) b) \
                  + (SELECT count(*) FROM (({bins}) EXCEPT ({hourly_bins})) c) \
                  + (SELECT count(*) FROM (({hourly_bins}) EXCEPT ({bins})) d)"
        ))
        .await
}

#[tokio::test]
async fn bad_ranges_are_refused_and_only_members_read_stats() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let field = |answer: &Value| {
        answer["errors"][0]["extensions"]["field"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let cases = [
        (
            json!({ "from": "2026-10-02T00:00:00Z", "to": "2026-10-01T00:00:00Z" }),
            "to",
        ),
        (
            json!({ "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z", "i": "HOUR" }),
            "interval",
        ),
        (
            json!({ "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z", "tz": "Mars/Olympus" }),
            "timeZone",
        ),
    ];
    for (vars, name) in cases {
        let answer = stats(&server, app.owner.token(), &app, vars).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(field(&answer), name, "{answer}");
    }
    // Exactly 1,000 hours is allowed.
    let vars = json!({ "from": "2026-01-01T00:00:00Z", "to": "2026-02-11T16:00:00Z", "i": "HOUR" });
    let hours =
        data(stats(&server, app.owner.token(), &app, vars).await)["application"]["stats"].clone();
    assert_eq!(hours.as_array().unwrap().len(), 1000);

    let day = json!({ "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z" });
    // A MEMBER of the team reads them.
    let reader = member(
        &server,
        &app.owner,
        app.tenant.team_id,
        "reader@example.com",
        "MEMBER",
    )
    .await;
    let answer = stats(&server, reader.token(), &app, day.clone()).await;
    assert_eq!(
        data(answer)["application"]["stats"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The application's own key does not.
    let answer = stats(&server, Some(&app.key), &app, day.clone()).await;
    assert_eq!(error_code(&answer), "FORBIDDEN", "{answer}");
    // Another workspace's builder sees no such application; nor its workspace's usage.
    let stranger = register(&server, "stranger@example.com").await;
    let answer = stats(&server, stranger.token(), &app, day.clone()).await;
    assert_eq!(answer["data"]["application"], Value::Null, "{answer}");
    let mut vars = day.clone();
    vars["w"] = json!(app.tenant.workspace_id);
    let answer = server
        .graphql_as(stranger.token(), USAGE, vars.clone())
        .await;
    assert_eq!(answer["data"]["workspace"], Value::Null, "{answer}");
    let answer = server.graphql_as(Some(&app.key), USAGE, vars.clone()).await;
    assert_eq!(answer["data"]["workspace"], Value::Null, "{answer}");
    let answer = server.graphql_as(reader.token(), USAGE, vars).await;
    assert_eq!(
        data(answer)["workspace"]["usage"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn replies_through_the_api_are_counted_for_the_application_and_its_workspace() {
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let sent = send(&server, &app, "Hello there", None).await;
    let reply: uuid::Uuid = sent["assistantMessage"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let row = loop {
        let row = message_row(&server, reply).await;
        if row.status == "COMPLETED" {
            break row;
        }
        assert!(std::time::Instant::now() < deadline, "the reply completes");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let now = chrono::Utc::now();
    let range = json!({ "from": (now - chrono::Duration::hours(1)).to_rfc3339(),
                        "to": (now + chrono::Duration::hours(1)).to_rfc3339(), "i": "HOUR" });
    let buckets = data(stats(&server, app.owner.token(), &app, range.clone()).await)["application"]
        ["stats"]
        .clone();
    let sum = |field: &str| -> i64 {
        buckets
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b[field].as_i64().unwrap())
            .sum()
    };
    assert_eq!(sum("conversations"), 1);
    assert_eq!(sum("messages"), 1);
    assert_eq!(sum("activeEndUsers"), 1);
    let tokens = server
        .scalar(&format!(
            "SELECT total_tokens FROM messages WHERE id = '{reply}'"
        ))
        .await;
    assert!(tokens > 0);
    assert_eq!(sum("totalTokens"), tokens);
    assert_eq!(sum("failedReplies"), 0);
    assert!(
        buckets
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["latencyP50Ms"].is_number()),
        "{buckets}"
    );
    let _ = row;

    let mut vars = range;
    vars["w"] = json!(app.tenant.workspace_id);
    let usage =
        data(server.graphql_as(app.owner.token(), USAGE, vars).await)["workspace"]["usage"].clone();
    let used: Vec<&Value> = usage
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["runs"] != 0)
        .collect();
    assert_eq!(used.len(), 1, "{usage}");
    let bucket = used[0];
    assert_eq!(bucket["runs"], 1);
    let succeeded = bucket["runsByStatus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "SUCCEEDED")
        .unwrap();
    assert_eq!(succeeded["count"], 1);
    assert_eq!(bucket["runsByStatus"].as_array().unwrap().len(), 5);
    assert_eq!(bucket["activeEndUsers"], 1);
    assert_eq!(bucket["tokens"][0]["model"], "gpt-test");
    assert_eq!(bucket["tokens"][0]["providerId"], app.provider.as_str());
    assert_eq!(bucket["tokens"][0]["calls"], 1);
    assert_eq!(bucket["tokens"][0]["totalTokens"], tokens);
    assert_eq!(bucket["totalTokens"], tokens);
}
