//! The typed errors of the event log.

use claimledger_events::{EncodeError, FieldError};

/// Everything that can go wrong while talking to the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A configured or derived subject token or stream name is not usable on NATS.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidSubjectToken {
        /// Which setting or subject part, for example `subject_prefix`.
        field: &'static str,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A configuration value outside its allowed range.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The setting, for example `duplicate_window`.
        field: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The commit violates an envelope invariant (for example, no events).
    #[error("the commit is invalid")]
    InvalidCommit(#[from] FieldError),
    /// The commit's own chain, clinic or aggregate differs from the aggregate it was appended to.
    #[error("the commit belongs to {commit_subject}, not to {subject}")]
    AggregateMismatch {
        /// The subject the caller asked to append to.
        subject: String,
        /// The subject the commit's envelope describes.
        commit_subject: String,
    },
    /// Optimistic concurrency: the aggregate moved on since the caller read it.
    #[error(
        "aggregate {subject} is at version {actual_version}, not the expected {expected_version}"
    )]
    Conflict {
        /// The aggregate's subject.
        subject: String,
        /// The version the caller based its decision on.
        expected_version: u64,
        /// The aggregate's real version: the stream sequence of its last commit.
        actual_version: u64,
    },
    /// The commit could not be encoded.
    #[error("the commit could not be encoded")]
    Encode(#[from] EncodeError),
    /// A stored message is not a valid commit where a caller needs one (`read` and `replay` park
    /// such messages and go on instead).
    #[error("message {sequence} on {subject} is not a valid commit: {reason}")]
    InvalidMessage {
        /// Its stream sequence.
        sequence: u64,
        /// Its subject.
        subject: String,
        /// What is wrong with it.
        #[source]
        reason: InvalidMessage,
    },
    /// The stream exists with a setting that contradicts the configuration.
    #[error(
        "stream {stream} exists with {field} = {found}, but the configuration requires {expected}"
    )]
    StreamMismatch {
        /// The stream.
        stream: String,
        /// The contradicting setting.
        field: &'static str,
        /// What the configuration requires.
        expected: String,
        /// What the server has.
        found: String,
    },
    /// The stream does not exist, and the log was opened read-only ([`crate::EventLog::open_existing`]),
    /// which never creates one.
    #[error(
        "stream {stream} does not exist on this NATS server; reading the log never creates it (the \
         services that write to the log do)"
    )]
    StreamNotFound {
        /// The missing stream.
        stream: String,
    },
    /// A NATS or JetStream request failed.
    #[error("NATS request failed while {operation}")]
    Nats {
        /// What the log was doing, for example `publishing a commit`.
        operation: &'static str,
        /// The client's error.
        #[source]
        source: async_nats::Error,
    },
}

impl LogError {
    /// Wraps a client error with the operation that failed.
    pub(crate) fn nats<E>(operation: &'static str) -> impl FnOnce(E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        move |source| Self::Nats {
            operation,
            source: Box::new(source),
        }
    }
}

pub use claimledger_events::InvalidMessage;
