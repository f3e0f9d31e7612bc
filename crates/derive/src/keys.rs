//! The keys the read models are addressed by: named fields, never positional tuples.

use claimledger_events::Commit;
use uuid::Uuid;

/// A session's key: chain, then session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// The chain.
    pub chain: Uuid,
    /// The session.
    pub session: Uuid,
}

/// A claim of a chain, by its log id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimKey {
    /// The chain.
    pub chain: Uuid,
    /// The claim's log id.
    pub claim: Uuid,
}

impl ClaimKey {
    /// The claim a claim commit is addressed to.
    pub fn of(commit: &Commit) -> ClaimKey {
        ClaimKey {
            chain: commit.chain.as_uuid(),
            claim: commit.aggregate_id.as_uuid(),
        }
    }
}

/// An entity's key: chain, then its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityKey {
    /// The chain.
    pub chain: Uuid,
    /// The entity.
    pub id: Uuid,
}
