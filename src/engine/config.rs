//! Settings of the engine, read from the environment:
//!
//! - `WEFT_WORKERS` (256): runs one instance executes at once (they mostly wait on models);
//!   0 makes an instance that serves the API and watches leases but executes no runs.
//! - `WEFT_INDEXING_WORKERS` (4): documents one instance indexes at once, among its
//!   workers (indexing reads, splits, embeds and writes: more at once only queue on the
//!   machine's cores and the database's connections).
//! - `WEFT_RUN_LEASE_SECS` (30): how long a claimed run stays an instance's without a
//!   renewal (renewed every third of it); a run whose lease ran out is finished as FAILED
//!   ("interrupted").
//! - `WEFT_NODE_TIMEOUT_SECS` (300): the longest one node may take.
//! - `WEFT_INTERACTIVE_TIMEOUT_SECS` (10): how long someone waiting on a screen (a
//!   search, a segment edit, a retrieval step of a reply) waits for one answer of an
//!   embedding provider; they get one retry where background indexing gets three.
//! - `WEFT_ECHO_PACE_MS` (40): the pause between the words of the ECHO provider.
//! - `WEFT_VECTOR_CACHE_MB` (1024): memory for datasets' embeddings held for vector search.
//! - `WEFT_VECTOR_APPROXIMATE_ABOVE` (20000): datasets of at least this many vectors are
//!   searched through an approximate graph (HNSW) once it is built.
//! - `WEFT_CODE_TIMEOUT_MS` (2000): the longest a CODE node's code may run.
//! - `WEFT_CODE_MEMORY_MB` (64): the memory a CODE node's code may use.
//! - `WEFT_DEMO` (`true`): seed the demo on an empty database (`false` or `--no-demo`: not).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub workers: usize,
    pub indexing_workers: usize,
    pub lease: Duration,
    pub node_timeout: Duration,
    pub interactive_timeout: Duration,
    pub echo_pace: Duration,
    pub demo: bool,
    pub vector_cache_mb: usize,
    pub vector_approximate_above: usize,
    pub code_timeout: Duration,
    pub code_memory_mb: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 256,
            indexing_workers: 4,
            lease: Duration::from_secs(30),
            node_timeout: Duration::from_secs(300),
            interactive_timeout: Duration::from_secs(10),
            echo_pace: Duration::from_millis(40),
            demo: true,
            vector_cache_mb: 1024,
            vector_approximate_above: 20_000,
            code_timeout: Duration::from_millis(2000),
            code_memory_mb: 64,
        }
    }
}

impl EngineConfig {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<EngineConfig, String> {
        let defaults = EngineConfig::default();
        let number = |name: &str, default: u64, zero_ok: bool| {
            crate::validate::setting(&var, name, default, zero_ok)
        };
        let demo = match var("WEFT_DEMO").as_deref().map(str::trim) {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(v) => return Err(format!("WEFT_DEMO must be true or false, got {v:?}")),
        };
        Ok(EngineConfig {
            workers: number("WEFT_WORKERS", defaults.workers as u64, true)? as usize,
            indexing_workers: number(
                "WEFT_INDEXING_WORKERS",
                defaults.indexing_workers as u64,
                false,
            )? as usize,
            vector_cache_mb: number(
                "WEFT_VECTOR_CACHE_MB",
                defaults.vector_cache_mb as u64,
                false,
            )? as usize,
            vector_approximate_above: number(
                "WEFT_VECTOR_APPROXIMATE_ABOVE",
                defaults.vector_approximate_above as u64,
                false,
            )? as usize,
            lease: Duration::from_secs(number(
                "WEFT_RUN_LEASE_SECS",
                defaults.lease.as_secs(),
                false,
            )?),
            node_timeout: Duration::from_secs(number(
                "WEFT_NODE_TIMEOUT_SECS",
                defaults.node_timeout.as_secs(),
                false,
            )?),
            interactive_timeout: Duration::from_secs(number(
                "WEFT_INTERACTIVE_TIMEOUT_SECS",
                defaults.interactive_timeout.as_secs(),
                false,
            )?),
            echo_pace: Duration::from_millis(number(
                "WEFT_ECHO_PACE_MS",
                defaults.echo_pace.as_millis() as u64,
                true,
            )?),
            code_timeout: Duration::from_millis(number(
                "WEFT_CODE_TIMEOUT_MS",
                defaults.code_timeout.as_millis() as u64,
                false,
            )?),
            code_memory_mb: number("WEFT_CODE_MEMORY_MB", defaults.code_memory_mb as u64, false)?
                as usize,
            demo,
        })
    }
}
