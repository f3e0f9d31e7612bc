//! Event payload types for the whole product and the versioned envelope they travel in on the log.
//!
//! This crate is pure: no I/O, no async, no clock. It owns the archived (rkyv) format of the log and
//! nothing else; the billing core converts these types to its own domain types explicitly.
//!
//! - [`ids`]: identifier newtypes. [`time`]: UTC instants and calendar days as integers.
//! - [`session`], [`rules`], [`reference`], [`claim`]: event payloads. [`Event`]: the event enum and its versioning rule.
//! - [`envelope`]: the per-command [`Commit`], [`encode`], and checked [`decode`].
//! - [`v1`], [`v2`]: frozen shapes of schema versions 1 and 2 and the upcasters between versions
//!   (v1 → v2 → v3, the current one).

pub mod claim;
pub mod codes;
pub mod envelope;
pub mod event;
pub mod ids;
pub mod recorded;
pub mod reference;
pub mod rules;
pub mod session;
pub mod time;
pub mod v1;
pub mod v2;

pub use codes::{CptCode, FieldError, Icd10Code};
pub use envelope::{
    Actor, ActorKind, AggregateKind, CURRENT_SCHEMA_VERSION, Commit, DecodeError, EncodeError,
    EventRecord, VersionedCommit, decode, decode_versioned, encode, encode_versioned,
};
pub use event::Event;
pub use ids::{
    AggregateId, CausationId, ChainId, ClaimId, ClinicId, CommandId, CorrelationId, CoverageId,
    EventId, PatientId, PayerId, ReferralId, SessionId, TherapistId,
};
pub use recorded::{InvalidMessage, RecordedCommit, ReplayItem, error_chain};
pub use time::{EpochDay, UtcMicros};
