//! A forward cursor over raw stream messages that stops at the last sequence that existed when it
//! was opened, or never in follow mode. It reads through a direct connection ([`crate::direct`])
//! where one was offered and works, and otherwise through an async-nats ordered consumer (no acks,
//! flow-controlled batches).

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::stream::Stream as JetStream;
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

/// A forward cursor; see the module documentation.
pub(crate) struct Cursor {
    messages: Option<Source>,
    /// The last sequence to deliver, for snapshot cursors.
    last_sequence: Option<u64>,
}

impl std::fmt::Debug for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursor")
            .field("open", &self.messages.is_some())
            .field("direct", &matches!(self.messages, Some(Source::Direct(_))))
            .field("last_sequence", &self.last_sequence)
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
        if last_sequence.is_some() && consumer.cached_info().num_pending == 0 {
            return Ok(Self::exhausted());
        }
        let messages = consumer
            .messages()
            .await
            .map_err(LogError::nats("starting an ordered consumer"))?;
        Ok(Self {
            messages: Some(Source::Ordered(Box::new(messages))),
            last_sequence,
        })
    }

    fn exhausted() -> Self {
        Self {
            messages: None,
            last_sequence: None,
        }
    }

    /// The next message, `None` at the end, or an error (after which the cursor is exhausted).
    pub(crate) async fn next(&mut self) -> Option<Result<RawMessage, LogError>> {
        let next = match self.messages.as_mut()? {
            Source::Ordered(messages) => next_ordered(messages).await,
            Source::Direct(pull) => next_direct(pull).await,
        };
        let (message, sequence, pending) = match next {
            Some(Ok(next)) => next,
            Some(Err(error)) => {
                self.messages = None;
                return Some(Err(error));
            }
            None => {
                self.messages = None;
                return None;
            }
        };
        if let Some(last) = self.last_sequence {
            if sequence > last {
                self.messages = None;
                return None;
            }
            // With a filter, the stream's last message may not match: nothing left pending for this
            // consumer means the snapshot is complete.
            if sequence == last || pending == 0 {
                self.messages = None;
            }
        }
        Some(Ok(message))
    }
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
