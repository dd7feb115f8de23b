//! Plugins: the shipped catalogue, installation per workspace with checked settings and
//! sealed secrets, enable/disable, uninstall; roles and isolation.

use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, error_code, member, register};

const INSTALL: &str = "mutation($i: InstallPluginInput!) { installPlugin(input: $i) {
    id isEnabled config configuredSecrets plugin { name installCount } installedBy { email } } }";

async fn plugin_id(server: &TestServer, token: Option<&str>, name: &str) -> Value {
    let list = data(
        server
            .graphql_as(
                token,
                "query($f: PluginFilter) { plugins(filter: $f) { totalCount edges { node { id name } } } }",
                json!({ "f": { "nameContains": name } }),
            )
            .await,
    );
    list["plugins"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["name"] == name)
        .unwrap_or_else(|| panic!("{name} is in the catalogue"))["node"]["id"]
        .clone()
}

#[tokio::test]
async fn the_catalogue_is_loaded_from_the_shipped_manifests() {
    let server = TestServer::start().await;
    let user = register(&server, "builder@example.com").await;
    let answer = data(
        server
            .graphql_as(
                user.token(),
                "{ plugins(first: 10) { totalCount edges { node {
                    name displayName version pluginType isVerified
                    settings { name type required default options }
                    tools { name parameters { name type required } outputs } } } } }",
                json!({}),
            )
            .await,
    );
    let plugins = &answer["plugins"];
    assert_eq!(plugins["totalCount"], 3);
    let names: Vec<&str> = plugins["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["name"].as_str().unwrap())
        .collect();
    for expected in ["http-request", "web-reader", "date-time"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let http = plugins["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["name"] == "http-request")
        .unwrap();
    assert_eq!(http["node"]["pluginType"], "TOOL");
    assert_eq!(http["node"]["isVerified"], true);
    let settings = http["node"]["settings"].as_array().unwrap();
    assert!(
        settings
            .iter()
            .any(|s| s["name"] == "authorization" && s["type"] == "SECRET")
    );
    assert!(
        settings
            .iter()
            .any(|s| s["name"] == "timeoutSeconds" && s["default"] == 10)
    );
    assert_eq!(http["node"]["tools"][0]["name"], "request");

    let tools_only = data(
        server
            .graphql_as(
                user.token(),
                "{ plugins(filter: { pluginType: MODEL }) { totalCount } }",
                json!({}),
            )
            .await,
    );
    assert_eq!(tools_only["plugins"]["totalCount"], 0);
    let paged = data(
        server
            .graphql_as(
                user.token(),
                "{ plugins(first: 2) { pageInfo { hasNextPage endCursor } edges { node { name } } } }",
                json!({}),
            )
            .await,
    );
    assert_eq!(paged["plugins"]["pageInfo"]["hasNextPage"], true);
    let rest = data(
        server
            .graphql_as(
                user.token(),
                "query($a: String) { plugins(first: 2, after: $a) { pageInfo { hasNextPage } edges { node { name } } } }",
                json!({ "a": paged["plugins"]["pageInfo"]["endCursor"] }),
            )
            .await,
    );
    assert_eq!(rest["plugins"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(rest["plugins"]["pageInfo"]["hasNextPage"], false);

    let anonymous = server
        .graphql("{ plugins { totalCount } }", json!({}))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    // Loading again at the next start changes nothing.
    let again = weft::plugin::catalogue::load_shipped(&mut server.app.pool.get().await.unwrap())
        .await
        .unwrap();
    assert_eq!(again, 3);
    assert_eq!(server.scalar("SELECT count(*) FROM plugins").await, 3);
}

#[tokio::test]
async fn a_plugin_is_installed_configured_switched_and_uninstalled_with_secrets_kept_sealed() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let http = plugin_id(&server, owner.token(), "http-request").await;
    let install = async |config: Value| {
        server
            .graphql_as(
                owner.token(),
                INSTALL,
                json!({ "i": { "workspaceId": tenant.workspace_id, "pluginId": http, "config": config } }),
            )
            .await
    };

    // Bad settings: the field is named and nothing is installed.
    for (config, field) in [
        (json!({}), "config.baseUrl"),
        (json!({ "baseUrl": "not a url" }), "config.baseUrl"),
        (
            json!({ "baseUrl": "https://api.example.com", "timeoutSeconds": 600 }),
            "config.timeoutSeconds",
        ),
        (
            json!({ "baseUrl": "https://api.example.com", "unknown": 1 }),
            "config.unknown",
        ),
    ] {
        let answer = install(config).await;
        assert_eq!(error_code(&answer), "BAD_USER_INPUT");
        assert_eq!(answer["errors"][0]["extensions"]["field"], field);
    }
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM installed_plugins")
            .await,
        0
    );

    let installed = data(
        install(json!({ "baseUrl": "https://api.example.com", "authorization": "Bearer top-secret-value" }))
            .await,
    )["installPlugin"]
        .clone();
    assert_eq!(installed["isEnabled"], true);
    assert_eq!(installed["config"]["baseUrl"], "https://api.example.com");
    assert_eq!(installed["config"]["timeoutSeconds"], 10);
    assert!(installed["config"].get("authorization").is_none());
    assert_eq!(installed["configuredSecrets"], json!(["authorization"]));
    assert_eq!(installed["plugin"]["installCount"], 1);
    assert_eq!(installed["installedBy"]["email"], "owner@example.com");
    assert!(!installed.to_string().contains("top-secret-value"));
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM installed_plugins WHERE config::text LIKE '%top-secret-value%'")
            .await,
        0
    );
    assert_eq!(
        server
            .scalar(
                "SELECT count(*) FROM audit_logs WHERE metadata::text LIKE '%top-secret-value%'"
            )
            .await,
        0
    );
    assert_eq!(
        error_code(&install(json!({ "baseUrl": "https://x.example" })).await),
        "CONFLICT"
    );

    // Changing the settings keeps the secret unless it is cleared.
    let configure = async |config: Value| {
        server
            .graphql_as(
                owner.token(),
                "mutation($i: ConfigurePluginInput!) { configurePlugin(input: $i) { config configuredSecrets } }",
                json!({ "i": { "installedPluginId": installed["id"], "config": config } }),
            )
            .await
    };
    let changed =
        data(configure(json!({ "baseUrl": "https://v2.example.com", "timeoutSeconds": 30 })).await);
    assert_eq!(changed["configurePlugin"]["config"]["timeoutSeconds"], 30);
    assert_eq!(
        changed["configurePlugin"]["configuredSecrets"],
        json!(["authorization"])
    );
    let bad =
        configure(json!({ "baseUrl": "https://v2.example.com", "timeoutSeconds": "soon" })).await;
    assert_eq!(
        bad["errors"][0]["extensions"]["field"],
        "config.timeoutSeconds"
    );
    let cleared = data(
        configure(json!({ "baseUrl": "https://v2.example.com", "authorization": null })).await,
    );
    assert_eq!(cleared["configurePlugin"]["configuredSecrets"], json!([]));
    assert_eq!(cleared["configurePlugin"]["config"]["timeoutSeconds"], 10);

    let switch = async |enabled: bool| {
        data(
            server
                .graphql_as(
                    owner.token(),
                    "mutation($i: SetPluginEnabledInput!) { setPluginEnabled(input: $i) { isEnabled } }",
                    json!({ "i": { "installedPluginId": installed["id"], "enabled": enabled } }),
                )
                .await,
        )["setPluginEnabled"]["isEnabled"]
            .clone()
    };
    assert_eq!(switch(false).await, false);
    let listed = async |status: &str| {
        data(
            server
                .graphql_as(
                    owner.token(),
                    "query($w: UUID!, $s: InstalledPluginStatus) { workspace(id: $w) {
                       installedPlugins(filter: { status: $s }) { totalCount edges { node { plugin { name } } } } } }",
                    json!({ "w": tenant.workspace_id, "s": status }),
                )
                .await,
        )["workspace"]["installedPlugins"]["totalCount"]
            .clone()
    };
    assert_eq!(listed("DISABLED").await, 1);
    assert_eq!(listed("ENABLED").await, 0);
    assert_eq!(switch(true).await, true);
    assert_eq!(listed("ENABLED").await, 1);
    let in_catalogue = data(
        server
            .graphql_as(
                owner.token(),
                "query($w: UUID!) { plugins { edges { node { name installation(workspaceId: $w) { isEnabled } } } } }",
                json!({ "w": tenant.workspace_id }),
            )
            .await,
    );
    let shown: Vec<(String, Value)> = in_catalogue["plugins"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["name"].as_str().unwrap().to_string(),
                e["node"]["installation"].clone(),
            )
        })
        .collect();
    for (name, installation) in shown {
        if name == "http-request" {
            assert_eq!(installation["isEnabled"], true);
        } else {
            assert!(installation.is_null());
        }
    }

    let uninstall = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($id: UUID!) { uninstallPlugin(id: $id) }",
                json!({ "id": installed["id"] }),
            )
            .await,
    );
    assert_eq!(uninstall["uninstallPlugin"], true);
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM installed_plugins")
            .await,
        0
    );
    assert_eq!(
        server
            .scalar("SELECT install_count FROM plugins WHERE name = 'http-request'")
            .await,
        0
    );
    let actions = server
        .scalar(
            "SELECT count(*) FROM audit_logs WHERE action IN ('plugin.install', 'plugin.configure', 'plugin.disable', 'plugin.enable', 'plugin.uninstall')",
        )
        .await;
    assert_eq!(actions, 6);
    // It can be installed again.
    data(install(json!({ "baseUrl": "https://api.example.com" })).await);
}

