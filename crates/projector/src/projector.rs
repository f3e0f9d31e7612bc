//! The live projector: a step function that applies one batch in one transaction, and the loop that
//! repeats it until shut down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use claimledger_events::{AggregateKind, Event};
use claimledger_log::{EventLog, LogError, ReplayFilter, ReplayItem};
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::ProjectorConfig;
use claimledger_billing::ReferenceData;
use claimledger_derive::directory::Directory;
use claimledger_derive::hashing::{HashMap, HashSet};
use claimledger_derive::keys::SessionKey;
use claimledger_derive::reprice;
use claimledger_derive::rows::{BatchChanges, ParkedRow, StoredSession};
use claimledger_derive::rules::LogRules;
use claimledger_derive::session::fold_batch;
use claimledger_events::error_chain;

use crate::error::ProjectorError;
use crate::metrics::{Metrics, PhaseTimes};
use crate::reference_tables::read_reference;

use crate::store::{self, NewRows, NewRowsCopy, Target};

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This many log positions (commits and parked messages) were applied; 0 when the step only
    /// repositioned itself.
    Applied(u64),
    /// The projector has applied everything the log holds.
    Idle,
}

/// A committed batch (or several, summed): what it applied.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct AppliedBatch {
    /// Positions applied (those above the checkpoint).
    pub(crate) positions: u64,
    /// Events folded.
    pub(crate) events: u64,
    /// Positions parked.
    pub(crate) parked: u64,
    /// The new checkpoint.
    pub(crate) checkpoint: u64,
    /// `recorded_at` of the last commit applied, in microseconds.
    pub(crate) last_recorded_at: Option<i64>,
    /// Where the batch's time went (without reading, which the caller measures).
    pub(crate) phases: PhaseTimes,
}

impl AppliedBatch {
    /// A batch that applied nothing and left the checkpoint at `checkpoint`.
    fn nothing(checkpoint: u64, phases: PhaseTimes) -> AppliedBatch {
        AppliedBatch {
            checkpoint,
            phases,
            ..AppliedBatch::default()
        }
    }

    /// Adds `later`, a batch committed after this one.
    fn add(&mut self, later: &AppliedBatch) {
        self.positions += later.positions;
        self.events += later.events;
        self.parked += later.parked;
        self.checkpoint = later.checkpoint;
        self.last_recorded_at = later.last_recorded_at.or(self.last_recorded_at);
        self.phases.add(&later.phases);
    }
}

/// What [`Applier::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ApplyOutcome {
    /// The batch is committed.
    Applied(AppliedBatch),
    /// Someone else moved the checkpoint (a rebuild was swapped in): nothing was applied, and the
    /// caller must read again from the new checkpoint.
    Moved {
        /// The checkpoint found.
        checkpoint: u64,
    },
}

#[derive(Debug)]
struct AppliedState {
    rules: LogRules,
    checkpoint: u64,
}

/// Applies batches of log positions to one target (schema and checkpoint), exactly once: the rows
/// and the checkpoint commit together, and positions at or below the checkpoint are skipped.
#[derive(Debug)]
pub(crate) struct Applier {
    pool: PgPool,
    target: Target,
    reference: ReferenceData,
    directory: Directory,
    state: Option<AppliedState>,
    /// Where the batches come from: the fold consumes a batch's positions, so the upsert fallback
    /// reads them again from here.
    log: EventLog,
    filter: ReplayFilter,
}

impl Applier {
    /// An applier of the positions of `log` that `filter` selects.
    pub(crate) fn new(
        pool: PgPool,
        target: Target,
        reference: ReferenceData,
        log: EventLog,
        filter: ReplayFilter,
    ) -> Self {
        Self {
            pool,
            target,
            reference,
            directory: Directory::default(),
            state: None,
            log,
            filter,
        }
    }

    /// The positions `from..=through` of this applier's part of the log, read again. The log is
    /// append-only, so they are the positions a batch held before its fold consumed them.
    async fn reread(&self, from: u64, through: u64) -> Result<Vec<ReplayItem>, ProjectorError> {
        let mut replay = self.log.replay(from, self.filter).await?;
        let mut items = Vec::new();
        while let Some(item) = replay.next().await {
            let item = item?;
            if item.sequence() > through {
                break;
            }
            items.push(item);
        }
        Ok(items)
    }

    /// The checkpoint as this applier last committed or read it.
    pub(crate) async fn checkpoint(&mut self) -> Result<u64, ProjectorError> {
        let state = match self.state.take() {
            Some(state) => state,
            None => self.load_state().await?,
        };
        let checkpoint = state.checkpoint;
        self.state = Some(state);
        Ok(checkpoint)
    }

    /// Forgets the cached state; the next call reads the checkpoint and the rules again.
    pub(crate) fn reset(&mut self) {
        self.state = None;
    }

