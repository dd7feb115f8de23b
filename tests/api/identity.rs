//! Accounts: registration, login, tokens, sessions, password reset, rate limits, audit.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{AUTH_FIELDS, PASSWORD, account, data, error_code, register};
use crate::harness::live::{Closed, TRANSPORT_WS, Ws};
use crate::harness::smtp::SmtpSink;

const TEST_SECRET: &[u8] = b"test-jwt-secret-of-at-least-32-bytes";
const ME: &str = "{ me { id email name } }";

async fn login(server: &TestServer, email: &str, password: &str) -> Value {
    server
        .graphql(
            &format!("mutation($i: LoginInput!) {{ login(input: $i) {{ {AUTH_FIELDS} }} }}"),
            json!({ "i": { "email": email, "password": password } }),
        )
        .await
}

async fn refresh(server: &TestServer, token: &str) -> Value {
    server
        .graphql(
            &format!(
                "mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "t": token }),
        )
        .await
}

#[tokio::test]
async fn register_signs_in_and_me_answers() {
    let server = TestServer::start().await;
    let ada = register(&server, "Ada@Example.com").await;
    assert_eq!(ada.email, "ada@example.com");
    let me = data(server.graphql_as(ada.token(), ME, json!({})).await);
    assert_eq!(me["me"]["id"], ada.id.to_string());
    assert_eq!(me["me"]["name"], "Test User");
    let stored: i64 = server
        .scalar("SELECT count(*) FROM users WHERE password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'")
        .await;
    assert_eq!(stored, 1);
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM audit_logs WHERE action = 'user.register'")
            .await,
        1
    );
}

#[tokio::test]
async fn bad_registrations_name_the_field_and_change_nothing() {
    let server = TestServer::start().await;
    let long_name = "n".repeat(256);
    let long_password = "p".repeat(1025);
    let cases = [
        (
            json!({ "email": "not-an-email", "password": PASSWORD, "name": "A" }),
            "email",
        ),
        (
            json!({ "email": "a@b", "password": PASSWORD, "name": "A" }),
            "email",
        ),
        (
            json!({ "email": "a@example.com", "password": "short", "name": "A" }),
            "password",
        ),
        (
            json!({ "email": "a@example.com", "password": long_password, "name": "A" }),
            "password",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "name": long_name }),
            "name",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "name": "   " }),
            "name",
        ),
    ];
    for (input, field) in cases {
        let answer = server
            .graphql(
                "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                json!({ "i": input }),
            )
            .await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(
            answer["errors"][0]["extensions"]["field"], field,
            "{answer}"
        );
    }
    assert_eq!(server.scalar("SELECT count(*) FROM users").await, 0);
    assert_eq!(server.scalar("SELECT count(*) FROM audit_logs").await, 0);
}

