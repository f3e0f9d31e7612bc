//! The replicated log on a real three-node cluster (`deploy/cluster-stack.sh`, nats-server 2.12,
//! `sync_interval: always`, R3 streams): while writers append concurrently to many aggregates, and
//! pairs of writers race on one aggregate at the same expected version, the stream's leader is
//! killed with `kill -9` and restarted three times, a follower is killed, and the leader steps down.
//!
//! Every acknowledged append is on the log exactly once, at the sequence it was acknowledged with;
//! every lost race is a [`LogError::Conflict`] and its commit is not on the log; an append during an
//! election lands after the log's own retries or fails as unavailable ([`LogError::Nats`], the API's
//! 503), and the writer then retries the same command, as an API client does. The write gap of each
//! disruption (from the kill or the step-down request to the first acknowledgement of an append
//! sent after it) is printed.
//!
//! The tests skip, saying why, when no node of the cluster answers; `deploy/test.sh` sets
//! `CLAIMLEDGER_CLUSTER_REQUIRED=1`, which turns that into a failure. They kill nodes the other
//! tests' streams live on too, so they run one at a time and only against 2.9's server otherwise:
//! `deploy/test.sh` leaves them out of its second, cluster-wide run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use claimledger_events::CommandId;
use claimledger_log::{
    AggregateAddress, AggregateHistory, EventLog, LogConfig, LogError, ReplayFilter, ReplayItem,
};
use integration_tests::cluster::{Cluster, Reach};
use integration_tests::commits::{
    commit_for, new_chain, new_clinic, new_session, scheduled, service,
};
use integration_tests::drain;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The replicas production gives its streams.
const REPLICAS: usize = 3;
/// Writers that each append to an aggregate of their own.
const SOLO_WRITERS: usize = 12;
/// Pairs of writers that race on one aggregate each.
const RACING_PAIRS: usize = 4;
/// How often the waits on the load ask again.
const POLL: Duration = Duration::from_millis(20);

/// The tests kill nodes every stream lives on, so they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_leader_kills_lose_no_acknowledged_append_and_store_none_twice() -> anyhow::Result<()>
{
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(setup) = ClusterLog::open("three leader kills").await? else {
        return Ok(());
    };
    let stream = setup.stream().to_owned();
    let load = Load::start(&setup.log);
    load.wait_for_acks(200).await?;

    for kill in 1..=3 {
        let leader = setup.cluster.leader_of(&stream).await?;
        let connection = if leader == setup.connected_node() {
            "the writers' connection was to it"
        } else {
            "the writers were connected elsewhere"
        };
        let killed_at = setup.cluster.kill(&leader)?;
        let gap = load.write_gap_after(killed_at).await?;
        let new_leader = setup.new_leader_other_than(&leader).await?;
        setup.cluster.start_stopped_nodes()?;
        let caught_up = setup.cluster.wait_until_current(&stream, REPLICAS).await?;
        report(format_args!(
            "cluster: leader kill {kill} ({connection}): {gap} ({leader} killed with kill -9, \
             {new_leader} leads; {leader} restarted and current {} ms after the restart)",
            caught_up.as_millis()
        ));
    }

    let ledger = load.finish().await?;
    setup.verify("three leader kills", &ledger).await?;
    setup.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_follower_loses_nothing_and_catches_up_after_its_restart() -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(setup) = ClusterLog::open("follower kill").await? else {
        return Ok(());
    };
    let stream = setup.stream().to_owned();
    let load = Load::start(&setup.log);
    load.wait_for_acks(200).await?;

    // The follower the writers are not connected to first: the cluster's own behaviour. Then, if
    // the writers' connection is to the other follower, that one: the client reconnects too.
    let leader = setup.cluster.leader_of(&stream).await?;
    let connected = setup.connected_node();
    let mut followers = setup.cluster.followers_of(&stream).await?;
    anyhow::ensure!(!followers.is_empty(), "stream {stream} has no follower");
    followers.sort_by_key(|follower| *follower == connected);
    for follower in followers {
        let killed_at = setup.cluster.kill(&follower)?;
        // Two of three replicas are a quorum: the leader keeps acknowledging while one is down.
        let gap = load.write_gap_after(killed_at).await?;
        let acks_while_down = load.wait_for_acks_sent_after(killed_at, 100).await?;
        assert_eq!(
            setup.cluster.leader_of(&stream).await?,
            leader,
            "a follower's death does not move the leader"
        );
        setup.cluster.start_stopped_nodes()?;
        let caught_up = setup.cluster.wait_until_current(&stream, REPLICAS).await?;
        let connection = if follower == connected {
            "the writers' connection was to it"
        } else {
            "the writers were connected elsewhere"
        };
        report(format_args!(
            "cluster: follower kill ({connection}): {gap} ({follower} killed with kill -9, \
             {leader} kept leading and acknowledged {acks_while_down} appends while it was down; \
             {follower} current {} ms after the restart)",
            caught_up.as_millis()
        ));
    }

    let ledger = load.finish().await?;
    setup.verify("follower kill", &ledger).await?;
    setup.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_leader_step_down_loses_nothing() -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(setup) = ClusterLog::open("step-down").await? else {
        return Ok(());
    };
    let stream = setup.stream().to_owned();
    let load = Load::start(&setup.log);
    load.wait_for_acks(200).await?;

    let (requested_at, new_leader) = setup.cluster.step_down(&stream).await?;
    let gap = load.write_gap_after(requested_at).await?;
    report(format_args!(
        "cluster: leader step-down: {gap} ({new_leader} leads after \
         $JS.API.STREAM.LEADER.STEPDOWN)"
    ));

    let ledger = load.finish().await?;
    setup.verify("step-down", &ledger).await?;
    setup.cleanup().await
}

