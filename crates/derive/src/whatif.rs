//! The what-if derivation streamed: the log's sessions folded one commit at a time, each claim
//! derived twice side by side (under the rules the log records, and under those plus a proposal)
//! once its session is set aside, with only the sessions still in use held in memory.
//!
//! [`crate::derived::derive_claims`] folds a whole log as one projector batch: every claim is
//! derived at its session's last completion with the rules recorded so far, then re-derived from
//! the session's final state with the final rule book whenever some recorded version of its payer
//! covers its date of service. That result depends only on each session's final state, the rules
//! recorded before its last completion, and the final rule book, so a fold that knows the final
//! book up front (the log's payer-rules commits, read before the sessions: [`RulesTimeline`]) can
//! settle a session's claims as soon as it sets the session aside, and forget it:
//!
//! - while a session's state is still the one its last completion left, its claim is derived from
//!   that state with the final book (the same claim, see [`WhatIfFold`]);
//! - once later events move it on (an amendment), the claim as of the completion is derived then,
//!   with the rules recorded before the completion, and kept for the final comparison.
//!
//! Sessions are held until the fold has more than `max_open` of them; the ones untouched longest
//! are then settled and set aside, and cancelled or no-show sessions as soon as they end. A session
//! set aside can still be amended later (the session domain allows it at any time): its key is in
//! a Bloom filter, so the fold asks its caller for the session's history instead
//! ([`Step::NeedsHistory`]), rebuilds it with [`WhatIfFold::resume`], and hands back what it had
//! settled for it so the caller can take it back out of its totals.
//!
//! Pure: no I/O, no clock; the caller reads the log.

use std::borrow::Cow;
use std::hash::BuildHasher;

use chrono::NaiveDate;
use claimledger_billing::ReferenceData;
use claimledger_events::{AggregateKind, Commit, Event, RecordedCommit, error_chain};
use claimledger_sessions::event::SessionEvent;
use claimledger_sessions::session::{Session, SessionStatus};
use uuid::Uuid;

use crate::claim::derive_claim_row;
use crate::derived::{DerivedClaim, derived};
use crate::directory::Directory;
use crate::hashing::HashMap;
use crate::keys::SessionKey;
use crate::rows::ClaimRow;
use crate::rules::{LogRules, PreparedVersion};
use crate::session::to_domain;

/// Every rules version the log records, in log order, with the sequence of its commit.
#[derive(Debug, Clone)]
pub struct RulesTimeline {
    /// Parses versions (its own content is never used) and lends the reference tables.
    empty: LogRules,
    versions: Vec<TimedVersion>,
}

#[derive(Debug, Clone)]
struct TimedVersion {
    sequence: u64,
    chain: Uuid,
    version: PreparedVersion,
}

impl RulesTimeline {
    /// No versions yet; every book built from it uses `reference`.
    pub fn new(reference: ReferenceData) -> Self {
        Self {
            empty: LogRules::new(reference),
            versions: Vec::new(),
        }
    }

    /// Records the versions of a payer-rules commit at `sequence`, all of them or, if one does
    /// not parse, none (the projector parks such a commit), with the reason.
    pub fn record(&mut self, sequence: u64, commit: &Commit) -> Result<(), String> {
        if commit.aggregate_kind != AggregateKind::PayerRules {
            return Ok(());
        }
        let mut prepared = Vec::new();
        for record in &commit.events {
            if let Event::RulesChanged(changed) = &record.event {
                prepared.push(
                    self.empty
                        .prepare(changed)
                        .map_err(|error| error_chain(&error))?,
                );
            }
        }
        let chain = commit.chain.as_uuid();
        self.versions
            .extend(prepared.into_iter().map(|version| TimedVersion {
                sequence,
                chain,
                version,
            }));
        Ok(())
    }

    /// How many versions were recorded before `sequence`.
    fn recorded_before(&self, sequence: u64) -> usize {
        self.versions
            .partition_point(|version| version.sequence < sequence)
    }

