//! The append-only event log on NATS JetStream; the only crate that talks to NATS for the log.
//!
//! - [`EventLog::connect`] creates or verifies the log stream and its parked-messages stream;
//!   [`EventLog::open_existing`] opens an existing log for reading and creates nothing.
//! - [`EventLog::append`] writes one command's [`Commit`](claimledger_events::Commit) as one message
//!   with optimistic concurrency on the aggregate's subject and the command id as message id.
//! - [`EventLog::read`] returns one aggregate's commits (skipping, parking and reporting messages
//!   that are not valid commits); [`EventLog::replay`] and
//!   [`EventLog::follow`] stream the whole log, one chain, one clinic or one aggregate, in order.
//!
//! Subjects are laid out as described in [`subject`]; settings live in [`LogConfig`].

pub mod config;
mod cursor;
mod direct;
pub mod error;
mod log;
pub mod replay;
mod server;
pub mod subject;

pub use config::{DEFAULT_DUPLICATE_WINDOW, LogConfig, LogStorage};
pub use error::{InvalidMessage, LogError};
pub use log::{
    AggregateHistory, Appended, DEFAULT_APPEND_RETRY, EVENT_TYPES_HEADER, EventLog, RecordedCommit,
    SCHEMA_VERSION_HEADER, SkippedMessage,
};
pub use replay::{
    PARKED_ERROR_HEADER, PARKED_SEQUENCE_HEADER, PARKED_SUBJECT_HEADER, Replay, ReplayItem,
    error_chain,
};
pub use server::FIRST_RELEASE_FOR_CLUSTERS;
pub use subject::{AggregateAddress, CHAIN_WIDE_CLINIC_TOKEN, ReplayFilter};
