//! Throughput and memory of the event log against raw async-nats JetStream, on a private nats-server.
//!
//! Measures, in one run, on a nats-server this bench starts itself (file storage, so memory is
//! measured in isolation):
//! 1. append: `EventLog::append` (encode + OCC + message id) vs a raw publish loop of the same bytes
//!    with the same headers, both pipelined over many sessions with bounded in-flight acks;
//! 2. replay: `EventLog::replay` (commits decoded with checked rkyv) vs a raw ordered consumer read
//!    of the same stream;
//! 3. resident memory (VmRSS) of a second, fresh nats-server after `BENCH_SUBJECTS` distinct session subjects, each
//!    appended once with a message id inside the default duplicate window.
//!
//! Environment: `BENCH_COMMITS` per round (default 10000), `BENCH_ROUNDS` (3, alternating which side
//! goes first; the best round of each side counts), `BENCH_SESSIONS` (1000), `BENCH_IN_FLIGHT` (256),
//! `BENCH_SUBJECTS` (20000; 1000000 for the headline memory figure), `NATS_SERVER` (binary path).
//! Run: `cargo bench -p claimledger-log --bench log_throughput`.

use std::collections::{HashMap, VecDeque};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;
use claimledger_events::session::{
    BodyRegion, BodySide, ModalityRecorded, ServiceRecorded, Technique,
};
use claimledger_events::{
    Actor, ActorKind, AggregateKind, CURRENT_SCHEMA_VERSION, Commit, CptCode, Event, EventRecord,
    UtcMicros, encode,
};
use claimledger_log::{
    AggregateAddress, DEFAULT_DUPLICATE_WINDOW, EVENT_TYPES_HEADER, EventLog, LogConfig,
    ReplayFilter, ReplayItem, SCHEMA_VERSION_HEADER,
};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use uuid::Uuid;

/// Events per commit: a recorded service and a modality, as a typical "record treatment" command.
const EVENTS_PER_COMMIT: usize = 2;

fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .with_context(|| format!("{name} must be a whole number, got {value:?}")),
        Err(_) => Ok(default),
    }
}

/// The nats-server child process and its store directory, removed on drop.
struct Server {
    child: Child,
    store: PathBuf,
    url: String,
}

