//! Applying batches to one target exactly once: the sequential path (a rebuild, the upsert and
//! commit-by-commit fallbacks) and the fold ahead of the pipelined write.

use std::time::Instant;

use claimledger_billing::ReferenceData;
use claimledger_derive::batch::fold_batch;
use claimledger_derive::directory::Directory;
use claimledger_derive::hashing::{HashMap, HashSet};
use claimledger_derive::keys::SessionKey;
use claimledger_derive::reprice;
use claimledger_derive::rows::{BatchChanges, ParkedRow, StoredSession};
use claimledger_derive::rules::LogRules;
use claimledger_events::{AggregateKind, Event, ReplayItem, error_chain};
use claimledger_log::{EventLog, ReplayFilter};
use futures::StreamExt;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::transaction::{BatchTransaction, Begun, CloseIfCancelled};
use crate::error::ProjectorError;
use crate::metrics::PhaseTimes;
use crate::store::{self, NewRows, NewRowsCopy, Target};

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
    pub(super) fn nothing(checkpoint: u64, phases: PhaseTimes) -> AppliedBatch {
        AppliedBatch {
            checkpoint,
            phases,
            ..AppliedBatch::default()
        }
    }

    /// Adds `later`, a batch committed after this one.
    pub(super) fn add(&mut self, later: &AppliedBatch) {
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
    /// The pool it writes with.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema and checkpoint it writes.
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

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
    pub(super) async fn reread(
        &self,
        from: u64,
        through: u64,
    ) -> Result<Vec<ReplayItem>, ProjectorError> {
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
            && error.is_existing_row()
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
            && error.is_rejected_value()
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
                Err(error) if error.is_rejected_value() => {
                    let sqlstate = error.rejected_sqlstate().unwrap_or_default();
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
        let mut connection = CloseIfCancelled::acquire(&self.pool).await?;
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
        let mut connection = CloseIfCancelled::acquire(&self.pool).await?;
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
        connection: &mut PgConnection,
        state: &mut AppliedState,
        items: Vec<ReplayItem>,
        covered_through: Option<u64>,
        new_rows: NewRows,
        started: Instant,
    ) -> Result<ApplyOutcome, ProjectorError> {
        let checkpoint = state.checkpoint;
        let mut phases = PhaseTimes::default();
        let mut batch = match BatchTransaction::begin(connection, &self.target, checkpoint).await? {
            Begun::Open(batch) => batch,
            Begun::Moved { checkpoint } => return Ok(ApplyOutcome::Moved { checkpoint }),
        };
        let last_item = items.last().map_or(checkpoint, ReplayItem::sequence);
        let new_checkpoint = last_item.max(covered_through.unwrap_or(0)).max(checkpoint);
        if items.is_empty() && new_checkpoint == checkpoint {
            return Ok(ApplyOutcome::Applied(AppliedBatch::nothing(
                checkpoint, phases,
            )));
        }

        let (stored, drafts) = self
            .load_inputs(batch.connection(), &items, Carry::default())
            .await?;
        let loaded = Instant::now();
        phases.load = (loaded - started).as_secs_f64();
        let positions = items.len() as u64;
        let changes = fold_batch(items, stored, &mut state.rules, &self.directory, &drafts)?;
        let copy = new_rows.encode(&changes);
        let folded = Instant::now();
        phases.fold = (folded - loaded).as_secs_f64();
        store::write_changes(batch.connection(), &self.target.schema, &changes, copy).await?;
        batch
            .commit(&self.target, new_checkpoint, folded, &mut phases)
            .await?;
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
    connection: &mut PgConnection,
    target: &Target,
    state: &mut AppliedState,
    row: ParkedRow,
    started: Instant,
) -> Result<ApplyOutcome, ProjectorError> {
    let mut batch = match BatchTransaction::begin(connection, target, state.checkpoint).await? {
        Begun::Open(batch) => batch,
        Begun::Moved { checkpoint } => return Ok(ApplyOutcome::Moved { checkpoint }),
    };
    let sequence = u64::try_from(row.sequence).unwrap_or(0);
    store::write_parked(batch.connection(), std::slice::from_ref(&row)).await?;
    let mut phases = PhaseTimes::default();
    batch.commit(target, sequence, started, &mut phases).await?;
    state.checkpoint = sequence;
    Ok(ApplyOutcome::Applied(AppliedBatch {
        positions: 1,
        parked: 1,
        ..AppliedBatch::nothing(sequence, phases)
    }))
}

/// A batch folded while the batch before it is still being written (see [`Projector`]): its rows,
/// ready to write, and the positions it covers.
#[derive(Debug)]
pub(crate) struct Folded {
    /// How many positions the batch holds (the fold consumed them; the upsert fallback reads
    /// `expected_checkpoint + 1 ..= checkpoint` again).
    pub(super) positions: u64,
    pub(super) changes: BatchChanges,
    /// The batch's new rows, encoded for COPY.
    pub(super) new_rows: NewRowsCopy,
    /// The checkpoint the write expects to find (the previous batch's).
    pub(super) expected_checkpoint: u64,
    pub(super) checkpoint: u64,
    pub(super) phases: PhaseTimes,
}

/// Sessions folded but not yet committed: the next batch continues them from here instead of from
/// the database, which does not hold them yet.
pub(super) type Carry = HashMap<SessionKey, StoredSession>;

impl Applier {
    /// What folding `items` needs besides the rule book: the stored state of the sessions it
    /// continues (from `carry` where the batch in flight holds them, else from `connection`), the
    /// drafts it re-prices, and the clinics and therapists its claims name (into the directory).
    async fn load_inputs(
        &mut self,
        connection: &mut PgConnection,
        items: &[ReplayItem],
        mut carry: Carry,
    ) -> Result<
        (
            HashMap<SessionKey, StoredSession>,
            Vec<reprice::StoredDraft>,
        ),
        ProjectorError,
    > {
        let BatchReferences {
            mut to_load,
            mut clinics,
            mut therapists,
            mut referrals,
        } = batch_references(items);
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
        // A stored session's referral was named when it was scheduled, in an earlier batch: by
        // its history's first event, since only a session with no events can be scheduled.
        for session in stored.values() {
            if let Ok(history) = &session.events {
                referrals.extend(history.events.first().and_then(scheduled_referral));
            }
        }
        store::load_directory(
            &mut self.directory,
            &self.pool,
            &self.target.schema,
            items,
            &clinics,
            &therapists,
            &referrals,
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
    pub(super) fn take_carry(&mut self) -> Carry {
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
pub(super) fn needs_committed_state(items: &[ReplayItem]) -> bool {
    reprice::has_rules_changes(items)
}

/// What a batch's claims may name, for the directory, and the sessions it continues.
struct BatchReferences {
    to_load: Vec<SessionKey>,
    clinics: HashSet<Uuid>,
    therapists: HashSet<Uuid>,
    referrals: HashSet<Uuid>,
}

/// The referral a `SessionScheduled` record names, if any.
fn scheduled_referral(record: &claimledger_events::EventRecord) -> Option<Uuid> {
    match &record.event {
        Event::SessionScheduled(scheduled) => scheduled.referral.map(|referral| referral.as_uuid()),
        _ => None,
    }
}

/// The sessions whose stored state the batch needs, and the clinics, therapists and referrals its claims may
/// need. A session whose first commit in the batch schedules it is new: scheduling is only ever
/// decided for a session with no events (the session domain refuses it otherwise), so it has no
/// stored row to read.
fn batch_references(items: &[ReplayItem]) -> BatchReferences {
    let mut seen: HashSet<SessionKey> = HashSet::default();
    let mut to_load = Vec::new();
    let mut clinics = HashSet::default();
    let mut therapists = HashSet::default();
    let mut referrals = HashSet::default();
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
            referrals.extend(scheduled_referral(record));
        }
    }
    BatchReferences {
        to_load,
        clinics,
        therapists,
        referrals,
    }
}
