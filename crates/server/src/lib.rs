//! spendgate's HTTP server: the wallet API and the gateway endpoints. Handlers
//! are thin: parse, call the logic (`wallet_api::keys`, `spendgate-core`), render.
#![forbid(unsafe_code)]

pub mod admin;
pub mod alerts;
pub mod auth;
pub mod body;
pub mod config;
pub mod counters;
pub mod dashboard;
pub mod error;
pub mod gateway;
pub mod guard;
pub mod metrics;
pub mod otel;
pub mod random;
pub mod serve;
pub mod state;
pub mod tls;
pub mod wallet_api;

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use error::{ApiError, ErrorKind};
use serde_json::json;
use serve::{Listener, Surface};
use state::AppState;

/// The application but for the gateway's POST endpoints, which [`serve`] sends to the
/// gateway directly (the router has them too, for tests and for its 405s).
pub fn router(state: AppState, surface: Surface) -> axum::Router {
    let mut router = axum::Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz));
    if surface != Surface::Gateway && state.config.server.metrics {
        router = router.route("/metrics", get(metrics));
    }
    if surface != Surface::Gateway {
        router = router
            .merge(wallet_api::routes().layer(DefaultBodyLimit::max(body::WALLET_API_BODY_LIMIT)))
            .merge(dashboard::routes().layer(DefaultBodyLimit::max(body::WALLET_API_BODY_LIMIT)));
    }
    if surface != Surface::Management {
        router = router.merge(gateway::routes());
    }
    if surface == Surface::Gateway {
        // What a spend key may list; the rest of the wallet API is on the other listener.
        router = router.merge(wallet_api::models_route());
    }
    router.fallback(not_found).method_not_allowed_fallback(method_not_allowed).with_state(state)
}

/// `GET /metrics`: Prometheus metrics (OpenMetrics text).
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> axum::response::Response {
    if let Some(token) = &state.config.server.metrics_token
        && !token.presented_in(&headers)
    {
        return ApiError::unauthorized(
            "/metrics wants the metrics token: Authorization: Bearer <server.metrics_token>",
        )
        .render(error::ErrorFormat::Management);
    }
    let body = state.metrics.render(state.recorder.queued());
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Serves until SIGINT or SIGTERM, then finishes the requests in flight and writes
/// their records.
pub async fn run(state: AppState, listeners: Vec<Listener>) -> std::io::Result<()> {
    let recorder = state.recorder.clone();
    let otel = state.otel.clone();
    serve::serve_on(state, listeners, shutdown_signal()).await;
    recorder.flush().await;
    if let Some(otel) = otel {
        // The exporter's thread sends through this runtime: let it, off the runtime's own threads.
        let _ = tokio::task::spawn_blocking(move || otel.shutdown()).await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the store answers and, in cluster mode, Redis too (failing closed, an
/// instance without Redis cannot admit requests).
async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "store not reachable");
        return ApiError::new(ErrorKind::Unavailable, "the store is not reachable").into_response();
    }
    if let counters::Counters::Shared(shared) = &state.counters
        && let Err(e) = shared.ping().await
    {
        tracing::warn!(error = %e, "Redis not reachable");
        return ApiError::new(ErrorKind::Unavailable, "the shared counters (Redis) are not reachable").into_response();
    }
    Json(json!({ "status": "ready" })).into_response()
}

/// 404 that says which base URL a tool should use when the path is a known mistake.
async fn not_found(uri: Uri) -> ApiError {
    let path = uri.path();
    let hint = if path.starts_with("/v1/v1/") {
        " (the base URL ends in /v1 twice: for OpenAI-format tools use http://HOST:PORT/v1, for Anthropic-format tools http://HOST:PORT)"
    } else if path == "/chat/completions" || path == "/responses" || path == "/embeddings" || path == "/models" {
        " (OpenAI-format tools need the base URL http://HOST:PORT/v1, with /v1)"
    } else if path == "/messages" || path.starts_with("/messages/") {
        " (Anthropic-format tools need the base URL http://HOST:PORT, without /v1: the SDK appends /v1/messages)"
    } else {
        ""
    };
    ApiError::not_found(format!("no route for {path}{hint}"))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(ErrorKind::MethodNotAllowed, format!("{method} is not allowed on {}", uri.path()))
}