    async fn load_state(&self) -> Result<AppliedState, ProjectorError> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(ProjectorError::db("connecting"))?;
        store::ensure_checkpoint(&mut connection, &self.target).await?;
        drop(connection);
        let checkpoint = store::read_checkpoint(&self.pool, &self.target).await?;
        let rules = store::load_rules(&self.pool, &self.target.schema, &self.reference).await?;
        Ok(AppliedState { rules, checkpoint })
    }

    /// Applies `items` (in log order) and moves the checkpoint to the last of them, or to
    /// `covered_through` when the caller knows every position up to it has been seen.
    ///
    /// The cached state is taken out for the batch and put back only when the batch committed:
    /// after a failure or a moved checkpoint, the rule book (which may hold versions of a
    /// rolled-back batch) and the checkpoint are read again.
    pub(crate) async fn apply(
        &mut self,
        items: Vec<ReplayItem>,
        covered_through: Option<u64>,
    ) -> Result<ApplyOutcome, ProjectorError> {
        self.apply_as(items, covered_through, NewRows::Copy).await
    }

    /// Like [`Applier::apply`], with upserts from the start: for a batch whose COPY has already met
    /// a row it took for new.
    pub(crate) async fn apply_with_upserts(
        &mut self,
        items: Vec<ReplayItem>,
    ) -> Result<ApplyOutcome, ProjectorError> {
        self.apply_as(items, None, NewRows::Upsert).await
    }

    async fn apply_as(
        &mut self,
        mut items: Vec<ReplayItem>,
        covered_through: Option<u64>,
        new_rows: NewRows,
    ) -> Result<ApplyOutcome, ProjectorError> {
        let mut state = match self.state.take() {
            Some(state) => state,
            None => self.load_state().await?,
        };
        // Positions at or below the checkpoint were applied already; if the checkpoint moved
        // meanwhile, the transaction sees it and nothing is applied.
        items.retain(|item| item.sequence() > state.checkpoint);
        let range = items
            .first()
            .zip(items.last())
            .map(|(first, last)| (first.sequence(), last.sequence()));
        let mut result = self
            .apply_in_transaction(&mut state, items, covered_through, new_rows)
            .await;
        if let (Err(error), Some((from, through))) = (&result, range)
            && new_rows == NewRows::Copy
            && store::is_existing_row(error)
        {
            tracing::warn!(
                error.message = %error,
                error.cause_chain = %error_chain(error),
                "a row the batch took for new exists; applying the batch again with upserts"
            );
            state = self.load_state().await?;
            let items = self.reread(from, through).await?;
            result = self
                .apply_in_transaction(&mut state, items, covered_through, NewRows::Upsert)
                .await;
        }
        if let (Err(error), Some((from, through))) = (&result, range)
            && store::is_rejected_value(error)
        {
            tracing::warn!(
                error.message = %error,
                error.cause_chain = %error_chain(error),
                "PostgreSQL refused a value of the batch; applying it again commit by commit"
            );
            // The rule book may hold versions of the rolled-back batch: the isolated run reads
            // its state again.
            return self.apply_one_by_one(from, through, covered_through).await;
        }
        let outcome = result?;
        if matches!(outcome, ApplyOutcome::Applied(_)) {
            self.state = Some(state);
        }
        Ok(outcome)
    }

    /// Applies the positions `from..=through` again, one per transaction, after PostgreSQL refused
    /// a value of the batch that held them. A commit whose own write is refused too (a data
    /// exception or a constraint violation: the same commit would be refused on every retry) is
    /// parked with the reason, and the checkpoint moves past it in the same transaction; every
    /// other commit is applied as usual. Other errors end the run as they would a batch: what is
    /// committed stays committed, and the caller resumes from the checkpoint. Finally the checkpoint
    /// moves to `covered_through`, as the batch's would have.
    #[tracing::instrument(name = "projector.isolate", skip_all, fields(schema = %self.target.schema, from, through))]
    pub(crate) async fn apply_one_by_one(
        &mut self,
        from: u64,
        through: u64,
        covered_through: Option<u64>,
    ) -> Result<ApplyOutcome, ProjectorError> {
        self.state = None;
        let items = self.reread(from, through).await?;
        let mut total = AppliedBatch::default();
        for item in items {
            let mut state = match self.state.take() {
                Some(state) => state,
                None => self.load_state().await?,
            };
            if item.sequence() <= state.checkpoint {
                self.state = Some(state);
                continue;
            }
            let mut parked = ParkedRow::of(&item);
            let outcome = match self
                .apply_in_transaction(&mut state, vec![item], None, NewRows::Upsert)
                .await
            {
                Err(error) if store::is_rejected_value(&error) => {
                    let sqlstate = store::rejected_sqlstate(&error).unwrap_or_default();
                    parked.error = format!("{} (SQLSTATE {sqlstate})", error_chain(&error));
                    tracing::error!(
                        seq = parked.sequence,
                        subject = %parked.subject,
                        error.message = %parked.error,
                        "PostgreSQL refused a value of this commit; parked and skipped"
                    );
                    // Its fold may have added rules versions to the rolled-back state.
                    state = self.load_state().await?;
                    self.park_in_transaction(&mut state, parked).await?
                }
                other => other?,
            };
            match outcome {
                ApplyOutcome::Applied(batch) => {
                    total.add(&batch);
                    self.state = Some(state);
                }
                ApplyOutcome::Moved { .. } => return Ok(outcome),
            }
        }
        if let Some(covered) = covered_through {
            let mut state = match self.state.take() {
                Some(state) => state,
                None => self.load_state().await?,
            };
            if covered > state.checkpoint {
                let outcome = self
                    .apply_in_transaction(&mut state, Vec::new(), Some(covered), NewRows::Upsert)
                    .await?;
                match outcome {
                    ApplyOutcome::Applied(batch) => total.add(&batch),
                    ApplyOutcome::Moved { .. } => return Ok(outcome),
                }
            }
            self.state = Some(state);
        }
        total.checkpoint = self.checkpoint().await?;
        Ok(ApplyOutcome::Applied(total))
    }

    /// Records one position as parked and moves the checkpoint to it, in one transaction.
    async fn park_in_transaction(
        &mut self,
        state: &mut AppliedState,
        row: ParkedRow,
    ) -> Result<ApplyOutcome, ProjectorError> {
        let started = Instant::now();
        let mut connection = CloseIfCancelled(Some(
            self.pool
                .acquire()
                .await
                .map_err(ProjectorError::db("beginning a batch"))?,
        ));
        let outcome = park_on(connection.get(), &self.target, state, row, started).await;
        connection.finished();
        outcome
    }

    #[tracing::instrument(
        name = "projector.apply",
        skip_all,
        fields(schema = %self.target.schema, positions = items.len())
    )]
    async fn apply_in_transaction(
        &mut self,
        state: &mut AppliedState,
        items: Vec<ReplayItem>,
        covered_through: Option<u64>,
        new_rows: NewRows,
    ) -> Result<ApplyOutcome, ProjectorError> {
        let started = Instant::now();
        // Guarded like the pipelined write: a rebuild or a shutdown that drops this future
        // mid-statement must not hand the connection back to the pool.
        let mut connection = CloseIfCancelled(Some(
            self.pool
                .acquire()
                .await
                .map_err(ProjectorError::db("beginning a batch"))?,
        ));
        let outcome = self
            .apply_on(
                connection.get(),
                state,
                items,
                covered_through,
                new_rows,
                started,
            )
            .await;
        connection.finished();
        outcome
    }

    async fn apply_on(
        &mut self,
        connection: &mut sqlx::PgConnection,
        state: &mut AppliedState,
        items: Vec<ReplayItem>,
        covered_through: Option<u64>,
        new_rows: NewRows,
        started: Instant,
    ) -> Result<ApplyOutcome, ProjectorError> {
        let expected = state.checkpoint;
        let mut phases = PhaseTimes::default();
        let mut transaction = sqlx::Connection::begin(connection)
            .await
            .map_err(ProjectorError::db("beginning a batch"))?;
        // Not waiting for the WAL flush is safe here: a batch lost in a database crash loses its
        // rows and its checkpoint together, and the projector simply applies it again.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .persistent(false)
            .execute(&mut *transaction)
            .await
            .map_err(ProjectorError::db("beginning a batch"))?;
        let checkpoint = store::lock_checkpoint(&mut transaction, &self.target).await?;
        if checkpoint != expected {
            return Ok(ApplyOutcome::Moved { checkpoint });
        }
        let last_item = items.last().map_or(checkpoint, ReplayItem::sequence);
        let new_checkpoint = last_item.max(covered_through.unwrap_or(0)).max(checkpoint);
        if items.is_empty() && new_checkpoint == checkpoint {
            return Ok(ApplyOutcome::Applied(AppliedBatch::nothing(
                checkpoint, phases,
            )));
        }

        let (stored, drafts) = self
            .load_inputs(&mut transaction, &items, Carry::default())
            .await?;
        let loaded = Instant::now();
        phases.load = (loaded - started).as_secs_f64();
        let positions = items.len() as u64;
        let changes = fold_batch(items, stored, &mut state.rules, &self.directory, &drafts)?;
        let copy = new_rows.encode(&changes);
        let folded = Instant::now();
        phases.fold = (folded - loaded).as_secs_f64();
        store::write_changes(&mut transaction, &self.target.schema, &changes, copy).await?;
        store::set_checkpoint(&mut transaction, &self.target, new_checkpoint).await?;
        let written = Instant::now();
        phases.write = (written - folded).as_secs_f64();
        transaction
            .commit()
            .await
            .map_err(ProjectorError::db("committing a batch"))?;
        phases.commit = written.elapsed().as_secs_f64();
        state.checkpoint = new_checkpoint;
        Ok(ApplyOutcome::Applied(AppliedBatch {
            positions,
            events: changes.events,
            parked: changes.parked.len() as u64,
            checkpoint: new_checkpoint,
            last_recorded_at: changes.last_recorded_at,
            phases,
        }))
    }
}