    /// The rule book as it stood before `sequence`.
    pub fn book_before(&self, sequence: u64) -> LogRules {
        let mut book = self.empty.clone();
        for timed in &self.versions[..self.recorded_before(sequence)] {
            book.insert(timed.chain, timed.version.clone());
        }
        book
    }

    /// Brings `book`, which holds the first `*held` versions, up to the versions recorded before
    /// `sequence`.
    fn advance(&self, book: &mut LogRules, held: &mut usize, sequence: u64) {
        let upto = self.recorded_before(sequence);
        for timed in self.versions.get(*held..upto).unwrap_or_default() {
            book.insert(timed.chain, timed.version.clone());
        }
        *held = upto.max(*held);
    }

    /// The rule book as it stands after the whole log: what [`crate::proposal`]-style checks and
    /// the "before" derivation use.
    pub fn final_book(&self) -> LogRules {
        self.book_before(u64::MAX)
    }

    /// `(chain, payer, effective_from)` of every recorded version.
    fn coverage(&self) -> Vec<Coverage> {
        self.versions
            .iter()
            .map(|timed| Coverage {
                chain: timed.chain,
                payer: timed.version.payer.as_uuid(),
                from: timed.version.effective_from(),
            })
            .collect()
    }
}

/// A version's reach: the dates of service of one chain's payer from its first day on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Coverage {
    chain: Uuid,
    payer: Uuid,
    from: NaiveDate,
}

fn covers(coverage: &[Coverage], chain: Uuid, payer: Uuid, day: Option<NaiveDate>) -> bool {
    day.is_some_and(|day| {
        coverage
            .iter()
            .any(|version| version.chain == chain && version.payer == payer && day >= version.from)
    })
}

/// One of the two derivations: its final rule book and the reach of every version in it.
#[derive(Debug, Clone)]
struct Side {
    book: LogRules,
    coverage: Vec<Coverage>,
}

/// A claim settled by the fold: as the log's rules derive it, and as they derive it with the
/// proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Under the rules the log records.
    pub before: DerivedClaim,
    /// Under those plus the proposal; `None` when no proposed version reaches the claim, so it is
    /// `before` exactly.
    pub after: Option<DerivedClaim>,
    /// Whether the log records the claim as submitted, as far as the fold has seen it.
    pub submitted: bool,
}

impl Settled {
    /// The "after" derivation.
    pub fn after(&self) -> &DerivedClaim {
        self.after.as_ref().unwrap_or(&self.before)
    }
}

/// What the fold did with a session commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Applied.
    Applied,
    /// Not applied, for this reason (the projector parks such a commit).
    Parked(String),
    /// The session may have been set aside earlier: read its commits before this one from the
    /// log and call [`WhatIfFold::resume`] with them and this commit (handed back).
    NeedsHistory(Box<Commit>),
}

/// Which dates of service are compared (the others are never derived).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DateRange {
    /// The first date, inclusive.
    pub from: Option<NaiveDate>,
    /// The last date, inclusive.
    pub to: Option<NaiveDate>,
}

impl DateRange {
    /// Whether a claim with this date of service is compared; one without a date only when no
    /// range is given.
    pub fn contains(&self, day: Option<NaiveDate>) -> bool {
        match day {
            Some(day) => {
                self.from.is_none_or(|from| day >= from) && self.to.is_none_or(|to| day <= to)
            }
            None => self.from.is_none() && self.to.is_none(),
        }
    }
}

/// The streamed fold; see the module documentation.
#[derive(Debug)]
pub struct WhatIfFold {
    timeline: RulesTimeline,
    /// The rules recorded before the current position, and how many of the timeline's versions
    /// that is.
    now: LogRules,
    now_held: usize,
    before: Side,
    after: Side,
    /// The proposal's versions alone: a claim none of them reaches is derived once.
    proposed: Vec<Coverage>,
    directory: Directory,
    dates: DateRange,
    open: HashMap<SessionKey, Box<OpenSession>>,
    set_aside: Bloom,
    max_open: usize,
    scratch: Vec<SessionEvent>,
    settled: Vec<Settled>,
}

