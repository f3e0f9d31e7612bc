//! Running a replay: validate the proposed rules, read the log once, derive every claim twice in
//! memory with the projector's own derivation, and compare. It needs no database and writes
//! nothing to the log.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use claimledger_derive::derived::derive_claims;
use claimledger_derive::directory::Directory;
use claimledger_derive::rules::LogRules;
use claimledger_events::{AggregateKind, EncodeError, Event, UtcMicros};
use claimledger_log::{EventLog, LogError, RecordedCommit, ReplayFilter, ReplayItem};
use claimledger_payer_rules::{LoadError, RuleBook, load_dir};
use futures::StreamExt;
use uuid::Uuid;

use crate::proposal::{ProposalError, proposed_commits};
use crate::report::{ClaimKey, ReplayReport, Scope, Timings, compare};

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
    /// A session could not be re-encoded during the fold.
    #[error("folding the log")]
    Encode(#[from] EncodeError),
}

/// Replays the log under the proposed rules and reports what would change.
///
/// Provider data (clinic time zone, NPIs, place of service) comes from the log's
/// `ClinicRegistered` and `TherapistRegistered` events, which is where the projector's directory
/// comes from too: the claims "before" equal what the projector holds, with no database at all.
#[tracing::instrument(name = "replay", skip_all, fields(rules = %request.proposed_dir.display()))]
pub async fn replay(log: &EventLog, request: &ReplayRequest) -> Result<ReplayReport, ReplayError> {
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

    let filter = scope
        .chain
        .map_or(ReplayFilter::All, |chain| ReplayFilter::Chain(chain.into()));
    let mut replay = log.replay(1, filter).await?;
    let mut items: Vec<ReplayItem> = Vec::new();
    while let Some(item) = replay.next().await {
        items.push(item?);
    }
    let read_log = started.elapsed();

    let references = References::of(&items);
    let directory = Directory::from_log(&items);

    let derive_started = Instant::now();
    let mut recorded = LogRules::new(reference.clone());
    let before = derive_claims(&items, &mut recorded, &directory)?;

    let chains: BTreeSet<Uuid> = match scope.chain {
        Some(chain) => [chain].into(),
        None => references.chains.clone(),
    };
    let mut next_sequence = items.last().map_or(0, ReplayItem::sequence);
    let mut versions = Vec::new();
    let mut with_proposal = items;
    for chain in chains {
        for (version, commit) in
            proposed_commits(&proposed, chain.into(), &recorded, request.recorded_at)
                .map_err(ReplayError::Proposal)?
        {
            next_sequence += 1;
            versions.push(version);
            with_proposal.push(ReplayItem::Commit(RecordedCommit {
                sequence: next_sequence,
                subject: format!("replay.proposed.{chain}"),
                commit,
            }));
        }
    }
    let after = derive_claims(&with_proposal, &mut LogRules::new(reference), &directory)?;
    let (claims_compared, changed, totals) = compare(&before, &after, &references.submitted, scope);
    let derive = derive_started.elapsed();
    let log_positions = (with_proposal.len() - versions.len()) as u64;
    Ok(ReplayReport {
        scope,
        log_positions,
        proposed: versions,
        claims_compared,
        changed,
        totals,
        timings: Timings {
            read_log_ms: Timings::millis(read_log),
            derive_ms: Timings::millis(derive),
            total_ms: Timings::millis(started.elapsed()),
        },
    })
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

/// What the log's commits refer to: the chains with sessions, and the claims the log records as
/// submitted.
#[derive(Debug, Default)]
struct References {
    chains: BTreeSet<Uuid>,
    submitted: HashSet<ClaimKey>,
}

impl References {
    fn of(items: &[ReplayItem]) -> Self {
        let mut references = References::default();
        for item in items {
            let ReplayItem::Commit(recorded) = item else {
                continue;
            };
            let commit = &recorded.commit;
            let chain = commit.chain.as_uuid();
            match commit.aggregate_kind {
                AggregateKind::Session => {
                    references.chains.insert(chain);
                }
                AggregateKind::Claim => {}
                _ => continue,
            }
            for record in &commit.events {
                if let Event::ClaimSubmitted(submitted) = &record.event {
                    references.submitted.insert((
                        chain,
                        submitted.session.as_uuid(),
                        submitted.payer.as_uuid(),
                    ));
                }
            }
        }
        references
    }
}