/// Records `row` as parked and moves the checkpoint to its position, if the checkpoint is still the
/// one `state` holds.
async fn park_on(
    connection: &mut sqlx::PgConnection,
    target: &Target,
    state: &mut AppliedState,
    row: ParkedRow,
    started: Instant,
) -> Result<ApplyOutcome, ProjectorError> {
    let mut transaction = sqlx::Connection::begin(connection)
        .await
        .map_err(ProjectorError::db("beginning a batch"))?;
    let checkpoint = store::lock_checkpoint(&mut transaction, target).await?;
    if checkpoint != state.checkpoint {
        return Ok(ApplyOutcome::Moved { checkpoint });
    }
    let sequence = u64::try_from(row.sequence).unwrap_or(0);
    store::write_parked(&mut transaction, std::slice::from_ref(&row)).await?;
    store::set_checkpoint(&mut transaction, target, sequence).await?;
    let written = Instant::now();
    transaction
        .commit()
        .await
        .map_err(ProjectorError::db("committing a batch"))?;
    state.checkpoint = sequence;
    Ok(ApplyOutcome::Applied(AppliedBatch {
        positions: 1,
        parked: 1,
        ..AppliedBatch::nothing(
            sequence,
            PhaseTimes {
                write: (written - started).as_secs_f64(),
                commit: written.elapsed().as_secs_f64(),
                ..PhaseTimes::default()
            },
        )
    }))
}

