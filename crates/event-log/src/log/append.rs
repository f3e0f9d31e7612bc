//! Appending a commit: optimistic concurrency on the aggregate's subject, idempotency through the
//! message id, and the retries that make a leader election invisible to writers.

use std::error::Error as _;
use std::time::Duration;

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, ErrorCode};
use claimledger_events::{CURRENT_SCHEMA_VERSION, CommandId, Commit, encode};
use tracing::{Span, field};

use super::{Appended, EVENT_TYPES_HEADER, EventLog, SCHEMA_VERSION_HEADER};
use crate::cursor::{Cursor, CursorEnd};
use crate::error::LogError;
use crate::subject::AggregateAddress;

/// The first pause between two attempts of an append; it doubles up to [`MAX_APPEND_BACKOFF`].
const FIRST_APPEND_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between two attempts of an append.
const MAX_APPEND_BACKOFF: Duration = Duration::from_secs(1);
/// The least time an append gives the read that tells a retried command from a conflict, even
/// when its retry budget is spent: without it a conflict on the last attempt could not be named.
const MIN_RESOLVE_TIME: Duration = Duration::from_secs(2);

impl EventLog {
    /// Appends one command's commit to `aggregate`, if the aggregate is still at `expected_version`
    /// (the stream sequence of its last commit; 0 for a new aggregate).
    ///
    /// The command id is the message id, so retrying a command whose outcome is unknown is safe:
    /// inside the duplicate window the server answers with the original sequence; after it, the
    /// server reports a conflict and the aggregate's commits since `expected_version` are searched for
    /// the command id. Either way the answer is `Appended { duplicate: true, .. }` with the original
    /// sequence. A real conflict is [`LogError::Conflict`] with the aggregate's actual version, whichever
    /// way the server words it (error 10071 names the version; 10164, a clustered server's answer
    /// while another append to the subject is in flight, does not, so the version is read back).
    ///
    /// A transient failure (no responders while a stream leader is elected, a timed-out request, a
    /// lost connection, JetStream errors 10158 "duplicate message id is in process" and 10008
    /// "JetStream cluster not available", a failed read of the aggregate after a refused append) is
    /// retried with the same message id, with short back-off,
    /// for up to [`crate::DEFAULT_APPEND_RETRY`] (see [`EventLog::with_append_retry`]): the duplicate window
    /// makes a retry of a publish that did land answer `duplicate: true` instead of storing it twice.
    /// When the log stays unavailable the answer is [`LogError::Nats`].
    #[tracing::instrument(
        name = "log.append",
        skip_all,
        fields(
            stream = %self.shared.config.stream_name,
            subject = field::Empty,
            aggregate_id = %aggregate.id,
            command = %commit.command_id,
            expected_version,
            seq = field::Empty,
        )
    )]
    pub async fn append(
        &self,
        aggregate: &AggregateAddress,
        expected_version: u64,
        commit: &Commit,
    ) -> Result<Appended, LogError> {
        commit.validate()?;
        let subject = self.subject_of(aggregate)?;
        Span::current().record("subject", subject.as_str());
        let commit_address = AggregateAddress::of(commit);
        if commit_address != *aggregate {
            return Err(LogError::AggregateMismatch {
                subject,
                commit_subject: self.subject_of(&commit_address)?,
            });
        }
        let event_types = commit.event_type_names().collect::<Vec<_>>().join(",");
        let message = PublishMessage::build()
            .payload(encode(commit)?.into())
            .message_id(commit.command_id.to_string())
            .expected_last_subject_sequence(expected_version)
            .header(SCHEMA_VERSION_HEADER, CURRENT_SCHEMA_VERSION.to_string())
            .header(EVENT_TYPES_HEADER, event_types);
        let deadline = tokio::time::Instant::now() + self.shared.append_retry;
        let mut backoff = FIRST_APPEND_BACKOFF;
        let mut attempt = 1_u32;
        loop {
            let error = match self.publish_once(&subject, message.clone()).await {
                Ok(ack) => {
                    Span::current().record("seq", ack.sequence);
                    if ack.duplicate {
                        tracing::info!(
                            attempt,
                            "command already appended inside the duplicate window; nothing stored"
                        );
                    }
                    return Ok(Appended {
                        sequence: ack.sequence,
                        duplicate: ack.duplicate,
                    });
                }
                Err(error) => error,
            };
            match classify_publish_error(&error) {
                PublishFailure::WrongLastSequence { actual_version } => {
                    // A read that hangs (a consumer placed on a node that was just killed) must
                    // not hold the append past its budget: it is then one more transient failure.
                    let resolving = self.resolve_wrong_last_sequence(
                        aggregate,
                        &subject,
                        expected_version,
                        commit.command_id,
                        actual_version,
                    );
                    let resolved = tokio::time::timeout_at(
                        deadline.max(tokio::time::Instant::now() + MIN_RESOLVE_TIME),
                        resolving,
                    )
                    .await
                    .unwrap_or_else(|elapsed| {
                        Err(LogError::nats(
                            "reading the aggregate back after a refused append",
                        )(elapsed))
                    });
                    match resolved {
                        Ok(Some(outcome)) => return outcome,
                        // The append that beat this one is still in flight, or failed: the
                        // aggregate is still at the expected version, so this append may yet win.
                        Ok(None) => {}
                        // Reading the aggregate back fails the way publishing does while a leader
                        // is elected (timeouts, error 10008): asked again with the publish.
                        Err(LogError::Nats { operation, source }) => {
                            tracing::warn!(
                                attempt,
                                operation,
                                error.message = %source,
                                "reading the aggregate back after a refused append failed"
                            );
                        }
                        Err(other) => return Err(other),
                    }
                }
                PublishFailure::Transient => {}
                PublishFailure::Permanent => {
                    return Err(LogError::nats("publishing a commit")(error));
                }
            }
            if tokio::time::Instant::now() + backoff > deadline {
                tracing::warn!(
                    attempt,
                    error.message = %error,
                    "the log stayed unavailable; giving up on the append"
                );
                return Err(LogError::nats(
                    "publishing a commit, retried until the append's retry budget ran out",
                )(error));
            }
            tracing::warn!(
                attempt,
                error.message = %error,
                backoff_ms = backoff.as_millis() as u64,
                "transient failure while appending; retrying with the same message id"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_APPEND_BACKOFF);
            attempt += 1;
        }
    }

    /// Publishes once and awaits the acknowledgement.
    async fn publish_once(
        &self,
        subject: &str,
        message: PublishMessage,
    ) -> Result<jetstream::publish::PublishAck, PublishError> {
        self.shared
            .context
            .send_publish(subject.to_owned(), message)
            .await?
            .await
    }

    /// Tells a retried command (already stored after `expected_version`) from a real conflict.
    /// `None` when the aggregate is still at `expected_version` (a clustered server refuses an append
    /// while another one to the subject is in flight, and that one may yet fail): the caller retries.
    async fn resolve_wrong_last_sequence(
        &self,
        aggregate: &AggregateAddress,
        subject: &str,
        expected_version: u64,
        command_id: CommandId,
        actual_version: Option<u64>,
    ) -> Result<Option<Result<Appended, LogError>>, LogError> {
        if let Some(sequence) = self
            .find_command_after(subject, expected_version, command_id)
            .await?
        {
            Span::current().record("seq", sequence);
            tracing::info!(
                "command already appended before the duplicate window closed; nothing stored"
            );
            return Ok(Some(Ok(Appended {
                sequence,
                duplicate: true,
            })));
        }
        let actual_version = match actual_version {
            Some(actual) => actual,
            None => self.version(aggregate).await?,
        };
        if actual_version == expected_version {
            return Ok(None);
        }
        Ok(Some(Err(LogError::Conflict {
            subject: subject.to_owned(),
            expected_version,
            actual_version,
        })))
    }

    /// The sequence of the commit carrying `command_id` on `subject` after `after_sequence`, if any.
    async fn find_command_after(
        &self,
        subject: &str,
        after_sequence: u64,
        command_id: CommandId,
    ) -> Result<Option<u64>, LogError> {
        let wanted = command_id.to_string();
        let mut cursor = Cursor::open(
            &self.shared.stream,
            after_sequence + 1,
            Some(subject.to_owned()),
            CursorEnd::Snapshot,
            None,
        )
        .await?;
        while let Some(message) = cursor.next().await {
            let message = message?;
            let message_id = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(NATS_MESSAGE_ID));
            if message_id.is_some_and(|id| id.as_str() == wanted) {
                return Ok(Some(message.sequence));
            }
        }
        Ok(None)
    }
}