impl Server {
    fn start() -> anyhow::Result<Self> {
        let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| {
            if Command::new("nats-server")
                .arg("--version")
                .output()
                .is_ok()
            {
                "nats-server".to_owned()
            } else {
                "/usr/sbin/nats-server".to_owned()
            }
        });
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let store = std::env::temp_dir().join(format!("claimledger-bench-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&store)?;
        let child = Command::new(&binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let server = Self {
            child,
            store,
            url: format!("nats://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// Resident memory of the server process, in bytes.
    fn resident_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .context("no VmRSS line")?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .context("malformed VmRSS line")?
            .parse()?;
        Ok(kib * 1024)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

fn commit_for(address: &AggregateAddress, minutes: u16) -> Commit {
    let at = UtcMicros(1_790_000_000_000_000 + i64::from(minutes));
    Commit {
        command_id: Uuid::now_v7().into(),
        chain: address.chain,
        clinic: address.clinic,
        aggregate_kind: address.kind,
        aggregate_id: address.id,
        recorded_at: at,
        actor: Actor {
            kind: ActorKind::Staff,
            id: "therapist-17".to_owned(),
        },
        correlation_id: Uuid::now_v7().into(),
        causation_id: None,
        events: vec![
            EventRecord {
                event_id: Uuid::now_v7().into(),
                occurred_at: at,
                event: Event::ServiceRecorded(ServiceRecorded {
                    technique: Technique::MyofascialRelease,
                    cpt_code: CptCode::new("97140").expect("valid"),
                    minutes,
                    body_region: BodyRegion::LowerBack,
                    body_side: Some(BodySide::Bilateral),
                    description: Some("paraspinals L3-L5".to_owned()),
                }),
            },
            EventRecord {
                event_id: Uuid::now_v7().into(),
                occurred_at: at,
                event: Event::ModalityRecorded(ModalityRecorded {
                    code: CptCode::new("97010").expect("valid"),
                    minutes: 0,
                }),
            },
        ],
    }
}

fn sessions(count: usize) -> Vec<AggregateAddress> {
    let chain = Uuid::new_v4().into();
    let clinics: Vec<_> = (0..8).map(|_| Uuid::new_v4().into()).collect();
    (0..count)
        .map(|index| AggregateAddress {
            chain,
            clinic: Some(clinics[index % clinics.len()]),
            kind: AggregateKind::Session,
            id: Uuid::now_v7().into(),
        })
        .collect()
}

/// Per-session queues of commits: session `i` gets commits `i, i + sessions, ...`.
fn workload(sessions: &[AggregateAddress], commits: usize) -> Vec<VecDeque<Commit>> {
    let mut queues = vec![VecDeque::new(); sessions.len()];
    for index in 0..commits {
        let session = index % sessions.len();
        let minutes = u16::try_from(index % 60).expect("below 60");
        queues[session].push_back(commit_for(&sessions[session], minutes + 1));
    }
    queues
}

/// Runs one append per session at a time (each needs the previous version), up to `in_flight`
/// sessions at once, and returns the elapsed time.
async fn drive<F, Fut>(
    mut queues: Vec<VecDeque<Commit>>,
    in_flight: usize,
    append: F,
) -> anyhow::Result<Duration>
where
    F: Fn(usize, u64, Commit) -> Fut,
    Fut: Future<Output = anyhow::Result<u64>>,
{
    let mut versions = vec![0u64; queues.len()];
    let mut ready: VecDeque<usize> = (0..queues.len()).collect();
    let mut pending = FuturesUnordered::new();
    let started = Instant::now();
    loop {
        while pending.len() < in_flight {
            let Some(session) = ready.pop_front() else {
                break;
            };
            if let Some(commit) = queues[session].pop_front() {
                let call = append(session, versions[session], commit);
                pending.push(async move { (session, call.await) });
            }
        }
        let Some((session, result)) = pending.next().await else {
            break;
        };
        versions[session] = result?;
        if !queues[session].is_empty() {
            ready.push_back(session);
        }
    }
    Ok(started.elapsed())
}

fn headers_for(commit: &Commit, expected: u64) -> PublishMessage {
    PublishMessage::build()
        .message_id(commit.command_id.to_string())
        .expected_last_subject_sequence(expected)
        .header(SCHEMA_VERSION_HEADER, CURRENT_SCHEMA_VERSION.to_string())
        .header(
            EVENT_TYPES_HEADER,
            commit.event_type_names().collect::<Vec<_>>().join(","),
        )
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Measures the raw publish loop and the log's append on the same fresh workload, returning
/// (raw, log) durations. `log_first` alternates the order between rounds so that drift in a shared
/// machine's load does not favour either side.
async fn append_round(
    client: &async_nats::Client,
    log: &EventLog,
    raw_prefix: &str,
    commits: usize,
    session_count: usize,
    in_flight: usize,
    log_first: bool,
) -> anyhow::Result<(Duration, Duration)> {
    let raw = jetstream::new(client.clone());
    let session_list = sessions(session_count);
    let queues = workload(&session_list, commits);
    // The raw loop publishes exactly the bytes the log would write, encoded ahead of time.
    let mut raw_by_command = HashMap::new();
    for commit in queues.iter().flatten() {
        let subject = AggregateAddress::of(commit).subject(raw_prefix)?;
        let payload = Bytes::from(encode(commit)?);
        raw_by_command.insert(commit.command_id, (subject, payload));
    }
    let raw_loop = || {
        drive(queues.clone(), in_flight, |_, expected, commit| {
            let raw = raw.clone();
            let (subject, payload) = raw_by_command[&commit.command_id].clone();
            async move {
                let message = headers_for(&commit, expected).payload(payload);
                let ack: PublishAckFuture = raw.send_publish(subject, message).await?;
                Ok(ack.await?.sequence)
            }
        })
    };
    let log_loop = || {
        drive(queues.clone(), in_flight, |session, expected, commit| {
            let log = log.clone();
            let address = session_list[session];
            async move { Ok(log.append(&address, expected, &commit).await?.sequence) }
        })
    };
    if log_first {
        let log_elapsed = log_loop().await?;
        Ok((raw_loop().await?, log_elapsed))
    } else {
        let raw_elapsed = raw_loop().await?;
        Ok((raw_elapsed, log_loop().await?))
    }
}

/// Reads `count` messages of `stream` with a raw ordered consumer, without decoding.
async fn raw_replay(
    client: &async_nats::Client,
    stream: &str,
    count: usize,
) -> anyhow::Result<Duration> {
    let stream = jetstream::new(client.clone()).get_stream(stream).await?;
    let started = Instant::now();
    let mut messages = stream
        .create_consumer(OrderedConfig::default())
        .await?
        .messages()
        .await?
        .take(count);
    let mut read = 0;
    while let Some(message) = messages.next().await {
        anyhow::ensure!(!message?.payload.is_empty(), "empty payload");
        read += 1;
    }
    anyhow::ensure!(read == count, "raw replay read {read} of {count}");
    Ok(started.elapsed())
}

/// Replays the whole log with decoding; returns the elapsed time and the events decoded.
async fn log_replay(log: &EventLog, count: usize) -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let mut replay = log.replay(0, ReplayFilter::All).await?;
    let mut commits = 0usize;
    let mut events = 0usize;
    while let Some(item) = replay.next().await {
        match item? {
            ReplayItem::Commit(recorded) => {
                commits += 1;
                events += recorded.commit.events.len();
            }
            ReplayItem::Invalid { sequence, .. } => anyhow::bail!("invalid message {sequence}"),
        }
    }
    anyhow::ensure!(commits == count, "replayed {commits} of {count}");
    Ok((started.elapsed(), events))
}

async fn run(out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let commits = env_usize("BENCH_COMMITS", 10_000)?;
    let rounds = env_usize("BENCH_ROUNDS", 3)?.max(1);
    let session_count = env_usize("BENCH_SESSIONS", 1_000)?;
    let in_flight = env_usize("BENCH_IN_FLIGHT", 256)?;
    let subjects = env_usize("BENCH_SUBJECTS", 20_000)?;

    let server = Server::start()?;
    let client = async_nats::connect(&server.url).await?;
    writeln!(
        out,
        "log_throughput: {rounds} rounds x {commits} commits x {EVENTS_PER_COMMIT} events, \
         {session_count} sessions, {in_flight} in flight, file storage, duplicate window \
         {DEFAULT_DUPLICATE_WINDOW:?}; best round of each side"
    )?;

    // Both streams get identical settings; the raw stream is created through the log too.
    let log = EventLog::connect(client.clone(), LogConfig::new("BENCH_LOG", "bench")).await?;
    let raw_config = LogConfig::new("BENCH_RAW", "raw");
    EventLog::connect(client.clone(), raw_config.clone()).await?;

    let mut best_raw = Duration::MAX;
    let mut best_log = Duration::MAX;
    for round in 0..rounds {
        let (raw_elapsed, log_elapsed) = append_round(
            &client,
            &log,
            &raw_config.subject_prefix,
            commits,
            session_count,
            in_flight,
            round % 2 == 1,
        )
        .await?;
        best_raw = best_raw.min(raw_elapsed);
        best_log = best_log.min(log_elapsed);
    }
    let raw_append = rate(commits * EVENTS_PER_COMMIT, best_raw);
    let log_append = rate(commits * EVENTS_PER_COMMIT, best_log);
    writeln!(
        out,
        "append  raw: {:>9.0} events/s ({:>7.0} msgs/s)   log: {:>9.0} events/s ({:>7.0} commits/s)   ratio {:.2} (target >= 0.80)",
        raw_append,
        rate(commits, best_raw),
        log_append,
        rate(commits, best_log),
        log_append / raw_append
    )?;

    // The log's own client-side work per commit (what the raw loop skips): validation, addressing,
    // encoding and header values. Shown so a low ratio on a loaded machine can be told apart from
    // real overhead.
    let sample = workload(&sessions(100), 10_000);
    let started = Instant::now();
    let mut encoded_bytes = 0usize;
    for commit in sample.iter().flatten() {
        commit.validate()?;
        let subject = AggregateAddress::of(commit).subject("bench")?;
        let payload = encode(commit)?;
        let types = commit.event_type_names().collect::<Vec<_>>().join(",");
        encoded_bytes +=
            subject.len() + payload.len() + types.len() + commit.command_id.to_string().len();
    }
    writeln!(
        out,
        "append  log client-side work: {:.2} us per commit ({} bytes prepared)",
        started.elapsed().as_secs_f64() * 1e6 / 10_000.0,
        encoded_bytes
    )?;

    // Replay the log's stream both ways, best of two each, in the order raw, log, log, raw.
    let total = commits * rounds;
    let mut best_raw = Duration::MAX;
    let mut best_log = Duration::MAX;
    let mut events = 0;
    for round in 0..2 {
        if round == 0 {
            best_raw = best_raw.min(raw_replay(&client, "BENCH_LOG", total).await?);
        }
        let (elapsed, decoded_events) = log_replay(&log, total).await?;
        best_log = best_log.min(elapsed);
        events = decoded_events;
        if round == 1 {
            best_raw = best_raw.min(raw_replay(&client, "BENCH_LOG", total).await?);
        }
    }
    let raw_rate = rate(total, best_raw);
    let log_rate = rate(total, best_log);
    writeln!(
        out,
        "replay  raw: {:>9.0} msgs/s read   log: {:>9.0} commits/s decoded ({:.0} events/s)   ratio {:.2} (target >= 0.70)",
        raw_rate,
        log_rate,
        rate(events, best_log),
        log_rate / raw_rate
    )?;

    // Memory: on a fresh server, so that the throughput phases' heap does not hide the growth,
    // distinct session subjects, each appended once (msg id + expected sequence 0).
    drop(log);
    drop(client);
    drop(server);
    let server = Server::start()?;
    let client = async_nats::connect(&server.url).await?;
    let memory_log =
        EventLog::connect(client.clone(), LogConfig::new("BENCH_MEMORY", "memory")).await?;
    let before = server.resident_bytes()?;
    let memory_sessions = sessions(subjects);
    let queues: Vec<VecDeque<Commit>> = memory_sessions
        .iter()
        .map(|session| VecDeque::from([commit_for(session, 30)]))
        .collect();
    let memory_elapsed = drive(queues, in_flight, |session, expected, commit| {
        let log = memory_log.clone();
        let address = memory_sessions[session];
        async move { Ok(log.append(&address, expected, &commit).await?.sequence) }
    })
    .await?;
    let after = server.resident_bytes()?;
    let per_million = after.saturating_sub(before) as f64 / subjects as f64 * 1_000_000.0 / 1e9;
    writeln!(
        out,
        "memory  {subjects} distinct session subjects (appended in {:.1} s, {:.0} commits/s): \
         nats-server VmRSS {:.0} MiB -> {:.0} MiB, delta ~{per_million:.2} GB per million subjects+ids",
        memory_elapsed.as_secs_f64(),
        rate(subjects, memory_elapsed),
        before as f64 / 1_048_576.0,
        after as f64 / 1_048_576.0,
    )?;
    drop(client);
    drop(server);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    runtime.block_on(run(&mut out))
}
