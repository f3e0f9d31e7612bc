//! `claimledger serve sessions` runs the sessions HTTP API until Ctrl-C or SIGTERM, and
//! `claimledger keys create` bootstraps a tenant's first admin key (every later key is created over
//! the API). Settings come from the environment (see `claimledger_sessions_api::config`).

use std::io::Write;

use anyhow::Context;
use claimledger_sessions_api::auth::{Role, bootstrap_chain, create_api_key};
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

/// Creates a key (and, with --chain-name, its chain) and prints the chain id and the key.
pub fn run_keys(args: &KeysArgs) -> anyhow::Result<()> {
    let KeysCommand::Create(create) = &args.command;
    let runtime = tokio::runtime::Runtime::new()?;
    let (chain, key) = runtime.block_on(async {
        let settings = Settings::from_env().context("reading the database settings")?;
        let pool = migrate(&settings).await?;
        let created = match (create.chain, &create.chain_name) {
            (Some(chain), _) => {
                let chain = claimledger_events::ChainId::from(chain);
                (
                    chain,
                    create_api_key(&pool, chain, create.role, None, &create.label).await?,
                )
            }
            (None, Some(name)) if create.role == Role::Admin => {
                bootstrap_chain(&pool, name).await?
            }
            (None, _) => anyhow::bail!("a new chain's first key must have the admin role"),
        };
        anyhow::Ok(created)
    })?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "chain: {chain}")?;
    writeln!(stdout, "key id: {}", key.id)?;
    writeln!(stdout, "key (shown once, store it now): {}", key.secret)?;
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