/// A batch folded while the batch before it is still being written (see [`Projector`]): its rows,
/// ready to write, and the positions it covers.
#[derive(Debug)]
pub(crate) struct Folded {
    /// How many positions the batch holds (the fold consumed them; the upsert fallback reads
    /// `expected_checkpoint + 1 ..= checkpoint` again).
    positions: u64,
    changes: BatchChanges,
    /// The batch's new rows, encoded for COPY.
    new_rows: NewRowsCopy,
    /// The checkpoint the write expects to find (the previous batch's).
    expected_checkpoint: u64,
    checkpoint: u64,
    phases: PhaseTimes,
}

/// What writing a [`Folded`] batch did.
#[derive(Debug)]
enum Written {
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

/// Sessions folded but not yet committed: the next batch continues them from here instead of from
/// the database, which does not hold them yet.
pub(crate) type Carry = HashMap<SessionKey, StoredSession>;

impl Applier {
    /// What folding `items` needs besides the rule book: the stored state of the sessions it
    /// continues (from `carry` where the batch in flight holds them, else from `connection`), the
    /// drafts it re-prices, and the clinics and therapists its claims name (into the directory).
    async fn load_inputs(
        &mut self,
        connection: &mut sqlx::PgConnection,
        items: &[ReplayItem],
        mut carry: Carry,
    ) -> Result<
        (
            HashMap<SessionKey, StoredSession>,
            Vec<reprice::StoredDraft>,
        ),
        ProjectorError,
    > {
        let (mut to_load, mut clinics, mut therapists) = batch_references(items);
        let drafts = store::load_drafts(connection, &self.target.schema, items).await?;
        reprice::add_references(&drafts, &mut to_load, &mut clinics);
        let mut stored: HashMap<SessionKey, StoredSession> = HashMap::default();
        let mut from_database = Vec::with_capacity(to_load.len());
        for key in to_load {
            match carry.remove(&key) {
                Some(session) => {
                    stored.insert(key, session);
                }
                None => from_database.push(key),
            }
        }
        stored.extend(store::load_sessions(connection, &self.target.schema, &from_database).await?);
        therapists.extend(
            stored
                .values()
                .filter_map(|session| session.footprint.therapist),
        );
        store::load_directory(
            &mut self.directory,
            &self.pool,
            &self.target.schema,
            items,
            &clinics,
            &therapists,
        )
        .await?;
        Ok((stored, drafts))
    }

