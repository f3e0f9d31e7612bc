//! A position of the log as its readers receive it: a commit with its stream sequence and subject,
//! or a message there that is not a valid commit. Defined here rather than beside the log client,
//! so that the pure crates deriving read models from the log's positions need no NATS client.

use crate::envelope::{Commit, DecodeError};

/// A commit read back from the log, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCommit {
    /// Its stream sequence, unique and increasing across the whole log.
    pub sequence: u64,
    /// Its subject.
    pub subject: String,
    /// The commit, upcast to the current schema version.
    pub commit: Commit,
}

/// One position of a replay.
#[derive(Debug)]
pub enum ReplayItem {
    /// A valid commit.
    Commit(RecordedCommit),
    /// A message that is not a valid commit. It has been copied to the parked stream; the replay
    /// continues with the next message.
    Invalid {
        /// Its stream sequence (resume after it with `sequence + 1`).
        sequence: u64,
        /// Its subject.
        subject: String,
        /// What is wrong with it.
        error: InvalidMessage,
    },
}

impl ReplayItem {
    /// The stream sequence of this position, valid or not.
    pub fn sequence(&self) -> u64 {
        match self {
            Self::Commit(commit) => commit.sequence,
            Self::Invalid { sequence, .. } => *sequence,
        }
    }
}

/// Why a stored message is not a usable commit.
#[derive(Debug, thiserror::Error)]
pub enum InvalidMessage {
    /// The payload does not validate as a commit envelope of any known schema version.
    #[error("the payload does not decode")]
    Undecodable(#[from] DecodeError),
    /// The payload is a valid commit, but of another aggregate than the subject it was stored under.
    #[error("the commit describes subject {commit_subject}")]
    WrongSubject {
        /// The subject the commit's envelope describes.
        commit_subject: String,
    },
}

/// The error and its causes on one line (header values cannot hold line breaks), as parked
/// messages and parked commits record their reason.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.replace(['\r', '\n'], " ")
}
