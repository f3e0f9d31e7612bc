//! The one batch transaction every write of the projector goes through: a pooled connection that
//! cannot go back to the pool mid-statement, the checkpoint locked and compared with the one the
//! batch was prepared against, the batch's rows, the new checkpoint, and the commit, timed. A batch
//! and its checkpoint therefore commit together or not at all, which is what makes the projection
//! exactly-once whoever writes it.

use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::error::ProjectorError;
use crate::metrics::PhaseTimes;
use crate::store::{self, Target};

/// A pooled connection that is closed, not returned to the pool, if the write using it is
/// cancelled (a dropped projector aborts its write task, a dropped `process_next_batch` future its
/// sequential write): a connection dropped mid-statement can be out of step with the server, and
/// the next user of the pool would read the wrong replies.
pub(super) struct CloseIfCancelled(Option<PoolConnection<Postgres>>);

impl CloseIfCancelled {
    /// A connection from `pool`, guarded.
    pub(super) async fn acquire(pool: &PgPool) -> Result<Self, ProjectorError> {
        let connection = pool
            .acquire()
            .await
            .map_err(ProjectorError::db("beginning a batch"))?;
        Ok(Self(Some(connection)))
    }

    pub(super) fn get(&mut self) -> &mut PgConnection {
        self.0
            .as_deref_mut()
            .expect("the connection is held until the write finishes")
    }

    /// The write ran to its end (committed, rolled back or failed in step): the connection may go
    /// back to the pool.
    pub(super) fn finished(mut self) {
        drop(self.0.take());
    }
}

impl Drop for CloseIfCancelled {
    fn drop(&mut self) {
        if let Some(connection) = self.0.as_mut() {
            connection.close_on_drop();
        }
    }
}

/// A batch's transaction, begun with the target's checkpoint locked.
pub(super) struct BatchTransaction<'c> {
    transaction: Transaction<'c, Postgres>,
}

/// What [`BatchTransaction::begin`] found.
pub(super) enum Begun<'c> {
    /// The checkpoint is the expected one: the batch may write.
    Open(BatchTransaction<'c>),
    /// Someone else moved the checkpoint (a rebuild was swapped in): nothing may be written.
    Moved {
        /// The checkpoint found.
        checkpoint: u64,
    },
}

impl<'c> BatchTransaction<'c> {
    /// Begins the transaction and locks `target`'s checkpoint, which must still be `expected`.
    pub(super) async fn begin(
        connection: &'c mut PgConnection,
        target: &Target,
        expected: u64,
    ) -> Result<Begun<'c>, ProjectorError> {
        let mut transaction = store::begin_batch(connection).await?;
        let checkpoint = store::lock_checkpoint(&mut transaction, target).await?;
        if checkpoint != expected {
            return Ok(Begun::Moved { checkpoint });
        }
        Ok(Begun::Open(BatchTransaction { transaction }))
    }

    /// The connection the batch writes on, inside the transaction.
    pub(super) fn connection(&mut self) -> &mut PgConnection {
        &mut self.transaction
    }

    /// Moves `target`'s checkpoint to `checkpoint` and commits; records in `phases` the time
    /// since `write_started` as the write and the commit's own time. Dropped without this, the
    /// transaction rolls back.
    pub(super) async fn commit(
        mut self,
        target: &Target,
        checkpoint: u64,
        write_started: Instant,
        phases: &mut PhaseTimes,
    ) -> Result<(), ProjectorError> {
        store::set_checkpoint(&mut self.transaction, target, checkpoint).await?;
        let written = Instant::now();
        phases.write = (written - write_started).as_secs_f64();
        self.transaction
            .commit()
            .await
            .map_err(ProjectorError::db("committing a batch"))?;
        phases.commit = written.elapsed().as_secs_f64();
        Ok(())
    }
}
