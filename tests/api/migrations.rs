//! The migrations: they build the whole data model, revert all the way, re-apply to the
//! same schema, and index every foreign key.

use std::collections::BTreeSet;

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use diesel_migrations::MigrationHarness;
use weft::db::migrate::{MIGRATIONS, SyncPgConnection};

use crate::harness::TestDb;

/// Every table named in DATA_MODEL.md.
const DATA_MODEL_TABLES: [&str; 44] = [
    "users",
    "refresh_tokens",
    "password_resets",
    "organizations",
    "teams",
    "workspaces",
    "team_members",
    "team_invitations",
    "end_users",
    "workflows",
    "workflow_versions",
    "nodes",
    "connections",
    "workflow_templates",
    "execution_records",
    "node_execution_results",
    "execution_jobs",
    "conversations",
    "messages",
    "message_annotations",
    "message_feedbacks",
    "message_retriever_resources",
    "datasets",
    "documents",
    "document_segments",
    "parent_segments",
    "dataset_application_joins",
    "dataset_statistics",
    "segment_terms",
    "plugins",
    "installed_plugins",
    "prompt_templates",
    "prompt_template_versions",
    "llm_providers",
    "mcp_servers",
    "applications",
    "api_keys",
    "audit_logs",
    "file_references",
    "application_stats",
    "application_stats_hourly",
    "application_active_end_users",
    "workspace_run_stats",
    "workspace_token_usage",
];

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

fn lines(conn: &mut SyncPgConnection, sql: &str) -> BTreeSet<String> {
    diesel::sql_query(sql)
        .load::<Line>(conn)
        .expect("catalog query")
        .into_iter()
        .map(|l| l.line)
        .collect()
}

fn tables(conn: &mut SyncPgConnection) -> BTreeSet<String> {
    lines(
        conn,
        "SELECT table_name::text AS line FROM information_schema.tables
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
}

/// Columns, constraints, indexes, triggers and functions of the public schema.
fn schema_snapshot(conn: &mut SyncPgConnection) -> BTreeSet<String> {
    let mut all = lines(
        conn,
        "SELECT format('column %s.%s %s null=%s default=%s', table_name, column_name, data_type,
                       is_nullable, column_default) AS line
         FROM information_schema.columns WHERE table_schema = 'public'",
    );
    all.extend(lines(
        conn,
        "SELECT format('constraint %s %s', conrelid::regclass, pg_get_constraintdef(oid)) AS line
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    ));
    all.extend(lines(
        conn,
        "SELECT 'index ' || indexdef AS line FROM pg_indexes WHERE schemaname = 'public'",
    ));
    all.extend(lines(
        conn,
        "SELECT format('trigger %s %s', tgrelid::regclass, tgname) AS line
         FROM pg_trigger WHERE NOT tgisinternal",
    ));
    all.extend(lines(
        conn,
        "SELECT 'function ' || proname AS line FROM pg_proc
         WHERE pronamespace = 'public'::regnamespace",
    ));
    all
}

#[test]
fn migrations_create_every_table_of_the_data_model() {
    let db = TestDb::new();
    let found = tables(&mut db.connect());
    let expected: BTreeSet<String> = DATA_MODEL_TABLES.iter().map(|t| t.to_string()).collect();
    assert_eq!(found, expected);
}

#[test]
fn migrations_revert_all_the_way_and_reapply_to_the_same_schema() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let before = schema_snapshot(&mut conn);
    assert!(before.len() > 300, "snapshot looks empty: {}", before.len());

    let reverted = conn
        .revert_all_migrations(MIGRATIONS)
        .expect("every down.sql runs");
    assert_eq!(reverted.len(), migration_count());
    assert!(
        tables(&mut conn).is_empty(),
        "tables left after reverting: {:?}",
        tables(&mut conn)
    );
    let left: Vec<String> = schema_snapshot(&mut conn)
        .into_iter()
        .filter(|l| !l.contains("__diesel_schema_migrations"))
        .collect();
    assert!(left.is_empty(), "objects left after reverting: {left:?}");

    conn.run_pending_migrations(MIGRATIONS).expect("re-apply");
    assert_eq!(schema_snapshot(&mut conn), before);
}

#[test]
fn every_foreign_key_is_covered_by_an_index() {
    let db = TestDb::new();
    let missing = lines(
        &mut db.connect(),
        "SELECT format('%s.%s (%s)', c.conrelid::regclass, c.conname,
                       (SELECT string_agg(attname, ', ') FROM pg_attribute
                        WHERE attrelid = c.conrelid AND attnum = ANY (c.conkey))) AS line
         FROM pg_constraint c
         WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
           AND NOT EXISTS (
             SELECT 1 FROM pg_index i
             WHERE i.indrelid = c.conrelid AND i.indpred IS NULL
               AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)]
                   @> c.conkey
               AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(c.conkey)]
                   <@ c.conkey)",
    );
    assert!(
        missing.is_empty(),
        "foreign keys without an index: {missing:#?}"
    );
}

