//! The flags every subcommand that talks to the event log shares, and opening the log from them.

use anyhow::Context;
use claimledger_log::{EventLog, LogConfig};

/// Where the event log is: the NATS server, the stream and subject prefix, and the replicas a new
/// stream gets.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// The NATS server.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The log's JetStream stream.
    #[arg(
        long,
        env = "CLAIMLEDGER_LOG_STREAM",
        default_value = "CLAIMLEDGER_EVENTS"
    )]
    pub log_stream: String,
    /// The log's subject prefix.
    #[arg(long, env = "CLAIMLEDGER_LOG_SUBJECT_PREFIX", default_value = "ev")]
    pub log_subject_prefix: String,
    /// Replicas of the log's streams when this process is the one that creates them (3 in a
    /// three-node production cluster; an existing stream keeps its own).
    #[arg(long, env = "CLAIMLEDGER_LOG_REPLICAS", default_value_t = 1)]
    pub log_replicas: usize,
}

impl LogArgs {
    /// Connects to NATS and opens (creating it if needed) the event log.
    pub async fn open(&self) -> anyhow::Result<EventLog> {
        let client = async_nats::connect(&self.nats_url)
            .await
            .with_context(|| format!("connecting to NATS at {}", self.nats_url))?;
        EventLog::connect(
            client,
            LogConfig {
                replicas: self.log_replicas,
                ..LogConfig::new(&self.log_stream, &self.log_subject_prefix)
            },
        )
        .await
        .context("opening the event log")
    }

    /// Connects to NATS and opens the event log for reading, creating nothing: a missing stream is an
    /// error naming it.
    pub async fn open_existing(&self) -> anyhow::Result<EventLog> {
        let client = async_nats::connect(&self.nats_url)
            .await
            .with_context(|| format!("connecting to NATS at {}", self.nats_url))?;
        EventLog::open_existing(
            client,
            LogConfig::new(&self.log_stream, &self.log_subject_prefix),
        )
        .await
        .context("opening the event log for reading")
    }
}
