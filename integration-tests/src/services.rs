//! Finding the NATS and PostgreSQL services for the tests: environment or loopback defaults first,
//! testcontainers when those do not answer and Docker is available.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ImageExt, ReuseDirective};
use testcontainers_modules::nats::{Nats, NatsServerCmd};
use testcontainers_modules::postgres::Postgres;
use tokio::sync::OnceCell;

/// The default NATS URL, the local stack's server.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// The default PostgreSQL URL, the local stack's database and role.
pub const DEFAULT_DATABASE_URL: &str =
    "postgres://claimledger:claimledger@127.0.0.1:5432/claimledger";

/// The replicas of each test's streams: `CLAIMLEDGER_LOG_REPLICAS`, as for the services, default 1.
/// 3 against a three-node cluster (`deploy/cluster-stack.sh`), where a replicated stream answers a
/// lost concurrency race the way production's does.
pub(crate) fn log_replicas() -> anyhow::Result<usize> {
    match std::env::var("CLAIMLEDGER_LOG_REPLICAS") {
        Ok(value) => value
            .parse()
            .with_context(|| format!("CLAIMLEDGER_LOG_REPLICAS={value:?} is not a number")),
        Err(_) => Ok(1),
    }
}

/// Where the services of this test binary are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// NATS with JetStream.
    pub nats_url: String,
    /// A PostgreSQL database whose role may create databases.
    pub database_url: String,
}

/// Containers started for this test binary. They live in a `static`, which Rust never drops, so they
/// are started with `ReuseDirective::Always`: every later test run reuses the same two containers
/// instead of leaving new ones behind. Reuse is safe because tests isolate themselves by database and
/// stream name, never by server.
#[derive(Debug)]
struct Containers {
    _nats: Option<ContainerAsync<Nats>>,
    _postgres: Option<ContainerAsync<Postgres>>,
}

static ENDPOINTS: OnceCell<(Endpoints, Containers)> = OnceCell::const_new();

/// Resolves the services once per test binary.
pub(crate) async fn resolve() -> anyhow::Result<Endpoints> {
    let (endpoints, _) = ENDPOINTS.get_or_try_init(resolve_uncached).await?;
    Ok(endpoints.clone())
}

async fn resolve_uncached() -> anyhow::Result<(Endpoints, Containers)> {
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned());
    let database_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let nats_answers = answers(&nats_url, 4222).await;
    let postgres_answers = answers(&database_url, 5432).await;
    if nats_answers && postgres_answers {
        return Ok((
            Endpoints {
                nats_url,
                database_url,
            },
            Containers {
                _nats: None,
                _postgres: None,
            },
        ));
    }
    anyhow::ensure!(
        docker_available(),
        "no service answers at {} (NATS: {nats_answers}) / {} (PostgreSQL: {postgres_answers}) \
         and no Docker engine is available; run deploy/local-stack.sh or set NATS_URL/DATABASE_URL",
        nats_url,
        redact(&database_url),
    );

    let mut endpoints = Endpoints {
        nats_url,
        database_url,
    };
    let nats = if nats_answers {
        None
    } else {
        let container = Nats::default()
            .with_cmd(&NatsServerCmd::default().with_jetstream())
            .with_reuse(ReuseDirective::Always)
            .start()
            .await
            .context("starting a NATS container")?;
        let port = container.get_host_port_ipv4(4222).await?;
        endpoints.nats_url = format!("nats://127.0.0.1:{port}");
        Some(container)
    };
    let postgres = if postgres_answers {
        None
    } else {
        // PostgreSQL 15 like the local stack (the migrations use NULLS NOT DISTINCT), with fsync on
        // so that the container behaves like a real database.
        let container = Postgres::default()
            .with_fsync_enabled()
            .with_tag("15-alpine")
            .with_reuse(ReuseDirective::Always)
            .start()
            .await
            .context("starting a PostgreSQL container")?;
        let port = container.get_host_port_ipv4(5432).await?;
        endpoints.database_url = format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres");
        Some(container)
    };
    Ok((
        endpoints,
        Containers {
            _nats: nats,
            _postgres: postgres,
        },
    ))
}

/// Whether something accepts TCP connections at the URL's host and port.
async fn answers(url: &str, default_port: u16) -> bool {
    let Some(authority) = url.split("://").nth(1) else {
        return false;
    };
    let host_port = authority
        .rsplit('@')
        .next()
        .unwrap_or(authority)
        .split(['/', '?', ','])
        .next()
        .unwrap_or_default();
    let address = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(address)
        )
        .await,
        Ok(Ok(_))
    )
}

fn docker_available() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}
