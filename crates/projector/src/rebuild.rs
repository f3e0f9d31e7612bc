//! Rebuilding the read models from the log without downtime.
//!
//! 1. A fresh schema ([`crate::REBUILD_SCHEMA`]) is created by the migration's
//!    `claimledger_create_read_models` function, and the log (or one chain of it) is replayed into
//!    it in batches while the live tables keep serving.
//! 2. The swap locks the live checkpoint row (the live projector waits at the start of its next
//!    batch), replays the few positions the live projector applied meanwhile, and then, in the same
//!    transaction: for a whole rebuild, renames the schemas and drops the old one; for one chain,
//!    replaces that chain's rows in the live tables. The live projector continues from the
//!    checkpoint the swap leaves.
//!
//! A session-scoped advisory lock keeps two rebuilds from running at once.

use std::time::{Duration, Instant};

use claimledger_billing::ReferenceData;
use claimledger_events::ChainId;
use claimledger_log::{EventLog, ReplayFilter, ReplayItem};
use futures::StreamExt;
use sqlx::{Connection, PgPool};

use crate::config::{LIVE_SCHEMA, ProjectorConfig, REBUILD_SCHEMA};
use crate::error::ProjectorError;
use crate::pipeline::{Applier, ApplyOutcome};
use crate::reference_tables::read_reference;
use crate::store::{self, Target};

/// Where a rebuild is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The log sequence the rebuilt tables have reached.
    pub applied_through: u64,
    /// The log sequence the replay phase runs to.
    pub target: u64,
}

/// What a finished rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    /// The live checkpoint after the swap.
    pub checkpoint: u64,
    /// Log positions applied into the fresh tables (replay and catch-up).
    pub positions: u64,
    /// Events folded.
    pub events: u64,
    /// Wall time of the whole rebuild.
    pub elapsed: Duration,
}

/// Rebuilds the live read models (all of them, or one chain's rows) from the log and swaps them in.
pub async fn rebuild(
    log: &EventLog,
    pool: &PgPool,
    config: &ProjectorConfig,
    chain: Option<ChainId>,
    progress: &mut (dyn FnMut(RebuildProgress) + Send),
) -> Result<RebuildReport, ProjectorError> {
    config.validate()?;
    let started = Instant::now();
    let reference = read_reference(&config.rules_dir)?;
    // A dedicated connection outside the pool holds the advisory lock; closing it (also on error)
    // releases the lock.
    let mut lock_connection = pool
        .acquire()
        .await
        .map_err(ProjectorError::db("connecting"))?
        .detach();
    if !store::try_rebuild_lock(&mut lock_connection).await? {
        return Err(ProjectorError::RebuildRunning);
    }
    let result = rebuild_locked(log, pool, config, chain, reference, progress, started).await;
    store::release_rebuild_lock(&mut lock_connection).await;
    lock_connection.close().await.ok();
    result
}

async fn rebuild_locked(
    log: &EventLog,
    pool: &PgPool,
    config: &ProjectorConfig,
    chain: Option<ChainId>,
    reference: ReferenceData,
    progress: &mut (dyn FnMut(RebuildProgress) + Send),
    started: Instant,
) -> Result<RebuildReport, ProjectorError> {
    store::create_rebuild_schema(pool).await?;
    let live = Target {
        schema: LIVE_SCHEMA.to_owned(),
        chain: None,
    };
    let rebuilt = Target {
        schema: REBUILD_SCHEMA.to_owned(),
        chain: chain.map(|chain| chain.as_uuid()),
    };
    let filter = chain.map_or(ReplayFilter::All, ReplayFilter::Chain);
    // A whole rebuild replays everything the log holds now. A chain rebuild stops at the live
    // checkpoint: its rows replace that chain's rows in tables that stand at the live checkpoint,
    // so they must not be ahead of it.
    let replay_to = match chain {
        None => log.last_sequence().await?,
        Some(_) => store::read_checkpoint(pool, &live).await?,
    };
    let mut applier = Applier::new(
        pool.clone(),
        rebuilt.clone(),
        reference,
        log.clone(),
        filter,
    );
    let mut totals = Totals::default();
    apply_range(
        log,
        &mut applier,
        filter,
        replay_to,
        config.max_batch_commits,
        &mut totals,
        progress,
    )
    .await?;

    let mut transaction = pool
        .begin()
        .await
        .map_err(ProjectorError::db("beginning the swap"))?;
    let live_checkpoint = store::lock_checkpoint(&mut transaction, &live).await?;
    // The live projector is now paused at the start of its next batch: catch up with what it
    // applied while the replay ran.
    apply_range(
        log,
        &mut applier,
        filter,
        live_checkpoint,
        config.max_batch_commits,
        &mut totals,
        progress,
    )
    .await?;
    let rebuilt_checkpoint = applier.checkpoint().await?;
    let checkpoint = match chain {
        None => {
            store::swap_in_rebuild(&mut transaction).await?;
            let checkpoint = rebuilt_checkpoint.max(live_checkpoint);
            store::set_checkpoint(&mut transaction, &live, checkpoint).await?;
            checkpoint
        }
        Some(chain) => {
            store::swap_in_chain(&mut transaction, chain.as_uuid()).await?;
            live_checkpoint
        }
    };
    store::forget_rebuild_checkpoint(&mut transaction).await?;
    transaction
        .commit()
        .await
        .map_err(ProjectorError::db("committing the swap"))?;
    tracing::info!(
        checkpoint,
        positions = totals.positions,
        "rebuilt read models swapped in"
    );
    Ok(RebuildReport {
        checkpoint,
        positions: totals.positions,
        events: totals.events,
        elapsed: started.elapsed(),
    })
}

#[derive(Debug, Default)]
struct Totals {
    positions: u64,
    events: u64,
}

/// Replays `filter` from the applier's checkpoint through `through` (inclusive), in batches, and
/// leaves the checkpoint at `through`.
async fn apply_range(
    log: &EventLog,
    applier: &mut Applier,
    filter: ReplayFilter,
    through: u64,
    batch_size: usize,
    totals: &mut Totals,
    progress: &mut (dyn FnMut(RebuildProgress) + Send),
) -> Result<(), ProjectorError> {
    let from = applier.checkpoint().await? + 1;
    if from > through {
        return Ok(());
    }
    let mut replay = log.replay(from, filter).await?;
    let mut batch: Vec<ReplayItem> = Vec::with_capacity(batch_size);
    loop {
        let (last, covered) = match replay.next().await {
            Some(Ok(item)) if item.sequence() <= through => {
                batch.push(item);
                if batch.len() < batch_size {
                    continue;
                }
                (false, None)
            }
            // Past the range, or the end of the log: every position through `through` is seen.
            Some(Ok(_)) | None => (true, Some(through)),
            Some(Err(error)) => return Err(error.into()),
        };
        let items = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
        match applier.apply(items, covered).await? {
            ApplyOutcome::Applied(batch) => {
                totals.positions += batch.positions;
                totals.events += batch.events;
                progress(RebuildProgress {
                    applied_through: batch.checkpoint,
                    target: through,
                });
            }
            ApplyOutcome::Moved { .. } => {
                return Err(ProjectorError::ConcurrentWriter {
                    schema: REBUILD_SCHEMA.to_owned(),
                });
            }
        }
        if last {
            return Ok(());
        }
    }
}
