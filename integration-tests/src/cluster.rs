//! The three-node JetStream cluster of `deploy/cluster-stack.sh`, under the tests' control: find a
//! stream's leader, kill a node with `kill -9` by its pid file, start it again with the script, ask
//! a stream's leader to step down, and wait until every replica has caught up.
//!
//! The nodes are reached at `CLAIMLEDGER_CLUSTER_URLS` (comma-separated, default the script's
//! 127.0.0.1:4223-4225) and node `<name>` keeps its pid file at
//! `$CLAIMLEDGER_CLUSTER_DIR/<name>/nats.pid` (default `/var/lib/claimledger-cluster`). When no node
//! answers, [`Cluster::reach`] says why and the caller skips, unless `CLAIMLEDGER_CLUSTER_REQUIRED=1`
//! (set by `deploy/test.sh`), which makes an unreachable cluster an error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::ServerAddr;
use async_nats::jetstream::{self, stream::ClusterInfo};

/// The client ports `deploy/cluster-stack.sh` gives its nodes.
const DEFAULT_CLUSTER_URLS: &str =
    "nats://127.0.0.1:4223,nats://127.0.0.1:4224,nats://127.0.0.1:4225";
/// Where `deploy/cluster-stack.sh` keeps each node's directory.
const DEFAULT_CLUSTER_DIR: &str = "/var/lib/claimledger-cluster";
/// How often the waits below ask the cluster again.
const POLL: Duration = Duration::from_millis(50);

/// Whether the cluster answers.
#[derive(Debug)]
pub enum Reach {
    /// It does.
    Reached(Cluster),
    /// No node answers, for this reason; the caller skips.
    Unreachable(String),
}

/// A reachable cluster whose nodes this process may kill and restart.
#[derive(Debug)]
pub struct Cluster {
    /// A client connected to one of the nodes; it reconnects to another when that node dies.
    pub client: async_nats::Client,
    /// The nodes' client addresses.
    pub urls: Vec<ServerAddr>,
    dir: PathBuf,
    script: PathBuf,
}

