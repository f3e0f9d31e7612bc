//! [`EventLog`]: stream set-up, append with optimistic concurrency and idempotency, and reads.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::context::{GetStreamErrorKind, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{
    Config as StreamConfig, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType,
    Stream as JetStream,
};
use async_nats::jetstream::{self, Context, ErrorCode};
use claimledger_events::{CURRENT_SCHEMA_VERSION, CommandId, Commit, decode, encode};
use tracing::{Span, field};

use crate::config::{LogConfig, LogStorage};
use crate::cursor::{Cursor, CursorEnd};
use crate::direct::DirectTarget;
use crate::error::{InvalidMessage, LogError};
use crate::replay::{Parker, Replay, error_chain};
use crate::server::warn_if_replicated_on_an_older_release;
use crate::subject::{AggregateAddress, ReplayFilter};

/// Header carrying the schema version the payload was written with.
pub const SCHEMA_VERSION_HEADER: &str = "ClaimLedger-Schema-Version";
/// Header carrying the commit's event type names, comma-separated, in order.
pub const EVENT_TYPES_HEADER: &str = "ClaimLedger-Event-Types";

/// How long [`EventLog::append`] retries a transient failure before giving up: about the time a
/// JetStream cluster takes to elect a new stream leader, so that an election is invisible to writers.
pub const DEFAULT_APPEND_RETRY: Duration = Duration::from_secs(10);
/// The first pause between two attempts of an append; it doubles up to [`MAX_APPEND_BACKOFF`].
const FIRST_APPEND_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between two attempts of an append.
const MAX_APPEND_BACKOFF: Duration = Duration::from_secs(1);
/// The least time an append gives the read that tells a retried command from a conflict, even
/// when its retry budget is spent: without it a conflict on the last attempt could not be named.
const MIN_RESOLVE_TIME: Duration = Duration::from_secs(2);

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The stream sequence of the commit: the aggregate's new version.
    pub sequence: u64,
    /// `true` when the command had already been appended (a retry): nothing new was stored and
    /// `sequence` is the original commit's.
    pub duplicate: bool,
}

pub use claimledger_events::RecordedCommit;

/// Every commit of one aggregate, in order, and its current version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateHistory {
    /// The commits, oldest first.
    pub commits: Vec<RecordedCommit>,
    /// The sequence of the last message stored on the aggregate's subject, valid or not, or 0 for an
    /// aggregate with none: the `expected_version` of the next append.
    pub version: u64,
    /// The stored messages on the aggregate's subject that are not valid commits of it, oldest first:
    /// parked and left out of `commits`.
    pub skipped: Vec<SkippedMessage>,
}

/// A message on an aggregate's subject that [`EventLog::read`] left out because it is not a valid
/// commit of that aggregate (see [`crate::ReplayItem::Invalid`] for the same in a replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedMessage {
    /// Its stream sequence.
    pub sequence: u64,
    /// Its subject.
    pub subject: String,
    /// Why it is not a usable commit, with its causes, on one line.
    pub reason: String,
}

/// The event log on one JetStream stream. Cheap to clone (one reference count); clones share the
/// connection and stream handles.
#[derive(Debug, Clone)]
pub struct EventLog {
    shared: Arc<Shared>,
}

/// The state every clone of an [`EventLog`] shares.
#[derive(Debug, Clone)]
struct Shared {
    context: Context,
    config: LogConfig,
    stream: JetStream,
    parker: Parker,
    /// Where replays read directly (see [`crate::direct`]); `None` reads through async-nats.
    direct: Option<DirectTarget>,
    /// How long an append retries transient failures (see [`DEFAULT_APPEND_RETRY`]).
    append_retry: Duration,
}

impl EventLog {
    /// Validates `config`, creates or verifies both streams, and returns the log. A replicated stream
    /// on a server older than [`crate::FIRST_RELEASE_FOR_CLUSTERS`] is logged as a warning.
    pub async fn connect(client: async_nats::Client, config: LogConfig) -> Result<Self, LogError> {
        config.validate()?;
        let context = jetstream::new(client);
        let (stream, parked) = ensure_streams(&context, &config).await?;
        Ok(Self::assemble(context, config, stream, Some(parked)))
    }