/// A session held in memory.
#[derive(Debug)]
struct OpenSession {
    clinic: Uuid,
    state: Session,
    last_sequence: u64,
    /// The sequence of the commit that last completed it.
    completion: Option<u64>,
    /// Whether events followed the last completion; `claim_at_completion` then holds the claim
    /// derived from the state that completion left.
    moved_on: bool,
    claim_at_completion: Option<ClaimRow>,
    submitted: bool,
}

impl OpenSession {
    fn new(clinic: Uuid) -> Box<Self> {
        Box::new(Self {
            clinic,
            state: Session::default(),
            last_sequence: 0,
            completion: None,
            moved_on: false,
            claim_at_completion: None,
            submitted: false,
        })
    }
}

/// The fold's inputs besides the log's sessions.
#[derive(Debug)]
pub struct WhatIfInputs {
    /// The log's rules versions (its payer-rules commits, read first).
    pub timeline: RulesTimeline,
    /// Clinics and therapists as the whole log registers them.
    pub directory: Directory,
    /// The dates of service compared.
    pub dates: DateRange,
    /// Sessions held before the oldest are set aside.
    pub max_open: usize,
    /// About how many log positions follow (sizes the filter of sessions set aside).
    pub positions: u64,
}

impl WhatIfFold {
    /// A fold with no session yet and no proposal ([`Self::propose`] adds its versions).
    pub fn new(inputs: WhatIfInputs) -> Self {
        let before = Side {
            book: inputs.timeline.final_book(),
            coverage: inputs.timeline.coverage(),
        };
        Self {
            now: inputs.timeline.book_before(0),
            now_held: 0,
            after: before.clone(),
            before,
            proposed: Vec::new(),
            directory: inputs.directory,
            dates: inputs.dates,
            open: HashMap::default(),
            set_aside: Bloom::for_positions(inputs.positions),
            max_open: inputs.max_open.max(1),
            scratch: Vec::new(),
            settled: Vec::new(),
            timeline: inputs.timeline,
        }
    }

    /// The rule book the log records at its end: what a proposal is checked against.
    pub fn recorded_rules(&self) -> &LogRules {
        &self.before.book
    }

    /// Adds a proposed payer-rules commit (appended after the log, as publishing would) to the
    /// "after" side. Call before the sessions it may reach are settled.
    pub fn propose(&mut self, commit: &Commit) -> Result<(), String> {
        let mut timeline = RulesTimeline::new(self.before.book.reference().clone());
        timeline.record(u64::MAX, commit)?;
        for timed in timeline.versions {
            let coverage = Coverage {
                chain: timed.chain,
                payer: timed.version.payer.as_uuid(),
                from: timed.version.effective_from(),
            };
            self.proposed.push(coverage);
            self.after.coverage.push(coverage);
            self.after.book.insert(timed.chain, timed.version);
        }
        Ok(())
    }

    /// Sessions held in memory now.
    pub fn open_sessions(&self) -> usize {
        self.open.len()
    }

    /// Applies one session commit at `sequence` (commits of other kinds are ignored).
    pub fn session_commit(&mut self, sequence: u64, commit: Commit) -> Step {
        if commit.aggregate_kind != AggregateKind::Session {
            return Step::Applied;
        }
        let key = SessionKey {
            chain: commit.chain.as_uuid(),
            session: commit.aggregate_id.as_uuid(),
        };
        if !self.open.contains_key(&key) && self.set_aside.may_contain(&key) {
            return Step::NeedsHistory(Box::new(commit));
        }
        self.apply(key, sequence, commit)
    }

