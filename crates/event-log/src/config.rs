//! Configuration of the log's streams, and the validation of names and subject tokens.

use std::time::Duration;

use crate::error::LogError;

/// The default duplicate window: two minutes, the server's own default.
///
/// It covers the retry horizon of a command whose outcome is unknown: the client's publish ack
/// timeout (30 s by default in async-nats) plus a few retries with back-off. A retry that arrives
/// later is still recognised by the history check in `EventLog::append`, as long as it arrives
/// with the same command id and expected version. The server keeps every id of the window in
/// memory (about 0.4–0.6 GB per million ids), so the window is sized to the retry horizon times the
/// peak write rate, not "forever".
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Where the stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStorage {
    /// On disk: the only choice for the real log.
    File,
    /// In memory: for throwaway streams only.
    Memory,
}

/// The settings of one event log: a stream of commits plus its stream of parked messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The JetStream stream holding the commits, for example `CLAIMLEDGER_EVENTS`.
    pub stream_name: String,
    /// The first token(s) of every subject, for example `ev`; the stream captures `<prefix>.>`.
    pub subject_prefix: String,
    /// How long the server remembers command ids to drop retried commands (see
    /// [`DEFAULT_DUPLICATE_WINDOW`]).
    pub duplicate_window: Duration,
    /// Replicas of each stream: 1 on a single server, 3 in the production cluster.
    pub replicas: usize,
    /// File or memory storage.
    pub storage: LogStorage,
}

impl LogConfig {
    /// A file-backed, single-replica log with the default duplicate window.
    pub fn new(stream_name: impl Into<String>, subject_prefix: impl Into<String>) -> Self {
        Self {
            stream_name: stream_name.into(),
            subject_prefix: subject_prefix.into(),
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            replicas: 1,
            storage: LogStorage::File,
        }
    }

    /// Checks names and tokens so that a bad setting fails at start-up, naming the field.
    pub fn validate(&self) -> Result<(), LogError> {
        validate_stream_name("stream_name", &self.stream_name)?;
        for token in self.subject_prefix.split('.') {
            validate_token("subject_prefix", token)?;
        }
        if self.duplicate_window.is_zero() {
            return Err(LogError::InvalidConfig {
                field: "duplicate_window",
                reason: "must be positive, or retried commands would be stored twice",
            });
        }
        if self.replicas == 0 {
            return Err(LogError::InvalidConfig {
                field: "replicas",
                reason: "must be at least 1",
            });
        }
        Ok(())
    }

    /// The stream that keeps copies of messages that failed to decode.
    pub fn parked_stream_name(&self) -> String {
        format!("{}_PARKED", self.stream_name)
    }

    /// The subject prefix of the parked stream: the last prefix token gains `-parked`, so the two
    /// streams' subjects never overlap.
    pub fn parked_subject_prefix(&self) -> String {
        format!("{}-parked", self.subject_prefix)
    }
}

/// Rejects a subject token that NATS would split, treat as a wildcard, or refuse.
pub(crate) fn validate_token(field: &'static str, token: &str) -> Result<(), LogError> {
    let reason = if token.is_empty() {
        Some("must not be empty")
    } else if token.contains('.') {
        Some("must not contain '.'")
    } else if token.contains('*') || token.contains('>') {
        Some("must not contain the wildcards '*' or '>'")
    } else if token.chars().any(char::is_whitespace) {
        Some("must not contain whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(LogError::InvalidSubjectToken {
            field,
            value: token.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Rejects a stream name that JetStream would refuse (it becomes part of API subjects and file names).
fn validate_stream_name(field: &'static str, name: &str) -> Result<(), LogError> {
    validate_token(field, name)?;
    if name.contains('/') || name.contains('\\') {
        return Err(LogError::InvalidSubjectToken {
            field,
            value: name.to_owned(),
            reason: "must not contain path separators",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected_field(config: &LogConfig) -> &'static str {
        match config.validate() {
            Err(
                LogError::InvalidSubjectToken { field, .. } | LogError::InvalidConfig { field, .. },
            ) => field,
            other => panic!("expected an invalid token, got {other:?}"),
        }
    }

    #[test]
    fn default_config_is_valid() {
        assert!(
            LogConfig::new("EVENTS", "ev.claimledger")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn prefix_tokens_are_checked_one_by_one() {
        for prefix in ["", "ev.", "ev..x", "ev.*", "ev.>", "e v"] {
            let config = LogConfig::new("EVENTS", prefix);
            assert_eq!(rejected_field(&config), "subject_prefix", "{prefix:?}");
        }
    }

    #[test]
    fn stream_names_reject_dots_wildcards_spaces_and_paths() {
        for name in ["", "A.B", "A*", "A>", "A B", "A/B"] {
            let config = LogConfig::new(name, "ev");
            assert_eq!(rejected_field(&config), "stream_name", "{name:?}");
        }
    }

    #[test]
    fn a_zero_duplicate_window_is_rejected() {
        let mut config = LogConfig::new("EVENTS", "ev");
        config.duplicate_window = Duration::ZERO;
        assert_eq!(rejected_field(&config), "duplicate_window");
    }

    #[test]
    fn parked_names_never_overlap_the_log() {
        let config = LogConfig::new("EVENTS", "ev.chain");
        assert_eq!(config.parked_stream_name(), "EVENTS_PARKED");
        assert_eq!(config.parked_subject_prefix(), "ev.chain-parked");
    }
}