    /// Opens a log whose stream already exists, for reading, creating nothing: a missing stream is
    /// [`LogError::StreamNotFound`], and a missing parked stream stays missing (invalid messages are
    /// then logged but not copied). The stream's settings are not checked against `config` beyond
    /// its subjects, so a log written with another duplicate window (a setting of writers) still
    /// opens. Appending through such a log works as through [`EventLog::connect`], and the same
    /// warning is logged for a replicated stream on an older server.
    pub async fn open_existing(
        client: async_nats::Client,
        config: LogConfig,
    ) -> Result<Self, LogError> {
        config.validate()?;
        let context = jetstream::new(client);
        let stream = existing_stream(&context, &config.stream_name)
            .await?
            .ok_or_else(|| LogError::StreamNotFound {
                stream: config.stream_name.clone(),
            })?;
        let wanted_subjects = vec![format!("{}.>", config.subject_prefix)];
        let found_subjects = &stream.cached_info().config.subjects;
        if *found_subjects != wanted_subjects {
            return Err(LogError::StreamMismatch {
                stream: config.stream_name.clone(),
                field: "subjects",
                expected: format!("{wanted_subjects:?}"),
                found: format!("{found_subjects:?}"),
            });
        }
        let parked = existing_stream(&context, &config.parked_stream_name()).await?;
        Ok(Self::assemble(context, config, stream, parked))
    }

    /// The log over `stream` (and the parked stream, if there is one), after warning about a
    /// replicated stream on an older server.
    fn assemble(
        context: Context,
        config: LogConfig,
        stream: JetStream,
        parked: Option<JetStream>,
    ) -> Self {
        warn_if_replicated_on_an_older_release(
            &context.client().server_info().version,
            stream.cached_info(),
        );
        let parker = Parker::new(context.clone(), parked, &config);
        let direct = DirectTarget::detect(&context.client());
        Self {
            shared: Arc::new(Shared {
                context,
                config,
                stream,
                parker,
                direct,
                append_retry: DEFAULT_APPEND_RETRY,
            }),
        }
    }

    /// This log with replays read through async-nats only: the fallback path of
    /// [`crate::direct`], which tests and the replay benchmark compare against.
    pub fn without_direct_reads(&self) -> Self {
        Self {
            shared: Arc::new(Shared {
                direct: None,
                ..(*self.shared).clone()
            }),
        }
    }

