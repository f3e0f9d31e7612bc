//! The one pipeline every aggregate the API writes (sessions, claims, and any later one) runs
//! through: its state at a version (from the cache when it holds that version, else read from the
//! log), the preconditions of a command (`Idempotency-Key` already appended, `If-Match`), and the
//! state after an append. The domain decides; this module only keeps the bookkeeping in one place.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use claimledger_events::{ChainId, CommandId, EventRecord};
use claimledger_log::{AggregateAddress, Appended, EventLog};
use uuid::Uuid;

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

/// The aggregate at the log's current version: nothing to read while it has no commit, the
/// cached state when it is at that version, else read from the log (and cached).
pub(crate) async fn load_current<A: Aggregate, W: Clone>(
    log: &EventLog,
    cache: &StateCache<A, W>,
    address: &AggregateAddress,
    id: Uuid,
    whereabouts: W,
    decoding: A::Decoding,
) -> Result<Loaded<A>, ApiError> {
    let version = log.version(address).await?;
    if version == 0 {
        return Ok(Loaded::empty());
    }
    if let Some(cached) = cache.at_version(address.chain, id, version) {
        return Ok(cached);
    }
    let loaded = read(log, address, decoding).await?;
    cache.put(address.chain, id, whereabouts, &loaded);
    Ok(loaded)
}
