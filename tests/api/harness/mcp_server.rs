//! An MCP server inside the test process, built with the protocol's official Rust SDK
//! (rmcp) and served over Streamable HTTP at `/mcp` (sessions, SSE answers), as an
//! independent peer of Weft's client. Tools: `add` {a, b} (structured `{sum}` and text),
//! `shout` {text}, `fail` (a tool error), `slow` {ms} (waits, then answers; records a call
//! that was cut off). Requests without `Authorization: Bearer mcp-token` are refused 401.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, schemars, tool, tool_handler, tool_router};
use serde_json::json;

pub const TOKEN: &str = "mcp-token";

#[derive(Default)]
pub struct McpSeen {
    pub calls: AtomicUsize,
    /// Requests that came without the token.
    pub refused: AtomicUsize,
    /// A `slow` call whose request was dropped before it answered.
    pub slow_cut_off: AtomicBool,
    pub slow_started: AtomicUsize,
    /// A `slow` call the client cancelled (`notifications/cancelled`).
    pub slow_cancelled: AtomicBool,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AddArgs {
    /// the first number
    a: f64,
    /// the second number
    b: f64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct ShoutArgs {
    text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct SlowArgs {
    ms: u64,
}

#[derive(Clone)]
struct Tools {
    seen: Arc<McpSeen>,
    tool_router: ToolRouter<Self>,
}

struct CutOff(Arc<McpSeen>, bool);

impl Drop for CutOff {
    fn drop(&mut self) {
        if !self.1 {
            self.0.slow_cut_off.store(true, Ordering::SeqCst);
        }
    }
}

#[tool_router]
impl Tools {
    #[tool(description = "Adds two numbers")]
    fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> CallToolResult {
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        let mut result = CallToolResult::structured(json!({ "sum": a + b }));
        result.content = vec![ContentBlock::text(format!("{}", a + b))];
        result
    }

    #[tool(description = "Repeats a text in capitals")]
    fn shout(&self, Parameters(ShoutArgs { text }): Parameters<ShoutArgs>) -> CallToolResult {
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        CallToolResult::success(vec![ContentBlock::text(text.to_uppercase())])
    }

    #[tool(description = "Always fails")]
    fn fail(&self) -> CallToolResult {
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        CallToolResult::error(vec![ContentBlock::text("the warehouse is closed")])
    }

    #[tool(description = "Answers after a while")]
    async fn slow(
        &self,
        Parameters(SlowArgs { ms }): Parameters<SlowArgs>,
        cancelled: tokio_util::sync::CancellationToken,
    ) -> CallToolResult {
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.slow_started.fetch_add(1, Ordering::SeqCst);
        let mut guard = CutOff(self.seen.clone(), false);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = cancelled.cancelled() => {
                self.seen.slow_cancelled.store(true, Ordering::SeqCst);
                return CallToolResult::error(vec![ContentBlock::text("cancelled")]);
            }
        }
        guard.1 = true;
        CallToolResult::success(vec![ContentBlock::text(format!("waited {ms} ms"))])
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

pub struct McpServer {
    /// `http://127.0.0.1:<port>/mcp`
    pub url: String,
    pub seen: Arc<McpSeen>,
}

impl McpServer {
    pub async fn start() -> McpServer {
        let seen = Arc::new(McpSeen::default());
        let tools = {
            let seen = seen.clone();
            move || {
                Ok(Tools {
                    seen: seen.clone(),
                    tool_router: Tools::tool_router(),
                })
            }
        };
        let service = StreamableHttpService::new(
            tools,
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default().with_sse_keep_alive(None),
        );
        let guard_seen = seen.clone();
        let router =
            axum::Router::new()
                .nest_service("/mcp", service)
                .layer(axum::middleware::from_fn(
                    move |request: Request, next: Next| {
                        let seen = guard_seen.clone();
                        async move {
                            let authorized = request
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                == Some(&format!("Bearer {TOKEN}"));
                            if !authorized {
                                seen.refused.fetch_add(1, Ordering::SeqCst);
                                return Response::builder()
                                    .status(StatusCode::UNAUTHORIZED)
                                    .body(axum::body::Body::from("no token"))
                                    .unwrap();
                            }
                            next.run(request).await
                        }
                    },
                ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Answers leave at once, as from a production server (no Nagle delay).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        McpServer {
            url: format!("http://127.0.0.1:{}/mcp", address.port()),
            seen,
        }
    }
}