    /// This log with appends retrying transient failures for `budget` instead of
    /// [`DEFAULT_APPEND_RETRY`]; zero tries once.
    pub fn with_append_retry(&self, budget: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                append_retry: budget,
                ..(*self.shared).clone()
            }),
        }
    }

    /// Whether replays read through a direct connection when they can.
    pub fn reads_directly(&self) -> bool {
        self.shared.direct.is_some()
    }

    /// Creates the streams if missing, or checks that the existing ones match the configuration.
    /// Idempotent; [`EventLog::connect`] already calls it.
    pub async fn ensure_stream(&self) -> Result<(), LogError> {
        ensure_streams(&self.shared.context, &self.shared.config)
            .await
            .map(drop)
    }

    /// The configuration this log was opened with.
    pub fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    /// The subject of an aggregate on this log.
    pub fn subject_of(&self, aggregate: &AggregateAddress) -> Result<String, LogError> {
        aggregate.subject(&self.shared.config.subject_prefix)
    }

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
    /// for up to [`DEFAULT_APPEND_RETRY`] (see [`EventLog::with_append_retry`]): the duplicate window
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

    /// The aggregate's current version: the sequence of its last commit, or 0 if it has none.
    pub async fn version(&self, aggregate: &AggregateAddress) -> Result<u64, LogError> {
        let subject = self.subject_of(aggregate)?;
        match self
            .shared
            .stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(message) => Ok(message.sequence),
            Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(error) => Err(LogError::nats("reading an aggregate's last commit")(error)),
        }
    }

    /// Every commit of one aggregate, in order. A stored message that is not a valid commit of this
    /// aggregate (garbage published straight onto its subject, a commit of another aggregate) is
    /// parked once, logged and reported in [`AggregateHistory::skipped`], as a replay does: the
    /// commits around it still make the aggregate, and one bad message does not make it unreadable
    /// for good. The version counts it, so the next append's expected version is the subject's last
    /// stored sequence, which is what the server checks.
    #[tracing::instrument(
        name = "log.read",
        skip_all,
        fields(stream = %self.shared.config.stream_name, aggregate_id = %aggregate.id)
    )]
    pub async fn read(&self, aggregate: &AggregateAddress) -> Result<AggregateHistory, LogError> {
        let subject = self.subject_of(aggregate)?;
        let mut cursor = Cursor::open(
            &self.shared.stream,
            1,
            Some(subject.clone()),
            CursorEnd::Snapshot,
            None,
        )
        .await?;
        let mut commits = Vec::new();
        let mut skipped = Vec::new();
        let mut version = 0;
        while let Some(message) = cursor.next().await {
            let message = message?;
            version = message.sequence;
            match decode_for_subject(&message.payload, &message.subject, &self.shared.config) {
                Ok(commit) => commits.push(RecordedCommit {
                    sequence: message.sequence,
                    subject: message.subject,
                    commit,
                }),
                Err(error) => {
                    self.shared.parker.park(&message, &error).await?;
                    skipped.push(SkippedMessage {
                        sequence: message.sequence,
                        subject: message.subject,
                        reason: error_chain(&error),
                    });
                }
            }
        }
        Ok(AggregateHistory {
            commits,
            version,
            skipped,
        })
    }

    /// Streams the commits matching `filter` from `from_sequence` (0 or 1 = the beginning) up to the
    /// stream's last sequence at the time of the call, in order, with bounded memory. Invalid messages
    /// are parked and reported as [`crate::ReplayItem::Invalid`]; the replay continues past them.
    pub async fn replay(
        &self,
        from_sequence: u64,
        filter: ReplayFilter,
    ) -> Result<Replay, LogError> {
        self.open_replay(from_sequence, filter, CursorEnd::Snapshot)
            .await
    }

    /// Like [`EventLog::replay`], but never ends: after the existing commits it waits for new ones.
    pub async fn follow(
        &self,
        from_sequence: u64,
        filter: ReplayFilter,
    ) -> Result<Replay, LogError> {
        self.open_replay(from_sequence, filter, CursorEnd::Follow)
            .await
    }

    #[tracing::instrument(
        name = "log.replay",
        skip_all,
        fields(stream = %self.shared.config.stream_name, from_sequence, filter = ?filter, mode = ?end)
    )]
    async fn open_replay(
        &self,
        from_sequence: u64,
        filter: ReplayFilter,
        end: CursorEnd,
    ) -> Result<Replay, LogError> {
        let filter_subject = filter.filter_subject(&self.shared.config.subject_prefix)?;
        // Replays are the bulk reads: they go through the direct connection when there is one.
        // One aggregate's reads (above) are a handful of messages and stay on the shared connection.
        let cursor = Cursor::open(
            &self.shared.stream,
            from_sequence,
            filter_subject,
            end,
            self.shared.direct.as_ref(),
        )
        .await?;
        Ok(Replay::new(
            cursor,
            self.shared.parker.clone(),
            self.shared.config.clone(),
        ))
    }

    /// The stream's last sequence now (0 when empty).
    pub async fn last_sequence(&self) -> Result<u64, LogError> {
        let info = self
            .shared
            .stream
            .get_info()
            .await
            .map_err(LogError::nats("reading the stream state"))?;
        Ok(info.state.last_sequence)
    }
}

