//! A forward cursor over raw stream messages that stops at the last sequence that existed when it
//! was opened, or never in follow mode. It reads through a direct connection ([`crate::direct`])
//! where one was offered and works, and otherwise through an async-nats ordered consumer (no acks,
//! flow-controlled batches).
//!
//! On a replicated stream the cluster places the cursor's ephemeral consumer on any of the stream's
//! peers, and a follower may not have applied the newest messages yet: its consumer then reports
//! nothing pending before the snapshot's end. Before a snapshot cursor ends short of the stream's
//! last sequence, it asks the stream leader whether a matching message remains, and if one does it
//! keeps reading until the consumer's server delivers it.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream as JetStream};
use bytes::Bytes;
use futures::StreamExt;

use crate::direct::{DirectPull, DirectTarget, Pulled};
use crate::error::LogError;

/// One stored message as read from the stream, before decoding.
#[derive(Debug)]
pub(crate) struct RawMessage {
    pub(crate) sequence: u64,
    pub(crate) subject: String,
    pub(crate) headers: Option<HeaderMap>,
    pub(crate) payload: Bytes,
}

/// When a cursor stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorEnd {
    /// At the stream's last sequence as of opening (or earlier, once no matching message is left).
    Snapshot,
    /// Never: keeps waiting for new messages.
    Follow,
}

/// Where a cursor's messages come from.
enum Source {
    Ordered(Box<Ordered>),
    Direct(Box<DirectPull>),
}

/// How long a snapshot cursor waits before asking a lagging consumer's server again.
const LAGGING_CONSUMER_PAUSE: Duration = Duration::from_millis(10);
/// How long a snapshot cursor waits for its next message before it reports the read as failed.
/// Every message it waits for is already stored, so a silence this long is a consumer on a node
/// that died or lost its stream: the caller's retry opens a new one, where waiting would hang.
const SNAPSHOT_STALL: Duration = Duration::from_secs(10);

/// A forward cursor; see the module documentation.
pub(crate) struct Cursor {
    messages: Option<Source>,
    /// The last sequence to deliver, for snapshot cursors.
    last_sequence: Option<u64>,
    /// The stream, for asking its leader whether a snapshot has more (replicated streams only).
    leader_check: Option<LeaderCheck>,
    /// The stream sequence of the last message delivered (or the one before the first wanted).
    delivered: u64,
    /// An error met after a message was already in hand, returned by the next call.
    deferred_error: Option<LogError>,
}

/// What a snapshot cursor on a replicated stream needs to ask the leader whether more is coming.
struct LeaderCheck {
    stream: JetStream,
    filter_subject: Option<String>,
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("open", &self.messages.is_some())
            .field("direct", &matches!(self.messages, Some(Source::Direct(_))))
            .field("last_sequence", &self.last_sequence)
            .field("delivered", &self.delivered)
            .finish()
    }
}

impl Cursor {
    /// Opens a cursor at `from_sequence` (1 or 0 = the beginning) over the messages matching
    /// `filter_subject` (`None` = all), reading through `direct` when given and usable.
    pub(crate) async fn open(
        stream: &JetStream,
        from_sequence: u64,
        filter_subject: Option<String>,
        end: CursorEnd,
        direct: Option<&DirectTarget>,
    ) -> Result<Self, LogError> {
        let last_sequence = match end {
            CursorEnd::Snapshot => {
                let info = stream
                    .get_info()
                    .await
                    .map_err(LogError::nats("reading the stream state"))?;
                let last = info.state.last_sequence;
                if last == 0 || from_sequence > last {
                    return Ok(Self::exhausted());
                }
                Some(last)
            }
            CursorEnd::Follow => None,
        };
        let leader_check = (last_sequence.is_some()
            && stream.cached_info().config.num_replicas > 1)
            .then(|| LeaderCheck {
                stream: stream.clone(),
                filter_subject: filter_subject.clone(),
            });
        let delivered = from_sequence.saturating_sub(1);
        let deliver_policy = if from_sequence <= 1 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: from_sequence,
            }
        };
        if let Some(target) = direct
            && let Some(pull) = DirectPull::open(
                target,
                stream,
                deliver_policy,
                filter_subject.clone(),
                end == CursorEnd::Follow,
            )
            .await?
        {
            return Ok(Self {
                messages: Some(Source::Direct(Box::new(pull))),
                last_sequence,
                leader_check,
                delivered,
                deferred_error: None,
            });
        }
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: filter_subject.unwrap_or_default(),
                deliver_policy,
                ..OrderedConfig::default()
            })
            .await
            .map_err(LogError::nats("creating an ordered consumer"))?;
        let mut cursor = Self {
            messages: None,
            last_sequence,
            leader_check,
            delivered,
            deferred_error: None,
        };
        if last_sequence.is_some()
            && consumer.cached_info().num_pending == 0
            && !snapshot_has_more(
                cursor.last_sequence,
                cursor.leader_check.as_ref(),
                cursor.delivered,
            )
            .await?
        {
            return Ok(Self::exhausted());
        }
        let messages = consumer
            .messages()
            .await
            .map_err(LogError::nats("starting an ordered consumer"))?;
        cursor.messages = Some(Source::Ordered(Box::new(messages)));
        Ok(cursor)
    }

    fn exhausted() -> Self {
        Self {
            messages: None,
            last_sequence: None,
            leader_check: None,
            delivered: 0,
            deferred_error: None,
        }
    }

    /// The next message, `None` at the end, or an error (after which the cursor is exhausted).
    pub(crate) async fn next(&mut self) -> Option<Result<RawMessage, LogError>> {
        if let Some(error) = self.deferred_error.take() {
            self.messages = None;
            return Some(Err(error));
        }
        let stalled_at = self
            .last_sequence
            .map(|_| tokio::time::Instant::now() + SNAPSHOT_STALL);
        loop {
            let source = self.messages.as_mut()?;
            let fetching = async {
                match source {
                    Source::Ordered(messages) => next_ordered(messages).await,
                    Source::Direct(pull) => next_direct(pull).await,
                }
            };
            let next = match stalled_at {
                Some(stalled_at) => match tokio::time::timeout_at(stalled_at, fetching).await {
                    Ok(next) => next,
                    Err(_) => {
                        self.messages = None;
                        return Some(Err(stalled()));
                    }
                },
                None => fetching.await,
            };
            let (message, sequence, pending) = match next {
                Some(Ok(next)) => next,
                Some(Err(error)) => {
                    self.messages = None;
                    return Some(Err(error));
                }
                // The source ran dry: the end, unless its server is behind the leader.
                None => match snapshot_has_more(
                    self.last_sequence,
                    self.leader_check.as_ref(),
                    self.delivered,
                )
                .await
                {
                    Ok(true) if stalled_at.is_none_or(|at| tokio::time::Instant::now() < at) => {
                        tokio::time::sleep(LAGGING_CONSUMER_PAUSE).await;
                        continue;
                    }
                    Ok(true) => {
                        self.messages = None;
                        return Some(Err(stalled()));
                    }
                    Ok(false) => {
                        self.messages = None;
                        return None;
                    }
                    Err(error) => {
                        self.messages = None;
                        return Some(Err(error));
                    }
                },
            };
            self.delivered = sequence;
            if let Some(last) = self.last_sequence {
                if sequence > last {
                    self.messages = None;
                    return None;
                }
                // With a filter, the stream's last message may not match: nothing left pending for
                // this consumer means the snapshot is complete, once the leader agrees.
                if sequence == last {
                    self.messages = None;
                } else if pending == 0 {
                    match snapshot_has_more(
                        self.last_sequence,
                        self.leader_check.as_ref(),
                        self.delivered,
                    )
                    .await
                    {
                        Ok(true) => {}
                        Ok(false) => self.messages = None,
                        Err(error) => self.deferred_error = Some(error),
                    }
                }
            }
            return Some(Ok(message));
        }
    }
}

