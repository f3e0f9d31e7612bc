//! The projector's typed errors.

use claimledger_log::LogError;

/// Everything that can stop a batch. A failed batch changes nothing (its transaction rolls back);
/// the caller retries from the checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// Reading the log failed.
    #[error("reading the event log failed")]
    Log(#[from] LogError),
    /// A PostgreSQL statement failed.
    #[error("PostgreSQL failed while {operation}")]
    Database {
        /// What the projector was doing, for example `writing claims`.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A COPY of rows the batch took for new met a row that exists (a log that schedules a session
    /// twice): the batch is applied again with upserts.
    #[error("PostgreSQL found an existing row while {operation}")]
    ExistingRow {
        /// Which COPY, for example `copying new sessions`.
        operation: &'static str,
        /// The unique violation.
        #[source]
        source: sqlx::Error,
    },
    /// The reference tables (NCCI, MUE, always-therapy) could not be read at start-up.
    #[error("the rules reference files under {dir} could not be read: {reason}")]
    Reference {
        /// The directory that was read.
        dir: String,
        /// Why it failed.
        reason: String,
    },
    /// A session's fold state could not be encoded for storage (only beyond 2 GiB).
    #[error("a session's state could not be encoded")]
    Encode(#[from] claimledger_events::EncodeError),
    /// Another writer moved a rebuild's checkpoint.
    #[error("the checkpoint of {schema} moved under the rebuild")]
    ConcurrentWriter {
        /// The schema being rebuilt.
        schema: String,
    },
    /// A configuration value is unusable.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Another rebuild holds the rebuild lock.
    #[error("another rebuild is running")]
    RebuildRunning,
    /// The task writing a batch in the background panicked or was cancelled; the batch's
    /// transaction did not commit.
    #[error("the batch writer stopped: {reason}")]
    WriterStopped {
        /// The task's join error.
        reason: String,
    },
}

impl ProjectorError {
    /// Wraps a driver error with the operation that failed.
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { operation, source }
    }

    /// Whether retrying later can help (the database or the log was unreachable, a serialization
    /// failure), as opposed to a defect that a retry would only repeat, such as a value PostgreSQL
    /// refuses (which the projector parks commit by commit, so it surfaces only if parking fails).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Log(_) => true,
            Self::Database { source, .. } | Self::ExistingRow { source, .. } => {
                !matches!(
                    source,
                    sqlx::Error::ColumnDecode { .. }
                        | sqlx::Error::ColumnNotFound(_)
                        | sqlx::Error::TypeNotFound { .. }
                ) && !self.is_rejected_value()
            }
            _ => false,
        }
    }

    /// Whether a COPY of rows the batch took for new met an existing row (the batch should be
    /// applied again with upserts): the store's COPY reports exactly that case as
    /// [`ProjectorError::ExistingRow`].
    pub(crate) fn is_existing_row(&self) -> bool {
        matches!(self, Self::ExistingRow { .. })
    }

    /// Whether PostgreSQL refused a value the batch wrote: SQLSTATE class 22 (data exception, such
    /// as text holding a NUL character, 22021, or a JSON document holding `\u0000`, 22P05) or class
    /// 23 (integrity constraint violation, such as a check). The same rows would be refused on
    /// every retry, so the batch is applied again commit by commit and the commits refused on their
    /// own are parked. A COPY that met an existing row is [`ProjectorError::ExistingRow`] instead,
    /// handled by upserts.
    pub(crate) fn is_rejected_value(&self) -> bool {
        self.rejected_sqlstate().is_some()
    }

    /// The SQLSTATE of a value PostgreSQL refused (see [`ProjectorError::is_rejected_value`]).
    pub(crate) fn rejected_sqlstate(&self) -> Option<String> {
        let Self::Database { source, .. } = self else {
            return None;
        };
        let code = source.as_database_error()?.code()?;
        (code.starts_with("22") || code.starts_with("23")).then(|| code.into_owned())
    }
}
