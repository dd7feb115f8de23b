//! Tools: MCP servers per workspace (headers sealed, tools listed from the server through
//! the outbound guard), TOOL nodes calling an MCP server's or a plugin's tool, tool errors,
//! and isolation (another workspace's server or installation cannot be named).

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{Account, Tenant, create_organization, data, error_code, register};
use crate::harness::chat::workflow;
use crate::harness::live::Ws;
use crate::harness::mcp_server::{McpServer, TOKEN};

const CREATE: &str = "mutation($i: CreateMcpServerInput!) { createMcpServer(input: $i) {
    id name url enabled headerNames } }";
const TOOLS: &str = "query($id: UUID!) { workspace(id: $id) { mcpServers { name enabled
    tools { name description inputSchema } } } }";
const RUN: &str = "mutation($i: RunWorkflowInput!) { runWorkflow(input: $i) { id } }";
const EVENTS: &str = "subscription($id: UUID!) { executionEvents(executionId: $id) { kind } }";
const RESULT: &str = "query($id: UUID!) { execution(id: $id) { status error outputs
    nodeResults { nodeKey nodeType status error inputs outputs console } } }";

async fn owner(server: &TestServer) -> (Account, Tenant) {
    let owner = register(server, "owner@example.com").await;
    let tenant = create_organization(server, &owner, "Acme").await;
    (owner, tenant)
}

