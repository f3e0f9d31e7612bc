//! Running a replay: validate the proposed rules, read the log's chain-wide part (rules and
//! reference data), then stream the log once through the what-if fold, which derives each claim
//! under both rule books as its session is set aside, and compare claim by claim. It needs no
//! database, writes nothing to the log, and holds a bounded number of sessions in memory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use claimledger_derive::directory::Directory;
use claimledger_derive::keys::SessionKey;
use claimledger_derive::whatif::{DateRange, RulesTimeline, Step, WhatIfFold, WhatIfInputs};
use claimledger_events::{AggregateKind, Commit, Event, UtcMicros};
use claimledger_log::{
    AggregateAddress, EventLog, LogError, RecordedCommit, Replay, ReplayFilter, ReplayItem,
};
use claimledger_payer_rules::{LoadError, RuleBook, load_dir};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::proposal::{ProposalError, ProposedVersion, proposed_commits};
use crate::report::{Comparison, ReplayReport, Scope, Timings};

/// Sessions a replay holds in memory before it sets aside the ones untouched longest. A session
/// the log continues after it was set aside is read back from the log (one read), so the window
/// is sized to cover the stretch of log in which a chain's sessions are usually amended, while its
/// memory stays a small part of the 512 MiB budget (see ARCHITECTURE.md).
pub const DEFAULT_MAX_OPEN_SESSIONS: usize = 65_536;

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    /// The proposed rules directory (validated like `rules check`).
    pub proposed_dir: PathBuf,
    /// The rules directory whose `reference/` tables the projector reads (NCCI, MUE,
    /// always-therapy): reference tables are not published, so both derivations use the
    /// projector's.
    pub reference_dir: PathBuf,
    /// Which claims are compared, and the date timely filing is judged on.
    pub scope: Scope,
    /// The instant the proposed versions would be recorded at.
    pub recorded_at: UtcMicros,
    /// Sessions held in memory before the ones untouched longest are set aside (their claims
    /// settled); [`DEFAULT_MAX_OPEN_SESSIONS`] unless testing.
    pub max_open_sessions: usize,
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// `--from` is after `--to`.
    #[error("--from: {from} is after --to {to}")]
    EmptyRange {
        /// The first date.
        from: NaiveDate,
        /// The last date.
        to: NaiveDate,
    },
    /// The proposed rules do not load.
    #[error("--rules {dir}: the proposed rules are not valid")]
    ProposedRules {
        /// The directory.
        dir: String,
        /// Every problem, `file:line: field: reason`.
        #[source]
        source: LoadError,
    },
    /// Publishing the proposed rules would be refused.
    #[error("--rules: the proposal cannot be published as it is")]
    Proposal(#[source] ProposalError),
    /// The NCCI, MUE and always-therapy tables of the reference directory do not load.
    #[error("--reference-dir {dir}: the reference tables do not load")]
    Reference {
        /// The directory.
        dir: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// Reading the log failed.
    #[error("reading the event log")]
    Log(#[from] LogError),
}

/// Where a replay is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayProgress {
    /// The log sequence the replay has read through.
    pub through: u64,
    /// The log's last sequence when the replay started: where it ends.
    pub last: u64,
    /// Sessions held in memory.
    pub open_sessions: usize,
}

/// Log positions between two progress reports.
const PROGRESS_EVERY: u64 = 4096;

/// Replays the log under the proposed rules and reports what would change.
///
/// Provider data (clinic time zone, NPIs, place of service) comes from the log's
/// `ClinicRegistered` and `TherapistRegistered` events, which is where the projector's directory
/// comes from too: the claims "before" equal what the projector holds, with no database at all.
pub async fn replay(log: &EventLog, request: &ReplayRequest) -> Result<ReplayReport, ReplayError> {
    replay_with_progress(log, request, &mut |_| {}).await
}

/// [`replay`], reporting its progress every few thousand log positions.
///
/// The log is read twice: first its chain-wide part (payer rules and reference data, a small
/// fraction of it), so that the final rule book and provider directory are known up front; then
/// the whole log (or chain) once, in order, through [`WhatIfFold`], which holds only the sessions
/// still in use and settles each claim under both rule books as it sets its session aside.
#[tracing::instrument(name = "replay", skip_all, fields(rules = %request.proposed_dir.display()))]
pub async fn replay_with_progress(
    log: &EventLog,
    request: &ReplayRequest,
    progress: &mut (dyn FnMut(ReplayProgress) + Send),
) -> Result<ReplayReport, ReplayError> {
    let started = Instant::now();
    let scope = request.scope;
    if let (Some(from), Some(to)) = (scope.from, scope.to)
        && from > to
    {
        return Err(ReplayError::EmptyRange { from, to });
    }
    let proposed = load_proposed(&request.proposed_dir)?;
    let reference = load_dir(&request.reference_dir)
        .map(|book| book.reference().clone())
        .map_err(|source| ReplayError::Reference {
            dir: request.reference_dir.display().to_string(),
            source,
        })?;
    let last = log.last_sequence().await?;

    // The chain-wide part first: every rules version with its position, and the directory.
    let mut timeline = RulesTimeline::new(reference);
    let mut directory = Directory::default();
    let mut chain_wide = log
        .replay(1, ReplayFilter::ChainWide(scope.chain.map(Into::into)))
        .await?;
    while let Some(item) = chain_wide.next().await {
        let item = item?;
        if item.sequence() > last {
            break;
        }
        if let ReplayItem::Commit(recorded) = &item
            && let Err(reason) = timeline.record(recorded.sequence, &recorded.commit)
        {
            // The projector parks such a commit: its versions are never in force.
            tracing::warn!(seq = recorded.sequence, error.message = %reason, "a rules commit is not used");
        }
        directory.absorb(std::slice::from_ref(&item));
    }
    let mut reading = started.elapsed();

    let mut fold = WhatIfFold::new(WhatIfInputs {
        timeline,
        directory,
        dates: DateRange {
            from: scope.from,
            to: scope.to,
        },
        max_open: request.max_open_sessions,
        positions: last,
    });
    let mut proposal = Proposal {
        rules: &proposed,
        recorded_at: request.recorded_at,
        chains: HashSet::new(),
        versions: Vec::new(),
    };
    if let Some(chain) = scope.chain {
        proposal.chain(chain, &mut fold)?;
    }
    let mut comparison = Comparison::new(scope);
    let filter = scope
        .chain
        .map_or(ReplayFilter::All, |chain| ReplayFilter::Chain(chain.into()));
    let mut read_ahead = ReadAhead::start(log.replay(1, filter).await?);
    let mut positions: u64 = 0;
    loop {
        let waited = Instant::now();
        let next = read_ahead.next().await;
        reading += waited.elapsed();
        let Some(item) = next else {
            break;
        };
        let item = item?;
        let sequence = item.sequence();
        if sequence > last {
            break;
        }
        positions += 1;
        if let ReplayItem::Commit(recorded) = item {
            let RecordedCommit {
                sequence, commit, ..
            } = recorded;
            match commit.aggregate_kind {
                AggregateKind::Session => {
                    proposal.chain(commit.chain.as_uuid(), &mut fold)?;
                    if let Step::NeedsHistory(commit) = fold.session_commit(sequence, commit) {
                        let waited = Instant::now();
                        let history = log.read(&AggregateAddress::of(&commit)).await?;
                        reading += waited.elapsed();
                        let (retracted, _) = fold.resume(history.commits, sequence, *commit);
                        if let Some(settled) = retracted {
                            comparison.retract(&settled.before, settled.after());
                        }
                    }
                }
                AggregateKind::Claim => submissions(&commit, &mut fold, &mut comparison),
                _ => {}
            }
        }
        for settled in fold.take_settled() {
            comparison.add(&settled.before, settled.after(), settled.submitted);
        }
        if positions.is_multiple_of(PROGRESS_EVERY) {
            progress(ReplayProgress {
                through: sequence,
                last,
                open_sessions: fold.open_sessions(),
            });
        }
    }
    for settled in fold.finish() {
        comparison.add(&settled.before, settled.after(), settled.submitted);
    }
    progress(ReplayProgress {
        through: last,
        last,
        open_sessions: 0,
    });
    let (claims_compared, changed, totals) = comparison.finish();
    let total = started.elapsed();
    Ok(ReplayReport {
        scope,
        log_positions: positions,
        proposed: proposal.versions,
        claims_compared,
        changed,
        totals,
        timings: Timings {
            read_log_ms: Timings::millis(reading),
            derive_ms: Timings::millis(total.saturating_sub(reading)),
            total_ms: Timings::millis(total),
        },
    })
}

/// The most positions one handover from the reading task carries: what has arrived, never
/// waiting to fill.
const READ_CHUNK: usize = 256;

/// Chunks read and waiting for the fold: about 16,000 positions, a few megabytes.
const READ_AHEAD_CHUNKS: usize = 64;

/// The log read in a task of its own, ahead of the fold: reading and decoding then overlap
/// deriving on the machine's other core, where one loop would do them in turn. Bounded by
/// [`READ_AHEAD_CHUNKS`]; the task stops when the replay is dropped.
struct ReadAhead {
    receiver: mpsc::Receiver<Vec<Result<ReplayItem, LogError>>>,
    chunk: std::vec::IntoIter<Result<ReplayItem, LogError>>,
    task: JoinHandle<()>,
}

impl ReadAhead {
    fn start(replay: Replay) -> Self {
        let (sender, receiver) = mpsc::channel(READ_AHEAD_CHUNKS);
        let task = tokio::spawn(async move {
            // An error ends the replay, so it is always the last of its chunk.
            let mut chunks = replay.ready_chunks(READ_CHUNK);
            while let Some(chunk) = chunks.next().await {
                let failed = chunk.last().is_some_and(Result::is_err);
                if sender.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        ReadAhead {
            receiver,
            chunk: Vec::new().into_iter(),
            task,
        }
    }

    /// The next position, `None` at the end of the replay.
    async fn next(&mut self) -> Option<Result<ReplayItem, LogError>> {
        loop {
            if let Some(item) = self.chunk.next() {
                return Some(item);
            }
            self.chunk = self.receiver.recv().await?.into_iter();
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The proposal, added to the fold's "after" side chain by chain: for the chain asked for, or for
/// each chain as its first session appears (publishing would append its versions to each chain
/// that bills).
struct Proposal<'a> {
    rules: &'a RuleBook,
    recorded_at: UtcMicros,
    chains: HashSet<Uuid>,
    versions: Vec<ProposedVersion>,
}

impl Proposal<'_> {
    fn chain(&mut self, chain: Uuid, fold: &mut WhatIfFold) -> Result<(), ReplayError> {
        if !self.chains.insert(chain) {
            return Ok(());
        }
        let commits = proposed_commits(
            self.rules,
            chain.into(),
            fold.recorded_rules(),
            self.recorded_at,
        )
        .map_err(ReplayError::Proposal)?;
        for (version, commit) in commits {
            if let Err(reason) = fold.propose(&commit) {
                // Publishing validates what it appends, so this does not happen; were it to, the
                // projector would park the commit and price nothing with it.
                tracing::warn!(error.message = %reason, "a proposed version is not used");
            }
            self.versions.push(version);
        }
        Ok(())
    }
}

/// Notes the claims a claim commit submits: on the session if the fold holds it, otherwise on
/// the changed claim already listed (a claim that did not change needs no status).
fn submissions(commit: &Commit, fold: &mut WhatIfFold, comparison: &mut Comparison) {
    let chain = commit.chain.as_uuid();
    for record in &commit.events {
        if let Event::ClaimSubmitted(submitted) = &record.event {
            let session = submitted.session.as_uuid();
            let payer = submitted.payer.as_uuid();
            if !fold.claim_submitted(SessionKey { chain, session }, payer) {
                comparison.mark_submitted(&(chain, session, payer));
            }
        }
    }
}

/// Loads and validates a proposed rules directory like `rules check` (every problem as
/// `file:line: field: reason`). The binary calls it before connecting to anything, so invalid
/// rules are reported first and nothing else runs.
pub fn load_proposed(dir: &Path) -> Result<RuleBook, ReplayError> {
    load_dir(dir).map_err(|source| ReplayError::ProposedRules {
        dir: dir.display().to_string(),
        source,
    })
}
