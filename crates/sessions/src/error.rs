//! Why a session command was refused. Every refusal names the field it concerns and a reason a
//! clinic administrator can act on.

use claimledger_billing::validation::FieldError;
use thiserror::Error;

use crate::session::SessionStatus;

/// A business refusal of a session command.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionError {
    /// The command needs a scheduled session, and this one was never scheduled.
    #[error("session_id: the session was never scheduled")]
    NotScheduled,
    /// A schedule command named a session that already exists.
    #[error("session_id: the session is already scheduled")]
    AlreadyScheduled,
    /// The command is not allowed in the session's current status.
    #[error("status: cannot {command} a session that is {status}")]
    WrongStatus {
        /// The refused command.
        command: &'static str,
        /// The status the session is in.
        status: SessionStatus,
    },
    /// The record is completed: nothing more may be recorded until it is amended.
    #[error("status: the session is completed; amend it before you {command}")]
    CompletedRecordIsClosed {
        /// The refused command.
        command: &'static str,
    },
    /// The minutes recorded would exceed the visit's booked length.
    #[error(
        "minutes: {requested} more minutes would bring the recorded total to {total}, beyond the visit's {planned} minutes"
    )]
    ExceedsVisitLength {
        /// Minutes this command would add.
        requested: u16,
        /// The total the session would reach.
        total: u32,
        /// The visit's booked length.
        planned: u16,
    },
    /// A value was refused by the rules of its field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as the API names it.
        field: String,
        /// Why.
        reason: String,
    },
}

impl SessionError {
    /// A field-level refusal.
    pub fn invalid(field: &str, reason: impl Into<String>) -> SessionError {
        SessionError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The field the refusal concerns, as the API names it.
    pub fn field(&self) -> &str {
        match self {
            SessionError::NotScheduled | SessionError::AlreadyScheduled => "session_id",
            SessionError::WrongStatus { .. } | SessionError::CompletedRecordIsClosed { .. } => {
                "status"
            }
            SessionError::ExceedsVisitLength { .. } => "minutes",
            SessionError::Invalid { field, .. } => field,
        }
    }

    /// The reason, without the field name.
    pub fn reason(&self) -> String {
        match self {
            SessionError::Invalid { reason, .. } => reason.clone(),
            other => {
                let text = other.to_string();
                let prefix = format!("{}: ", other.field());
                text.strip_prefix(&prefix)
                    .map_or(text.clone(), str::to_owned)
            }
        }
    }

    /// Whether the refusal is about the session's state rather than the command's content: the
    /// same command could succeed against another version of the session.
    pub fn is_state_conflict(&self) -> bool {
        matches!(
            self,
            SessionError::AlreadyScheduled
                | SessionError::WrongStatus { .. }
                | SessionError::CompletedRecordIsClosed { .. }
        )
    }
}

impl From<FieldError> for SessionError {
    fn from(error: FieldError) -> SessionError {
        let reason = format!("{:?} {}", error.value, error.problem);
        SessionError::Invalid {
            field: error.field,
            reason,
        }
    }
}
