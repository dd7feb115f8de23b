//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::HttpState;
use crate::realtime::ComponentHealth;

/// 200 while the process serves.
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Readiness {
    postgres: ComponentHealth,
    redis: ComponentHealth,
    shutting_down: bool,
}

/// 200 when PostgreSQL and the bus are usable and the instance is not shutting down, else
/// 503 (from the moment shutdown begins, so a load balancer stops sending work here); the
/// body says why.
pub async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let (postgres, redis) = tokio::join!(postgres_health(&state), state.app.broker.health());
    let shutting_down = *state.draining.borrow() || *state.stop.borrow();
    let ready =
        postgres != ComponentHealth::Down && redis != ComponentHealth::Down && !shutting_down;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            postgres,
            redis,
            shutting_down,
        }),
    )
}

async fn postgres_health(state: &HttpState) -> ComponentHealth {
    let check = async {
        let mut conn = state.app.pool.get().await.ok()?;
        diesel::sql_query("SELECT 1").execute(&mut conn).await.ok()
    };
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(Some(_)) => ComponentHealth::Ok,
        _ => ComponentHealth::Down,
    }
}

/// The OpenMetrics text exposition (Prometheus reads it).
pub async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.app.metrics.render(),
    )
}
