//! Serving: binding, the router with its state, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::engine;
use crate::graphql;
use crate::graphql::documents::DocumentCache;
use crate::http::{self, HttpState, Sessions};

/// Distinct GraphQL documents kept parsed.
const DOCUMENT_CACHE_SIZE: usize = 512;

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, ends live
/// streams (WebSockets are closed with 1001), lets requests in flight finish, and returns
/// within `WEFT_SHUTDOWN_TIMEOUT` whatever is still open.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let schema = graphql::build_schema(app.clone());
    let (stop, stopping) = watch::channel(false);
    let workers = engine::worker::start(app.clone(), stopping.clone());
    let engine_app = app.clone();
    let (sessions, mut sessions_closed) = Sessions::new();
    let grace = app.config.realtime.shutdown_timeout;
    let header_read_timeout = app.config.http.header_read_timeout;
    let delay = app.config.http.shutdown_delay;
    let (drain, draining) = watch::channel(false);
    let router = http::router(HttpState {
        app,
        schema,
        documents: Arc::new(DocumentCache::new(DOCUMENT_CACHE_SIZE)),
        stop: stopping.clone(),
        draining,
        sessions,
        live: Arc::new(http::LiveConnections::default()),
    });
    // When the grace period ends, counted from the signal; everything below keeps to it.
    let deadline = Arc::new(std::sync::OnceLock::new());
    let set_deadline = deadline.clone();
    let server = http::listener::serve(listener, router, header_read_timeout, async move {
        shutdown.await;
        // Not ready from now on; still serving for WEFT_SHUTDOWN_DELAY_SECS.
        drain.send_replace(true);
        tokio::time::sleep(delay).await;
        let _ = set_deadline.set(tokio::time::Instant::now() + grace);
        stop.send_replace(true);
    });
    let mut signalled = stopping.clone();
    let grace_over = {
        let deadline = deadline.clone();
        async move {
            let _ = signalled.wait_for(|stopping| *stopping).await;
            let at = deadline
                .get()
                .copied()
                .unwrap_or_else(|| tokio::time::Instant::now() + grace);
            tokio::time::sleep_until(at).await;
        }
    };
    let mut server = Box::pin(server);
    tokio::select! {
        () = &mut server => {}
        () = grace_over => {
            tracing::warn!(?grace, "connections still open at the shutdown timeout");
        }
    };
    // The router's handle on open sockets goes with the server; each socket closes with
    // 1001 on its own, within a second, and is waited for until the deadline.
    drop(server);
    let at = deadline
        .get()
        .copied()
        .unwrap_or_else(|| tokio::time::Instant::now() + grace);
    let _ = tokio::time::timeout_at(at, sessions_closed.recv()).await;
    // Runs in flight finish until the deadline (their streams flow through Redis to the
    // clients now on other instances); what is left then ends FAILED ("interrupted") with
    // what it had streamed, rather than wait for its lease to run out.
    let _ = tokio::time::timeout_at(at, workers).await;
    engine::worker::interrupt_all(&engine_app, std::time::Duration::from_secs(2)).await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
