//! Building and running the service: `Application::build` binds the listener and connects to
//! PostgreSQL and the log; `run_until_stopped` serves until the shutdown token is cancelled, then
//! finishes the requests in flight.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use claimledger_http_edge::edge;
use claimledger_log::{DEFAULT_APPEND_RETRY, EventLog, LogError};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::claims::ClaimCache;
use crate::app::sessions::SessionCache;
use crate::clock::Clock;
use crate::config::{ConfigError, Settings};
use crate::error::{ApiError, ServerFailure};
use crate::http::{claims, keys, reference, sessions};
use crate::openapi;

/// How long before the request timeout an append stops retrying, so the 503 is sent in time.
const APPEND_RETRY_MARGIN: Duration = Duration::from_secs(2);

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// PostgreSQL: keys, idempotency records, PHI, reference data, session slots.
    pub(crate) pool: PgPool,
    /// The event log.
    pub(crate) log: EventLog,
    /// The body limit, for the 413 problem's text.
    pub(crate) body_limit_bytes: usize,
    /// Recently used sessions at their current versions.
    pub(crate) sessions: Arc<SessionCache>,
    /// Recently used claims at their versions.
    pub(crate) claims: Arc<ClaimCache>,
    /// Where handlers read the current instant.
    pub(crate) clock: Clock,
    /// Reference commits the start-up catch-up parked.
    pub(crate) reference_parked: u64,
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
    /// NATS could not be reached.
    #[error("could not connect to NATS")]
    Nats(#[from] async_nats::ConnectError),
    /// The log stream could not be created or verified.
    #[error("could not open the event log")]
    Log(#[from] LogError),
    /// The reference tables could not be caught up with the log.
    #[error("could not catch the reference tables up with the log")]
    Reference(#[from] crate::projection::ProjectionError),
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
    /// Connects to PostgreSQL and NATS, opens the log and binds the listener.
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let pool = PgPoolOptions::new()
            .max_connections(settings.database.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(settings.database.connect_options()?)
            .await?;
        let client = async_nats::connect(&settings.nats_url).await?;
        let log = EventLog::connect(client, settings.log.clone()).await?;
        Application::build_with(settings, pool, log).await
    }

    /// Binds the listener around an existing pool and log (tests and the all-in-one binary), after
    /// catching the reference tables up with the log (rows lost from them are written again).
    pub async fn build_with(
        settings: Settings,
        pool: PgPool,
        log: EventLog,
    ) -> Result<Application, StartupError> {
        Application::build_with_clock(settings, pool, log, Clock::System).await
    }

    /// [`Application::build_with`], with the handlers reading the current instant from `clock`
    /// (tests that depend on the hour of the day in a clinic's time zone).
    pub async fn build_with_clock(
        settings: Settings,
        pool: PgPool,
        log: EventLog,
        clock: Clock,
    ) -> Result<Application, StartupError> {
        let caught_up = crate::projection::catch_up(&pool, &log).await?;
        // An append retries a log that does not answer (a leader election) with the same message
        // id; it must give up while the request can still answer 503 rather than the timeout's 408.
        let log = log.with_append_retry(
            DEFAULT_APPEND_RETRY.min(
                settings
                    .http
                    .request_timeout
                    .saturating_sub(APPEND_RETRY_MARGIN),
            ),
        );
        let listener =
            TcpListener::bind(SocketAddr::new(settings.http.host, settings.http.port)).await?;
        let state = AppState {
            pool,
            log,
            body_limit_bytes: settings.http.body_limit_bytes,
            sessions: Arc::default(),
            claims: Arc::default(),
            clock,
            reference_parked: caught_up.parked,
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
        tracing::info!(port = self.port(), "sessions API listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        tracing::info!("sessions API stopped");
        Ok(())
    }
}

/// The routes and middleware.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let body_limit = state.body_limit_bytes;
    Router::new()
        .route("/openapi.json", get(serve_openapi))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/v1/api-keys", post(keys::create_key).get(keys::list_keys))
        .route("/v1/api-keys/{id}", delete(keys::revoke_key))
        .route("/v1/clinics", post(reference::create_clinic))
        .route("/v1/clinics/{id}", get(reference::get_clinic))
        .route("/v1/therapists", post(reference::create_therapist))
        .route("/v1/payers", post(reference::create_payer))
        .route("/v1/patients", post(reference::create_patient))
        .route("/v1/patients/{id}", get(reference::get_patient))
        .route("/v1/patients/{id}/phi", delete(reference::forget_patient))
        .route("/v1/coverages", post(reference::create_coverage))
        .route("/v1/referrals", post(reference::create_referral))
        .route("/v1/sessions", post(sessions::schedule))
        .route("/v1/sessions/{id}", get(sessions::get_session))
        .route("/v1/sessions/{id}/check-in", post(sessions::check_in))
        .route("/v1/sessions/{id}/services", post(sessions::record_service))
        .route(
            "/v1/sessions/{id}/modalities",
            post(sessions::record_modality),
        )
        .route(
            "/v1/sessions/{id}/diagnoses",
            post(sessions::attach_diagnoses),
        )
        .route("/v1/sessions/{id}/complete", post(sessions::complete))
        .route("/v1/sessions/{id}/cancel", post(sessions::cancel))
        .route("/v1/sessions/{id}/no-show", post(sessions::no_show))
        .route("/v1/sessions/{id}/amend", post(sessions::amend))
        .route(
            "/v1/sessions/{id}/services/{event_id}/void",
            post(sessions::void_service),
        )
        .route("/v1/claims/{claim_id}", get(claims::get_claim))
        .route("/v1/claims/{claim_id}/submit", post(claims::submit))
        .route(
            "/v1/claims/{claim_id}/adjudications",
            post(claims::adjudicate),
        )
        .route("/v1/claims/{claim_id}/resubmit", post(claims::resubmit))
        .route("/v1/claims/{claim_id}/write-off", post(claims::write_off))
        .fallback(|| async { ApiError::not_found("path", "resource").into_response() })
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit))
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
                    clinic_id = tracing::field::Empty,
                    session_id = tracing::field::Empty,
                )
            }),
        )
}

/// `GET /health`: liveness, with the reference commits parked at start-up.
async fn health(State(state): State<AppState>) -> Json<edge::Health> {
    Json(edge::Health {
        status: "ok".to_owned(),
        parked: Some(state.reference_parked),
    })
}

/// `GET /ready`: PostgreSQL and the log's stream answer (the reference tables were caught up with
/// the log before the listener was bound, so a serving process has done that).
async fn ready(State(state): State<AppState>) -> Response {
    let log = async {
        match tokio::time::timeout(edge::READY_CHECK_TIMEOUT, state.log.last_sequence()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("unreachable: {error}")),
            Err(_) => Err("no answer within 2 s".to_owned()),
        }
    };
    let (database, log) = tokio::join!(edge::check_database(&state.pool), log);
    edge::readiness(BTreeMap::from([
        ("database".to_owned(), database),
        ("nats".to_owned(), log),
    ]))
}

async fn serve_openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
        .into_response()
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