    /// Takes a session set aside back in: its `history` (its commits on the log; those from
    /// `sequence` on are ignored) is folded again, and `commit`, at `sequence`, applied on top.
    /// Returns what had been settled for it, which the caller takes back out of its comparison
    /// (the session is settled again when it is next set aside).
    pub fn resume(
        &mut self,
        history: Vec<RecordedCommit>,
        sequence: u64,
        commit: Commit,
    ) -> (Option<Settled>, Step) {
        let key = SessionKey {
            chain: commit.chain.as_uuid(),
            session: commit.aggregate_id.as_uuid(),
        };
        let mut earlier = history
            .into_iter()
            .filter(|recorded| recorded.sequence < sequence)
            .peekable();
        let mut retracted = None;
        if earlier.peek().is_some() {
            let mut book = self.timeline.book_before(0);
            let mut held = 0;
            let mut session: Option<Box<OpenSession>> = None;
            for mut recorded in earlier {
                self.timeline
                    .advance(&mut book, &mut held, recorded.sequence);
                let Some(clinic) = recorded.commit.clinic else {
                    continue;
                };
                let open = session.get_or_insert_with(|| OpenSession::new(clinic.as_uuid()));
                // A commit the fold parked the first time is skipped again.
                let _ = apply_commit(
                    open,
                    key,
                    recorded.sequence,
                    &mut recorded.commit,
                    &Rules {
                        timeline: &self.timeline,
                        now: &book,
                        now_held: held,
                    },
                    &self.directory,
                    &mut self.scratch,
                );
            }
            if let Some(open) = session {
                retracted = self.settle(key, &open);
                let mut open = open;
                open.submitted = retracted.as_ref().is_some_and(|settled| settled.submitted);
                self.open.insert(key, open);
            }
        }
        (retracted, self.apply(key, sequence, commit))
    }

    /// Notes that the log records the claim of `key` billed to `payer` as submitted, if the
    /// session is held; returns false when it is not (the caller then marks what it settled).
    pub fn claim_submitted(&mut self, key: SessionKey, payer: Uuid) -> bool {
        let Some(open) = self.open.get_mut(&key) else {
            return false;
        };
        let billed = open
            .state
            .booking()
            .and_then(|booking| match booking.payment {
                claimledger_sessions::command::Payment::Payer { payer, .. } => {
                    Some(payer.as_uuid())
                }
                claimledger_sessions::command::Payment::SelfPay => None,
            });
        open.submitted |= billed == Some(payer);
        true
    }

    /// The claims settled since the last call, as sessions were set aside.
    pub fn take_settled(&mut self) -> Vec<Settled> {
        std::mem::take(&mut self.settled)
    }

