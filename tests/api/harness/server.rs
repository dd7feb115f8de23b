//! The server started in-process on an ephemeral port, against a test database and a Redis
//! key prefix of the test's own.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use weft::app::App;
use weft::config::{Config, RedisConfig};

use super::TestDb;

/// The Redis every test shares, each under its own key prefix.
pub fn redis_url() -> String {
    std::env::var("WEFT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct TestServer {
    pub app: Arc<App>,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    data_dir: PathBuf,
    /// The configuration it was started with, for a second instance beside it.
    config: Config,
    // Dropped last: the database outlives the server using it (the first instance owns it).
    _db: Option<TestDb>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts with a configuration adjusted by the test.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let db = TestDb::new();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let data_dir = std::env::temp_dir().join(format!("weft-test-{id}"));
        let mut config = Config::for_test(
            &db.url,
            RedisConfig::Url(redis_url()),
            &format!("weft-test-{id}:"),
            &data_dir,
        );
        adjust(&mut config);
        Self::launch(config, data_dir, Some(db)).await
    }

    /// A second instance of the service: the same database and Redis prefix, its own process
    /// state (bus connection, caches) and port.
    pub async fn beside(&self) -> TestServer {
        self.beside_with(|_| {}).await
    }

    /// Another instance on the same database and bus, with its configuration adjusted.
    pub async fn beside_with(&self, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let data_dir = std::env::temp_dir().join(format!("weft-test-{id}"));
        let mut config = self.config.clone();
        adjust(&mut config);
        config.data_dir = data_dir.clone();
        Self::launch(config, data_dir, None).await
    }

    async fn launch(config: Config, data_dir: PathBuf, db: Option<TestDb>) -> TestServer {
        let app = App::start(config.clone()).await.expect("the app starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (tx, rx) = oneshot::channel();
        let served = app.clone();
        let served = tokio::spawn(async move {
            weft::server::serve(served, listener, async {
                let _ = rx.await;
            })
            .await
        });
        TestServer {
            app,
            base,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            served: Some(served),
            data_dir,
            config,
            _db: db,
        }
    }

    /// Signals shutdown (as SIGTERM does) and waits for `serve` to return.
    pub async fn shut_down(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.served.take() {
            Some(served) => served.await.expect("the server task"),
            None => Ok(()),
        }
    }

    /// `ws://127.0.0.1:<port><path>`
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// POSTs a GraphQL request and returns the JSON answer.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_as(None, query, variables).await
    }

    /// POSTs a GraphQL request with `Authorization: Bearer <token>`.
    pub async fn graphql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("POST /graphql")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// Runs a SQL query returning one bigint, e.g. `SELECT count(*) FROM users`.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.app.pool.get().await.expect("a connection");
        diesel::sql_query(format!("SELECT ({sql})::bigint AS n"))
            .get_result::<Row>(&mut conn)
            .await
            .expect("scalar query")
            .n
    }

    /// Runs a SQL statement and gives the number of rows it touched.
    pub async fn execute(&self, sql: &str) -> usize {
        use diesel_async::RunQueryDsl;
        let mut conn = self.app.pool.get().await.expect("a connection");
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect("statement")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