#[tokio::test]
async fn plugin_changes_need_an_editor_and_stay_in_their_workspace() {
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
    let editor = member(
        &server,
        &owner,
        tenant.team_id,
        "editor@example.com",
        "EDITOR",
    )
    .await;
    let stranger = register(&server, "stranger@example.com").await;
    create_organization(&server, &stranger, "Theirs").await;
    let clock = plugin_id(&server, owner.token(), "date-time").await;

    let install = async |token: Option<&str>| {
        server
            .graphql_as(
                token,
                INSTALL,
                json!({ "i": { "workspaceId": tenant.workspace_id, "pluginId": clock, "config": { "timezone": "Europe/Paris" } } }),
            )
            .await
    };
    assert_eq!(error_code(&install(reader.token()).await), "FORBIDDEN");
    assert_eq!(error_code(&install(stranger.token()).await), "NOT_FOUND");
    let unknown_plugin = server
        .graphql_as(
            owner.token(),
            INSTALL,
            json!({ "i": { "workspaceId": tenant.workspace_id, "pluginId": uuid::Uuid::new_v4() } }),
        )
        .await;
    assert_eq!(error_code(&unknown_plugin), "NOT_FOUND");
    let installed = data(install(editor.token()).await)["installPlugin"].clone();
    assert_eq!(installed["config"]["format"], "RFC3339");
    let id = installed["id"].clone();

    let operations = [
        (
            "mutation($id: UUID!) { configurePlugin(input: { installedPluginId: $id, config: {} }) { id } }",
            "configurePlugin",
        ),
        (
            "mutation($id: UUID!) { setPluginEnabled(input: { installedPluginId: $id, enabled: false }) { id } }",
            "setPluginEnabled",
        ),
        (
            "mutation($id: UUID!) { uninstallPlugin(id: $id) }",
            "uninstallPlugin",
        ),
    ];
    for (query, name) in operations {
        let as_reader = server
            .graphql_as(reader.token(), query, json!({ "id": id }))
            .await;
        assert_eq!(error_code(&as_reader), "FORBIDDEN", "{name} as a MEMBER");
        let as_stranger = server
            .graphql_as(stranger.token(), query, json!({ "id": id }))
            .await;
        assert_eq!(
            error_code(&as_stranger),
            "NOT_FOUND",
            "{name} from another workspace"
        );
    }
    let seen_by_stranger = server
        .graphql_as(
            stranger.token(),
            "query($w: UUID!) { plugins { edges { node { installation(workspaceId: $w) { id } } } } }",
            json!({ "w": tenant.workspace_id }),
        )
        .await;
    assert!(
        data(seen_by_stranger)["plugins"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["node"]["installation"].is_null())
    );
    let reader_sees = data(
        server
            .graphql_as(
                reader.token(),
                "query($w: UUID!) { workspace(id: $w) { installedPlugins { edges { node { id config } } } } }",
                json!({ "w": tenant.workspace_id }),
            )
            .await,
    );
    assert_eq!(
        reader_sees["workspace"]["installedPlugins"]["edges"][0]["node"]["id"],
        id
    );
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM installed_plugins WHERE is_enabled")
            .await,
        1
    );
    let removed = data(
        server
            .graphql_as(
                editor.token(),
                "mutation($id: UUID!) { uninstallPlugin(id: $id) }",
                json!({ "id": id }),
            )
            .await,
    );
    assert_eq!(removed["uninstallPlugin"], true);
}