    /// Folds `items` for a write that will follow the batch now being written (if any), whose
    /// sessions are in `carry`. Reads only committed state from the database, outside any
    /// transaction; the write checks that the checkpoint is still the one folded against. Draft
    /// re-pricing needs the previous batch committed: the caller waits for it when
    /// [`needs_committed_state`] says so.
    pub(crate) async fn fold_ahead(
        &mut self,
        mut items: Vec<ReplayItem>,
        carry: Carry,
    ) -> Result<Folded, ProjectorError> {
        let mut state = match self.state.take() {
            Some(state) => state,
            None => self.load_state().await?,
        };
        let started = Instant::now();
        items.retain(|item| item.sequence() > state.checkpoint);
        let expected_checkpoint = state.checkpoint;
        let checkpoint = items
            .last()
            .map_or(expected_checkpoint, ReplayItem::sequence);
        let mut connection = self
            .pool
            .acquire()
            .await
            .map_err(ProjectorError::db("connecting"))?;
        let (stored, drafts) = self.load_inputs(&mut connection, &items, carry).await?;
        drop(connection);
        let loaded = Instant::now();
        let positions = items.len() as u64;
        let changes = fold_batch(items, stored, &mut state.rules, &self.directory, &drafts)?;
        let new_rows = NewRowsCopy::encode(&changes);
        let phases = PhaseTimes {
            load: (loaded - started).as_secs_f64(),
            fold: loaded.elapsed().as_secs_f64(),
            ..PhaseTimes::default()
        };
        // The rule book now includes this batch's versions; if its write fails, `reset` drops it.
        state.checkpoint = checkpoint;
        self.state = Some(state);
        Ok(Folded {
            positions,
            changes,
            new_rows,
            expected_checkpoint,
            checkpoint,
            phases,
        })
    }
}

impl Folded {
    /// The sessions this batch leaves behind, for folding the next batch before this one commits.
    fn take_carry(&mut self) -> Carry {
        self.changes
            .sessions
            .iter_mut()
            .filter_map(|row| {
                let stored = row.next_stored.take()?;
                let key = SessionKey {
                    chain: row.chain,
                    session: row.session,
                };
                Some((key, stored))
            })
            .collect()
    }
}

/// Whether folding `items` needs every earlier batch committed: re-pricing reads draft claims from
/// the database, and the batch being written may hold some.
fn needs_committed_state(items: &[ReplayItem]) -> bool {
    reprice::has_rules_changes(items)
}

/// Writes a folded batch and its checkpoint in one transaction, if the checkpoint is still the one
/// it was folded against.
async fn write_folded(
    pool: PgPool,
    target: Target,
    folded: Folded,
) -> Result<Written, ProjectorError> {
    let started = Instant::now();
    let mut connection = CloseIfCancelled(Some(
        pool.acquire()
            .await
            .map_err(ProjectorError::db("beginning a batch"))?,
    ));
    let written = write_folded_on(connection.get(), target, folded, started).await;
    connection.finished();
    written
}

/// A pooled connection that is closed, not returned to the pool, if the write using it is
/// cancelled (a dropped projector aborts its write task, a dropped `process_next_batch` future its
/// sequential write): a connection dropped mid-statement can be out of step with the server, and
/// the next user of the pool would read the wrong replies.
struct CloseIfCancelled(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>);

impl CloseIfCancelled {
    fn get(&mut self) -> &mut sqlx::PgConnection {
        self.0
            .as_deref_mut()
            .expect("the connection is held until the write finishes")
    }