    /// Settles every session still held: the end of the log.
    pub fn finish(mut self) -> Vec<Settled> {
        let mut keys: Vec<SessionKey> = self.open.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            if let Some(open) = self.open.remove(&key)
                && let Some(settled) = self.settle(key, &open)
            {
                self.settled.push(settled);
            }
        }
        self.settled
    }

    fn apply(&mut self, key: SessionKey, sequence: u64, mut commit: Commit) -> Step {
        self.timeline
            .advance(&mut self.now, &mut self.now_held, sequence);
        let open = match self.open.entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let Some(clinic) = commit.clinic else {
                    return Step::Parked("a session commit must name its clinic".to_owned());
                };
                entry.insert(OpenSession::new(clinic.as_uuid()))
            }
        };
        let rules = Rules {
            timeline: &self.timeline,
            now: &self.now,
            now_held: self.now_held,
        };
        if let Err(reason) = apply_commit(
            open,
            key,
            sequence,
            &mut commit,
            &rules,
            &self.directory,
            &mut self.scratch,
        ) {
            if open.last_sequence == 0 {
                self.open.remove(&key);
            }
            return Step::Parked(reason);
        }
        if matches!(
            open.state.status(),
            SessionStatus::Cancelled | SessionStatus::NoShow
        ) {
            // An end the session domain never leaves: nothing more is expected of it.
            self.set_aside(key);
        } else if self.open.len() > self.max_open {
            self.set_aside_oldest();
        }
        Step::Applied
    }

    /// Sets aside the quarter of the held sessions untouched longest.
    fn set_aside_oldest(&mut self) {
        let mut ages: Vec<(u64, SessionKey)> = self
            .open
            .iter()
            .map(|(key, open)| (open.last_sequence, *key))
            .collect();
        let count = (self.max_open / 4).clamp(1, ages.len());
        ages.select_nth_unstable(count - 1);
        for (_, key) in &ages[..count] {
            self.set_aside(*key);
        }
    }

    fn set_aside(&mut self, key: SessionKey) {
        let Some(open) = self.open.remove(&key) else {
            return;
        };
        self.set_aside.insert(&key);
        if let Some(settled) = self.settle(key, &open) {
            self.settled.push(settled);
        }
    }

    /// The session's claim under both sides, if it has one in the compared dates.
    fn settle(&self, key: SessionKey, open: &OpenSession) -> Option<Settled> {
        open.completion?;
        let zone = self
            .directory
            .clinic(open.clinic)
            .and_then(|profile| profile.as_ref().ok())
            .map(|profile| profile.time_zone);
        let day = zone.and_then(|zone| open.state.date_of_service(zone));
        if !self.dates.contains(day) {
            return None;
        }
        let before_row = self.final_claim(key, open, &self.before)?;
        let reached = covers(
            &self.proposed,
            before_row.chain,
            before_row.payer,
            before_row.date_of_service,
        );
        let after = if reached {
            self.final_claim(key, open, &self.after)
                .map(|row| derived(&row, &self.after.book))
        } else {
            None
        };
        Some(Settled {
            before: derived(&before_row, &self.before.book),
            after,
            submitted: open.submitted,
        })
    }

    /// The claim `derive_claims` ends with for this session under one side's final rules.
    fn final_claim(&self, key: SessionKey, open: &OpenSession, side: &Side) -> Option<ClaimRow> {
        let completion = open.completion?;
        let derive = || {
            derive_claim_row(
                key.chain,
                key.session,
                &open.state,
                &side.book,
                &self.directory,
                completion,
            )
        };
        if !open.moved_on {
            // The state is still the completion's: re-derived with the final rules if a version
            // reaches it, otherwise derived with rules of which none is in force either way.
            return derive();
        }
        let at_completion = open.claim_at_completion.as_ref()?;
        if covers(
            &side.coverage,
            at_completion.chain,
            at_completion.payer,
            at_completion.date_of_service,
        ) {
            Some(derive().unwrap_or_else(|| at_completion.clone()))
        } else {
            Some(at_completion.clone())
        }
    }
}

/// The rules a commit is folded with: those recorded before it, and the timeline for earlier
/// positions.
struct Rules<'a> {
    timeline: &'a RulesTimeline,
    now: &'a LogRules,
    now_held: usize,
}

impl Rules<'_> {
    /// The book as it stood before `sequence` (at or before the current position).
    fn before(&self, sequence: u64) -> Cow<'_, LogRules> {
        if self.timeline.recorded_before(sequence) == self.now_held {
            Cow::Borrowed(self.now)
        } else {
            Cow::Owned(self.timeline.book_before(sequence))
        }
    }
}

/// Applies one commit to a held session: every event converted first (a commit is applied whole
/// or not at all), then folded; the first event after a completion keeps the claim that
/// completion derived.
fn apply_commit(
    open: &mut OpenSession,
    key: SessionKey,
    sequence: u64,
    commit: &mut Commit,
    rules: &Rules<'_>,
    directory: &Directory,
    domain: &mut Vec<SessionEvent>,
) -> Result<(), String> {
    domain.clear();
    for record in &commit.events {
        if let Some(event) = to_domain(open.clinic, record)? {
            domain.push(event);
        }
    }
    for event in domain.iter() {
        if let Some(completion) = open.completion
            && !open.moved_on
        {
            open.claim_at_completion = derive_claim_row(
                key.chain,
                key.session,
                &open.state,
                &rules.before(completion),
                directory,
                completion,
            );
            open.moved_on = true;
        }
        open.state.apply(event);
        if matches!(event, SessionEvent::Completed { .. }) {
            open.completion = Some(sequence);
            open.moved_on = false;
            open.claim_at_completion = None;
        }
    }
    open.last_sequence = sequence;
    Ok(())
}

