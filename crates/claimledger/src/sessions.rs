//! `claimledger serve sessions` runs the sessions HTTP API until Ctrl-C or SIGTERM;
//! `claimledger keys create` bootstraps a tenant's first admin key (later keys are usually created
//! over the API), `keys list` and `keys revoke` manage a chain's keys from the terminal. Settings come from the environment (see `claimledger_sessions_api::config`).

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Utc};
use claimledger_events::ChainId;
use claimledger_sessions_api::auth::{
    KeyRecord, Role, bootstrap_chain, create_expiring_api_key, list_api_keys, revoke_api_key,
};
use claimledger_sessions_api::config::Settings;
use claimledger_sessions_api::startup::Application;
use clap::{Args, Subcommand};
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `claimledger serve sessions`: no flags; DATABASE_URL, NATS_URL and CLAIMLEDGER_SESSIONS_* apply.
#[derive(Debug, Args)]
pub struct ServeSessionsArgs {}

/// `claimledger keys ...`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Creates an API key and prints it once. Without --chain, creates a new chain named
    /// --chain-name and its first key.
    Create(CreateKeyArgs),
    /// Lists a chain's keys (never their secrets): id, role, clinics, label, state.
    List(ListKeysArgs),
    /// Revokes a key: the very next request with it answers 401.
    Revoke(RevokeKeyArgs),
}

#[derive(Debug, Args)]
struct ListKeysArgs {
    /// The chain's id.
    #[arg(long)]
    chain: Uuid,
}

#[derive(Debug, Args)]
struct RevokeKeyArgs {
    /// The chain's id.
    #[arg(long)]
    chain: Uuid,
    /// The key's id (as `keys list` prints it).
    #[arg(long)]
    id: Uuid,
}

#[derive(Debug, Args)]
struct CreateKeyArgs {
    /// An existing chain's id.
    #[arg(
        long,
        conflicts_with = "chain_name",
        required_unless_present = "chain_name"
    )]
    chain: Option<Uuid>,
    /// The name of a new chain to create with this key.
    #[arg(long)]
    chain_name: Option<String>,
    /// admin, front_desk, billing or analyst.
    #[arg(long, default_value = "admin", value_parser = parse_role)]
    role: Role,
    /// Who holds the key.
    #[arg(long, default_value = "created by claimledger keys create")]
    label: String,
    /// When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z); by default it lasts
    /// until revoked.
    #[arg(long, value_parser = parse_instant)]
    expires_at: Option<DateTime<Utc>>,
}

fn parse_instant(value: &str) -> Result<DateTime<Utc>, String> {
    let instant = DateTime::parse_from_rfc3339(value)
        .map_err(|error| format!("{value:?} is not an RFC 3339 instant: {error}"))?
        .with_timezone(&Utc);
    if instant <= Utc::now() {
        return Err(format!("{value} is not in the future"));
    }
    Ok(instant)
}

fn parse_role(value: &str) -> Result<Role, String> {
    Role::parse(value)
        .ok_or_else(|| format!("{value:?} is not a role (admin, front_desk, billing, analyst)"))
}

/// Serves the sessions API until Ctrl-C or SIGTERM, then lets requests in flight finish.
pub fn run_serve(_args: &ServeSessionsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let settings = Settings::from_env().context("reading the sessions API settings")?;
        migrate(&settings).await?;
        let application = Application::build(settings)
            .await
            .context("starting the sessions API")?;
        let shutdown = CancellationToken::new();
        let signal = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                crate::shutdown::signal().await;
                shutdown.cancel();
            }
        });
        let served = application.run_until_stopped(shutdown).await;
        signal.abort();
        served.context("serving the sessions API")
    })
}

/// Runs `keys create|list|revoke` against the database in DATABASE_URL.
pub fn run_keys(args: &KeysArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let settings = Settings::from_env().context("reading the database settings")?;
        let pool = migrate(&settings).await?;
        match &args.command {
            KeysCommand::Create(create) => create_key(&pool, create).await,
            KeysCommand::List(list) => list_keys(&pool, list.chain).await,
            KeysCommand::Revoke(revoke) => revoke_key(&pool, revoke).await,
        }
    })
}

/// Creates a key (and, with --chain-name, its chain) and prints the chain id and the key.
async fn create_key(pool: &sqlx::PgPool, create: &CreateKeyArgs) -> anyhow::Result<()> {
    let (chain, key) = match (create.chain, &create.chain_name) {
        (Some(chain), _) => {
            let chain = ChainId::from(chain);
            (
                chain,
                create_expiring_api_key(
                    pool,
                    chain,
                    create.role,
                    None,
                    &create.label,
                    create.expires_at,
                )
                .await?,
            )
        }
        (None, Some(name)) if create.role == Role::Admin && create.expires_at.is_none() => {
            bootstrap_chain(pool, name).await?
        }
        (None, Some(_)) if create.expires_at.is_some() => {
            anyhow::bail!(
                "a new chain's first admin key does not expire; add --expires-at to later keys"
            )
        }
        (None, _) => anyhow::bail!("a new chain's first key must have the admin role"),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "chain: {chain}")?;
    writeln!(stdout, "key id: {}", key.id)?;
    writeln!(stdout, "key (shown once, store it now): {}", key.secret)?;
    Ok(())
}

fn key_state(key: &KeyRecord) -> String {
    match (key.revoked_at, key.expires_at) {
        (Some(at), _) => format!("revoked {}", at.to_rfc3339()),
        (None, Some(at)) if at <= Utc::now() => format!("expired {}", at.to_rfc3339()),
        (None, Some(at)) => format!("active until {}", at.to_rfc3339()),
        (None, None) => "active".to_owned(),
    }
}

fn key_clinics(key: &KeyRecord) -> String {
    key.clinic_ids.as_ref().map_or_else(
        || "every clinic".to_owned(),
        |clinics| {
            clinics
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
    )
}

/// Prints one line per key of the chain, oldest first.
async fn list_keys(pool: &sqlx::PgPool, chain: Uuid) -> anyhow::Result<()> {
    let keys = list_api_keys(pool, ChainId::from(chain)).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "id\trole\tclinics\tlabel\tcreated\tstate")?;
    for key in &keys {
        writeln!(
            stdout,
            "{}\t{}\t{}\t{}\t{}\t{}",
            key.id,
            key.role,
            key_clinics(key),
            key.label,
            key.created_at.to_rfc3339(),
            key_state(key)
        )?;
    }
    Ok(())
}

/// Revokes a key of the chain, at once.
async fn revoke_key(pool: &sqlx::PgPool, revoke: &RevokeKeyArgs) -> anyhow::Result<()> {
    let key = revoke_api_key(pool, ChainId::from(revoke.chain), revoke.id)
        .await?
        .with_context(|| format!("chain {} has no key {}", revoke.chain, revoke.id))?;
    writeln!(
        std::io::stdout().lock(),
        "key {}: {}",
        key.id,
        key_state(&key)
    )?;
    Ok(())
}

/// Applies the workspace's migrations (idempotent; sqlx serialises concurrent runs with an advisory
/// lock), so that the bootstrap and the service both work on a fresh database.
async fn migrate(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(settings.database.connect_options()?)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::migrate!("../../migrations")
        .run(&pool)
        .await
        .context("migrating the database")?;
    Ok(pool)
}
