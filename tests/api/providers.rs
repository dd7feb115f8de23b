//! Model providers: the key is stored encrypted and never returned; roles and isolation.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, error_code, member, register};

const CREATE: &str = "mutation($i: CreateLlmProviderInput!) { createLlmProvider(input: $i) {
    id name providerType baseUrl hasApiKey models defaultModel maxTokens usedTokens } }";

#[tokio::test]
async fn provider_keys_are_write_only_and_stored_encrypted() {
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
    let input = json!({ "i": {
        "workspaceId": tenant.workspace_id, "name": "OpenAI", "providerType": "OPENAI_COMPATIBLE",
        "baseUrl": "https://api.example.com/v1/", "apiKey": "sk-very-secret-key", "models": ["gpt-x", "gpt-y"],
        "defaultModel": "gpt-x", "maxTokens": 100000 } });

    assert_eq!(
        error_code(
            &server
                .graphql_as(editor.token(), CREATE, input.clone())
                .await
        ),
        "FORBIDDEN"
    );
    let answer = server
        .graphql_as(owner.token(), CREATE, input.clone())
        .await;
    assert!(!answer.to_string().contains("sk-very-secret-key"));
    let provider = data(answer)["createLlmProvider"].clone();
    assert_eq!(provider["hasApiKey"], true);
    assert_eq!(provider["baseUrl"], "https://api.example.com/v1");
    assert_eq!(provider["maxTokens"], 100000);
    assert_eq!(provider["usedTokens"], 0);
    assert_eq!(
        server.scalar("SELECT count(*) FROM llm_providers WHERE position('sk-very-secret-key'::bytea in api_key_encrypted) > 0").await,
        0,
        "the key is not stored in clear"
    );
    let audit = server
        .scalar("SELECT count(*) FROM audit_logs WHERE metadata::text LIKE '%sk-very%'")
        .await;
    assert_eq!(audit, 0, "nor written to the audit log");
    assert_eq!(
        error_code(&server.graphql_as(owner.token(), CREATE, input).await),
        "CONFLICT"
    );

    // Everyone in the workspace sees the provider, without its key.
    let listed = data(
        server
            .graphql_as(
                editor.token(),
                "query($w: UUID!) { workspace(id: $w) { llmProviders { name hasApiKey } } }",
                json!({ "w": tenant.workspace_id }),
            )
            .await,
    );
    assert_eq!(
        listed["workspace"]["llmProviders"],
        json!([{ "name": "OpenAI", "hasApiKey": true }])
    );

    let id = provider["id"].clone();
    let update = async |i: Value| {
        server
            .graphql_as(
                owner.token(),
                "mutation($i: UpdateLlmProviderInput!) { updateLlmProvider(input: $i) { hasApiKey maxTokens defaultModel } }",
                json!({ "i": i }),
            )
            .await
    };
    let removed = data(update(json!({ "id": id, "apiKey": "", "maxTokens": null })).await);
    assert_eq!(
        removed["updateLlmProvider"],
        json!({ "hasApiKey": false, "maxTokens": null, "defaultModel": "gpt-x" })
    );
    let bad = update(json!({ "id": id, "defaultModel": "not-listed" })).await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "defaultModel");
    let bad = update(json!({ "id": id, "baseUrl": "ftp://x" })).await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "baseUrl");

    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Theirs").await;
    let deleted = server
        .graphql_as(
            stranger.token(),
            "mutation($id: UUID!) { deleteLlmProvider(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&deleted), "NOT_FOUND");
    let deleted = server
        .graphql_as(
            owner.token(),
            "mutation($id: UUID!) { deleteLlmProvider(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(deleted)["deleteLlmProvider"], true);
    assert_eq!(server.scalar("SELECT count(*) FROM llm_providers").await, 0);
}

#[tokio::test]
async fn an_openai_compatible_provider_needs_a_base_url() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let answer = server
        .graphql_as(
            owner.token(),
            CREATE,
            json!({ "i": { "workspaceId": tenant.workspace_id, "name": "x", "providerType": "OPENAI_COMPATIBLE" } }),
        )
        .await;
    assert_eq!(answer["errors"][0]["extensions"]["field"], "baseUrl");
    let echo = server
        .graphql_as(
            owner.token(),
            CREATE,
            json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Echo", "providerType": "ECHO", "models": ["echo"] } }),
        )
        .await;
    assert_eq!(data(echo)["createLlmProvider"]["providerType"], "ECHO");
}