/// A Bloom filter of session keys: whether a session may have been set aside. A false positive
/// costs one read of the session's history that finds nothing earlier.
#[derive(Debug)]
struct Bloom {
    bits: Vec<u64>,
    hasher: foldhash::fast::RandomState,
}

/// Hashes per key.
const BLOOM_HASHES: usize = 7;
/// Mixed into a key for its second hash.
const BLOOM_SECOND_HASH: u32 = 0x9e37_79b9;
/// Bits per expected log position: a session spans several positions, so a session gets tens of
/// bits and false positives stay around one in a million.
const BLOOM_BITS_PER_POSITION: u64 = 8;
/// Bounds on the filter's size: at least 64 KiB, at most 256 MiB (a log of some 270 million
/// positions; beyond that false positives grow, which costs reads, not results).
const BLOOM_MIN_WORDS: u64 = 1 << 13;
const BLOOM_MAX_WORDS: u64 = 1 << 25;

impl Bloom {
    fn for_positions(positions: u64) -> Self {
        let words = (positions.saturating_mul(BLOOM_BITS_PER_POSITION) / 64)
            .clamp(BLOOM_MIN_WORDS, BLOOM_MAX_WORDS);
        Self {
            bits: vec![0; usize::try_from(words).unwrap_or(usize::MAX)],
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The bit positions of `key` (double hashing).
    fn positions(&self, key: &SessionKey) -> [usize; BLOOM_HASHES] {
        let hash = self.hasher.hash_one(key);
        let step = self.hasher.hash_one((key, BLOOM_SECOND_HASH)) | 1;
        let bits = self.bits.len() as u64 * 64;
        std::array::from_fn(|index| {
            let bit = hash.wrapping_add((index as u64).wrapping_mul(step)) % bits;
            usize::try_from(bit).unwrap_or(0)
        })
    }

    fn insert(&mut self, key: &SessionKey) {
        for bit in self.positions(key) {
            self.bits[bit / 64] |= 1 << (bit % 64);
        }
    }

    fn may_contain(&self, key: &SessionKey) -> bool {
        self.positions(key)
            .into_iter()
            .all(|bit| self.bits[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_finds_every_key_it_was_given() {
        let mut bloom = Bloom::for_positions(1_000);
        let keys: Vec<SessionKey> = (0..500_u128)
            .map(|n| SessionKey {
                chain: Uuid::from_u128(1),
                session: Uuid::from_u128(n),
            })
            .collect();
        for key in &keys {
            bloom.insert(key);
        }
        assert!(keys.iter().all(|key| bloom.may_contain(key)));
        let strangers = (1_000..101_000_u128)
            .filter(|n| {
                bloom.may_contain(&SessionKey {
                    chain: Uuid::from_u128(1),
                    session: Uuid::from_u128(*n),
                })
            })
            .count();
        assert!(strangers < 100, "{strangers} false positives in 100,000");
    }

    #[test]
    fn a_date_range_keeps_undated_claims_only_when_open_ended() {
        let day = NaiveDate::from_ymd_opt(2025, 8, 1);
        let range = DateRange {
            from: day,
            to: None,
        };
        assert!(range.contains(day));
        assert!(!range.contains(None));
        assert!(DateRange::default().contains(None));
        assert!(!range.contains(NaiveDate::from_ymd_opt(2025, 7, 31)));
    }
}
