//! The one pipeline every aggregate the API writes (sessions, claims, and any later one) runs
//! through: its state at a version (from the cache when it holds that version, else read from the
//! log), the preconditions of a command (`Idempotency-Key` already appended, `If-Match`), and the
//! state after an append. The domain decides; this module only keeps the bookkeeping in one place.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use claimledger_events::{ChainId, CommandId, EventRecord};
use claimledger_log::{AggregateAddress, Appended, EventLog};
use uuid::Uuid;

use crate::auth::Principal;
use crate::commit;
use crate::error::ApiError;
use crate::extract::CommandMeta;
use crate::idempotency::command_id;

/// A domain aggregate, as the pipeline needs to know it.
pub(crate) trait Aggregate: Clone {
    /// Its domain events.
    type Event;
    /// What a stored event is decoded with (a session's events carry their clinic).
    type Decoding: Copy;
    /// The resource's name in answers: `session`, `claim`.
    const RESOURCE: &'static str;

    /// The state after `events`, from nothing.
    fn from_events(events: &[Self::Event]) -> Self;

    /// The state after one more event.
    fn apply(&mut self, event: &Self::Event);

    /// A stored event as a domain event (`None` for a stored event the domain keeps no trace of).
    fn decode(
        decoding: Self::Decoding,
        record: &EventRecord,
    ) -> Result<Option<Self::Event>, ApiError>;

    /// Decided events as the records of a commit made at `now`.
    fn records(events: &[Self::Event], now: DateTime<Utc>) -> Vec<EventRecord>;
}

/// An aggregate at a version of the log, with the commands already appended to it.
#[derive(Debug, Clone)]
pub(crate) struct Loaded<A> {
    /// The state.
    pub(crate) state: A,
    /// The stream sequence of its last commit (0: none yet): the expected version of the next.
    pub(crate) version: u64,
    /// The commands of its commits, so that a retry is recognised.
    pub(crate) command_ids: HashSet<CommandId>,
}

impl<A: Aggregate> Loaded<A> {
    /// The aggregate with no commit yet.
    pub(crate) fn empty() -> Loaded<A> {
        Loaded {
            state: A::from_events(&[]),
            version: 0,
            command_ids: HashSet::new(),
        }
    }

    /// This state after `events` were appended as `command` at `appended`'s sequence.
    pub(crate) fn after(
        &self,
        events: &[A::Event],
        command: CommandId,
        appended: &Appended,
    ) -> Self {
        let mut next = self.clone();
        for event in events {
            next.state.apply(event);
        }
        next.command_ids.insert(command);
        next.version = appended.sequence;
        next
    }
}

/// Reads the aggregate at `address` from the log.
pub(crate) async fn read<A: Aggregate>(
    log: &EventLog,
    address: &AggregateAddress,
    decoding: A::Decoding,
) -> Result<Loaded<A>, ApiError> {
    let history = log.read(address).await?;
    let mut events = Vec::new();
    let mut command_ids = HashSet::new();
    for recorded in &history.commits {
        command_ids.insert(recorded.commit.command_id);
        for record in &recorded.commit.events {
            events.extend(A::decode(decoding, record)?);
        }
    }
    Ok(Loaded {
        state: A::from_events(&events),
        version: history.version,
        command_ids,
    })
}

/// What a command meets before it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// An earlier attempt with the same `Idempotency-Key` was appended (its answer was lost):
    /// nothing new is written, the current state is the answer.
    AlreadyAppended,
    /// Decide and append it as this command.
    Proceed(CommandId),
}

/// Checks a command's `Idempotency-Key` and `If-Match` against `loaded`.
pub(crate) fn precondition<A: Aggregate>(
    chain: ChainId,
    meta: &CommandMeta,
    loaded: &Loaded<A>,
) -> Result<Precondition, ApiError> {
    let this_command = CommandId::from(command_id(chain, meta.idempotency_key.as_deref()));
    if meta.idempotency_key.is_some() && loaded.command_ids.contains(&this_command) {
        return Ok(Precondition::AlreadyAppended);
    }
    if let Some(expected_version) = meta.if_match
        && expected_version != loaded.version
    {
        return Err(ApiError::VersionConflict {
            resource: A::RESOURCE.to_owned(),
            expected_version,
            actual_version: loaded.version,
        });
    }
    Ok(Precondition::Proceed(this_command))
}

/// The most aggregates a cache keeps; past it the cache starts over (a cold entry costs one log
/// read, so a crude bound is enough).
const CACHE_CAPACITY: usize = 10_000;

/// Aggregates as this process last decided or read them, at their versions, with `W`: where each
/// lives (what its commands need besides its events). Entries are keyed by chain and id, so they
/// are only ever served to the chain that owns them.
#[derive(Debug)]
pub(crate) struct StateCache<A, W> {
    entries: Mutex<HashMap<CacheKey, (W, Loaded<A>)>>,
}

/// An entry's chain and id.
type CacheKey = (ChainId, Uuid);