#[test]
fn every_tenant_table_has_an_index_starting_with_workspace_id() {
    let db = TestDb::new();
    let missing = lines(
        &mut db.connect(),
        "SELECT c.table_name::text AS line FROM information_schema.columns c
         WHERE c.table_schema = 'public' AND c.column_name = 'workspace_id'
           AND NOT EXISTS (
             SELECT 1 FROM pg_index i JOIN pg_attribute a
               ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = c.table_name::regclass AND a.attname = 'workspace_id')",
    );
    assert!(
        missing.is_empty(),
        "tenant tables without a workspace index: {missing:?}"
    );
}

#[test]
fn check_constraints_refuse_values_outside_the_enums() {
    let db = TestDb::new();
    let mut conn = db.connect();
    conn.batch_execute(
        "INSERT INTO users (email, name, password_hash) VALUES ('A@x.io', 'a', 'h');
         INSERT INTO organizations (name) VALUES ('o');
         INSERT INTO teams (organization_id, name) SELECT id, 't' FROM organizations;",
    )
    .expect("seed rows");
    let error = conn
        .batch_execute(
            "INSERT INTO team_members (team_id, user_id, role)
             SELECT t.id, u.id, 'SUPERUSER' FROM teams t, users u",
        )
        .expect_err("an unknown role is refused")
        .to_string();
    assert!(error.contains("team_members_role_check"), "{error}");

    let error = conn
        .batch_execute("INSERT INTO users (email, name, password_hash) VALUES ('a@X.IO', 'b', 'h')")
        .expect_err("emails are unique whatever their case")
        .to_string();
    assert!(error.contains("users_email_lower_key"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_starts_create_and_migrate_the_database_once() {
    let db = TestDb::absent();
    let prepare = |url: String| async move {
        weft::db::migrate::ensure_database(&url).await?;
        weft::db::migrate::run_pending(&url).await
    };
    let (a, b) = tokio::join!(prepare(db.url.clone()), prepare(db.url.clone()));
    let (a, b) = (a.expect("first start"), b.expect("second start"));
    assert_eq!(a + b, migration_count(), "each migration ran exactly once");
    let url = db.url.clone();
    let found = tokio::task::spawn_blocking(move || {
        tables(&mut diesel::Connection::establish(&url).expect("connect"))
    })
    .await
    .unwrap();
    assert_eq!(found.len(), DATA_MODEL_TABLES.len());
}

#[test]
fn weft_migrate_prepares_an_empty_server() {
    let db = TestDb::absent();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("migrate")
        .env("DATABASE_URL", &db.url)
        .env(
            "WEFT_DATA_DIR",
            std::env::temp_dir().join(format!("weft-migrate-{}", db.name)),
        )
        .output()
        .expect("run weft migrate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("created database")
            && stdout.contains(&format!("applied {} migration", migration_count())),
        "{stdout}"
    );
    assert_eq!(tables(&mut db.connect()).len(), DATA_MODEL_TABLES.len());
}

/// The migrations in `migrations/`, one directory each.
fn migration_count() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("the migrations directory")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().join("up.sql").exists())
        })
        .count()
}

#[test]
fn counting_feedback_backfills_the_count_without_editing_the_messages() {
    let db = TestDb::new();
    let mut conn = db.connect();
    // Back to before the count (and every later migration).
    loop {
        let reverted = conn.revert_last_migration(MIGRATIONS).expect("revert");
        if reverted
            .to_string()
            .replace('-', "")
            .starts_with("20261204000033")
        {
            break;
        }
    }
    // A reply with one feedback, last edited long ago (foreign keys and triggers off).
    conn.batch_execute(
        "SET session_replication_role = replica;
         INSERT INTO messages (workspace_id, conversation_id, application_id, sequence_number,
             role, updated_at)
         VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 2, 'ASSISTANT',
             '2020-01-01T00:00:00Z');
         INSERT INTO message_feedbacks (workspace_id, message_id, conversation_id,
             application_id, end_user_id, rating)
         SELECT workspace_id, id, conversation_id, application_id, gen_random_uuid(), 'LIKE'
         FROM messages;
         SET session_replication_role = DEFAULT;",
    )
    .expect("a message with feedback");
    conn.run_pending_migrations(MIGRATIONS).expect("re-apply");
    let found = lines(
        &mut conn,
        "SELECT feedback_count::text || ' ' || (updated_at = '2020-01-01T00:00:00Z')::text AS line
         FROM messages",
    );
    assert_eq!(found, BTreeSet::from(["1 true".to_string()]));
}
