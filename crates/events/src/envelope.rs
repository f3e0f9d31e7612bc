//! The log payload: one versioned commit envelope per command, its encoding, and checked decoding.
//!
//! A command produces one [`Commit`]: all of its events plus the metadata every reader needs
//! (tenant, aggregate, actor, tracing ids). The commit is archived with rkyv inside
//! [`VersionedCommit`], an enum with one variant per schema version whose payload sits behind a
//! relative pointer. The archived enum therefore has the same size for every version, and a reader
//! learns the version from the tag before it looks at the payload.

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::with::{AsBox, InlineAsBox};
use rkyv::{Archive, Deserialize, Serialize};

use crate::codes::FieldError;
use crate::event::Event;
use crate::ids::{AggregateId, CausationId, ChainId, ClinicId, CommandId, CorrelationId, EventId};
use crate::time::UtcMicros;
use crate::v1::{CommitV1, upcast_commit_v1_to_v2};
use crate::v2::{CommitV2, upcast_commit_v2_to_v3};

/// The schema version new commits are written with.
pub const CURRENT_SCHEMA_VERSION: u16 = 3;

/// The kind of aggregate a commit belongs to; its subject token names it on the log.
///
/// Only unit variants, appended at the end: the archived enum stays one byte, so adding a kind is
/// not a new schema version.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[rkyv(derive(Debug))]
pub enum AggregateKind {
    /// A treatment session, owned by one clinic.
    Session,
    /// The billing rules of one payer, shared by every clinic of the chain.
    PayerRules,
    /// A clinic's registration (chain-wide: the clinic is the aggregate, not its owner).
    Clinic,
    /// A therapist of the chain.
    Therapist,
    /// A payer registered with the chain (its rules are the `PayerRules` aggregate).
    Payer,
    /// A patient (pseudonymous on the log).
    Patient,
    /// A patient's coverage by a payer.
    Coverage,
    /// A referral or prescription.
    Referral,
    /// A claim's life after derivation, owned by the clinic of its session.
    Claim,
}

impl AggregateKind {
    /// The token that names this kind in log subjects.
    pub const fn subject_token(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::PayerRules => "payer-rules",
            Self::Clinic => "clinic",
            Self::Therapist => "therapist",
            Self::Payer => "payer",
            Self::Patient => "patient",
            Self::Coverage => "coverage",
            Self::Referral => "referral",
            Self::Claim => "claim",
        }
    }

    /// Whether aggregates of this kind belong to the whole chain rather than to one clinic.
    pub const fn is_chain_wide(self) -> bool {
        match self {
            Self::Session | Self::Claim => false,
            Self::PayerRules
            | Self::Clinic
            | Self::Therapist
            | Self::Payer
            | Self::Patient
            | Self::Coverage
            | Self::Referral => true,
        }
    }
}

/// What kind of principal issued a command.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ActorKind {
    /// A member of clinic or chain staff, identified by the identity provider's subject.
    Staff,
    /// A service acting on its own behalf, identified by its service name.
    Service,
}

/// Who issued the command that produced a commit.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Actor {
    /// The kind of principal.
    pub kind: ActorKind,
    /// The principal's stable identifier within its kind.
    pub id: String,
}

/// One event of a commit, with its own identity and business time.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct EventRecord {
    /// Unique across the log.
    pub event_id: EventId,
    /// When it happened in the clinic, which may be earlier than the commit's `recorded_at`.
    pub occurred_at: UtcMicros,
    /// What happened.
    pub event: Event,
}

/// Every event produced by one command, as one atomic log message (current schema version).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Commit {
    /// The command's idempotency key; the log stores a command at most once.
    pub command_id: CommandId,
    /// The tenant.
    pub chain: ChainId,
    /// The clinic, or `None` for chain-wide aggregates such as payer rules.
    pub clinic: Option<ClinicId>,
    /// The kind of aggregate.
    pub aggregate_kind: AggregateKind,
    /// The aggregate within its kind.
    pub aggregate_id: AggregateId,
    /// When the command was accepted by the service that wrote the commit.
    pub recorded_at: UtcMicros,
    /// Who issued the command.
    pub actor: Actor,
    /// The external request this commit ultimately serves.
    pub correlation_id: CorrelationId,
    /// The command or event that directly caused this commit, if any.
    pub causation_id: Option<CausationId>,
    /// The events, in the order they were decided.
    pub events: Vec<EventRecord>,
}

impl Commit {
    /// Checks the invariants a reader relies on: at least one event, a clinic exactly when the
    /// aggregate kind is clinic-scoped, and a named actor.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.events.is_empty() {
            return Err(FieldError::new(
                "events",
                "a commit carries at least one event",
            ));
        }
        match (self.aggregate_kind.is_chain_wide(), self.clinic) {
            (true, Some(_)) => {
                return Err(FieldError::new(
                    "clinic",
                    format!(
                        "{} aggregates belong to the whole chain and carry no clinic",
                        self.aggregate_kind.subject_token()
                    ),
                ));
            }
            (false, None) => {
                return Err(FieldError::new(
                    "clinic",
                    format!(
                        "{} aggregates belong to one clinic, which is missing",
                        self.aggregate_kind.subject_token()
                    ),
                ));
            }
            _ => {}
        }
        if self.actor.id.trim().is_empty() {
            return Err(FieldError::new("actor.id", "the actor must be named"));
        }
        Ok(())
    }

    /// The type names of the events, in order.
    pub fn event_type_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.events.iter().map(|record| record.event.type_name())
    }
}

