//! The query layer's error: a refused filter (naming the field and the reason) or a database
//! failure.

/// Everything a report can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A filter or option that cannot be used; nothing was read.
    #[error("{field}: {reason}")]
    Invalid {
        /// The parameter (as the HTTP API and the command line name it).
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The database failed.
    #[error("the database failed")]
    Database(#[from] sqlx::Error),
}

impl ReportError {
    /// A refusal of `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> ReportError {
        ReportError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