/// Writes one line to the test's standard error directly, past the harness's capture of `print!`, so
/// the figures show in every run, passing or not.
fn report(line: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A log on its own R3 stream of the cluster. Dropping it (a failed test) starts any node the test
/// left stopped and deletes the streams, so the cluster stays whole for the next test.
struct ClusterLog {
    cluster: Cluster,
    log: EventLog,
    config: LogConfig,
    cleaned_up: bool,
}

impl ClusterLog {
    /// The log on a new stream, once every replica is current; `None` (having said why) when no
    /// node of the cluster answers.
    async fn open(test: &str) -> anyhow::Result<Option<Self>> {
        let cluster = match Cluster::reach().await? {
            Reach::Reached(cluster) => cluster,
            Reach::Unreachable(reason) => {
                report(format_args!("cluster: skipping {test}: {reason}"));
                return Ok(None);
            }
        };
        // A node an earlier run left stopped would make the new stream's placement fail.
        cluster.start_stopped_nodes()?;
        let unique = Uuid::new_v4().simple().to_string();
        let config = LogConfig {
            replicas: REPLICAS,
            ..LogConfig::new(format!("CLUSTER_{unique}"), format!("cluster.{unique}"))
        };
        let log = EventLog::connect(cluster.client.clone(), config.clone()).await?;
        cluster
            .wait_until_current(&config.stream_name, REPLICAS)
            .await?;
        Ok(Some(Self {
            cluster,
            log,
            config,
            cleaned_up: false,
        }))
    }

    fn stream(&self) -> &str {
        &self.config.stream_name
    }

    /// The node the writers' connection is to now.
    fn connected_node(&self) -> String {
        self.cluster.client.server_info().server_name
    }

    /// The stream's leader once it is another node than `old` (a killed leader's name may linger
    /// in the first answers).
    async fn new_leader_other_than(&self, old: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leader = self.cluster.leader_of(self.stream()).await?;
            if leader != old {
                return Ok(leader);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{old} was still named the leader 30 s after it was killed"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every position of the stream, read through a new connection. A node restarted a moment ago
    /// may not answer JetStream requests yet (the stream lookup times out), which is a failure a
    /// reader retries, as the services' own start-up does: the read is tried again, with a new
    /// connection, for up to a minute.
    async fn read_back(&self) -> anyhow::Result<Vec<ReplayItem>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let attempt = async {
                let client = async_nats::connect(self.cluster.urls.clone()).await?;
                let log = EventLog::open_existing(client, self.config.clone()).await?;
                drain(log.replay(0, ReplayFilter::All).await?).await
            };
            match attempt.await {
                Ok(items) => return Ok(items),
                Err(error) if Instant::now() < deadline => {
                    report(format_args!(
                        "cluster: reading the stream back failed ({error:#}); trying again"
                    ));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => {
                    return Err(error.context("the stream could not be read back for 60 s"));
                }
            }
        }
    }

    /// Reads the whole stream back through a new connection and checks it against the ledger.
    async fn verify(&self, test: &str, ledger: &Ledger) -> anyhow::Result<()> {
        let mut on_log: HashMap<CommandId, Vec<u64>> = HashMap::new();
        for item in self.read_back().await? {
            match item {
                ReplayItem::Commit(recorded) => on_log
                    .entry(recorded.commit.command_id)
                    .or_default()
                    .push(recorded.sequence),
                ReplayItem::Invalid { sequence, .. } => {
                    panic!("{test}: message {sequence} is not a valid commit")
                }
            }
        }
        let unchained =
            commits_not_decided_on_their_predecessor(&self.cluster.client, self.stream()).await?;
        assert!(
            unchained.is_empty(),
            "{test}: lost writes: these commits were appended expecting another version than the \
             commit before them on their aggregate (subject, sequence, expected, actual): \
             {unchained:?}"
        );
        for (command, ack) in &ledger.acked {
            assert_eq!(
                on_log.get(command),
                Some(&vec![ack.sequence]),
                "{test}: command {command:?}, acknowledged at {}, is on the log once at that \
                 sequence",
                ack.sequence
            );
        }
        for (command, sequences) in &on_log {
            assert_eq!(
                sequences.len(),
                1,
                "{test}: command {command:?} is stored once, found at {sequences:?}"
            );
            assert!(
                ledger.acked.contains_key(command) || ledger.unknown.contains(command),
                "{test}: command {command:?} at {sequences:?} was never acknowledged"
            );
        }
        for command in &ledger.conflicted {
            assert!(
                !on_log.contains_key(command),
                "{test}: command {command:?} lost its race but is on the log"
            );
        }
        let unknown_on_log = ledger
            .unknown
            .iter()
            .filter(|command| on_log.contains_key(command))
            .count();
        report(format_args!(
            "cluster: {test}: {} appends acknowledged ({} of them retries answered as duplicates), \
             {} found on the log, {} commits on the log in all; {} answers were \"unavailable\" \
             (503) and retried {:?}; {} races: {} won, {} lost as conflicts ({} rounds both lost, on \
             a read that missed the newest commits); {} commands left with an unknown outcome, \
             {unknown_on_log} of them on the log; every commit's expected version is its \
             predecessor's sequence",
            ledger.acked.len(),
            ledger.duplicates,
            ledger
                .acked
                .keys()
                .filter(|command| on_log.contains_key(command))
                .count(),
            on_log.len(),
            ledger.unavailable.values().sum::<usize>(),
            ledger.unavailable,
            ledger.races,
            ledger.race_wins,
            ledger.conflicted.len(),
            ledger.races_on_a_stale_read,
            ledger.unknown.len(),
        ));
        assert!(
            ledger.anomalies.is_empty(),
            "{test}: answers a correct log never gives: {:#?}",
            ledger.anomalies
        );
        Ok(())
    }

    async fn cleanup(mut self) -> anyhow::Result<()> {
        self.cleaned_up = true;
        let jetstream = jetstream::new(self.cluster.client.clone());
        for stream in [
            self.config.stream_name.clone(),
            self.config.parked_stream_name(),
        ] {
            jetstream.delete_stream(&stream).await?;
        }
        Ok(())
    }
}

impl Drop for ClusterLog {
    fn drop(&mut self) {
        if self.cleaned_up {
            return;
        }
        // A failed assertion may have left a node stopped; the script is synchronous.
        if let Err(error) = self.cluster.start_stopped_nodes() {
            report(format_args!(
                "cluster: restarting stopped nodes failed: {error:#}"
            ));
        }
        // The test's runtime may be shutting down, so the streams are deleted on a helper thread with
        // its own runtime.
        let urls = self.cluster.urls.clone();
        let streams = [
            self.config.stream_name.clone(),
            self.config.parked_stream_name(),
        ];
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a cleanup runtime starts");
            runtime.block_on(async move {
                let jetstream = jetstream::new(async_nats::connect(urls).await?);
                for stream in streams {
                    jetstream.delete_stream(&stream).await?;
                }
                anyhow::Ok(())
            })
        });
        if let Ok(Err(error)) = cleanup.join() {
            report(format_args!(
                "cluster: deleting the test's streams failed: {error:#}"
            ));
        }
    }
}

