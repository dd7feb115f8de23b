//! A chat application set up through the API: a model provider (the test's
//! OpenAI-compatible server), a workflow (START → LLM → ANSWER unless given), the
//! application published, and an API key.

use serde_json::{Value, json};

use super::TestServer;
use super::accounts::{Account, Tenant, create_organization, data, register};

pub struct ChatApp {
    pub owner: Account,
    pub tenant: Tenant,
    pub provider: String,
    pub application: String,
    /// The application's API key (`app-...`).
    pub key: String,
}

/// START → LLM (the query, with memory) → ANSWER of `{{llm.text}}`.
pub fn chat_graph(provider: &str, model: &str) -> Value {
    json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [] } },
            { "key": "llm", "type": "LLM", "config": {
                "providerId": provider, "model": model, "systemPrompt": "Be brief.",
                "prompt": "{{sys.query}}", "memory": true } },
            { "key": "answer", "type": "ANSWER", "config": { "answer": "{{llm.text}}" } }
        ],
        "connections": [
            { "source": "start", "target": "llm" },
            { "source": "llm", "target": "answer" }
        ]
    })
}

pub const SEND: &str = "mutation($i: SendMessageInput!) { sendMessage(input: $i) {
    conversation { id title messageCount }
    userMessage { id status content sequenceNumber }
    assistantMessage { id status executionId sequenceNumber metadata }
    execution { id status } } }";

pub const STREAM: &str = "subscription($id: UUID!, $after: Int) { messageStream(messageId: $id, after: $after) {
    seq kind delta text error message { id status answer content totalTokens promptTokens completionTokens modelName latency } } }";

pub async fn provider(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    base_url: &str,
    api_key: &str,
    max_tokens: Option<i64>,
) -> String {
    let created = server
        .graphql_as(
            owner.token(),
            "mutation($i: CreateLlmProviderInput!) { createLlmProvider(input: $i) { id } }",
            json!({ "i": { "workspaceId": tenant.workspace_id, "name": format!("Local {}", uuid::Uuid::new_v4()),
                           "providerType": "OPENAI_COMPATIBLE", "baseUrl": base_url, "apiKey": api_key,
                           "models": ["gpt-test", "slow"], "defaultModel": "gpt-test",
                           "maxTokens": max_tokens } }),
        )
        .await;
    data(created)["createLlmProvider"]["id"]
        .as_str()
        .expect("a provider id")
        .to_string()
}

pub async fn workflow(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    graph: Value,
) -> String {
    let created = server
        .graphql_as(
            owner.token(),
            "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
            json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Bot", "graph": graph } }),
        )
        .await;
    data(created)["createWorkflow"]["id"]
        .as_str()
        .expect("a workflow id")
        .to_string()
}

/// A new workflow made from the official template called `name`: `{ id currentVersion { graph } }`.
pub async fn from_official_template(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    name: &str,
) -> Value {
    let templates = data(
        server
            .graphql_as(
                owner.token(),
                "{ workflowTemplates(first: 50, filter: { source: OFFICIAL }) { edges { node { id name } } } }",
                json!({}),
            )
            .await,
    );
    let template = templates["workflowTemplates"]["edges"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|e| e["node"]["name"] == name)
        .unwrap_or_else(|| panic!("the template {name} ships"))["node"]["id"]
        .clone();
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: CreateWorkflowFromTemplateInput!) { createWorkflowFromTemplate(input: $i) {
                    id currentVersion { graph } } }",
                json!({ "i": { "templateId": template, "workspaceId": tenant.workspace_id, "name": name } }),
            )
            .await,
    )["createWorkflowFromTemplate"]
        .clone()
}

/// A published chat application on `graph` (or the chat graph on `model`) with a key.
pub async fn chat_app(
    server: &TestServer,
    base_url: &str,
    model: &str,
    max_tokens: Option<i64>,
) -> ChatApp {
    let owner = register(server, "owner@example.com").await;
    let tenant = create_organization(server, &owner, "Acme").await;
    let provider = provider(
        server,
        &owner,
        &tenant,
        base_url,
        super::model_server::KEY,
        max_tokens,
    )
    .await;
    let workflow = workflow(server, &owner, &tenant, chat_graph(&provider, model)).await;
    let (application, key) =
        application_with_key(server, &owner, tenant.workspace_id, &workflow, "CHAT").await;
    ChatApp {
        owner,
        tenant,
        provider,
        application,
        key,
    }
}

/// A published application (`mode` CHAT or WORKFLOW) on `workflow`, and an API key of it.
pub async fn application_with_key(
    server: &TestServer,
    owner: &Account,
    workspace_id: uuid::Uuid,
    workflow: &str,
    mode: &str,
) -> (String, String) {
    let created = server
        .graphql_as(
            owner.token(),
            "mutation($i: CreateApplicationInput!) { createApplication(input: $i) { id } }",
            json!({ "i": { "workspaceId": workspace_id, "name": "Helper", "mode": mode, "workflowId": workflow } }),
        )
        .await;
    let application = data(created)["createApplication"]["id"]
        .as_str()
        .expect("an application id")
        .to_string();
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($id: UUID!) { publishApplication(id: $id) { status } }",
                json!({ "id": application }),
            )
            .await,
    );
    let key = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) { secret } }",
                json!({ "i": { "applicationId": application, "name": "web" } }),
            )
            .await,
    )["createApiKey"]["secret"]
        .as_str()
        .expect("a secret")
        .to_string();
    (application, key)
}

/// Sends `query` as end user `end_user` (with the API key); the payload.
pub async fn send(
    server: &TestServer,
    app: &ChatApp,
    query: &str,
    conversation: Option<&str>,
) -> Value {
    let answer = server
        .graphql_as(
            Some(&app.key),
            SEND,
            json!({ "i": { "applicationId": app.application, "conversationId": conversation,
                           "query": query, "endUserId": "user-1" } }),
        )
        .await;
    data(answer)["sendMessage"].clone()
}

/// The text of a message's stream payloads: deltas applied, replaces honoured.
pub fn text_of(payloads: &[Value]) -> String {
    let mut text = String::new();
    for p in payloads {
        let event = &p["data"]["messageStream"];
        match event["kind"].as_str() {
            Some("DELTA") => text.push_str(event["delta"].as_str().unwrap_or("")),
            Some("REPLACE") => text = event["text"].as_str().unwrap_or("").to_string(),
            _ => {}
        }
    }
    text
}
