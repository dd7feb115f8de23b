//! The demo: on an empty database the server seeds an organization, a workspace, the ECHO
//! provider, a chat workflow and a published chat application with an API key, and prints
//! how to log in and try it from GraphiQL. Off with `--no-demo` or `WEFT_DEMO=false`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::auth::{Actor, ClientInfo};
use crate::db::schema::{teams, users, workspaces};
use crate::error::{AppError, AppResult};

/// What the demo made: enough to try it.
pub struct Demo {
    pub email: String,
    pub password: String,
    pub application_id: Uuid,
    pub api_key: String,
}

const EMAIL: &str = "demo@weft.local";
/// Held while seeding, so two instances starting together seed once.
const LOCK: i64 = 0x7765_6674_6465_6d6f;

/// Seeds the demo when the database has no user yet; `None` when it has.
pub async fn seed_if_empty(app: &App) -> AppResult<Option<Demo>> {
    let mut conn = app.pool.get().await?;
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    let locked: Locked = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(LOCK)
        .get_result(&mut conn)
        .await?;
    if !locked.locked {
        return Ok(None);
    }
    let seeded = async {
        let users: i64 = users::table.count().get_result(&mut conn).await?;
        if users > 0 {
            return Ok(None);
        }
        seed(app, &mut conn).await.map(Some)
    }
    .await;
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(LOCK)
        .execute(&mut conn)
        .await?;
    seeded
}

async fn seed(app: &App, conn: &mut diesel_async::AsyncPgConnection) -> AppResult<Demo> {
    let client = ClientInfo::default();
    let password = crate::auth::tokens::new_opaque_token()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect::<String>();
    let session = crate::identity::accounts::register(
        app,
        &client,
        crate::identity::accounts::RegisterInput {
            email: EMAIL.into(),
            password: password.clone(),
            name: "Demo Builder".into(),
        },
    )
    .await?;
    let actor = Actor::User {
        user_id: session.user.id,
    };
    let organization =
        crate::tenancy::organizations::create_organization(conn, actor, &client, "Demo").await?;
    let workspace_id: Uuid = workspaces::table
        .inner_join(teams::table)
        .filter(teams::organization_id.eq(organization.id))
        .select(workspaces::id)
        .first(conn)
        .await?;
    let provider = crate::provider::service::create_provider(
        conn,
        actor,
        &client,
        &app.config.encryption_key,
        workspace_id,
        crate::provider::service::ProviderInput {
            name: Some("Echo (demo)".into()),
            provider_type: Some("ECHO"),
            models: Some(vec!["echo".into()]),
            default_model: Some("echo".into()),
            ..Default::default()
        },
    )
    .await?;
    let graph: crate::workflow::Graph = serde_json::from_value(json!({
        "nodes": [
            { "key": "start", "type": "START", "title": "Start", "config": { "inputs": [] },
              "position": { "x": 0, "y": 0 } },
            { "key": "llm", "type": "LLM", "title": "Reply", "config": {
                "providerId": provider.id, "model": "echo",
                "systemPrompt": "You are a helpful assistant.", "prompt": "{{sys.query}}",
                "memory": true }, "position": { "x": 240, "y": 0 } },
            { "key": "answer", "type": "ANSWER", "title": "Answer",
              "config": { "answer": "{{llm.text}}" }, "position": { "x": 480, "y": 0 } }
        ],
        "connections": [
            { "source": "start", "target": "llm" },
            { "source": "llm", "target": "answer" }
        ]
    }))
    .map_err(AppError::internal)?;
    let workflow = crate::workflow::service::create_workflow(
        conn,
        actor,
        &client,
        crate::workflow::service::NewWorkflow {
            workspace_id,
            name: "Demo chat".into(),
            description: Some("START → LLM (ECHO) → ANSWER".into()),
            graph,
            source: crate::workflow::service::Source::Scratch,
        },
    )
    .await?;
    let application = crate::application::service::create_application(
        conn,
        actor,
        &client,
        crate::application::service::NewApplication {
            workspace_id,
            name: "Demo assistant".into(),
            description: Some("Replies with what it is told, word by word.".into()),
            mode: "CHAT",
            workflow_id: Some(workflow.id),
            dataset_ids: Vec::new(),
        },
    )
    .await?;
    crate::application::service::publish_application(conn, actor, &client, application.id).await?;
    let (_, api_key) =
        crate::application::api_keys::create_api_key(conn, actor, &client, application.id, "demo")
            .await?;
    Ok(Demo {
        email: EMAIL.into(),
        password,
        application_id: application.id,
        api_key,
    })
}

/// How to try the demo, printed once at start-up: the credentials, and GraphiQL links with
/// the operations and the application's key already in the editors.
pub fn instructions(demo: &Demo, base: &str) -> String {
    let headers = format!("{{\"Authorization\": \"Bearer {}\"}}", demo.api_key);
    let send = format!(
        "mutation Send {{\n  sendMessage(input: {{ applicationId: \"{}\", query: \"Hello there\", endUserId: \"me\" }}) {{\n    assistantMessage {{ id }}\n    conversation {{ id }}\n  }}\n}}",
        demo.application_id
    );
    let follow = "subscription Follow($id: UUID!) {\n  messageStream(messageId: $id) {\n    seq kind delta\n    message { answer status }\n  }\n}";
    let link = |query: &str, variables: Option<&str>| {
        let mut params = form_urlencoded::Serializer::new(String::new());
        params.append_pair("query", query);
        if let Some(variables) = variables {
            params.append_pair("variables", variables);
        }
        params.append_pair("headers", &headers);
        format!("{base}/graphiql?{}", params.finish())
    };
    format!(
        "\nA demo was set up on this empty database (turn it off with --no-demo or WEFT_DEMO=false):\n\
         \n  builder login:  {email} / {password}\n  chat application: {app}\n  its API key:    {key}\n\
         \nTry it in GraphiQL, the key already in its Headers:\n\
         \n  1. send a message:   {send_link}\n\
         \n  2. follow the reply (put assistantMessage.id in Variables as {{\"id\": \"...\"}}):\n     {follow_link}\n\
         \nThe same by hand ({base}/graphiql, header {{\"Authorization\": \"Bearer {key}\"}}):\n\
         \n  mutation {{ sendMessage(input: {{ applicationId: \"{app}\", query: \"Hello there\", endUserId: \"me\" }}) {{\n      assistantMessage {{ id }} conversation {{ id }} }} }}\n\
         \n  subscription {{ messageStream(messageId: \"<assistantMessage.id>\") {{ seq kind delta message {{ answer status }} }} }}\n\
         \nOr log in as the builder: mutation {{ login(input: {{ email: \"{email}\", password: \"{password}\" }}) {{ accessToken }} }}\n",
        email = demo.email,
        password = demo.password,
        app = demo.application_id,
        key = demo.api_key,
        send_link = link(&send, None),
        follow_link = link(follow, Some("{\"id\": \"<assistantMessage.id>\"}")),
    )
}