pub async fn mcp_server(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    mcp: &McpServer,
) -> String {
    data(
        server
            .graphql_as(
                owner.token(),
                CREATE,
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Warehouse", "url": mcp.url,
                               "headers": { "Authorization": format!("Bearer {TOKEN}") } } }),
            )
            .await,
    )["createMcpServer"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn tool_graph(tool: Value, arguments: Value) -> Value {
    json!({
        "nodes": [
            { "key": "start", "type": "START", "config": { "inputs": [{ "name": "a", "type": "number" }] } },
            { "key": "tool", "type": "TOOL", "config": { "tool": tool, "arguments": arguments } },
            { "key": "end", "type": "END", "config": { "outputs": {
                "text": "{{tool.text}}", "result": "{{tool.result}}" } } }
        ],
        "connections": [
            { "source": "start", "target": "tool" },
            { "source": "tool", "target": "end" }
        ]
    })
}

pub async fn run_to_end(server: &TestServer, who: &Account, flow: &str, inputs: Value) -> Value {
    let id = data(
        server
            .graphql_as(
                who.token(),
                RUN,
                json!({ "i": { "workflowId": flow, "inputs": inputs } }),
            )
            .await,
    )["runWorkflow"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = Ws::connect(server, "graphql-transport-ws", who.token()).await;
    ws.subscribe("1", EVENTS, json!({ "id": id })).await;
    ws.until_complete("1").await;
    data(
        server
            .graphql_as(who.token(), RESULT, json!({ "id": id }))
            .await,
    )["execution"]
        .clone()
}

/// Installs shipped plugin `name` in the tenant's workspace with `config`; the installation.
pub async fn install_plugin(
    server: &TestServer,
    owner: &Account,
    tenant: &Tenant,
    name: &str,
    config: Value,
) -> String {
    let plugin = data(
        server
            .graphql_as(
                owner.token(),
                "query($f: PluginFilter) { plugins(filter: $f) { edges { node { id name } } } }",
                json!({ "f": { "nameContains": name } }),
            )
            .await,
    )["plugins"]["edges"][0]["node"]["id"]
        .clone();
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: InstallPluginInput!) { installPlugin(input: $i) { id } }",
                json!({ "i": { "workspaceId": tenant.workspace_id, "pluginId": plugin, "config": config } }),
            )
            .await,
    )["installPlugin"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn tool_node(execution: &Value) -> &Value {
    execution["nodeResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["nodeKey"] == "tool")
        .unwrap()
}

#[tokio::test]
async fn mcp_servers_are_kept_per_workspace_with_sealed_headers_and_list_their_tools() {
    let server = TestServer::start().await;
    let mcp = McpServer::start().await;
    let (owner, tenant) = owner(&server).await;
    let created = data(
        server
            .graphql_as(
                owner.token(),
                CREATE,
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Warehouse", "url": mcp.url,
                               "headers": { "Authorization": format!("Bearer {TOKEN}") } } }),
            )
            .await,
    )["createMcpServer"]
        .clone();
    assert_eq!(created["headerNames"], json!(["Authorization"]));
    assert_eq!(created["enabled"], true);
    let id = created["id"].as_str().unwrap().to_string();
    // The header value is stored sealed: the token appears nowhere in the row or the audit.
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM mcp_servers WHERE id = '{id}' AND headers_encrypted IS NOT NULL
                 AND position('{TOKEN}'::bytea in headers_encrypted) = 0 AND header_names::text NOT LIKE '%{TOKEN}%'"
            ))
            .await,
        1
    );
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM audit_logs WHERE action = 'mcp_server.create' AND metadata::text NOT LIKE '%{TOKEN}%'"
            ))
            .await,
        1
    );

    let listed = data(
        server
            .graphql_as(owner.token(), TOOLS, json!({ "id": tenant.workspace_id }))
            .await,
    );
    let servers = listed["workspace"]["mcpServers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    let tools = servers[0]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["add", "fail", "shout", "slow"], "{tools:?}");
    let add = &tools[0];
    assert_eq!(add["description"], "Adds two numbers");
    assert_eq!(add["inputSchema"]["properties"]["a"]["type"], "number");

    // Bad input changes nothing.
    for (input, field) in [
        (
            json!({ "name": "x", "url": "ftp://example.com/mcp" }),
            "url",
        ),
        (json!({ "name": "x", "url": "not a url" }), "url"),
        (
            json!({ "name": "x", "url": "https://u:p@example.com/mcp" }),
            "url",
        ),
        (
            json!({ "name": "x", "url": "https://example.com/mcp", "headers": { "X-Key": 5 } }),
            "headers",
        ),
        (
            json!({ "name": "x", "url": "https://example.com/mcp", "headers": { "bad name": "v" } }),
            "headers",
        ),
        (
            json!({ "name": "x", "url": "https://example.com/mcp", "headers": { "Mcp-Session-Id": "v" } }),
            "headers",
        ),
        (
            json!({ "name": "", "url": "https://example.com/mcp" }),
            "name",
        ),
    ] {
        let mut input = input;
        input["workspaceId"] = json!(tenant.workspace_id);
        let refused = server
            .graphql_as(owner.token(), CREATE, json!({ "i": input }))
            .await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{input}");
        assert_eq!(
            refused["errors"][0]["extensions"]["field"], field,
            "{input}"
        );
    }
    let twice = server
        .graphql_as(
            owner.token(),
            CREATE,
            json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Warehouse", "url": "https://example.com/mcp" } }),
        )
        .await;
    assert_eq!(error_code(&twice), "CONFLICT");
    assert_eq!(server.scalar("SELECT count(*) FROM mcp_servers").await, 1);

    // Another workspace's owner cannot see, change or delete it.
    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Other").await;
    let update = "mutation($i: UpdateMcpServerInput!) { updateMcpServer(input: $i) { id url headerNames enabled } }";
    let foreign = server
        .graphql_as(
            stranger.token(),
            update,
            json!({ "i": { "id": id, "enabled": false } }),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    let foreign = server
        .graphql_as(
            stranger.token(),
            "mutation($id: UUID!) { deleteMcpServer(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");

    // A new URL without the headers entered again drops them.
    let moved = data(
        server
            .graphql_as(
                owner.token(),
                update,
                json!({ "i": { "id": id, "url": "https://mcp.example.com/mcp" } }),
            )
            .await,
    );
    assert_eq!(moved["updateMcpServer"]["headerNames"], json!([]));
    let disabled = data(
        server
            .graphql_as(
                owner.token(),
                update,
                json!({ "i": { "id": id, "enabled": false } }),
            )
            .await,
    );
    assert_eq!(disabled["updateMcpServer"]["enabled"], false);
    let deleted = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($id: UUID!) { deleteMcpServer(id: $id) }",
                json!({ "id": id }),
            )
            .await,
    );
    assert_eq!(deleted["deleteMcpServer"], true);
    assert_eq!(server.scalar("SELECT count(*) FROM mcp_servers").await, 0);
}