    /// The write ran to its end (committed, rolled back or failed in step): the connection may go
    /// back to the pool.
    fn finished(mut self) {
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

async fn write_folded_on(
    connection: &mut sqlx::PgConnection,
    target: Target,
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
    let mut transaction = sqlx::Connection::begin(connection)
        .await
        .map_err(ProjectorError::db("beginning a batch"))?;
    // As in `apply_in_transaction`: a batch lost in a database crash loses its checkpoint too.
    sqlx::query("SET LOCAL synchronous_commit = off")
        .persistent(false)
        .execute(&mut *transaction)
        .await
        .map_err(ProjectorError::db("beginning a batch"))?;
    let found = store::lock_checkpoint(&mut transaction, &target).await?;
    if found != expected_checkpoint {
        return Ok(Written::Moved { checkpoint: found });
    }
    if positions == 0 {
        return Ok(Written::Applied(AppliedBatch::nothing(found, phases)));
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
    match store::write_changes(&mut transaction, &target.schema, &changes, Some(new_rows)).await {
        Err(error) if store::is_existing_row(&error) => {
            tracing::warn!(
                error.message = %error,
                error.cause_chain = %error_chain(&error),
                "a row the batch took for new exists; applying the batch again with upserts"
            );
            return Ok(Written::ExistingRow { from, through });
        }
        Err(error) if store::is_rejected_value(&error) => return rejected(&error),
        other => other?,
    }
    store::set_checkpoint(&mut transaction, &target, checkpoint).await?;
    let written = Instant::now();
    phases.write = (written - started).as_secs_f64();
    // A deferred constraint is checked at commit.
    match transaction
        .commit()
        .await
        .map_err(ProjectorError::db("committing a batch"))
    {
        Err(error) if store::is_rejected_value(&error) => return rejected(&error),
        other => other?,
    }
    phases.commit = written.elapsed().as_secs_f64();
    Ok(Written::Applied(AppliedBatch {
        positions,
        events: changes.events,
        parked: changes.parked.len() as u64,
        checkpoint,
        last_recorded_at: changes.last_recorded_at,
        phases,
    }))
}

/// The sessions whose stored state the batch needs, and the clinics and therapists its claims may
/// need. A session whose first commit in the batch schedules it is new: scheduling is only ever
/// decided for a session with no events (the session domain refuses it otherwise), so it has no
/// stored row to read.
fn batch_references(items: &[ReplayItem]) -> (Vec<SessionKey>, HashSet<Uuid>, HashSet<Uuid>) {
    let mut seen: HashSet<SessionKey> = HashSet::default();
    let mut to_load = Vec::new();
    let mut clinics = HashSet::default();
    let mut therapists = HashSet::default();
    for item in items {
        let ReplayItem::Commit(recorded) = item else {
            continue;
        };
        let commit = &recorded.commit;
        if commit.aggregate_kind != AggregateKind::Session {
            continue;
        }
        if let Some(clinic) = commit.clinic {
            clinics.insert(clinic.as_uuid());
        }
        let key = SessionKey {
            chain: commit.chain.as_uuid(),
            session: commit.aggregate_id.as_uuid(),
        };
        let starts_new = matches!(
            commit.events.first().map(|record| &record.event),
            Some(Event::SessionScheduled(_))
        );
        if seen.insert(key) && !starts_new {
            to_load.push(key);
        }
        for record in &commit.events {
            if let Event::SessionScheduled(scheduled) = &record.event {
                therapists.insert(scheduled.therapist.as_uuid());
            }
        }
    }
    (to_load, clinics, therapists)
}

/// Reads the log ahead of the applier in a background task, so that reading the next batch
/// overlaps with writing the current one. Bounded: about one batch waits in the channel (with the
/// batch being applied, two batches of commits are in memory at most).
///
/// The task hands over what the log has delivered in chunks of up to [`READ_CHUNK`] positions, not
/// one at a time: while catching up the channel is full, and a per-position handover woke the
/// reading task once per commit (millions of wake-ups per replay) to refill one slot.
#[derive(Debug)]
struct ReadAhead {
    receiver: mpsc::Receiver<Vec<Result<ReplayItem, LogError>>>,
    /// The rest of the chunk received last; taken before the next chunk.
    chunk: std::vec::IntoIter<Result<ReplayItem, LogError>>,
    task: JoinHandle<()>,
}

/// The most positions one handover from the reading task carries. Small enough that a projector
/// following the head of the log gets each commit as soon as it is read (a chunk never waits to
/// fill: it holds what had arrived), large enough that the handover costs nothing per commit.
const READ_CHUNK: usize = 256;

/// What [`ReadAhead::try_next`] found without waiting.
enum Buffered {
    Item(Result<ReplayItem, LogError>),
    Empty,
    Closed,
}

impl ReadAhead {
    async fn open(log: &EventLog, from: u64, batch: usize) -> Result<Self, LogError> {
        let replay = log.follow(from, ReplayFilter::All).await?;
        let (sender, receiver) = mpsc::channel(batch.div_ceil(READ_CHUNK).max(1));
        let task = tokio::spawn(async move {
            // Every chunk holds at least one position; an error is always the last of its chunk,
            // because it ends the replay.
            let mut chunks = replay.ready_chunks(READ_CHUNK);
            while let Some(chunk) = chunks.next().await {
                let failed = chunk.last().is_some_and(Result::is_err);
                if sender.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Self {
            receiver,
            chunk: Vec::new().into_iter(),
            task,
        })
    }

    /// The next position, waiting for the reading task if nothing is buffered; `None` once the
    /// reading task has stopped. Cancel-safe: a position is taken only when it is returned.
    async fn next(&mut self) -> Option<Result<ReplayItem, LogError>> {
        loop {
            if let Some(item) = self.chunk.next() {
                return Some(item);
            }
            self.chunk = self.receiver.recv().await?.into_iter();
        }
    }

    /// The next position if one is already read.
    fn try_next(&mut self) -> Buffered {
        loop {
            if let Some(item) = self.chunk.next() {
                return Buffered::Item(item);
            }
            match self.receiver.try_recv() {
                Ok(chunk) => self.chunk = chunk.into_iter(),
                Err(TryRecvError::Empty) => return Buffered::Empty,
                Err(TryRecvError::Disconnected) => return Buffered::Closed,
            }
        }
    }

    /// About how many positions are read and waiting (whole chunks counted as full).
    fn buffered(&self) -> usize {
        self.chunk.len() + self.receiver.len() * READ_CHUNK
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The write of one batch, running while the next batch is read and folded.
#[derive(Debug)]
struct InFlight {
    task: JoinHandle<Result<Written, ProjectorError>>,
}

impl InFlight {
    async fn finish(mut self) -> Result<Written, ProjectorError> {
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

/// The live projector over the whole log, writing the live schema.
///
/// Batches are pipelined: while one batch's rows are written (PostgreSQL's work), the next batch is
/// read and folded (ours), continuing the sessions of the batch being written from memory. Writes
/// still commit one at a time, in log order, each with its checkpoint; a failed write discards the
/// batch folded on top of it, and the projector resumes from the committed checkpoint.
#[derive(Debug)]
pub struct Projector {
    log: EventLog,
    applier: Applier,
    config: ProjectorConfig,
    reader: Option<ReadAhead>,
    metrics: Arc<Metrics>,
    last_stream_check: Option<Instant>,
    in_flight: Option<InFlight>,
    /// The sessions of the batch in flight, as its write will leave them.
    carry: Carry,
    /// Bumped whenever the pipeline is reset, so a batch folded before the reset is dropped.
    generation: u64,
}

/// How often a busy projector asks the log for its last sequence (for the lag metrics).
const STREAM_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The longest pause between retries while the database or the log is unavailable.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl Projector {
    /// Validates the configuration and reads the reference tables; connects lazily.
    pub fn build(
        log: EventLog,
        pool: PgPool,
        config: ProjectorConfig,
    ) -> Result<Self, ProjectorError> {
        config.validate()?;
        let reference = read_reference(&config.rules_dir)?;
        let target = Target {
            schema: crate::LIVE_SCHEMA.to_owned(),
            chain: None,
        };
        Ok(Self {
            applier: Applier::new(pool, target, reference, log.clone(), ReplayFilter::All),
            log,
            config,
            reader: None,
            metrics: Arc::new(Metrics::default()),
            last_stream_check: None,
            in_flight: None,
            carry: Carry::default(),
            generation: 0,
        })
    }

    /// The metrics this projector updates (shared with the HTTP endpoint).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// What the HTTP endpoint reads: these metrics, and this projector's database and log for
    /// `/ready`'s checks (see [`crate::http`]).
    pub fn probes(&self) -> crate::http::Probes {
        crate::http::Probes {
            metrics: self.metrics(),
            pool: self.applier.pool.clone(),
            log: self.log.clone(),
            ready_max_lag: self.config.ready_max_lag,
        }
    }

    /// The last log sequence whose effects are committed (after waiting for a write in flight).
    pub async fn checkpoint(&mut self) -> Result<u64, ProjectorError> {
        self.finish_in_flight().await?;
        self.applier.checkpoint().await
    }

    /// Reads one batch (up to `max_batch_commits` positions or `max_batch_wait` once the first has
    /// arrived) and applies it in one transaction. Any error leaves the tables as they were; the
    /// next call resumes from the committed checkpoint.
    pub async fn process_next_batch(&mut self) -> Result<Outcome, ProjectorError> {
        let result = self.step().await;
        match &result {
            Ok(_) => self.metrics.record_success(),
            Err(error) => {
                self.reset_pipeline();
                self.metrics.record_failure(error_chain(error));
            }
        }
        result
    }

    /// Forgets everything not committed: the reader, the cached state, the batch in flight (its
    /// transaction rolls back if it has not committed) and the sessions carried over from it.
    fn reset_pipeline(&mut self) {
        self.reader = None;
        self.applier.reset();
        self.in_flight = None;
        self.carry.clear();
        self.generation += 1;
    }

    /// Waits for the batch in flight, if any, and records it. Returns the positions it committed.
    async fn finish_in_flight(&mut self) -> Result<u64, ProjectorError> {
        let Some(in_flight) = self.in_flight.take() else {
            return Ok(0);
        };
        let written = match in_flight.finish().await {
            Ok(written) => written,
            Err(error) => {
                self.reset_pipeline();
                return Err(error);
            }
        };
        match written {
            Written::Applied(batch) => Ok(self.record_applied(&batch)),
            Written::Moved { checkpoint } => {
                tracing::info!(
                    checkpoint,
                    "the checkpoint moved under the projector (a rebuild was swapped in); resuming from it"
                );
                self.reset_pipeline();
                Ok(0)
            }
            Written::ExistingRow { from, through } => {
                // Rare (a log that schedules a session twice): the batch folded on top of this one
                // is dropped, this one is read again and applied with upserts, and reading resumes
                // after it.
                self.metrics.record_reapplied();
                self.reset_pipeline();
                let items = self.applier.reread(from, through).await?;
                let outcome = self.applier.apply_with_upserts(items).await?;
                Ok(self.record_fallback(outcome))
            }
            Written::Rejected { from, through } => {
                // Rare (a commit holding a value PostgreSQL refuses, such as a NUL in a text): the
                // batch folded on top of this one is dropped, this one is applied again commit by
                // commit with the refused commits parked, and reading resumes after it.
                self.metrics.record_isolated();
                self.reset_pipeline();
                let outcome = self.applier.apply_one_by_one(from, through, None).await?;
                Ok(self.record_fallback(outcome))
            }
        }
    }

    /// Records a committed batch in the metrics; returns the positions it applied.
    fn record_applied(&self, batch: &AppliedBatch) -> u64 {
        self.metrics.record_batch(
            batch.events,
            batch.parked,
            batch.checkpoint,
            batch.last_recorded_at,
            &batch.phases,
        );
        batch.positions
    }

    /// Records a batch applied again outside the pipeline; returns the positions it applied.
    fn record_fallback(&mut self, outcome: ApplyOutcome) -> u64 {
        match outcome {
            ApplyOutcome::Applied(batch) => self.record_applied(&batch),
            ApplyOutcome::Moved { .. } => {
                self.reset_pipeline();
                0
            }
        }
    }

    async fn step(&mut self) -> Result<Outcome, ProjectorError> {
        let checkpoint = self.applier.checkpoint().await?;
        if self.in_flight.is_none() {
            self.metrics.record_checkpoint(checkpoint);
        }
        let reader = match &mut self.reader {
            Some(reader) => reader,
            None => self.reader.insert(
                ReadAhead::open(&self.log, checkpoint + 1, self.config.max_batch_commits).await?,
            ),
        };
        let read_started = Instant::now();
        let first = match tokio::time::timeout(self.config.idle_wait, reader.next()).await {
            Err(_elapsed) => {
                // Nothing new: finish the write in flight before saying anything about the state.
                let finished = self.finish_in_flight().await?;
                if finished > 0 {
                    return Ok(Outcome::Applied(finished));
                }
                let checkpoint = self.applier.checkpoint().await?;
                let last = self.log.last_sequence().await?;
                self.last_stream_check = Some(Instant::now());
                self.metrics.record_stream_last(last);
                return Ok(if checkpoint >= last && self.in_flight.is_none() {
                    Outcome::Idle
                } else {
                    Outcome::Applied(0)
                });
            }
            Ok(None) => {
                self.reader = None;
                return Ok(Outcome::Applied(self.finish_in_flight().await?));
            }
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(Some(Ok(item))) => item,
        };
        // Sized by what the reader has buffered: a full batch while catching up, which then seldom
        // grows the vector (each growth moves every item read so far), and a few items while
        // following, so a projector at the head of the log does not allocate a full batch a step.
        let mut items: Vec<ReplayItem> =
            Vec::with_capacity((reader.buffered() + 1).min(self.config.max_batch_commits));
        items.push(first);
        let mut stream_error = None;
        let mut reader_closed = false;
        let deadline = Instant::now() + self.config.max_batch_wait;
        while items.len() < self.config.max_batch_commits {
            // Take what is already read without arming a timer; wait (bounded) only when nothing
            // is buffered.
            let next = match reader.try_next() {
                Buffered::Item(item) => Some(item),
                Buffered::Closed => {
                    reader_closed = true;
                    break;
                }
                Buffered::Empty => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining.is_zero() {
                        break;
                    }
                    match tokio::time::timeout(remaining, reader.next()).await {
                        Err(_elapsed) => break,
                        Ok(None) => {
                            reader_closed = true;
                            break;
                        }
                        Ok(Some(item)) => Some(item),
                    }
                }
            };
            match next {
                None => break,
                Some(Err(error)) => {
                    stream_error = Some(error);
                    break;
                }
                Some(Ok(item)) => items.push(item),
            }
        }
        if stream_error.is_some() || reader_closed {
            self.reader = None;
        }
        let read_seconds = read_started.elapsed().as_secs_f64();

        let mut finished = 0;
        if self.in_flight.is_some() && needs_committed_state(&items) {
            finished += self.finish_in_flight().await?;
        }
        let generation = self.generation;
        let carry = std::mem::take(&mut self.carry);
        let folded = self.applier.fold_ahead(items, carry).await;
        // The batch before is committed (or not) before this one is handed to the writer.
        finished += self.finish_in_flight().await?;
        let mut folded = folded?;
        if self.generation != generation {
            // The write before failed over or the checkpoint moved: this fold stood on it.
            return Ok(Outcome::Applied(finished));
        }
        folded.phases.read = read_seconds;
        self.carry = folded.take_carry();
        let write = write_folded(
            self.applier.pool.clone(),
            self.applier.target.clone(),
            folded,
        );
        self.in_flight = Some(InFlight {
            task: tokio::spawn(write),
        });

        let stale = self
            .last_stream_check
            .is_none_or(|checked| checked.elapsed() >= STREAM_CHECK_INTERVAL);
        if stale {
            let last = self.log.last_sequence().await?;
            self.metrics.record_stream_last(last);
            self.last_stream_check = Some(Instant::now());
        }
        match stream_error {
            Some(error) => {
                self.finish_in_flight().await?;
                Err(error.into())
            }
            None => Ok(Outcome::Applied(finished)),
        }
    }

    /// Repeats [`Projector::process_next_batch`] until `shutdown` is cancelled. A batch in flight is
    /// finished (committed or rolled back) before returning. While PostgreSQL or NATS is
    /// unavailable it waits with exponential back-off and resumes from the checkpoint.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ProjectorError> {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.process_next_batch().await {
                Ok(_) => backoff = Duration::from_millis(100),
                Err(error) if error.is_transient() => {
                    tracing::warn!(
                        error.message = %error,
                        error.cause_chain = %error_chain(&error),
                        retry_in_ms = backoff.as_millis() as u64,
                        "projector batch failed; retrying from the checkpoint"
                    );
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(error) => return Err(error),
            }
        }
        // The batch handed to the writer last is committed (or rolled back) before returning.
        self.finish_in_flight().await?;
        tracing::info!("projector stopped");
        Ok(())
    }
}