/// What a failed publish means for the append.
#[derive(Debug, PartialEq, Eq)]
enum PublishFailure {
    /// The aggregate is not at the expected version (or another append to it is in flight), with the
    /// actual version when the server named it.
    WrongLastSequence { actual_version: Option<u64> },
    /// The log may answer if asked again: retried with the same message id.
    Transient,
    /// Asking again cannot help.
    Permanent,
}

fn classify_publish_error(error: &PublishError) -> PublishFailure {
    let server_error = error
        .source()
        .and_then(|source| source.downcast_ref::<jetstream::Error>());
    match error.kind() {
        PublishErrorKind::WrongLastSequence => PublishFailure::WrongLastSequence {
            actual_version: server_error
                .and_then(|error| actual_sequence_from_description(&error.to_string())),
        },
        // async-nats reports a "no responders" answer as `StreamNotFound`: nothing listens on the
        // subject, which is what a stream without a leader looks like. The log's streams exist (the
        // log was opened on them), so this is an election or a restart in progress.
        PublishErrorKind::StreamNotFound
        | PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe => PublishFailure::Transient,
        PublishErrorKind::Other => match server_error.map(jetstream::Error::error_code) {
            Some(ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT) => {
                PublishFailure::WrongLastSequence {
                    actual_version: None,
                }
            }
            Some(
                ErrorCode::STREAM_DUPLICATE_MESSAGE_CONFLICT | ErrorCode::CLUSTER_NOT_AVAILABLE,
            ) => PublishFailure::Transient,
            _ => PublishFailure::Permanent,
        },
        _ => PublishFailure::Permanent,
    }
}

