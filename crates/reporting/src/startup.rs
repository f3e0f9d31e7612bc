//! Building and running the service: `Application::build` connects to PostgreSQL and binds the
//! listener; `run_until_stopped` serves until the shutdown token is cancelled, then finishes the
//! requests in flight.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use claimledger_http_edge::edge;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::{ConfigError, Settings};
use crate::problem::{ApiError, ServerFailure};
use crate::reports::Reports;
use crate::{charts, openapi, routes};

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// PostgreSQL: API keys (read as the service's own user) and the read models (read through
    /// [`Reports`], under row-level security).
    pub pool: PgPool,
    /// The query layer.
    pub reports: Reports,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is unusable.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// PostgreSQL could not be reached.
    #[error("could not connect to PostgreSQL")]
    Database(#[from] sqlx::Error),
    /// The listener could not be bound, or serving failed.
    #[error("HTTP server failure")]
    Io(#[from] std::io::Error),
}

/// A built service, bound and connected, not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Connects to PostgreSQL and binds the listener.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.database.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(settings.database.connect_options()?)
            .await?;
        Application::build_with(settings, pool).await
    }

    /// Binds the listener around an existing pool (tests).
    pub async fn build_with(settings: Settings, pool: PgPool) -> Result<Application, StartupError> {
        let listener =
            TcpListener::bind(SocketAddr::new(settings.http.host, settings.http.port)).await?;
        let state = AppState {
            reports: Reports::new(pool.clone()),
            pool,
        };
        Ok(Application {
            listener,
            router: router(state, settings.http.request_timeout),
        })
    }

    /// The bound port (useful when the settings asked for port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|address| address.port())
            .unwrap_or(0)
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and lets requests in flight finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), StartupError> {
        tracing::info!(port = self.port(), "reporting service listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        tracing::info!("reporting service stopped");
        Ok(())
    }
}

/// The routes and middleware.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/openapi.json", get(serve_openapi))
        .route("/health", get(edge::health))
        .route("/ready", get(ready))
        .route("/charts", get(charts::page))
        .route("/v1/reports/reimbursement", get(routes::reimbursement))
        .route("/v1/reports/denial-reasons", get(routes::denial_reasons))
        .route("/v1/reports/best-code", get(routes::best_code))
        .route("/v1/reports/outliers", get(routes::outliers))
        .fallback(|| async { ApiError::NotFound.into_response() })
        .with_state(state)
        .layer(middleware::from_fn(log_server_failures))
        .layer(middleware::from_fn(edge::problem_edges))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            timeout_as_problem(request, next, request_timeout)
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let matched_path = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str);
                tracing::info_span!(
                    "http.request",
                    method = %request.method(),
                    matched_path,
                    chain_id = tracing::field::Empty,
                )
            }),
        )
}

async fn serve_openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
        .into_response()
}

/// `GET /ready`: PostgreSQL answers.
async fn ready(State(state): State<AppState>) -> Response {
    let database = edge::check_database(&state.pool).await;
    edge::readiness(BTreeMap::from([("database".to_owned(), database)]))
}

/// Gives the timeout layer's bare 408 a problem body like every other error.
async fn timeout_as_problem(request: Request, next: Next, timeout: Duration) -> Response {
    let response = next.run(request).await;
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return ApiError::Timeout {
            milliseconds: timeout.as_millis(),
        }
        .into_response();
    }
    response
}

/// Logs the cause of every 5xx answer once, at the edge, with the request span's ids.
async fn log_server_failures(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(failure) = response.extensions().get::<Arc<ServerFailure>>() {
        tracing::error!(error.message = %failure.message, error.cause_chain = %failure.cause_chain, "request failed");
    }
    response
}
