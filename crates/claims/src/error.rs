//! Why a claim command was refused. Every refusal names the field it concerns (as the API names
//! it, e.g. `lines[2].adjustments[0].amount_cents`) and a reason billing staff can act on.

use thiserror::Error;

use crate::claim::ClaimStatus;

/// A business refusal of a claim command.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClaimError {
    /// The command is not allowed in the claim's current status.
    #[error("status: cannot {command} a claim that is {status}")]
    WrongStatus {
        /// The refused command.
        command: &'static str,
        /// The status the claim is in.
        status: ClaimStatus,
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

impl ClaimError {
    /// A field-level refusal.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ClaimError {
        ClaimError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The field the refusal concerns.
    pub fn field(&self) -> &str {
        match self {
            ClaimError::WrongStatus { .. } => "status",
            ClaimError::Invalid { field, .. } => field,
        }
    }

    /// The reason, without the field name.
    pub fn reason(&self) -> String {
        match self {
            ClaimError::Invalid { reason, .. } => reason.clone(),
            ClaimError::WrongStatus { command, status } => {
                format!("cannot {command} a claim that is {status}")
            }
        }
    }

    /// Whether the refusal is about the claim's state rather than the command's content: the
    /// same command could succeed against another version of the claim.
    pub fn is_state_conflict(&self) -> bool {
        matches!(self, ClaimError::WrongStatus { .. })
    }
}