#[tokio::test]
async fn an_email_is_registered_once_whatever_its_case() {
    let server = TestServer::start().await;
    register(&server, "grace@example.com").await;
    let answer = server
        .graphql(
            "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            json!({ "i": { "email": "GRACE@example.com", "password": PASSWORD, "name": "G" } }),
        )
        .await;
    assert_eq!(error_code(&answer), "CONFLICT");
    assert_eq!(server.scalar("SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn login_answers_the_same_for_unknown_email_and_wrong_password() {
    let server = TestServer::start().await;
    register(&server, "linus@example.com").await;
    let wrong_password = login(&server, "linus@example.com", "not the password").await;
    let unknown = login(&server, "nobody@example.com", "not the password").await;
    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(
        wrong_password["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert_eq!(
        wrong_password["errors"][0]["extensions"],
        unknown["errors"][0]["extensions"]
    );

    let ok = data(login(&server, "LINUS@example.com", PASSWORD).await);
    let session = account(&ok["login"]);
    assert!(data(server.graphql_as(session.token(), ME, json!({})).await)["me"]["id"].is_string());
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM users WHERE last_login_at IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_email() {
    let server = TestServer::start().await;
    register(&server, "mallory@example.com").await;
    for _ in 0..5 {
        assert_eq!(
            error_code(&login(&server, "mallory@example.com", "guess guess").await),
            "UNAUTHENTICATED"
        );
    }
    // Now even the right password is refused, until the window passes.
    assert_eq!(
        error_code(&login(&server, "mallory@example.com", PASSWORD).await),
        "RATE_LIMITED"
    );
    // Another email from the same address is not affected yet.
    register(&server, "bob@example.com").await;
    data(login(&server, "bob@example.com", PASSWORD).await);
}

fn sign(claims: Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn claims(sub: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "iss": "weft", "aud": "weft-api", "sub": sub, "exp": now + 600, "iat": now, "jti": uuid::Uuid::new_v4() })
}

#[tokio::test]
async fn every_bad_access_token_is_unauthenticated_with_the_same_message() {
    let server = TestServer::start().await;
    let ada = register(&server, "ada@example.com").await;
    let sub = ada.id.to_string();
    // The harness's secret signs a valid token: the cases below differ from it in one way each.
    let valid = sign(claims(&sub), TEST_SECRET);
    assert!(data(server.graphql_as(Some(&valid), ME, json!({})).await)["me"]["id"].is_string());

    let with = |key: &str, value: Value| {
        let mut c = claims(&sub);
        c[key] = value;
        sign(c, TEST_SECRET)
    };
    let without = |key: &str| {
        let mut c = claims(&sub);
        c.as_object_mut().unwrap().remove(key);
        sign(c, TEST_SECRET)
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(&sub).to_string())
    );
    let now = chrono::Utc::now().timestamp();
    let cases = [
        (
            "another key",
            sign(claims(&sub), b"another-secret-another-secret-another"),
        ),
        ("alg none", alg_none),
        ("expired", with("exp", json!(now - 3600))),
        ("wrong issuer", with("iss", json!("someone-else"))),
        ("wrong audience", with("aud", json!("another-api"))),
        ("no jti", without("jti")),
        ("no iat", without("iat")),
        ("no exp", without("exp")),
        ("refresh token", ada.refresh_token.clone()),
        ("garbage", "not.a.token".to_string()),
    ];
    let mut messages = Vec::new();
    for (case, token) in cases {
        let answer = server.graphql_as(Some(&token), ME, json!({})).await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{case}: {answer}");
        messages.push(answer["errors"][0]["message"].clone());
    }
    let anonymous = server.graphql(ME, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    messages.push(anonymous["errors"][0]["message"].clone());
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let server = TestServer::start().await;
    let ada = register(&server, "ada@example.com").await;
    let first = data(refresh(&server, &ada.refresh_token).await);
    let rotated = account(&first["refreshToken"]);
    assert_ne!(rotated.refresh_token, ada.refresh_token);
    assert!(data(server.graphql_as(rotated.token(), ME, json!({})).await)["me"]["id"].is_string());

    // The old token again, from another client: someone has a copy. Refused, and the new
    // one dies with it.
    let elsewhere = server
        .client
        .post(server.url("/graphql"))
        .header("user-agent", "another-device")
        .json(&json!({
            "query": format!("mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {AUTH_FIELDS} }} }}"),
            "variables": { "t": ada.refresh_token },
        }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(error_code(&elsewhere), "UNAUTHENTICATED");
    assert_eq!(
        error_code(&refresh(&server, &rotated.refresh_token).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL")
            .await,
        0
    );
    // Another session of the same user lives on.
    let other = data(login(&server, "ada@example.com", PASSWORD).await);
    data(refresh(&server, other["login"]["refreshToken"].as_str().unwrap()).await);
}

#[tokio::test]
async fn two_concurrent_refreshes_of_one_token_rotate_it_once() {
    let server = TestServer::start().await;
    let ada = register(&server, "ada@example.com").await;
    let (a, b) = tokio::join!(
        refresh(&server, &ada.refresh_token),
        refresh(&server, &ada.refresh_token)
    );
    // One exchanged it; the other, from the same client a moment later, got the same token.
    let (a, b) = (
        account(&data(a)["refreshToken"]),
        account(&data(b)["refreshToken"]),
    );
    assert_eq!(a.refresh_token, b.refresh_token);
    assert_eq!(
        server.scalar("SELECT count(*) FROM refresh_tokens").await,
        2,
        "one new token"
    );
}

#[tokio::test]
async fn logout_ends_the_session() {
    let server = TestServer::start().await;
    let ada = register(&server, "ada@example.com").await;
    let answer = server
        .graphql(
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": ada.refresh_token }),
        )
        .await;
    assert_eq!(data(answer)["logout"], true);
    assert_eq!(
        error_code(&refresh(&server, &ada.refresh_token).await),
        "UNAUTHENTICATED"
    );
    // Unknown tokens are answered the same way.
    let answer = server
        .graphql("mutation { logout(refreshToken: \"nope\") }", json!({}))
        .await;
    assert_eq!(data(answer)["logout"], true);
}

/// The token of the reset link, read as a mail client would (quoted-printable decoded).
fn reset_token(mail: &str) -> String {
    let mail = mail.replace("=\n", "").replace("=3D", "=");
    let start = mail.find("token=").expect("a reset link") + "token=".len();
    mail[start..start + 64].to_string()
}

#[tokio::test]
async fn password_reset_by_mail_changes_the_password_once_and_ends_sessions() {
    let mut smtp = SmtpSink::start().await;
    let url = smtp.url();
    let server =
        TestServer::start_with(|c| c.smtp_url = Some(weft::secrets::Secret::new(url.into_bytes())))
            .await;
    let ada = register(&server, "ada@example.com").await;
    // A socket of her session: the reset ends it, on every instance.
    let beside = server.beside().await;
    let mut socket = Ws::connect(&beside, TRANSPORT_WS, ada.token()).await;

    let ask = |email: &'static str| {
        server.graphql(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": email }),
        )
    };
    assert_eq!(
        data(ask("nobody@example.com").await)["requestPasswordReset"],
        true
    );
    assert_eq!(
        data(ask("ADA@example.com").await)["requestPasswordReset"],
        true
    );
    let mail = tokio::time::timeout(Duration::from_secs(10), smtp.received.recv())
        .await
        .expect("a mail within 10 s")
        .unwrap();
    assert_eq!(mail.to, vec!["ada@example.com".to_string()]);
    assert!(
        smtp.received.try_recv().is_err(),
        "no mail for the unknown address"
    );
    let token = reset_token(&mail.data);
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM password_resets WHERE token_hash = '{token}'"
            ))
            .await,
        0,
        "the token is stored hashed"
    );

    let reset = |token: String, password: &'static str| {
        server.graphql(
            "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) }",
            json!({ "i": { "token": token, "newPassword": password } }),
        )
    };
    let short = reset(token.clone(), "short").await;
    assert_eq!(short["errors"][0]["extensions"]["field"], "newPassword");
    assert_eq!(
        data(reset(token.clone(), "a brand new password").await)["resetPassword"],
        true
    );
    assert_eq!(socket.closed().await, Closed::Code(4403));
    let again = reset(token, "yet another password").await;
    assert_eq!(error_code(&again), "BAD_USER_INPUT");
    assert_eq!(again["errors"][0]["extensions"]["field"], "token");

    assert_eq!(
        error_code(&login(&server, "ada@example.com", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    data(login(&server, "ada@example.com", "a brand new password").await);
    assert_eq!(
        error_code(&refresh(&server, &ada.refresh_token).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_client_address() {
    let server = TestServer::start_with(|c| c.login_limits.per_ip = 3).await;
    register(&server, "carol@example.com").await;
    for email in ["x@example.com", "y@example.com", "z@example.com"] {
        assert_eq!(
            error_code(&login(&server, email, "guess guess").await),
            "UNAUTHENTICATED"
        );
    }
    // Three failures from this address on three emails: a fourth email is refused too.
    assert_eq!(
        error_code(&login(&server, "carol@example.com", PASSWORD).await),
        "RATE_LIMITED"
    );
}

#[tokio::test]
async fn rate_limit_counters_live_in_redis_under_the_instance_prefix() {
    let server = TestServer::start().await;
    login(&server, "nobody@example.com", "guess guess").await;
    let prefix = server.app.config.redis_prefix.clone();
    let weft::realtime::Broker::Redis { client, .. } = &server.app.broker else {
        panic!("the test server uses Redis");
    };
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}limit:login:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|k| !k.contains("nobody@example.com")),
        "emails are not stored in clear: {keys:?}"
    );
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// A document of `n` aliases of one mutation field.
fn aliased(n: usize, field: &str) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("a{i}: {field}")).collect();
    format!("mutation {{ {} }}", fields.join(" "))
}

/// The codes of an answer's errors, in order.
fn codes(answer: &serde_json::Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn aliased_reset_requests_count_one_by_one_across_documents() {
    let server = TestServer::start().await;
    register(&server, "victim@example.com").await;
    // Four documents of ten aliases (the most root fields a document may have).
    let mut limited = Vec::new();
    for _ in 0..4 {
        let answer = server
            .graphql(
                &aliased(10, "requestPasswordReset(email: \"victim@example.com\")"),
                json!({}),
            )
            .await;
        limited.extend(codes(&answer));
    }
    assert_eq!(limited.len(), 37, "{limited:?}");
    assert!(limited.iter().all(|c| c == "RATE_LIMITED"), "{limited:?}");
    assert_eq!(
        server.scalar("SELECT count(*) FROM password_resets").await,
        3,
        "three mails, not forty"
    );
}

#[tokio::test]
async fn reset_tokens_and_registrations_are_limited_per_address() {
    let server = TestServer::start().await;
    let mut codes_seen = Vec::new();
    for n in [10, 10, 5] {
        let answer = server
            .graphql(
                &aliased(
                    n,
                    "resetPassword(input: { token: \"guess\", newPassword: \"a long new password\" })",
                ),
                json!({}),
            )
            .await;
        codes_seen.extend(codes(&answer));
    }
    let codes = codes_seen;
    assert_eq!(codes.len(), 25);
    assert!(
        codes[..20].iter().all(|c| c == "BAD_USER_INPUT"),
        "{codes:?}"
    );
    assert!(codes[20..].iter().all(|c| c == "RATE_LIMITED"), "{codes:?}");

    for i in 0..20 {
        register(&server, &format!("user{i}@example.com")).await;
    }
    let refused = server
        .graphql(
            "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            json!({ "i": { "email": "one-more@example.com", "password": PASSWORD, "name": "x" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "RATE_LIMITED");
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM users WHERE email = 'one-more@example.com'")
            .await,
        0
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_limits_count_the_forwarded_client() {
    let server = TestServer::start_with(|c| {
        c.login_limits.per_ip = 2;
        c.trusted_proxies = weft::config::TrustedProxies::new(vec![
            weft::outbound::Network::parse("127.0.0.1").unwrap(),
        ]);
    })
    .await;
    let login_from = |client: &'static str, email: &'static str| {
        server
            .client
            .post(server.url("/graphql"))
            .header("x-forwarded-for", format!("{client}, 127.0.0.1"))
            .json(&json!({
                "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
                "variables": { "i": { "email": email, "password": "guess guess" } }
            }))
            .send()
    };
    for email in ["a@example.com", "b@example.com"] {
        let answer: Value = login_from("198.51.100.1", email)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(error_code(&answer), "UNAUTHENTICATED");
    }
    let limited: Value = login_from("198.51.100.1", "c@example.com")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&limited), "RATE_LIMITED");
    // Another client behind the same proxy is not locked out with it.
    let other: Value = login_from("198.51.100.2", "c@example.com")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(error_code(&other), "UNAUTHENTICATED");
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_share_the_new_token() {
    let server = TestServer::start().await;
    let ada = register(&server, "ada@example.com").await;
    // Both tabs hold the same refresh token; the first exchanges it, the second presents it
    // a moment later from the same browser.
    let first = account(&data(refresh(&server, &ada.refresh_token).await)["refreshToken"]);
    let second = account(&data(refresh(&server, &ada.refresh_token).await)["refreshToken"]);
    assert_eq!(
        second.refresh_token, first.refresh_token,
        "the same new token"
    );
    assert!(data(server.graphql_as(second.token(), ME, json!({})).await)["me"]["id"].is_string());
    // The session goes on: the shared token rotates as usual...
    let next = account(&data(refresh(&server, &first.refresh_token).await)["refreshToken"]);
    assert_ne!(next.refresh_token, first.refresh_token);
    // ...and the first token, now two rotations old, counts as a stolen copy.
    assert_eq!(
        error_code(&refresh(&server, &ada.refresh_token).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM refresh_tokens WHERE successor_sealed IS NOT NULL AND revoked_at IS NULL")
            .await,
        0
    );
}