#[tokio::test]
async fn a_server_that_refuses_the_headers_or_cannot_be_reached_says_so() {
    let server = TestServer::start().await;
    let mcp = McpServer::start().await;
    let (owner, tenant) = owner(&server).await;
    data(
        server
            .graphql_as(
                owner.token(),
                CREATE,
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "No key", "url": mcp.url } }),
            )
            .await,
    );
    let listed = server
        .graphql_as(owner.token(), TOOLS, json!({ "id": tenant.workspace_id }))
        .await;
    assert_eq!(error_code(&listed), "CONFLICT");
    assert!(
        listed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 401"),
        "{listed}"
    );
    assert!(mcp.seen.refused.load(std::sync::atomic::Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn an_mcp_server_on_a_private_address_is_refused_without_the_allow_list() {
    let server = TestServer::start_with(|c| c.outbound = Default::default()).await;
    let mcp = McpServer::start().await;
    let (owner, tenant) = owner(&server).await;
    let refused = server
        .graphql_as(
            owner.token(),
            CREATE,
            json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Local", "url": mcp.url } }),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "url");
    // A name that resolves to a loopback address is refused when it is reached.
    let by_name = mcp.url.replace("127.0.0.1", "localhost");
    let id = data(
        server
            .graphql_as(
                owner.token(),
                CREATE,
                json!({ "i": { "workspaceId": tenant.workspace_id, "name": "Local", "url": by_name,
                               "headers": { "Authorization": format!("Bearer {TOKEN}") } } }),
            )
            .await,
    )["createMcpServer"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let listed = server
        .graphql_as(owner.token(), TOOLS, json!({ "id": tenant.workspace_id }))
        .await;
    assert_eq!(error_code(&listed), "CONFLICT");
    assert!(
        listed["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{listed}"
    );
    let flow = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(
            json!({ "mcpServerId": id, "name": "add" }),
            json!({ "a": 1, "b": 2 }),
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &flow, json!({})).await;
    assert_eq!(execution["status"], "FAILED");
    assert!(
        tool_node(&execution)["error"]
            .as_str()
            .unwrap()
            .contains("loopback")
    );
    assert_eq!(mcp.seen.calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_tool_node_calls_an_mcp_tool_and_a_tool_error_fails_it() {
    let server = TestServer::start().await;
    let mcp = McpServer::start().await;
    let (owner, tenant) = owner(&server).await;
    let id = mcp_server(&server, &owner, &tenant, &mcp).await;
    let flow = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(
            json!({ "mcpServerId": id, "name": "add" }),
            json!({ "a": "{{start.a}}", "b": 2.5 }),
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &flow, json!({ "a": 4 })).await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    let node = tool_node(&execution);
    assert_eq!(node["outputs"]["result"], json!({ "sum": 6.5 }));
    assert_eq!(node["outputs"]["text"], "6.5");
    assert_eq!(
        node["inputs"],
        json!({ "tool": "add", "arguments": { "a": 4, "b": 2.5 } })
    );
    assert_eq!(execution["outputs"]["text"], "6.5");

    // Unstructured results come as their content.
    let shout = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(
            json!({ "mcpServerId": id, "name": "shout" }),
            json!({ "text": "hello {{start.a}}" }),
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &shout, json!({ "a": 7 })).await;
    assert_eq!(tool_node(&execution)["outputs"]["text"], "HELLO 7");
    assert_eq!(
        tool_node(&execution)["outputs"]["result"],
        json!({ "content": [{ "type": "text", "text": "HELLO 7" }] })
    );

    // The tool's own error fails the node with its message.
    let fail = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(json!({ "mcpServerId": id, "name": "fail" }), json!({})),
    )
    .await;
    let execution = run_to_end(&server, &owner, &fail, json!({})).await;
    assert_eq!(execution["status"], "FAILED");
    assert_eq!(tool_node(&execution)["error"], "the warehouse is closed");

    // A tool the server does not have.
    let missing = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(json!({ "mcpServerId": id, "name": "teleport" }), json!({})),
    )
    .await;
    let execution = run_to_end(&server, &owner, &missing, json!({})).await;
    assert_eq!(
        tool_node(&execution)["error"],
        "the MCP server Warehouse has no tool teleport"
    );
    // Bad arguments are the server's to refuse; its message is passed on.
    let bad = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(
            json!({ "mcpServerId": id, "name": "add" }),
            json!({ "a": "many" }),
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &bad, json!({})).await;
    assert_eq!(execution["status"], "FAILED");
    assert!(!tool_node(&execution)["error"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn a_tool_node_calls_a_plugin_tool() {
    let server = TestServer::start().await;
    let (owner, tenant) = owner(&server).await;
    let installation = install_plugin(
        &server,
        &owner,
        &tenant,
        "date-time",
        json!({ "timezone": "Europe/Paris" }),
    )
    .await;
    let flow = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(
            json!({ "installedPluginId": installation, "name": "shift" }),
            json!({ "date": "2026-01-31", "amount": "{{start.a}}", "unit": "MONTHS" }),
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &flow, json!({ "a": 1 })).await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    assert_eq!(
        tool_node(&execution)["outputs"]["result"],
        json!({ "date": "2026-02-28", "weekday": "Sat" })
    );
    let now = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(
            json!({ "installedPluginId": installation, "name": "now" }),
            json!({}),
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &now, json!({})).await;
    let result = &tool_node(&execution)["outputs"]["result"];
    assert_eq!(result["timezone"], "Europe/Paris");
    assert!(result["iso"].as_str().unwrap().ends_with(":00"), "{result}");
    // Arguments the manifest does not declare are refused.
    let bad = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(
            json!({ "installedPluginId": installation, "name": "shift" }),
            json!({ "date": "2026-01-31", "amount": 1, "unit": "YEARS" }),
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &bad, json!({})).await;
    assert_eq!(
        tool_node(&execution)["error"],
        "unit must be one of DAYS, WEEKS, MONTHS"
    );
}

#[tokio::test]
async fn another_workspace_s_server_or_installation_cannot_be_named_in_a_graph() {
    let server = TestServer::start().await;
    let mcp = McpServer::start().await;
    let (owner, tenant) = owner(&server).await;
    let theirs = mcp_server(&server, &owner, &tenant, &mcp).await;
    let stranger = register(&server, "stranger@example.com").await;
    let other = create_organization(&server, &stranger, "Other").await;
    let create = |graph: Value| {
        let server = &server;
        let stranger = &stranger;
        let other = &other;
        async move {
            server
                .graphql_as(
                    stranger.token(),
                    "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { id } }",
                    json!({ "i": { "workspaceId": other.workspace_id, "name": "Steal", "graph": graph } }),
                )
                .await
        }
    };
    let refused = create(tool_graph(
        json!({ "mcpServerId": theirs, "name": "add" }),
        json!({}),
    ))
    .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(
        refused["errors"][0]["extensions"]["field"],
        "graph.nodes[1]"
    );
    let refused = create(tool_graph(
        json!({ "installedPluginId": uuid::Uuid::new_v4(), "name": "now" }),
        json!({}),
    ))
    .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    let malformed = create(tool_graph(json!({ "name": "add" }), json!({}))).await;
    assert_eq!(error_code(&malformed), "BAD_USER_INPUT");
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM workflows WHERE workspace_id = '{}'",
                other.workspace_id
            ))
            .await,
        0
    );
    tokio::time::sleep(Duration::from_millis(1)).await;
}

#[tokio::test]
async fn the_http_request_plugin_calls_under_its_base_url_with_its_stored_credential() {
    let server = TestServer::start().await;
    let model = crate::harness::model_server::ModelServer::start().await;
    let (owner, tenant) = owner(&server).await;
    let installation = install_plugin(
        &server,
        &owner,
        &tenant,
        "http-request",
        json!({
                    "baseUrl": model.base_url,
                    "authorization": format!("Bearer {}", crate::harness::model_server::KEY) }),
    )
    .await;
    let flow = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(
            json!({ "installedPluginId": installation, "name": "request" }),
            json!({ "method": "POST", "path": "/embeddings",
                    "body": "{\"model\": \"m\", \"input\": [\"hello\"]}" }),
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &flow, json!({})).await;
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    let result = &tool_node(&execution)["outputs"]["result"];
    assert_eq!(result["status"], 200);
    assert_eq!(result["json"]["data"].as_array().unwrap().len(), 1);
    // A path that would leave the base URL is refused before anything is sent.
    let before = model
        .seen
        .requests
        .load(std::sync::atomic::Ordering::SeqCst);
    let escape = workflow(
        &server,
        &owner,
        &tenant,
        tool_graph(
            json!({ "installedPluginId": installation, "name": "request" }),
            json!({ "method": "GET", "path": "/../admin" }),
        ),
    )
    .await;
    let execution = run_to_end(&server, &owner, &escape, json!({})).await;
    assert_eq!(execution["status"], "FAILED");
    assert_eq!(
        model
            .seen
            .requests
            .load(std::sync::atomic::Ordering::SeqCst),
        before
    );
}