/// How long writes stalled after a disruption.
#[derive(Debug, Clone, Copy)]
struct WriteGap {
    /// From the disruption to the first acknowledgement of an append sent after it.
    first_ack: Duration,
    /// The longest time without any acknowledgement, from the disruption until the load is steady.
    longest_silence: Duration,
}

impl fmt::Display for WriteGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "write gap {} ms (first acknowledgement of an append sent after it; longest time \
             without any acknowledgement {} ms)",
            self.first_ack.as_millis(),
            self.longest_silence.as_millis()
        )
    }
}

/// One acknowledged append.
#[derive(Debug, Clone, Copy)]
struct Ack {
    sequence: u64,
    /// When the attempt that was acknowledged was sent.
    sent: Instant,
    acked: Instant,
}

/// What the writers were told, kept on their side.
#[derive(Debug, Default)]
struct Ledger {
    /// Every acknowledged command, with its sequence.
    acked: HashMap<CommandId, Ack>,
    /// Acknowledgements that said the command was already stored (a retry after a lost answer).
    duplicates: usize,
    /// Commands that lost a race as a conflict: never on the log.
    conflicted: HashSet<CommandId>,
    /// Commands whose last answer was "unavailable" when the load stopped: on the log at most once.
    unknown: HashSet<CommandId>,
    /// "Unavailable" answers ([`LogError::Nats`]) the writers retried, counted by their causes.
    unavailable: BTreeMap<String, usize>,
    /// Rounds of two writers appending at the same expected version, and those one of them won.
    races: usize,
    race_wins: usize,
    /// Rounds both racers lost: their version came from a read that missed the newest commits.
    races_on_a_stale_read: usize,
    /// Answers a correct log never gives, described.
    anomalies: Vec<String>,
}