impl Cluster {
    /// Connects to the cluster. [`Reach::Unreachable`] with the reason when no node answers and the
    /// cluster is not required; an error when it is required, or when it answers but is not a cluster whose
    /// nodes have pid files to kill them by.
    pub async fn reach() -> anyhow::Result<Reach> {
        let urls_setting = std::env::var("CLAIMLEDGER_CLUSTER_URLS")
            .unwrap_or_else(|_| DEFAULT_CLUSTER_URLS.to_owned());
        let urls = urls_setting
            .split(',')
            .map(|url| url.trim().parse::<ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("CLAIMLEDGER_CLUSTER_URLS={urls_setting:?}"))?;
        let required =
            std::env::var("CLAIMLEDGER_CLUSTER_REQUIRED").is_ok_and(|value| value == "1");
        let connected = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .max_reconnects(None)
            .connect(urls.clone())
            .await;
        let client = match connected {
            Ok(client) => client,
            Err(error) if !required => {
                return Ok(Reach::Unreachable(format!(
                    "no node of the JetStream cluster answers at {urls_setting} ({error}); start it \
                     with deploy/cluster-stack.sh"
                )));
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "CLAIMLEDGER_CLUSTER_REQUIRED=1 but no node answers at {urls_setting}; \
                         start the cluster with deploy/cluster-stack.sh"
                    )
                });
            }
        };
        let info = client.server_info();
        anyhow::ensure!(
            info.cluster.is_some() && info.jetstream,
            "{} at {urls_setting} is not a JetStream cluster node",
            info.server_name
        );
        let dir = std::env::var("CLAIMLEDGER_CLUSTER_DIR")
            .map_or_else(|_| PathBuf::from(DEFAULT_CLUSTER_DIR), PathBuf::from);
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("integration-tests sits in the workspace root")?
            .join("deploy/cluster-stack.sh");
        let cluster = Self {
            client,
            urls,
            dir,
            script,
        };
        cluster
            .pid_of(&info.server_name)
            .context("the cluster answers, but not as deploy/cluster-stack.sh started it")?;
        Ok(Reach::Reached(cluster))
    }

    /// The process id of node `name`, from the pid file the script wrote.
    pub fn pid_of(&self, name: &str) -> anyhow::Result<u32> {
        let file = self.dir.join(name).join("nats.pid");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading node {name}'s pid file {}", file.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("{} holds {text:?}, not a pid", file.display()))
    }

    /// Kills node `name` with SIGKILL, as a crash or a power cut would, and returns the instant
    /// `kill` returned: the node answers nothing after it.
    pub fn kill(&self, name: &str) -> anyhow::Result<Instant> {
        let pid = self.pid_of(name)?;
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .context("running kill")?;
        anyhow::ensure!(
            status.success(),
            "kill -9 {pid} (node {name}) failed: {status}"
        );
        Ok(Instant::now())
    }

    /// Starts every node that is not running with `deploy/cluster-stack.sh`, on the node's own
    /// store, and waits until JetStream answers on every node.
    pub fn start_stopped_nodes(&self) -> anyhow::Result<()> {
        let output = Command::new(&self.script)
            .output()
            .with_context(|| format!("running {}", self.script.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "{} failed ({}): {}{}",
            self.script.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// The stream's cluster state as its leader reports it, asked until it answers (a stream without
    /// a leader, or a node that just died, does not answer at once).
    pub async fn stream_cluster(
        &self,
        stream: &str,
        within: Duration,
    ) -> anyhow::Result<ClusterInfo> {
        let jetstream = jetstream::new(self.client.clone());
        let deadline = Instant::now() + within;
        loop {
            let last_error = match jetstream.get_stream(stream).await {
                Ok(mut handle) => match handle.info().await {
                    Ok(info) => match info.cluster.clone() {
                        Some(cluster) if cluster.leader.is_some() => return Ok(cluster),
                        _ => "no leader yet".to_owned(),
                    },
                    Err(error) => error.to_string(),
                },
                Err(error) => error.to_string(),
            };
            anyhow::ensure!(
                Instant::now() < deadline,
                "stream {stream} reported no leader within {within:?} ({last_error})"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The name of the stream's leader.
    pub async fn leader_of(&self, stream: &str) -> anyhow::Result<String> {
        let cluster = self.stream_cluster(stream, Duration::from_secs(30)).await?;
        cluster.leader.context("a leader")
    }

    /// Waits until the stream has a leader and `replicas - 1` followers, all current and online:
    /// after this, losing any one node keeps a quorum that holds every acknowledged append.
    pub async fn wait_until_current(
        &self,
        stream: &str,
        replicas: usize,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let within = Duration::from_secs(60);
        loop {
            let cluster = self.stream_cluster(stream, within).await?;
            let followers_current = cluster.replicas.len() == replicas - 1
                && cluster
                    .replicas
                    .iter()
                    .all(|peer| peer.current && !peer.offline);
            if followers_current {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(
                started.elapsed() < within,
                "stream {stream}'s replicas did not catch up within {within:?}: {:?}",
                cluster.replicas
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Asks the stream's leader to step down (a planned leader change, as before maintenance) and
    /// returns the instant the request was sent and the new leader.
    pub async fn step_down(&self, stream: &str) -> anyhow::Result<(Instant, String)> {
        let old_leader = self.leader_of(stream).await?;
        let requested_at = Instant::now();
        let answer = self
            .client
            .request(
                format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}"),
                "".into(),
            )
            .await
            .context("asking the stream leader to step down")?;
        let answer = String::from_utf8_lossy(&answer.payload);
        anyhow::ensure!(
            answer.contains(r#""success":true"#),
            "the step-down was refused: {answer}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leader = self.leader_of(stream).await?;
            if leader != old_leader {
                return Ok((requested_at, leader));
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{old_leader} was still the leader of {stream} 30 s after stepping down"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The names of the stream's followers.
    pub async fn followers_of(&self, stream: &str) -> anyhow::Result<Vec<String>> {
        let cluster = self.stream_cluster(stream, Duration::from_secs(30)).await?;
        Ok(cluster.replicas.into_iter().map(|peer| peer.name).collect())
    }
}