#[tokio::test]
async fn a_sealed_key_copied_into_another_providers_row_does_not_open() {
    use crate::harness::chat::{STREAM, chat_app, send};
    use crate::harness::live::Ws;
    use crate::harness::model_server::ModelServer;
    use std::sync::atomic::Ordering;
    let models = ModelServer::start().await;
    let server = TestServer::start().await;
    let app = chat_app(&server, &models.base_url, "gpt-test", None).await;
    let other = data(
        server
            .graphql_as(
                app.owner.token(),
                CREATE,
                json!({ "i": { "workspaceId": app.tenant.workspace_id, "name": "Other",
                    "providerType": "OPENAI_COMPATIBLE", "baseUrl": models.base_url,
                    "apiKey": "sk-other-key", "models": ["gpt-test"] } }),
            )
            .await,
    )["createLlmProvider"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Someone with write access to the table moves the other key into this provider's row.
    {
        use diesel_async::RunQueryDsl;
        let mut conn = server.app.pool.get().await.unwrap();
        diesel::sql_query(format!(
            "UPDATE llm_providers SET api_key_encrypted =
               (SELECT api_key_encrypted FROM llm_providers WHERE id = '{other}')
             WHERE id = '{}'",
            app.provider
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let before = models.seen.requests.load(Ordering::SeqCst);
    let sent = send(&server, &app, "Say hello", None).await;
    let reply = sent["assistantMessage"]["id"].as_str().unwrap().to_string();
    let mut ws = Ws::connect(&server, "graphql-transport-ws", Some(&app.key)).await;
    ws.subscribe("1", STREAM, json!({ "id": reply })).await;
    let events = ws.until_complete("1").await;
    let last = &events.last().unwrap()["data"]["messageStream"];
    assert_eq!(last["kind"], "ERROR", "{events:?}");
    assert_eq!(
        models.seen.requests.load(Ordering::SeqCst),
        before,
        "no key was sent to the provider"
    );
}

#[tokio::test]
async fn keys_sealed_before_bindings_are_bound_at_start() {
    use aes_gcm::Aes256Gcm;
    use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let id = data(
        server
            .graphql_as(
                owner.token(),
                CREATE,
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Old",
                    "providerType": "OPENAI_COMPATIBLE", "baseUrl": "https://api.example.com/v1",
                    "apiKey": "sk-x", "models": ["m"] } }),
            )
            .await,
    )["createLlmProvider"]["id"]
        .as_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .unwrap();
    // As an older version stored it: nonce and ciphertext, no binding.
    let cipher = Aes256Gcm::new_from_slice(server.app.config.encryption_key.expose()).unwrap();
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut legacy = nonce.to_vec();
    legacy.extend(cipher.encrypt(&nonce, b"sk-legacy".as_slice()).unwrap());
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use weft::db::schema::llm_providers;
        let mut conn = server.app.pool.get().await.unwrap();
        diesel::update(llm_providers::table.find(id))
            .set(llm_providers::api_key_encrypted.eq(&legacy))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let restarted = server.beside().await;
    let stored: Vec<u8> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use weft::db::schema::llm_providers;
        let mut conn = restarted.app.pool.get().await.unwrap();
        llm_providers::table
            .find(id)
            .select(llm_providers::api_key_encrypted.assume_not_null())
            .first(&mut conn)
            .await
            .unwrap()
    };
    let binding = weft::provider::service::key_binding(id);
    let key = &server.app.config.encryption_key;
    assert!(weft::secrets::is_bound(key, &stored, &binding));
    assert_eq!(
        weft::secrets::decrypt(key, &stored, &binding).unwrap(),
        b"sk-legacy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_counted_at_once_are_all_written() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let provider = crate::harness::chat::provider(
        &server,
        &owner,
        &tenant,
        "http://127.0.0.1:9/v1",
        "sk-test",
        None,
    )
    .await;
    let id: uuid::Uuid = provider.parse().unwrap();
    let usage = |prompt: i32, completion: i32| weft::llm::Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
    };
    let ledger = &server.app.engine.usage;
    // 300 calls' counts handed over together, of two models, some without waiting.
    for _ in 0..100 {
        ledger.count(id, "small", usage(1, 1));
    }
    let waited = (0..200).map(|n| {
        let model = if n % 2 == 0 { "small" } else { "large" };
        ledger.counted(id, model, usage(2, 3))
    });
    futures_util::future::join_all(waited).await;
    // Nothing counts a call that used no tokens.
    ledger.counted(id, "small", usage(0, 0)).await;
    let total = 100 * 2 + 200 * 5;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let used = format!("SELECT used_tokens FROM llm_providers WHERE id = '{id}'");
    while server.scalar(&used).await != total {
        assert!(std::time::Instant::now() < deadline, "every count written");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let per_model = |model: &str, column: &str| {
        format!(
            "SELECT sum({column})::bigint FROM workspace_token_usage \
             WHERE provider_id = '{id}' AND model = '{model}'"
        )
    };
    assert_eq!(server.scalar(&per_model("small", "calls")).await, 200);
    assert_eq!(server.scalar(&per_model("large", "calls")).await, 100);
    assert_eq!(
        server.scalar(&per_model("small", "prompt_tokens")).await,
        100 + 200
    );
    assert_eq!(
        server
            .scalar(&per_model("large", "completion_tokens"))
            .await,
        300
    );
    assert_eq!(
        server.scalar(&per_model("small", "total_tokens")).await,
        200 + 500
    );
}
