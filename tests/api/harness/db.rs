//! One PostgreSQL database per test, cloned from a template that holds every migration.
//!
//! The template is named after a hash of `migrations/`, built once per change of the
//! migrations (under an advisory lock, so parallel test processes agree), and reused by
//! later runs. Each test's database is dropped when its `TestDb` goes out of scope.

use std::path::Path;
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use sha2::{Digest, Sha256};
use weft::db::migrate::{SyncPgConnection, quote_ident};

/// The server tests use: `WEFT_TEST_DATABASE_URL` names its maintenance database.
pub fn admin_url() -> String {
    std::env::var("WEFT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The URL of database `name` on the test server.
pub fn url_of(name: &str) -> String {
    let admin = admin_url();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let slash = base.rfind('/').expect("the admin URL names a database");
    format!("{}/{name}{query}", &base[..slash])
}

/// Runs blocking database administration on a thread of its own, outside any runtime.
fn admin<T: Send + 'static>(f: impl FnOnce(&mut SyncPgConnection) -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let mut conn = SyncPgConnection::establish(&admin_url())
            .expect("PostgreSQL answers at WEFT_TEST_DATABASE_URL (see README)");
        f(&mut conn)
    })
    .join()
    .expect("admin thread")
}

fn migrations_hash() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("migrations directory") {
        let entry = entry.expect("migration entry");
        for file in std::fs::read_dir(entry.path()).expect("migration folder") {
            files.push(file.expect("migration file").path());
        }
    }
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(
            file.strip_prefix(&dir)
                .expect("inside")
                .to_string_lossy()
                .as_bytes(),
        );
        hash.update(std::fs::read(&file).expect("readable migration"));
    }
    hex::encode(&hash.finalize()[..6])
}

/// The migrated template, built on first use.
pub fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("weft_tpl_{}", migrations_hash());
        let building = format!("{name}_build");
        let (name2, building2) = (name.clone(), building.clone());
        admin(move |conn| {
            conn.batch_execute("SELECT pg_advisory_lock(7765667401)")
                .expect("lock");
            let exists: i64 = diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                &format!("(SELECT count(*) FROM pg_database WHERE datname = '{name2}')"),
            ))
            .get_result(conn)
            .expect("look up template");
            if exists == 0 {
                let b = quote_ident(&building2);
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS {b} WITH (FORCE)"))
                    .expect("drop a half-built template");
                conn.batch_execute(&format!("CREATE DATABASE {b}"))
                    .expect("create template");
                let url = url_of(&building2);
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime
                        .block_on(weft::db::migrate::run_pending(&url))
                        .expect("migrate template");
                })
                .join()
                .expect("migration thread");
                conn.batch_execute(&format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    quote_ident(&building2),
                    quote_ident(&name2)
                ))
                .expect("publish template");
            }
            conn.batch_execute("SELECT pg_advisory_unlock(7765667401)")
                .expect("unlock");
        });
        name
    })
}

/// A database of one test's own, dropped with it.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// A fresh database holding every migration.
    pub fn new() -> TestDb {
        let template = template().to_string();
        let name = format!("weft_test_{}", uuid::Uuid::new_v4().simple());
        let n = name.clone();
        admin(move |conn| {
            conn.batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(&n),
                quote_ident(&template)
            ))
            .expect("clone the template");
        });
        TestDb {
            url: url_of(&name),
            name,
        }
    }

    /// The name of a database that does not exist yet; dropped at the end like the others.
    pub fn absent() -> TestDb {
        let name = format!("weft_test_{}", uuid::Uuid::new_v4().simple());
        TestDb {
            url: url_of(&name),
            name,
        }
    }

    /// A blocking connection to this database.
    pub fn connect(&self) -> SyncPgConnection {
        SyncPgConnection::establish(&self.url).expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        admin(move |conn| {
            if let Err(e) = conn.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            )) {
                eprintln!("could not drop test database {name}: {e}");
            }
        });
    }
}
