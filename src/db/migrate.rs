//! Creating the database when it is missing and applying the embedded migrations under a
//! PostgreSQL advisory lock, so several instances may start together.

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Every migration of `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The advisory lock key taken while migrating ("weft" in ASCII).
const MIGRATION_LOCK: i64 = 0x7765_6674;

/// A blocking Diesel connection over diesel-async, as the migration harness needs.
pub type SyncPgConnection = AsyncConnectionWrapper<AsyncPgConnection>;

/// Why the database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot connect: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("DATABASE_URL has no database name")]
    NoDatabaseName,
    #[error("background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Splits `postgres://host/db?opts` into the URL of the server's `postgres` database and
/// the database name.
pub fn maintenance_url(database_url: &str) -> Result<(String, String), MigrateError> {
    let (base, query) = match database_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (database_url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let slash = base[after_scheme..]
        .rfind('/')
        .map(|i| i + after_scheme)
        .ok_or(MigrateError::NoDatabaseName)?;
    let name = &base[slash + 1..];
    if name.is_empty() {
        return Err(MigrateError::NoDatabaseName);
    }
    let mut url = format!("{}/postgres", &base[..slash]);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    Ok((url, name.to_string()))
}

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Creates the database named in `database_url` when it does not exist yet.
pub async fn ensure_database(database_url: &str) -> Result<bool, MigrateError> {
    let (maintenance, name) = maintenance_url(database_url)?;
    tokio::task::spawn_blocking(move || {
        let mut conn = SyncPgConnection::establish(&maintenance)?;
        let found: Found =
            diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
                .bind::<Text, _>(&name)
                .get_result(&mut conn)?;
        if found.n > 0 {
            return Ok(false);
        }
        match conn.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name))) {
            Ok(()) => Ok(true),
            // Another instance created it between our check and our CREATE: PostgreSQL says
            // "already exists", or, when both CREATEs overlap, violates pg_database's key.
            Err(diesel::result::Error::DatabaseError(kind, info))
                if matches!(kind, diesel::result::DatabaseErrorKind::UniqueViolation)
                    || info.message().contains("already exists") =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    })
    .await?
}

/// Applies the pending migrations under the advisory lock; returns how many ran.
pub async fn run_pending(database_url: &str) -> Result<usize, MigrateError> {
    let url = database_url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn = SyncPgConnection::establish(&url)?;
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK)
            .execute(&mut conn)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.len())
            .map_err(|e| MigrateError::Migration(e.to_string()));
        // The lock also ends with the session; unlocking explicitly lets waiters go at once.
        let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK)
            .execute(&mut conn);
        let applied = applied?;
        unlocked?;
        Ok(applied)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_url_keeps_server_and_options() {
        let (url, name) = maintenance_url("postgres://u:p@db:5432/weft?sslmode=disable").unwrap();
        assert_eq!(url, "postgres://u:p@db:5432/postgres?sslmode=disable");
        assert_eq!(name, "weft");
        assert!(maintenance_url("postgres://db:5432/").is_err());
    }
}
