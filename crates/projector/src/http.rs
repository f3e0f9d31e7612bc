//! The projector's HTTP endpoint.
//!
//! - `GET /health` is liveness: it answers 200 whenever the process serves HTTP, with the metrics
//!   snapshot as JSON (progress, lag, `parked_total` and `isolated_total`, the last step's error).
//!   A failing database or log never makes it fail: restarting the process would not fix them.
//! - `GET /ready` is readiness: 200 when every check passes, else 503, with a JSON body naming each
//!   check, whether it passed and why not (`failing` lists the failed ones). The checks: `database`
//!   (PostgreSQL answers a query), `nats` (the log's stream answers), `caught_up` (the checkpoint has
//!   reached the log's head as of start, or trails the head by at most
//!   [`crate::ProjectorConfig::ready_max_lag`] positions) and `stepping` (the projector's last step
//!   succeeded, within the last 30 seconds).
//! - `GET /metrics` is the snapshot in the Prometheus text format.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use claimledger_log::EventLog;
use serde::Serialize;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How long one readiness check may take before it counts as failed, so that a probe always gets
/// an answer while a service hangs.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the endpoints read: the projector's metrics, and the database and log it uses, for
/// `/ready`'s checks. Get it from [`crate::Projector::probes`].
#[derive(Debug, Clone)]
pub struct Probes {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) pool: PgPool,
    pub(crate) log: EventLog,
    pub(crate) ready_max_lag: u64,
}

/// The routes, over `probes`.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(prometheus))
        .with_state(probes)
}

async fn health(State(probes): State<Probes>) -> Response {
    (StatusCode::OK, axum::Json(probes.metrics.snapshot())).into_response()
}

/// One readiness check's answer.
#[derive(Debug, Serialize)]
struct Check {
    ok: bool,
    /// Why it failed; absent when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Check {
    fn passed() -> Self {
        Self {
            ok: true,
            reason: None,
        }
    }

    fn failed(reason: String) -> Self {
        Self {
            ok: false,
            reason: Some(reason),
        }
    }
}

/// `/ready`'s body.
#[derive(Debug, Serialize)]
struct Readiness {
    ready: bool,
    /// The names of the failed checks.
    failing: Vec<&'static str>,
    database: Check,
    nats: Check,
    caught_up: Check,
    stepping: Check,
    checkpoint: u64,
    head_at_start: Option<u64>,
    log_last_sequence: Option<u64>,
    parked_total: u64,
}

async fn ready(State(probes): State<Probes>) -> Response {
    let database_query = crate::store::ping(&probes.pool);
    let (database, head) = tokio::join!(
        tokio::time::timeout(CHECK_TIMEOUT, database_query),
        tokio::time::timeout(CHECK_TIMEOUT, probes.log.last_sequence()),
    );
    let database = match database {
        Ok(Ok(_)) => Check::passed(),
        Ok(Err(error)) => Check::failed(format!("PostgreSQL: {error}")),
        Err(_) => Check::failed(format!(
            "PostgreSQL did not answer within {CHECK_TIMEOUT:?}"
        )),
    };
    let (nats, head) = match head {
        Ok(Ok(head)) => {
            probes.metrics.record_stream_last(head);
            (Check::passed(), Some(head))
        }
        Ok(Err(error)) => (Check::failed(format!("the log: {error}")), None),
        Err(_) => (
            Check::failed(format!("the log did not answer within {CHECK_TIMEOUT:?}")),
            None,
        ),
    };
    let snapshot = probes.metrics.snapshot();
    let checkpoint = snapshot.checkpoint;
    let caught_up = match (snapshot.head_at_start, head) {
        (Some(start), _) if checkpoint >= start => Check::passed(),
        (_, Some(head)) if head.saturating_sub(checkpoint) <= probes.ready_max_lag => {
            Check::passed()
        }
        (Some(start), Some(head)) => Check::failed(format!(
            "the checkpoint {checkpoint} has not reached the log's head as of start ({start}) and \
             trails its head ({head}) by more than {} positions",
            probes.ready_max_lag
        )),
        (start, None) => Check::failed(format!(
            "the checkpoint {checkpoint} has not reached the log's head as of start ({start:?}), \
             and the log's head is unknown"
        )),
        (None, Some(_)) => Check::failed("the log's head as of start is unknown".to_owned()),
    };
    let stepping = if snapshot.healthy {
        Check::passed()
    } else {
        Check::failed(match &snapshot.last_error {
            Some(error) => format!("the last step failed: {error}"),
            None => "no step has succeeded within the last 30 seconds".to_owned(),
        })
    };
    let failing: Vec<&'static str> = [
        ("database", &database),
        ("nats", &nats),
        ("caught_up", &caught_up),
        ("stepping", &stepping),
    ]
    .into_iter()
    .filter(|(_, check)| !check.ok)
    .map(|(name, _)| name)
    .collect();
    let body = Readiness {
        ready: failing.is_empty(),
        failing,
        database,
        nats,
        caught_up,
        stepping,
        checkpoint,
        head_at_start: snapshot.head_at_start,
        log_last_sequence: head,
        parked_total: snapshot.parked_total,
    };
    let status = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn prometheus(State(probes): State<Probes>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        probes.metrics.snapshot().to_prometheus(),
    )
        .into_response()
}

/// Serves the routes on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    probes: Probes,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(probes))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
