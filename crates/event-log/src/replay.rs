//! Replay: the log (or one chain, clinic or aggregate) as an ordered stream of commits, with invalid
//! messages parked and reported in place.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use async_nats::jetstream::Context;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::Stream as JetStream;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use crate::config::LogConfig;
use crate::cursor::{Cursor, RawMessage};
use crate::error::{InvalidMessage, LogError};
use crate::log::{RecordedCommit, decode_for_subject};

/// Header of a parked message: the stream sequence of the original.
pub const PARKED_SEQUENCE_HEADER: &str = "ClaimLedger-Parked-Sequence";
/// Header of a parked message: the subject of the original.
pub const PARKED_SUBJECT_HEADER: &str = "ClaimLedger-Parked-Subject";
/// Header of a parked message: why it could not be used.
pub const PARKED_ERROR_HEADER: &str = "ClaimLedger-Parked-Error";

pub use claimledger_events::ReplayItem;

/// An ordered stream of [`ReplayItem`]s. An `Err` item ends the stream; resume from the sequence
/// after the last item received.
pub struct Replay {
    items: BoxStream<'static, Result<ReplayItem, LogError>>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay").finish_non_exhaustive()
    }
}

impl Replay {
    pub(crate) fn new(cursor: Cursor, parker: Parker, config: LogConfig) -> Self {
        // `unfold` moves its state into each item's future and back out: boxed, that is a pointer
        // per item rather than the reader, its buffers' handles and the configuration.
        let state = Some(Box::new(ReplayState {
            cursor,
            parker,
            config,
        }));
        let items = futures::stream::unfold(state, |state| async move {
            let mut state = state?;
            let item = match state.cursor.next().await? {
                Ok(message) => classify(message, &state.parker, &state.config).await,
                Err(error) => Err(error),
            };
            // An error ends the replay: the caller resumes from its last good position.
            let next_state = item.is_ok().then_some(state);
            Some((item, next_state))
        });
        Self {
            items: items.boxed(),
        }
    }
}

/// What a replay reads with.
struct ReplayState {
    cursor: Cursor,
    parker: Parker,
    config: LogConfig,
}

impl Stream for Replay {
    type Item = Result<ReplayItem, LogError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.items.poll_next_unpin(cx)
    }
}

async fn classify(
    message: RawMessage,
    parker: &Parker,
    config: &LogConfig,
) -> Result<ReplayItem, LogError> {
    match decode_for_subject(&message.payload, &message.subject, config) {
        Ok(commit) => Ok(ReplayItem::Commit(RecordedCommit {
            sequence: message.sequence,
            subject: message.subject,
            commit,
        })),
        Err(error) => {
            parker.park(&message, &error).await?;
            Ok(ReplayItem::Invalid {
                sequence: message.sequence,
                subject: message.subject,
                error,
            })
        }
    }
}

/// Copies invalid messages into the parked stream, once each.
#[derive(Debug, Clone)]
pub(crate) struct Parker {
    context: Context,
    /// The parked stream's name; `None` when a read-only log found no parked stream, which it never
    /// creates: invalid messages are then only logged.
    stream_name: Option<String>,
    subject_prefix: String,
}

impl Parker {
    pub(crate) fn new(context: Context, parked: Option<JetStream>, config: &LogConfig) -> Self {
        Self {
            context,
            stream_name: parked.map(|parked| parked.cached_info().config.name.clone()),
            subject_prefix: config.parked_subject_prefix(),
        }
    }

    /// Parks `message` under `<parked prefix>.<original sequence>`. The subject must be empty
    /// (expected last subject sequence 0), so replaying the same range again never parks twice.
    #[tracing::instrument(
        name = "log.park",
        skip_all,
        fields(stream = ?self.stream_name, subject = %message.subject, seq = message.sequence)
    )]
    pub(crate) async fn park(
        &self,
        message: &RawMessage,
        error: &InvalidMessage,
    ) -> Result<(), LogError> {
        let reason = error_chain(error);
        if self.stream_name.is_none() {
            tracing::error!(
                error.message = %reason,
                "invalid message on the log; skipped (no parked stream to copy it to)"
            );
            return Ok(());
        }
        tracing::error!(error.message = %reason, "invalid message on the log; parked and skipped");
        let parked = PublishMessage::build()
            .payload(message.payload.clone())
            .expected_last_subject_sequence(0)
            .header(PARKED_SEQUENCE_HEADER, message.sequence.to_string())
            .header(PARKED_SUBJECT_HEADER, message.subject.as_str())
            .header(PARKED_ERROR_HEADER, reason);
        let subject = format!("{}.{}", self.subject_prefix, message.sequence);
        let ack = self
            .context
            .send_publish(subject, parked)
            .await
            .map_err(LogError::nats("parking an invalid message"))?
            .await;
        match ack {
            Ok(_) => Ok(()),
            // Already parked by an earlier replay of the same range.
            Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => Ok(()),
            Err(error) => Err(LogError::nats("parking an invalid message")(error)),
        }
    }
}

pub use claimledger_events::error_chain;