/// Decodes a payload and checks that the commit belongs to the subject it was stored under.
pub(crate) fn decode_for_subject(
    payload: &[u8],
    subject: &str,
    config: &LogConfig,
) -> Result<Commit, InvalidMessage> {
    let commit = decode(payload)?;
    // Replay checks every message, so the common case compares token by token without building
    // the expected subject; only a mismatch builds it, for the error.
    if subject_is_commits_own(subject, &config.subject_prefix, &commit) {
        return Ok(commit);
    }
    // Every released aggregate kind has a valid token, so this cannot fail for data this build
    // wrote; a kind it cannot address makes the commit as unusable here as a misfiled one.
    let commit_subject = AggregateAddress::of(&commit)
        .subject(&config.subject_prefix)
        .map_err(|_| InvalidMessage::WrongSubject {
            commit_subject: format!("<unaddressable {:?}>", commit.aggregate_kind),
        })?;
    if commit_subject != subject {
        return Err(InvalidMessage::WrongSubject { commit_subject });
    }
    Ok(commit)
}

/// Whether `subject` is exactly the subject [`AggregateAddress::subject`] gives `commit` under
/// `prefix` (UUIDs in lower-case hyphenated form), compared without allocating: each expected part
/// is stripped from the front in turn (no part the subject can match contains a `.`, so this is a
/// token-by-token comparison without searching for the separators).
fn subject_is_commits_own(subject: &str, prefix: &str, commit: &Commit) -> bool {
    fn strip(rest: &mut &[u8], expected: &[u8]) -> bool {
        match rest.strip_prefix(expected) {
            Some(after) => {
                *rest = after;
                true
            }
            None => false,
        }
    }
    fn strip_uuid(rest: &mut &[u8], uuid: uuid::Uuid) -> bool {
        let mut buffer = [0_u8; uuid::fmt::Hyphenated::LENGTH];
        strip(rest, uuid.hyphenated().encode_lower(&mut buffer).as_bytes())
    }
    let mut rest = subject.as_bytes();
    let clinic_matches = |rest: &mut &[u8]| match commit.clinic {
        Some(clinic) => strip_uuid(rest, clinic.as_uuid()),
        None => strip(rest, crate::subject::CHAIN_WIDE_CLINIC_TOKEN.as_bytes()),
    };
    strip(&mut rest, prefix.as_bytes())
        && strip(&mut rest, b".")
        && strip_uuid(&mut rest, commit.chain.as_uuid())
        && strip(&mut rest, b".")
        && clinic_matches(&mut rest)
        && strip(&mut rest, b".")
        && strip(&mut rest, commit.aggregate_kind.subject_token().as_bytes())
        && strip(&mut rest, b".")
        && strip_uuid(&mut rest, commit.aggregate_id.as_uuid())
        && rest.is_empty()
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

/// The stream named `name`, or `None` when the server has no such stream.
async fn existing_stream(context: &Context, name: &str) -> Result<Option<JetStream>, LogError> {
    match context.get_stream(name).await {
        Ok(stream) => Ok(Some(stream)),
        Err(error)
            if matches!(
                error.kind(),
                GetStreamErrorKind::JetStream(ref server)
                    if server.error_code() == ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(LogError::nats("looking up a stream")(error)),
    }
}

fn stream_config(name: String, subjects: Vec<String>, config: &LogConfig) -> StreamConfig {
    StreamConfig {
        name,
        subjects,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        storage: match config.storage {
            LogStorage::File => StorageType::File,
            LogStorage::Memory => StorageType::Memory,
        },
        num_replicas: config.replicas,
        duplicate_window: config.duplicate_window,
        // No age, size or count limit: the log is the system of record and is never trimmed.
        max_age: Duration::ZERO,
        max_bytes: -1,
        max_messages: -1,
        max_messages_per_subject: -1,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        ..StreamConfig::default()
    }
}

async fn ensure_streams(
    context: &Context,
    config: &LogConfig,
) -> Result<(JetStream, JetStream), LogError> {
    let log = ensure_stream(
        context,
        stream_config(
            config.stream_name.clone(),
            vec![format!("{}.>", config.subject_prefix)],
            config,
        ),
    )
    .await?;
    let parked = ensure_stream(
        context,
        stream_config(
            config.parked_stream_name(),
            vec![format!("{}.>", config.parked_subject_prefix())],
            config,
        ),
    )
    .await?;
    Ok((log, parked))
}

/// Creates the stream, or checks an existing one against the settings the log relies on.
#[tracing::instrument(name = "log.ensure_stream", skip_all, fields(stream = %wanted.name))]
async fn ensure_stream(context: &Context, wanted: StreamConfig) -> Result<JetStream, LogError> {
    let mut stream = context
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(LogError::nats("creating or looking up a stream"))?;
    let found = &stream
        .info()
        .await
        .map_err(LogError::nats("reading a stream's configuration"))?
        .config;
    let mismatch = |field: &'static str, expected: String, found: String| {
        Err(LogError::StreamMismatch {
            stream: wanted.name.clone(),
            field,
            expected,
            found,
        })
    };
    if found.subjects != wanted.subjects {
        return mismatch(
            "subjects",
            format!("{:?}", wanted.subjects),
            format!("{:?}", found.subjects),
        );
    }
    if found.storage != wanted.storage {
        return mismatch(
            "storage",
            format!("{:?}", wanted.storage),
            format!("{:?}", found.storage),
        );
    }
    if found.retention != wanted.retention {
        return mismatch(
            "retention",
            format!("{:?}", wanted.retention),
            format!("{:?}", found.retention),
        );
    }
    if !found.max_age.is_zero() || found.max_bytes > 0 || found.max_messages > 0 {
        return mismatch(
            "limits",
            "no age, size or count limit".to_owned(),
            format!(
                "max_age {:?}, max_bytes {}, max_messages {}",
                found.max_age, found.max_bytes, found.max_messages
            ),
        );
    }
    if !(found.deny_delete && found.deny_purge) {
        return mismatch(
            "deny_delete/deny_purge",
            "true/true".to_owned(),
            format!("{}/{}", found.deny_delete, found.deny_purge),
        );
    }
    if found.duplicate_window != wanted.duplicate_window {
        return mismatch(
            "duplicate_window",
            format!("{:?}", wanted.duplicate_window),
            format!("{:?}", found.duplicate_window),
        );
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use claimledger_events::{Actor, ActorKind, AggregateKind};
    use uuid::Uuid;

    use super::*;

    fn commit(clinic: Option<Uuid>, kind: AggregateKind) -> Commit {
        Commit {
            command_id: Uuid::from_u128(1).into(),
            chain: Uuid::from_u128(0xc1a1).into(),
            clinic: clinic.map(Into::into),
            aggregate_kind: kind,
            aggregate_id: Uuid::from_u128(0xa9).into(),
            recorded_at: claimledger_events::UtcMicros(0),
            actor: Actor {
                kind: ActorKind::Staff,
                id: "desk".to_owned(),
            },
            correlation_id: Uuid::from_u128(2).into(),
            causation_id: None,
            events: Vec::new(),
        }
    }

    #[test]
    fn the_token_comparison_accepts_exactly_the_formatted_subject() {
        let clinic = Some(Uuid::from_u128(0xc11));
        for commit in [
            commit(clinic, AggregateKind::Session),
            commit(None, AggregateKind::PayerRules),
        ] {
            let own = AggregateAddress::of(&commit)
                .subject("ev.x")
                .expect("a valid subject");
            assert!(subject_is_commits_own(&own, "ev.x", &commit), "{own}");
            let upper = own.to_uppercase().replace("EV.X", "ev.x");
            let others = [
                own.replacen("ev.x", "ev.y", 1),
                own.replacen("ev.x", "ev.xy", 1),
                format!("{own}.extra"),
                format!("{own}x"),
                own.rsplit_once('.')
                    .map(|(head, _)| head.to_owned())
                    .unwrap_or_default(),
                upper,
                own.replace("-", ""),
            ];
            for other in others {
                assert!(!subject_is_commits_own(&other, "ev.x", &commit), "{other}");
            }
        }
        let session = commit(clinic, AggregateKind::Session);
        let chain_wide = AggregateAddress::of(&commit(None, AggregateKind::Session))
            .subject("ev.x")
            .expect("a valid subject");
        assert!(!subject_is_commits_own(&chain_wide, "ev.x", &session));
    }

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