impl<A, W> Default for StateCache<A, W> {
    fn default() -> Self {
        StateCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<A: Clone, W: Clone> StateCache<A, W> {
    /// The entry as last put, whatever the log's version now.
    pub(crate) fn latest(&self, chain: ChainId, id: Uuid) -> Option<(W, Loaded<A>)> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(&(chain, id)).cloned()
    }

    /// The state, when the cache holds it at exactly `version`.
    pub(crate) fn at_version(&self, chain: ChainId, id: Uuid, version: u64) -> Option<Loaded<A>> {
        self.latest(chain, id)
            .map(|(_, loaded)| loaded)
            .filter(|loaded| loaded.version == version)
    }

    /// Keeps `loaded` as the aggregate's latest state.
    pub(crate) fn put(&self, chain: ChainId, id: Uuid, whereabouts: W, loaded: &Loaded<A>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_CAPACITY && !entries.contains_key(&(chain, id)) {
            entries.clear();
        }
        entries.insert((chain, id), (whereabouts, loaded.clone()));
    }
}

/// One aggregate a command runs against: where it is on the log, the cache its states are kept
/// in, where it lives (`W`, kept with each cached state) and what its stored events are decoded
/// with.
#[derive(Debug)]
pub(crate) struct Target<'a, A: Aggregate, W> {
    pub(crate) log: &'a EventLog,
    pub(crate) cache: &'a StateCache<A, W>,
    pub(crate) address: AggregateAddress,
    pub(crate) id: Uuid,
    pub(crate) whereabouts: W,
    pub(crate) decoding: A::Decoding,
}

/// How a command ended: either way, the aggregate's state that answers it.
#[derive(Debug)]
pub(crate) enum Ran<A> {
    /// Its events are on the log (appended now, or by an earlier attempt whose answer was lost
    /// while still inside the log's duplicate window): the state after them.
    Appended(Loaded<A>),
    /// An earlier attempt with the same `Idempotency-Key` is on the log: nothing new was written;
    /// the state as it is.
    AlreadyAppended(Loaded<A>),
}

impl<A> Ran<A> {
    /// The state that answers the command.
    pub(crate) fn into_loaded(self) -> Loaded<A> {
        match self {
            Ran::Appended(loaded) | Ran::AlreadyAppended(loaded) => loaded,
        }
    }
}

impl<A: Aggregate, W: Clone> Target<'_, A, W> {
    /// The aggregate at the log's current version: nothing to read while it has no commit, the
    /// cached state when it is at that version, else read from the log (and cached).
    pub(crate) async fn load_current(&self) -> Result<Loaded<A>, ApiError> {
        let version = self.log.version(&self.address).await?;
        if version == 0 {
            return Ok(Loaded::empty());
        }
        if let Some(cached) = self.cache.at_version(self.address.chain, self.id, version) {
            return Ok(cached);
        }
        let loaded = read(self.log, &self.address, self.decoding).await?;
        self.keep(&loaded);
        Ok(loaded)
    }

    fn keep(&self, loaded: &Loaded<A>) {
        self.cache.put(
            self.address.chain,
            self.id,
            self.whereabouts.clone(),
            loaded,
        );
    }

    /// The one pipeline of every command: its preconditions (`Idempotency-Key`, `If-Match`) on
    /// `loaded`, `decide` (the domain's decision; whatever it needs is looked up before),
    /// one commit appended with `loaded`'s version as the expected one, and the state after it,
    /// cached. A refusal decided on a cached state (`from_cache`) stands only if the log has not
    /// moved on since; otherwise the command is decided again on the state the log holds.
    pub(crate) async fn run(
        &self,
        principal: &Principal,
        meta: &CommandMeta,
        now: DateTime<Utc>,
        mut loaded: Loaded<A>,
        mut from_cache: bool,
        mut decide: impl FnMut(&Loaded<A>) -> Result<Vec<A::Event>, ApiError>,
    ) -> Result<Ran<A>, ApiError> {
        loop {
            match self
                .run_once(principal, meta, now, &loaded, &mut decide)
                .await
            {
                Err(error) if from_cache && error.is_refusal() => {
                    from_cache = false;
                    if self.log.version(&self.address).await? == loaded.version {
                        return Err(error);
                    }
                    loaded = read(self.log, &self.address, self.decoding).await?;
                    self.keep(&loaded);
                }
                outcome => return outcome,
            }
        }
    }

    async fn run_once(
        &self,
        principal: &Principal,
        meta: &CommandMeta,
        now: DateTime<Utc>,
        loaded: &Loaded<A>,
        decide: &mut impl FnMut(&Loaded<A>) -> Result<Vec<A::Event>, ApiError>,
    ) -> Result<Ran<A>, ApiError> {
        let this_command = match precondition(principal.chain, meta, loaded)? {
            Precondition::AlreadyAppended => return Ok(Ran::AlreadyAppended(loaded.clone())),
            Precondition::Proceed(command) => command,
        };
        let events = decide(loaded)?;
        let commit = commit::build(
            principal,
            meta,
            &self.address,
            now,
            A::records(&events, now),
        );
        let appended = self
            .log
            .append(&self.address, loaded.version, &commit)
            .await?;
        if appended.duplicate {
            return Ok(Ran::Appended(self.load_current().await?));
        }
        let next = loaded.after(&events, this_command, &appended);
        self.keep(&next);
        Ok(Ran::Appended(next))
    }
}
