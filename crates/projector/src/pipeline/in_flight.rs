//! The write of one batch, running in its own task while the next batch is read and folded.

use std::time::Instant;

use claimledger_events::error_chain;
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;

use super::applier::{AppliedBatch, Folded};
use super::transaction::{BatchTransaction, Begun, CloseIfCancelled};
use crate::error::ProjectorError;
use crate::store::{self, Target};

/// The write of one batch, running while the next batch is read and folded.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) task: JoinHandle<Result<Written, ProjectorError>>,
}

impl InFlight {
    pub(super) async fn finish(mut self) -> Result<Written, ProjectorError> {
        let joined = (&mut self.task).await;
        joined.map_err(|error| ProjectorError::WriterStopped {
            reason: error.to_string(),
        })?
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // A projector dropped mid-write rolls the batch back rather than leaving a writer behind
        // that could commit after a successor started.
        self.task.abort();
    }
}

/// What writing a [`Folded`] batch did.
#[derive(Debug)]
pub(super) enum Written {
    Applied(AppliedBatch),
    /// Someone else moved the checkpoint: nothing was written.
    Moved {
        checkpoint: u64,
    },
    /// A row the batch took for new exists: nothing was written; apply the positions
    /// `from..=through` again with upserts.
    ExistingRow {
        from: u64,
        through: u64,
    },
    /// PostgreSQL refused a value of the batch: nothing was written; apply the positions
    /// `from..=through` again one by one, parking those refused on their own.
    Rejected {
        from: u64,
        through: u64,
    },
}

/// Writes a folded batch and its checkpoint in one transaction, if the checkpoint is still the one
/// it was folded against.
pub(super) async fn write_folded(
    pool: PgPool,
    target: Target,
    folded: Folded,
) -> Result<Written, ProjectorError> {
    let started = Instant::now();
    let mut connection = CloseIfCancelled::acquire(&pool).await?;
    let written = write_folded_on(connection.get(), &target, folded, started).await;
    connection.finished();
    written
}

async fn write_folded_on(
    connection: &mut PgConnection,
    target: &Target,
    folded: Folded,
    started: Instant,
) -> Result<Written, ProjectorError> {
    let Folded {
        positions,
        changes,
        new_rows,
        expected_checkpoint,
        checkpoint,
        mut phases,
    } = folded;
    let mut batch = match BatchTransaction::begin(connection, target, expected_checkpoint).await? {
        Begun::Open(batch) => batch,
        Begun::Moved { checkpoint } => return Ok(Written::Moved { checkpoint }),
    };
    if positions == 0 {
        return Ok(Written::Applied(AppliedBatch::nothing(
            expected_checkpoint,
            phases,
        )));
    }
    let (from, through) = (expected_checkpoint + 1, checkpoint);
    let rejected = |error: &ProjectorError| {
        tracing::warn!(
            error.message = %error,
            error.cause_chain = %error_chain(error),
            "PostgreSQL refused a value of the batch; applying it again commit by commit"
        );
        Ok(Written::Rejected { from, through })
    };
    match store::write_changes(batch.connection(), &target.schema, &changes, Some(new_rows)).await {
        Err(error) if error.is_existing_row() => {
            tracing::warn!(
                error.message = %error,
                error.cause_chain = %error_chain(&error),
                "a row the batch took for new exists; applying the batch again with upserts"
            );
            return Ok(Written::ExistingRow { from, through });
        }
        Err(error) if error.is_rejected_value() => return rejected(&error),
        other => other?,
    }
    // A deferred constraint is checked at commit.
    match batch.commit(target, checkpoint, started, &mut phases).await {
        Err(error) if error.is_rejected_value() => return rejected(&error),
        other => other?,
    }
    Ok(Written::Applied(AppliedBatch {
        positions,
        events: changes.events,
        parked: changes.parked.len() as u64,
        checkpoint,
        last_recorded_at: changes.last_recorded_at,
        phases,
    }))
}