impl Ledger {
    fn note_unavailable(&mut self, error: LogError) {
        let cause = format!("{:#}", anyhow::Error::from(error));
        *self.unavailable.entry(cause).or_default() += 1;
    }

    fn acknowledge(&mut self, command: CommandId, sequence: u64, duplicate: bool, sent: Instant) {
        let ack = Ack {
            sequence,
            sent,
            acked: Instant::now(),
        };
        self.duplicates += usize::from(duplicate);
        if let Some(earlier) = self.acked.insert(command, ack) {
            self.anomalies.push(format!(
                "command {command:?} acknowledged twice: {earlier:?}, {ack:?}"
            ));
        }
    }

    /// The first acknowledgement of an append sent at or after `since`.
    fn first_ack_sent_after(&self, since: Instant) -> Option<Instant> {
        self.acked
            .values()
            .filter(|ack| ack.sent >= since)
            .map(|ack| ack.acked)
            .min()
    }

    fn acks_sent_after(&self, since: Instant) -> usize {
        self.acked.values().filter(|ack| ack.sent >= since).count()
    }
}

/// Writers appending until told to stop: solo writers on aggregates of their own, and pairs racing
/// on one aggregate each.
struct Load {
    started: Instant,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    writers: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Load {
    fn start(log: &EventLog) -> Self {
        let started = Instant::now();
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let chain = new_chain();
        let clinic = new_clinic();
        let mut writers = Vec::new();
        for _ in 0..SOLO_WRITERS {
            let writer = Writer {
                log: log.clone(),
                aggregate: new_session(chain, clinic),
                ledger: Arc::clone(&ledger),
                stop: Arc::clone(&stop),
            };
            writers.push(tokio::spawn(writer.append_alone()));
        }
        for _ in 0..RACING_PAIRS {
            let writer = Writer {
                log: log.clone(),
                aggregate: new_session(chain, clinic),
                ledger: Arc::clone(&ledger),
                stop: Arc::clone(&stop),
            };
            writers.push(tokio::spawn(writer.race_in_pairs()));
        }
        Self {
            started,
            ledger,
            stop,
            writers,
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .expect("no writer panics holding the ledger")
    }

    async fn wait_for_acks(&self, count: usize) -> anyhow::Result<()> {
        self.wait_for_acks_sent_after(self.started, count)
            .await
            .map(drop)
    }

    /// Waits until `count` appends sent at or after `since` are acknowledged; returns how many are.
    async fn wait_for_acks_sent_after(
        &self,
        since: Instant,
        count: usize,
    ) -> anyhow::Result<usize> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let acked = self.ledger().acks_sent_after(since);
            if acked >= count {
                return Ok(acked);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {acked} of {count} appends were acknowledged within 60 s"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The write gap after a disruption at `since`: the time to the first acknowledgement of an
    /// append sent at or after it, and the longest time without any acknowledgement from `since`
    /// until 50 appends sent after it are acknowledged (the load is steady again).
    async fn write_gap_after(&self, since: Instant) -> anyhow::Result<WriteGap> {
        self.wait_for_acks_sent_after(since, 50).await?;
        let ledger = self.ledger();
        let first_ack = ledger
            .first_ack_sent_after(since)
            .context("an acknowledgement after the disruption")?;
        let until = Instant::now();
        let mut acked: Vec<Instant> = ledger
            .acked
            .values()
            .map(|ack| ack.acked)
            .filter(|acked| *acked > since && *acked <= until)
            .collect();
        acked.sort_unstable();
        let mut longest_silence = Duration::ZERO;
        let mut previous = since;
        for acked in acked {
            longest_silence = longest_silence.max(acked - previous);
            previous = acked;
        }
        Ok(WriteGap {
            first_ack: first_ack - since,
            longest_silence,
        })
    }

    async fn finish(self) -> anyhow::Result<Ledger> {
        self.stop.store(true, Ordering::Relaxed);
        for writer in self.writers {
            writer.await??;
        }
        let ledger = Arc::try_unwrap(self.ledger)
            .map_err(|_| anyhow::anyhow!("a writer still holds the ledger"))?;
        Ok(ledger
            .into_inner()
            .expect("no writer panicked holding the ledger"))
    }
}

/// One writer of the load.
struct Writer {
    log: EventLog,
    aggregate: AggregateAddress,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
}

/// How many "unavailable" answers a writer still retries once the load was told to stop.
const RETRIES_AFTER_STOP: usize = 3;
/// How long an append or a read may take before the test calls it hung: several times the append's
/// own retry budget, so only a call that would never return reaches it.
const HUNG: Duration = Duration::from_secs(60);

impl Writer {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .expect("no writer panics holding the ledger")
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Appends one command after another to an aggregate no one else writes. Each command is
    /// retried after an "unavailable" answer until it is acknowledged (maybe as a duplicate): a
    /// conflict here would be a lost or doubled write.
    async fn append_alone(self) -> anyhow::Result<()> {
        let mut version = self
            .acknowledged(commit_for(&self.aggregate, vec![scheduled()]), 0)
            .await?;
        while !self.stopped() {
            let Some(sequence) = version else {
                return Ok(());
            };
            version = self
                .acknowledged(commit_for(&self.aggregate, vec![service(15)]), sequence)
                .await?;
        }
        Ok(())
    }

    /// Appends `commit` until it is acknowledged: its sequence, or `None` when the log stayed
    /// unavailable after the load was told to stop (the outcome is then unknown).
    async fn acknowledged(
        &self,
        commit: claimledger_events::Commit,
        expected_version: u64,
    ) -> anyhow::Result<Option<u64>> {
        let mut retries_after_stop = 0;
        loop {
            let sent = Instant::now();
            let append = self.log.append(&self.aggregate, expected_version, &commit);
            let Ok(outcome) = tokio::time::timeout(HUNG, append).await else {
                let mut ledger = self.ledger();
                ledger.anomalies.push(format!(
                    "a lone writer's append at version {expected_version} did not return within \
                     {HUNG:?}"
                ));
                ledger.unknown.insert(commit.command_id);
                return Ok(None);
            };
            match outcome {
                Ok(appended) => {
                    self.ledger().acknowledge(
                        commit.command_id,
                        appended.sequence,
                        appended.duplicate,
                        sent,
                    );
                    return Ok(Some(appended.sequence));
                }
                Err(error @ LogError::Nats { .. }) => {
                    let mut ledger = self.ledger();
                    ledger.note_unavailable(error);
                    if self.stopped() {
                        retries_after_stop += 1;
                        if retries_after_stop > RETRIES_AFTER_STOP {
                            ledger.unknown.insert(commit.command_id);
                            return Ok(None);
                        }
                    }
                }
                Err(other) => {
                    self.ledger().anomalies.push(format!(
                        "a lone writer's append at version {expected_version} answered: {other}"
                    ));
                    return Ok(None);
                }
            }
        }
    }

    /// Two writers append different commands to one aggregate at the same expected version, round
    /// after round: at most one wins, the other is a conflict (or "unavailable", its outcome then
    /// read from the log), and the log holds at most one commit after that version.
    async fn race_in_pairs(self) -> anyhow::Result<()> {
        let Some(mut version) = self
            .acknowledged(commit_for(&self.aggregate, vec![scheduled()]), 0)
            .await?
        else {
            return Ok(());
        };
        while !self.stopped() {
            let first = commit_for(&self.aggregate, vec![service(15)]);
            let second = commit_for(&self.aggregate, vec![service(30)]);
            let sent = Instant::now();
            let (first_outcome, second_outcome) = tokio::join!(
                tokio::time::timeout(HUNG, self.log.append(&self.aggregate, version, &first)),
                tokio::time::timeout(HUNG, self.log.append(&self.aggregate, version, &second))
            );
            let mut won = Vec::new();
            let mut lost = Vec::new();
            let mut unanswered = Vec::new();
            for (commit, outcome) in [(&first, first_outcome), (&second, second_outcome)] {
                let Ok(outcome) = outcome else {
                    self.ledger().anomalies.push(format!(
                        "a racing append at version {version} did not return within {HUNG:?}"
                    ));
                    unanswered.push(commit.command_id);
                    continue;
                };
                match outcome {
                    // A duplicate here is this call's own earlier attempt, stored before its answer
                    // was lost: still one commit.
                    Ok(appended) => won.push((commit.command_id, appended)),
                    Err(LogError::Conflict {
                        expected_version, ..
                    }) if expected_version == version => lost.push(commit.command_id),
                    Err(error @ LogError::Nats { .. }) => {
                        unanswered.push(commit.command_id);
                        self.ledger().note_unavailable(error);
                    }
                    other => self.ledger().anomalies.push(format!(
                        "a racing append at version {version} answered: {other:?}"
                    )),
                }
            }
            let history = self.read_until_answered().await?;
            let mut ledger = self.ledger();
            ledger.races += 1;
            // Two winners at one version would be a lost write. The log itself is checked for
            // that at the end (every commit names the version it was decided on); `history`
            // may be a read from just before the newest commits (right after a leader change), so
            // the next round's appends then conflict, which is safe.
            if won.len() > 1 {
                ledger.anomalies.push(format!(
                    "two appends at version {version} both succeeded: {won:?}"
                ));
            }
            if lost.len() == 2 {
                ledger.races_on_a_stale_read += 1;
            }
            for (command, appended) in won {
                ledger.race_wins += 1;
                ledger.acknowledge(command, appended.sequence, appended.duplicate, sent);
            }
            for command in lost {
                ledger.conflicted.insert(command);
            }
            // An unanswered racer's outcome is what the log holds: it either landed (the other
            // racer then lost) or did not.
            for command in unanswered {
                ledger.unknown.insert(command);
            }
            drop(ledger);
            version = history.version;
        }
        Ok(())
    }

    /// The aggregate's history, asked again while the log is electing a leader.
    async fn read_until_answered(&self) -> anyhow::Result<AggregateHistory> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let read = tokio::time::timeout(HUNG, self.log.read(&self.aggregate))
                .await
                .with_context(|| format!("reading an aggregate did not return within {HUNG:?}"))?;
            match read {
                Ok(history) => return Ok(history),
                Err(error) if Instant::now() >= deadline => {
                    return Err(anyhow::Error::from(error)
                        .context("the aggregate could not be read for 60 s"));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }
}

/// Every stored message whose `Nats-Expected-Last-Subject-Sequence` (the version its command was
/// decided on) is not the sequence of the message before it on the same subject, as (subject,
/// sequence, expected, actual). Any such message is a lost write: two commands decided on the same
/// version both stored. Read with a plain ordered consumer, because the log's own reads do not
/// expose headers.
async fn commits_not_decided_on_their_predecessor(
    client: &async_nats::Client,
    stream: &str,
) -> anyhow::Result<Vec<(String, u64, u64, u64)>> {
    use futures::StreamExt as _;

    let stream = jetstream::new(client.clone()).get_stream(stream).await?;
    let last = stream.get_info().await?.state.last_sequence;
    let mut messages = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
        .await?
        .messages()
        .await?;
    let mut previous: HashMap<String, u64> = HashMap::new();
    let mut unchained = Vec::new();
    let mut sequence = 0;
    while sequence < last {
        let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .context("the stream's messages stopped coming for 30 s")?
            .context("the ordered consumer ended")??;
        sequence = message
            .info()
            .map_err(|error| anyhow::anyhow!(error))?
            .stream_sequence;
        let subject = message.subject.to_string();
        let expected = message
            .headers
            .as_ref()
            .and_then(|headers| {
                headers.get(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE)
            })
            .context("every commit carries its expected version")?
            .as_str()
            .parse::<u64>()?;
        let actual = previous.insert(subject.clone(), sequence).unwrap_or(0);
        if expected != actual {
            unchained.push((subject, sequence, expected, actual));
        }
    }
    Ok(unchained)
}
