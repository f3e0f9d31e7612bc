//! [`EventLog`]: stream set-up, append with optimistic concurrency and idempotency, and reads.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{
    Config as StreamConfig, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType,
    Stream as JetStream,
};
use async_nats::jetstream::{self, Context, ErrorCode};
use claimledger_events::{Commit, decode};

use crate::config::{LogConfig, LogStorage};
use crate::cursor::{Cursor, CursorEnd};
use crate::direct::DirectTarget;
use crate::error::{InvalidMessage, LogError};
use crate::replay::{Parker, Replay, error_chain};
use crate::server::warn_if_replicated_on_an_older_release;
use crate::subject::{AggregateAddress, ReplayFilter};

mod append;

/// Header carrying the schema version the payload was written with.
pub const SCHEMA_VERSION_HEADER: &str = "ClaimLedger-Schema-Version";
/// Header carrying the commit's event type names, comma-separated, in order.
pub const EVENT_TYPES_HEADER: &str = "ClaimLedger-Event-Types";

/// How long [`EventLog::append`] retries a transient failure before giving up: about the time a
/// JetStream cluster takes to elect a new stream leader, so that an election is invisible to writers.
pub const DEFAULT_APPEND_RETRY: Duration = Duration::from_secs(10);
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
}