/// Reads N from the server's "wrong last sequence: N" description (error 10071), where N is the
/// subject's actual last sequence.
fn actual_sequence_from_description(description: &str) -> Option<u64> {
    let (_, rest) = description.split_once("wrong last sequence: ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u64, description: &str) -> jetstream::Error {
        serde_json::from_value(serde_json::json!({
            "code": 400,
            "err_code": code,
            "description": description,
        }))
        .expect("a JetStream API error")
    }

    #[test]
    fn classifies_each_publish_failure_by_what_retrying_can_do() {
        let cases = [
            (
                PublishError::with_source(
                    PublishErrorKind::WrongLastSequence,
                    server_error(10071, "wrong last sequence: 42"),
                ),
                PublishFailure::WrongLastSequence {
                    actual_version: Some(42),
                },
            ),
            (
                PublishError::with_source(
                    PublishErrorKind::Other,
                    server_error(10164, "wrong last sequence"),
                ),
                PublishFailure::WrongLastSequence {
                    actual_version: None,
                },
            ),
            (
                PublishError::with_source(
                    PublishErrorKind::Other,
                    server_error(10158, "duplicate message id is in process"),
                ),
                PublishFailure::Transient,
            ),
            (
                PublishError::with_source(
                    PublishErrorKind::Other,
                    server_error(10008, "JetStream system temporarily unavailable"),
                ),
                PublishFailure::Transient,
            ),
            (
                PublishError::new(PublishErrorKind::StreamNotFound),
                PublishFailure::Transient,
            ),
            (
                PublishError::new(PublishErrorKind::TimedOut),
                PublishFailure::Transient,
            ),
            (
                PublishError::new(PublishErrorKind::BrokenPipe),
                PublishFailure::Transient,
            ),
            (
                PublishError::with_source(
                    PublishErrorKind::Other,
                    server_error(10054, "maximum messages exceeded"),
                ),
                PublishFailure::Permanent,
            ),
            (
                PublishError::new(PublishErrorKind::MaxPayloadExceeded),
                PublishFailure::Permanent,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(classify_publish_error(&error), expected, "{error:?}");
        }
    }

    #[test]
    fn reads_the_actual_sequence_from_the_server_description() {
        assert_eq!(
            actual_sequence_from_description(
                "wrong last sequence: 42 (code 400, error code 10071)"
            ),
            Some(42)
        );
        assert_eq!(
            actual_sequence_from_description("wrong last sequence: 0"),
            Some(0)
        );
        assert_eq!(
            actual_sequence_from_description("wrong last msg ID: abc"),
            None
        );
        assert_eq!(
            actual_sequence_from_description("wrong last sequence: x"),
            None
        );
    }
}