/// Whether a snapshot cursor's consumer stopped short: the stream leader holds a message
/// matching the filter after the last one delivered and no later than the snapshot's end.
/// Always `false` on a stream with one replica, whose consumer sees everything there is. Apart
/// from the cursor, whose sources are not `Sync`, so that a replay's future stays `Send`.
async fn snapshot_has_more(
    last_sequence: Option<u64>,
    leader_check: Option<&LeaderCheck>,
    delivered: u64,
) -> Result<bool, LogError> {
    let (Some(last), Some(check)) = (last_sequence, leader_check) else {
        return Ok(false);
    };
    if delivered >= last {
        return Ok(false);
    }
    let Some(filter) = &check.filter_subject else {
        // The log is never trimmed and denies deletes, so every sequence up to the end is a
        // message the cursor wants.
        return Ok(true);
    };
    let next = check
        .stream
        .raw_message_builder()
        .sequence(delivered + 1)
        .next_by_subject(filter.clone())
        .send()
        .await;
    match next {
        Ok(message) => Ok(message.sequence <= last),
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(false),
        Err(error) => Err(LogError::nats(
            "asking the stream leader for the snapshot's rest",
        )(error)),
    }
}

/// A snapshot read whose consumer stopped delivering: transient, as a lost connection is.
#[derive(Debug, thiserror::Error)]
#[error("no stored message arrived for {SNAPSHOT_STALL:?} although the stream holds more")]
struct Stalled;

fn stalled() -> LogError {
    LogError::nats("reading stored messages")(Stalled)
}

/// A message with its stream sequence and the consumer's pending count.
type Positioned = (RawMessage, u64, u64);

async fn next_ordered(messages: &mut Ordered) -> Option<Result<Positioned, LogError>> {
    let message = match messages.next().await? {
        Ok(message) => message,
        Err(error) => {
            return Some(Err(LogError::nats("reading from an ordered consumer")(
                error,
            )));
        }
    };
    let (sequence, pending) = match message.info() {
        Ok(info) => (info.stream_sequence, info.pending),
        Err(error) => {
            return Some(Err(LogError::Nats {
                operation: "reading message metadata",
                source: error,
            }));
        }
    };
    let message = message.message;
    Some(Ok((
        RawMessage {
            sequence,
            subject: message.subject.to_string(),
            headers: message.headers,
            payload: message.payload,
        },
        sequence,
        pending,
    )))
}

async fn next_direct(pull: &mut DirectPull) -> Option<Result<Positioned, LogError>> {
    match pull.next().await {
        Ok(Pulled::Message(message)) => Some(Ok((
            RawMessage {
                sequence: message.stream_sequence,
                subject: message.subject,
                // Only replays read directly, and they need no header.
                headers: None,
                payload: message.payload,
            },
            message.stream_sequence,
            message.pending,
        ))),
        Ok(Pulled::Exhausted) => None,
        Err(error) => Some(Err(error)),
    }
}