/// The archived root of every log payload: one variant per schema version, payload boxed.
///
/// Variants are never removed or reordered; a new schema version is appended at the end together
/// with an upcaster from the previous current shape.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum VersionedCommit {
    /// Schema version 1 (frozen).
    V1(#[rkyv(with = AsBox)] CommitV1),
    /// Schema version 2 (frozen): `ServiceRecorded` gained `body_side`.
    V2(#[rkyv(with = AsBox)] CommitV2),
    /// Schema version 3 (current): `SessionScheduled` gained `referral`, and its payer coverage
    /// names a typed coverage id instead of `member_id` text.
    V3(#[rkyv(with = AsBox)] Commit),
}

impl VersionedCommit {
    /// The schema version this value was written with.
    pub const fn schema_version(&self) -> u16 {
        match self {
            Self::V1(_) => 1,
            Self::V2(_) => 2,
            Self::V3(_) => 3,
        }
    }

    /// Converts any version to the current shape through the named upcasters.
    pub fn into_current(self) -> Commit {
        match self {
            Self::V1(commit) => upcast_commit_v2_to_v3(upcast_commit_v1_to_v2(commit)),
            Self::V2(commit) => upcast_commit_v2_to_v3(commit),
            Self::V3(commit) => commit,
        }
    }
}

/// Encoding failed; with these types only a payload beyond rkyv's 32-bit offsets (2 GiB) can fail.
#[derive(Debug, thiserror::Error)]
#[error("could not encode the commit envelope")]
pub struct EncodeError(#[source] rancor::Error);

/// A payload that is not a valid commit envelope of any known schema version.
#[derive(Debug, thiserror::Error)]
#[error("payload of {payload_len} bytes is not a valid commit envelope")]
pub struct DecodeError {
    /// Length of the rejected payload.
    pub payload_len: usize,
    /// What the checked decoder objected to.
    #[source]
    pub source: rancor::Error,
}

/// A borrowed, serialize-only twin of [`VersionedCommit`], so that writing a commit needs no clone.
///
/// Its variants are declared in the same order with the same boxed payloads, so its archived form is
/// byte-for-byte that of [`VersionedCommit`]; a property test compares the two encodings.
#[derive(Archive, Serialize)]
enum VersionedCommitRef<'a> {
    /// Never written any more; present so that `V3` keeps tag 2.
    #[allow(dead_code)]
    V1(#[rkyv(with = InlineAsBox)] &'a CommitV1),
    /// Never written any more; present so that `V3` keeps tag 2.
    #[allow(dead_code)]
    V2(#[rkyv(with = InlineAsBox)] &'a CommitV2),
    V3(#[rkyv(with = InlineAsBox)] &'a Commit),
}

/// Encodes a commit with the current schema version.
///
/// The bytes are written straight into a `Vec<u8>` sized for the commit up front: the archive's
/// layout is relative to its first byte, so it is the same in any buffer, and this spares the
/// growth of an aligned buffer from empty and its copy into a `Vec` (the projector re-encodes every
/// session history it touches, which made both show in its profile).
pub fn encode(commit: &Commit) -> Result<Vec<u8>, EncodeError> {
    let capacity = ENCODED_COMMIT_BYTES + ENCODED_EVENT_BYTES * commit.events.len();
    rkyv::api::high::to_bytes_in::<_, rancor::Error>(
        &VersionedCommitRef::V3(commit),
        Vec::with_capacity(capacity),
    )
    .map_err(EncodeError)
}

/// About what an encoded commit takes besides its events: the envelope, the identifiers, the
/// actor. A guess for sizing the buffer; a larger commit grows it.
const ENCODED_COMMIT_BYTES: usize = 256;
/// About what one encoded event takes with its boxed payload (a scheduled session's is the largest
/// of the session events, about this size).
const ENCODED_EVENT_BYTES: usize = 96;

/// Encodes a commit of any schema version. Writers use [`encode`]; this exists for fixtures and tools.
pub fn encode_versioned(commit: &VersionedCommit) -> Result<Vec<u8>, EncodeError> {
    rkyv::to_bytes::<rancor::Error>(commit)
        .map(AlignedVec::into_vec)
        .map_err(EncodeError)
}

/// Decodes a payload of any known schema version into the current shape.
///
/// The bytes are copied into an aligned buffer first (NATS payloads sit at arbitrary offsets in the
/// read buffer) and validated with rkyv's checked API, so malformed input is an error, never a panic
/// or a misread.
pub fn decode(payload: &[u8]) -> Result<Commit, DecodeError> {
    decode_versioned(payload).map(VersionedCommit::into_current)
}

/// Decodes a payload without upcasting, keeping the schema version it was written with.
pub fn decode_versioned(payload: &[u8]) -> Result<VersionedCommit, DecodeError> {
    let mut aligned = AlignedVec::<16>::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    rkyv::from_bytes::<VersionedCommit, rancor::Error>(&aligned).map_err(|source| DecodeError {
        payload_len: payload.len(),
        source,
    })
}
