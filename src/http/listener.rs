//! Accepting connections: HTTP/1.1 and HTTP/2 (with upgrades, for WebSockets), the peer's
//! address as `ConnectInfo`, and graceful shutdown, as `axum::serve` does, plus what it
//! cannot be told: a client must send its request headers within `header_read_timeout`
//! (hyper's timer), or the connection is closed. A client that opens connections and
//! never finishes a request would otherwise hold them for as long as it likes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets each
/// connection finish what it is answering, and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Dropped when shutdown begins: every connection sees its sender closed.
    let (signal, signalled) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signalled);
    });
    // Each connection holds a receiver; all gone means all closed.
    let (closed, open) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = signal.closed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            })
            .map_err(|never: Infallible| match never {});
        let signal = signal.clone();
        let open = open.clone();
        tokio::spawn(async move {
            // Nothing sent at all: closed too (hyper's timer starts with the first byte,
            // after the protocol is told from it).
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(header_read_timeout, stream.peek(&mut first)).await,
                Ok(Ok(1))
            ) {
                drop(open);
                return;
            }
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            builder.http2().timer(TokioTimer::new());
            let connection = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            let mut connection = pin!(connection);
            let mut stopping = pin!(signal.closed());
            let mut draining = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                        break;
                    }
                    () = &mut stopping, if !draining => {
                        draining = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(open);
        });
    }
    drop(open);
    drop(listener);
    closed.closed().await;
}
