//! The live projector: a step function that reads one batch and hands it to a writer, and the loop
//! that repeats it until shut down.
//!
//! The layers run one way: this pipeline moves batches, [`crate::store`] holds every SQL statement,
//! and `claimledger_derive` folds a batch into rows without I/O.
//!
//! - [`applier`]: applying a batch to one target exactly once, sequentially (a rebuild, the
//!   fallbacks), and the fold ahead of the pipelined write;
//! - [`transaction`]: the one batch transaction every write goes through;
//! - [`read_ahead`]: reading the log ahead of the applier;
//! - [`in_flight`]: the write of one batch running while the next is folded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use claimledger_events::{ReplayItem, error_chain};
use claimledger_log::{EventLog, ReplayFilter};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::ProjectorConfig;
use crate::error::ProjectorError;
use crate::metrics::Metrics;
use crate::reference_tables::read_reference;
use crate::store::Target;

mod applier;
mod in_flight;
mod read_ahead;
mod transaction;

pub(crate) use applier::{AppliedBatch, Applier, ApplyOutcome};
use applier::{Carry, needs_committed_state};
use in_flight::{InFlight, Written, write_folded};
use read_ahead::{Buffered, ReadAhead};

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This many log positions (commits and parked messages) were applied; 0 when the step only
    /// repositioned itself.
    Applied(u64),
    /// The projector has applied everything the log holds.
    Idle,
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
            pool: self.applier.pool().clone(),
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
            self.applier.pool().clone(),
            self.applier.target().clone(),
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
